//! Parsers for the value syntaxes upstream git-sync accepts (Go's).

use std::time::Duration;

/// Parse a Go `time.ParseDuration` string: `300ms`, `1.5h`, `2h45m`, `0`.
/// A negative one, which Go's parser accepts, counts as zero: where
/// upstream asks for more (`--period`, a hook's timeout) the bound check
/// refuses it with upstream's message; elsewhere (`--stale-worktree-timeout`,
/// a webhook's timeout without a webhook) upstream accepts it and it acts
/// as zero does.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Some(magnitude) = s.strip_prefix('-') {
        if magnitude.starts_with(['-', '+']) {
            return Err(format!("expected a number in {s:?}"));
        }
        return parse_duration(magnitude).map(|_| Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("expected a number in {s:?}"));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("bad number in {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration {s:?} (e.g. 10s, 250ms)")),
            other => return Err(format!("unknown unit {other:?} in duration {s:?}")),
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("duration {s:?} is out of range"))
}

/// Parse legacy whole or fractional seconds (`GIT_SYNC_WAIT=10`, `0.5`).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("{s:?} is not a valid number of seconds"))
}

/// The repository, URL or path, kept as given; a control character in it
/// (most often the newline ending a value read from a file or a Secret),
/// or a space at either end (a value pasted into a manifest) where no
/// such path exists, is said at start rather than failing every pass with
/// an error in which it hardly shows. The reason never repeats the value:
/// it may hold a password.
pub fn parse_repo(s: &str) -> Result<String, String> {
    let spaced = |at: &str| {
        format!(
            "{at} with a space (a URL never does; quote the value whole, without the \
             space, in the manifest or the command)"
        )
    };
    if !std::path::Path::new(s).exists() {
        if s.starts_with(' ') {
            return Err(spaced("starts"));
        }
        if s.ends_with(' ') {
            return Err(spaced("ends"));
        }
    }
    match s.char_indices().find(|(_, c)| c.is_control()) {
        None if password_with_slash(s) => Err("holds a password with an unencoded '/' \
            (before the '@': percent-encode it as %2F, so that git reads the host \
            right and no part of the password is taken for one)"
            .into()),
        None if login_without_scheme(s) => Err("reads as user:password@host without a \
            scheme, which git takes for an SSH address on a host named as the user, \
            the password shown in every error: write https://user:password@host/path \
            (or, for SSH, user@host:path with a key)"
            .into()),
        // (After the check above: what it reads as a port is then no
        // part of a password, which only comes before an '@'.)
        None => match port_not_a_number(s).or_else(|| slashes_missing(s)) {
            Some(e) => Err(e),
            None => Ok(s.to_string()),
        },
        Some((i, c)) => {
            let what = match c {
                '\n' => "a newline",
                '\r' => "a carriage return",
                '\t' => "a tab",
                _ => "a control character",
            };
            let at_end = if s[i..].chars().all(char::is_control) {
                " at its end (as a value read from a file or a Secret often has)"
            } else {
                ""
            };
            Err(format!("contains {what}{at_end}"))
        }
    }
}

/// Whether `url` reads as `scheme://user:pass/word@host/...`: a password
/// holding a '/', which ends the authority, so that git (and libgit2) take
/// `user:pass` for a host and port, and name it in their errors. Such a
/// URL is invalid whatever it meant (its port is no number).
fn password_with_slash(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let Some((authority, path)) = rest.split_once('/') else {
        return false;
    };
    let Some((_, port)) = authority.split_once(':') else {
        return false;
    };
    !authority.contains(['@', '['])
        && path.contains('@')
        && !port.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `url` reads as `user:password@host/...` without a scheme, as
/// `https://` left out: git reads it as the scp-like address
/// `host:path` with the user for the host and `password@host/...` for
/// the path, and shows that path in its errors. (An scp-like address has
/// its '@', if any, before the ':'; a local path with a ':' has a '/'
/// before it, and one that exists is taken as it is.)
fn login_without_scheme(url: &str) -> bool {
    let Some((before, after)) = url.split_once(':') else {
        return false;
    };
    let login_then_host = after
        .split('/')
        .next()
        .and_then(|s| s.rsplit_once('@'))
        .is_some_and(|(password, host)| {
            !password.is_empty()
                && !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
    !url.contains("://")
        && !before.is_empty()
        && !before.contains(['@', '/'])
        && login_then_host
        && !std::path::Path::new(url).exists()
}

/// For `scheme://[user@]host:port/...` whose port is no number, most often
/// an scp-like address written after `ssh://`
/// (`ssh://git@github.com:org/repo.git`), which git cannot connect to
/// either: how to write it.
fn port_not_a_number(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme == "file" {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (user, host_port),
        None => ("", authority),
    };
    if host_port.starts_with('[') {
        return None;
    }
    let (host, port) = host_port.split_once(':')?;
    if port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A user without its password, if one was given.
    let user = match user {
        "" => String::new(),
        u => format!("{}@", u.split(':').next().unwrap_or_default()),
    };
    let path = [port, path].join("/");
    let path = path.trim_end_matches('/');
    let scp_like = match scheme {
        "ssh" | "git+ssh" | "ssh+git" => {
            format!("; or, scp-like without ssh://, {user}{host}:{path}")
        }
        _ => String::new(),
    };
    Some(format!(
        "the port after {host}: is no number (\"{port}\"): the path follows the host \
         after a '/': {scheme}://{user}{host}/{path}{scp_like}"
    ))
}

/// For a scheme whose "://" lost a part: `https:/host/...` or
/// `https:host/...`, which git reads as an scp-like SSH address on a host
/// named `https`, or `https//host/...`, a local path (whose error would
/// show a password in it): how to write it.
fn slashes_missing(url: &str) -> Option<String> {
    let (scheme, taken_for) = ["https", "http", "ssh", "git"]
        .into_iter()
        .find_map(|scheme| {
            let rest = url.strip_prefix(scheme)?;
            match rest.strip_prefix(':') {
                Some(r) if !r.starts_with("//") && scheme.starts_with("http") => {
                    Some((scheme, format!("the name of an SSH host, \"{scheme}\"")))
                }
                None if rest.starts_with("//") => Some((scheme, "a local path".into())),
                _ => None,
            }
        })?;
    if std::path::Path::new(url).exists() {
        return None;
    }
    let rest = url[scheme.len()..].trim_start_matches([':', '/']);
    // (Not repeated when it may hold a password.)
    let fix = match rest.contains('@') {
        false => format!(": {scheme}://{rest}"),
        true => String::new(),
    };
    Some(format!(
        "\"{scheme}\" without \"://\" (git would take it for {taken_for}){fix}"
    ))
}

/// An `http://` or `https://` URL with a host (webhook, askpass and token
/// endpoints), kept as given. The reason never repeats the value: it may
/// hold a password.
pub fn parse_http_url(s: &str) -> Result<String, String> {
    let uri: hyper::Uri = s
        .parse()
        .map_err(|_| "not a URL (expected http://host/...)".to_string())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must start with http:// or https://".into());
    }
    if uri.host().map_or(true, str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(s.to_string())
}

/// Why `r` cannot name anything on a remote, after git's ref-name rules
/// (`git check-ref-format`): revision expressions such as `main~1`, `HEAD^`
/// or `@{u}` are evaluated by a clone, never sent to a server, so such a
/// target could only fail at every pass.
pub fn check_ref(r: &str) -> Result<(), String> {
    let expression = r.contains(['~', '^', ':']) || r.contains("@{") || r.contains("..");
    if expression {
        return Err(format!(
            "{r:?} is a revision expression, which a remote cannot resolve: \
             give a branch, a tag or a full commit hash"
        ));
    }
    let bad = r
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "?*[\\".contains(*c));
    if let Some(c) = bad {
        return Err(format!(
            "{r:?} is not a ref name ({c:?} is not allowed in one)"
        ));
    }
    if r.starts_with('/') || r.ends_with(['/', '.']) || r.ends_with(".lock") || r.contains("//") {
        return Err(format!("{r:?} is not a ref name"));
    }
    Ok(())
}

/// Parse a boolean as Go's `strconv.ParseBool` does.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true or false)")),
    }
}

/// A boolean as git reads one from its config or environment: `true`,
/// `yes`, `on` or a non-zero number; `false`, `no`, `off`, `0` or nothing
/// (any case); `None` for anything else.
pub fn parse_git_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" | "" => Some(false),
        n => n.parse::<i64>().ok().map(|n| n != 0),
    }
}

/// Parse a signed integer as Go's `strconv.ParseInt(s, 0, 64)` does, which
/// upstream uses for every integer flag and env var: an optional sign, then
/// decimal, `0x` hex, `0o` or a bare leading `0` octal, or `0b` binary, with
/// `_` between digits (`1_000`). So `--depth=010` is 8 there and here.
pub fn parse_int(s: &str) -> Result<i64, String> {
    go_int(s.trim()).ok_or_else(|| format!("{s:?} is not an integer"))
}

fn go_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let prefix = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match prefix.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    // An underscore must follow a digit or the base prefix, and precede a
    // digit: no `_1`, `1__0` or `1_` (Go's literal syntax).
    let mut after_digit = radix != 10;
    let mut magnitude: u64 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            if !after_digit {
                return None;
            }
            after_digit = false;
            continue;
        }
        let d = c.to_digit(radix)?;
        magnitude = magnitude
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(d))?;
        after_digit = true;
        any = true;
    }
    if !after_digit || !any {
        return None;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parse upstream's `--git-config` syntax: comma-separated `key:value`
/// pairs, where keys and values may be quoted (`"http.https://h/.proxy":v`;
/// a key holding a colon must be), values may contain `\,` (or, quoted, a
/// bare comma), and quoted keys and all values know the escapes `\n`,
/// `\t`, `\"`, `\,` and `\\`; any other escape is an error.
pub fn parse_git_config(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut chars = s.chars().peekable();
    let mut out = Vec::new();
    while let Some(&first) = chars.peek() {
        let key = if first == '"' {
            chars.next();
            let key = quoted(&mut chars)?;
            match chars.next() {
                Some(':') => key,
                Some(c) => return Err(format!("unexpected {c:?} after quoted key {key:?}")),
                None => return Err(format!("key {key:?} has no value (expected key:value)")),
            }
        } else {
            let mut key = String::new();
            loop {
                match chars.next() {
                    Some(':') => break key,
                    Some(c) => key.push(c),
                    None => return Err(format!("key {key:?} has no value (expected key:value)")),
                }
            }
        };
        check_config_key(&key)?;
        let value = match chars.peek() {
            None => return Err(format!("key {key:?} has no value")),
            Some('"') => {
                chars.next();
                let value = quoted(&mut chars)?;
                match chars.next() {
                    None | Some(',') => value,
                    Some(c) => {
                        return Err(format!("unexpected {c:?} after quoted value {value:?}"))
                    }
                }
            }
            Some(_) => {
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.push(unescape(&mut chars)?),
                        ',' => break,
                        c => value.push(c),
                    }
                }
                value
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// A key as git accepts it: `section[.subsection].name`, the section and
/// the name of letters, digits and `-` (the name starting with a letter),
/// the subsection anything but a newline.
/// `path` with a leading `~` (alone or before `/`) made `home`, as the
/// shell and OpenSSH expand it; as it is without a home, or otherwise.
pub(crate) fn under_home(path: &std::path::Path, home: Option<&str>) -> std::path::PathBuf {
    match (path.strip_prefix("~"), home.filter(|h| !h.is_empty())) {
        (Ok(rest), Some(home)) => std::path::Path::new(home).join(rest),
        _ => path.to_path_buf(),
    }
}

pub(crate) fn check_config_key(key: &str) -> Result<(), String> {
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let ok = match (key.split_once('.'), key.rsplit_once('.')) {
        (Some((section, _)), Some((middle, name))) => {
            word(section)
                && word(name)
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && !middle.contains('\n')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a git config key (section.name or section.subsection.name)"
        ))
    }
}

/// The rest of a quoted string whose opening `"` was read.
fn quoted(chars: &mut impl Iterator<Item = char>) -> Result<String, String> {
    let mut text = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(unescape(chars)?),
            '"' => return Ok(text),
            c => text.push(c),
        }
    }
    Err(format!("unterminated quote in \"{text}"))
}

/// The character an escape stands for; its `\\` was read.
fn unescape(chars: &mut impl Iterator<Item = char>) -> Result<char, String> {
    match chars.next() {
        Some('n') => Ok('\n'),
        Some('t') => Ok('\t'),
        Some(c @ ('"' | ',' | '\\')) => Ok(c),
        Some(c) => Err(format!("unsupported escape \\{c}")),
        None => Err("unfinished escape at the end".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_go_parses_them_with_base_0() {
        for (text, want) in [
            ("10", 10),
            ("+10", 10),
            ("-1", -1),
            ("0", 0),
            ("-0", 0),
            ("010", 8),
            ("0_7", 7),
            ("0o17", 15),
            ("0O17", 15),
            ("0x1F", 31),
            ("-0x10", -16),
            ("0x_1f", 31),
            ("0b101", 5),
            ("1_000", 1000),
            (" 5 ", 5),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(parse_int(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "-",
            "+",
            "0x",
            "0o",
            "0b",
            "08",
            "0b2",
            "1.0",
            "1e3",
            "_1",
            "1_",
            "1__0",
            "0_",
            "0x_",
            "--1",
            "+-1",
            "abc",
            "9223372036854775808",
            "-9223372036854775809",
            "\u{661}",
        ] {
            assert!(parse_int(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_duration("-1s").unwrap(), Duration::ZERO);
        assert!(parse_duration("-1x").is_err());
        assert!(parse_duration("--1s").is_err());
        assert_eq!(parse_duration("-0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn a_password_with_an_unencoded_slash_is_said_without_repeating_it() {
        let e = parse_repo("https://bot:SEC/RET@git.corp/org/repo").unwrap_err();
        assert!(
            e.contains("%2F") && !e.contains("SEC") && !e.contains("RET"),
            "{e}"
        );
        for fine in [
            "https://bot:SEC%2FRET@git.corp/org/repo",
            "https://git.corp:8443/org/@scope/repo",
            "https://bot:pw@git.corp/org/a@b",
            "ssh://git@git.corp:22/org/repo",
            "git@git.corp:org/repo.git",
            "https://[::1]:8443/r@x",
            "https://h/hook?to=a:b/c@d",
            "/srv/git/site",
        ] {
            assert_eq!(parse_repo(fine).as_deref(), Ok(fine));
        }
    }

    #[test]
    fn a_login_without_a_scheme_is_said_without_repeating_it() {
        for url in [
            "bot:S3CRET@git.corp/org/repo",
            "bot:S3CRET@git.corp:org/repo",
        ] {
            let e = parse_repo(url).unwrap_err();
            assert!(
                e.contains("without a scheme") && !e.contains("S3CRET"),
                "{e}"
            );
        }
        for fine in [
            "git@git.corp:org/repo@v2",
            "git.corp:org/repo",
            "git.corp:~bot/repo",
            "git.corp:@scope/repo",
            "git.corp:v1@/repo",
            "./a:b@c",
            "https://bot:S3CRET@git.corp/org/repo",
        ] {
            assert_eq!(parse_repo(fine).as_deref(), Ok(fine));
        }
    }

    #[test]
    fn a_port_that_is_no_number_says_how_to_write_the_url() {
        for (url, fix) in [
            (
                "ssh://git@github.com:org/repo.git",
                "ssh://git@github.com/org/repo.git; or, scp-like without ssh://, git@github.com:org/repo.git",
            ),
            (
                "https://github.com:org/repo.git",
                "https://github.com/org/repo.git",
            ),
            ("git://git.corp:repo", "git://git.corp/repo"),
            (
                "https://bot:S3CRET@git.corp:org/repo",
                "https://bot@git.corp/org/repo",
            ),
        ] {
            let e = parse_repo(url).unwrap_err();
            assert!(e.ends_with(fix) && !e.contains("S3CRET"), "{url}: {e}");
        }
        for (url, said) in [
            ("http:/git.corp/site.git", ": http://git.corp/site.git"),
            ("https:git.corp/site.git", ": https://git.corp/site.git"),
            (
                "https:/bot:S3CRET@git.corp/site.git",
                "for the name of an SSH host, \"https\")",
            ),
            ("https//git.corp/site.git", ": https://git.corp/site.git"),
            ("ssh//git@git.corp/site.git", "for a local path)"),
            ("https//bot:S3CRET@git.corp/site.git", "for a local path)"),
        ] {
            let e = parse_repo(url).unwrap_err();
            assert!(e.ends_with(said) && !e.contains("S3CRET"), "{url}: {e}");
        }
        for fine in [
            "ssh://git@git.corp:2222/org/repo",
            "https://git.corp:/org/repo",
            "https://[::1]:8443/repo",
            "file:///srv/a:b/repo",
            "git@git.corp:org/repo.git",
        ] {
            assert_eq!(parse_repo(fine).as_deref(), Ok(fine));
        }
    }

    #[test]
    fn a_space_at_either_end_is_said_unless_such_a_path_exists() {
        for (spaced, said) in [
            (
                " https://bot:S3CRET@git.corp/org/repo",
                "starts with a space",
            ),
            ("https://bot:S3CRET@git.corp/org/repo ", "ends with a space"),
            (" /srv/git/site", "starts with a space"),
        ] {
            let e = parse_repo(spaced).unwrap_err();
            assert!(e.contains(said) && !e.contains("S3CRET"), "{e}");
        }
        let t = tempfile::TempDir::new().unwrap();
        let odd = t.path().join("site ");
        std::fs::create_dir(&odd).unwrap();
        let odd = odd.to_str().unwrap();
        assert_eq!(parse_repo(odd).as_deref(), Ok(odd));
        assert_eq!(
            parse_repo("https://git.corp/my repo").as_deref(),
            Ok("https://git.corp/my repo")
        );
    }

    #[test]
    fn booleans_as_go_parses_them() {
        assert!(parse_bool("true").unwrap());
        assert!(parse_bool("1").unwrap());
        assert!(!parse_bool("False").unwrap());
        assert!(parse_bool("yes").is_err());
    }

    #[test]
    fn booleans_as_git_reads_them() {
        for (text, value) in [("Yes", Some(true)), ("on", Some(true)), ("2", Some(true))] {
            assert_eq!(parse_git_bool(text), value, "{text}");
        }
        for (text, value) in [("OFF", Some(false)), ("", Some(false)), ("0", Some(false))] {
            assert_eq!(parse_git_bool(text), value, "{text}");
        }
        assert_eq!(parse_git_bool("maybe"), None);
    }

    #[test]
    fn git_config_pairs() {
        let v =
            parse_git_config(r#"http.proxy:http://p:3128,core.x:"a, b",safe.directory:*"#).unwrap();
        assert_eq!(
            v,
            vec![
                ("http.proxy".into(), "http://p:3128".into()),
                ("core.x".into(), "a, b".into()),
                ("safe.directory".into(), "*".into()),
            ]
        );
        // Upstream's e2e value, a quoted key with a colon, and escapes.
        let v = parse_git_config(
            r#"http.postBuffer:10485760,sect.k1:"a val",sect.k2:another val,"http.https://h/.proxy":http://p:1,k.e:a\,b\tc\\d,k.q:"x\"y\nz""#,
        )
        .unwrap();
        assert_eq!(
            v,
            vec![
                ("http.postBuffer".into(), "10485760".into()),
                ("sect.k1".into(), "a val".into()),
                ("sect.k2".into(), "another val".into()),
                ("http.https://h/.proxy".into(), "http://p:1".into()),
                ("k.e".into(), "a,b\tc\\d".into()),
                ("k.q".into(), "x\"y\nz".into()),
            ]
        );
        assert_eq!(
            parse_git_config(r#"a.k:"""#).unwrap(),
            vec![("a.k".into(), "".into())]
        );
        assert!(parse_git_config("").unwrap().is_empty());
        for bad in [
            "novalue",
            "a.k:",
            ":v",
            r#"a.k:"open"#,
            r#""a.k"x:v"#,
            r#"a.k:"v"x"#,
            r"a.k:a\q",
            "nodot:v",
            "a.1k:v",
            "a b.k:v",
            "a.k_x:v",
        ] {
            assert!(parse_git_config(bad).is_err(), "{bad:?} accepted");
        }
    }
}
