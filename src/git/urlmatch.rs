//! git's matching of `http.<url>.<name>` config keys against a remote URL
//! (git's `urlmatch.c`, documented under `http.<url>.*` in git-config).
//!
//! Both URLs are normalised first: scheme and host in lower case, the
//! scheme's default port dropped, percent-escapes of unreserved characters
//! decoded (the others in upper case), an empty path made `/`. A key's URL
//! then matches when the scheme, host (a `*` label matching any one label)
//! and port are the same, its user name (if it has one) is the remote's,
//! and its path is the remote's or a prefix of it ending at a `/`. Of
//! several matching keys, the one with the longer host, then the longer
//! path, then a user name, is the more specific; `http.<name>` alone is
//! the least.

/// How specifically a key matched: host length, path length, user named
/// (compared in that order, as git compares them).
pub(crate) type Rank = (usize, usize, bool);

/// How specifically `key` (as libgit2 lists it: `http.<url>.<name>` with
/// section and name in lower case, or `http.<name>`) applies to `url`;
/// `None` when it is another setting or names another URL.
pub(crate) fn rank(key: &str, name: &str, url: &str) -> Option<Rank> {
    let rest = key.strip_prefix("http.")?;
    if rest == name {
        return Some((0, 0, false));
    }
    pattern_rank(rest.strip_suffix(name)?.strip_suffix('.')?, url)
}

/// Whether the URL `pattern` of a `<section>.<url>.<name>` key
/// (`credential.<url>.helper` too, which git matches the same way) names
/// `url`.
pub(crate) fn url_matches(pattern: &str, url: &str) -> bool {
    pattern_rank(pattern, url).is_some()
}

fn pattern_rank(pattern: &str, url: &str) -> Option<Rank> {
    let pattern = normalize(pattern)?;
    let url = normalize(url)?;
    if pattern.scheme != url.scheme || pattern.port != url.port {
        return None;
    }
    let user_matched = match &pattern.user {
        Some(user) => (url.user.as_ref() == Some(user)).then_some(true)?,
        None => false,
    };
    if !host_matches(&pattern.host, &url.host) {
        return None;
    }
    let path = path_match(&url.path, &pattern.path)?;
    Some((pattern.host.len(), path, user_matched))
}

struct Parts {
    scheme: String,
    user: Option<String>,
    host: String,
    port: Option<String>,
    path: String,
}

fn normalize(url: &str) -> Option<Parts> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            (Some(percent_normalized(user)), host)
        }
        None => (None, authority),
    };
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (format!("[{host}]"), after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (host_port.to_string(), None),
        },
    };
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => "",
    };
    let port = port
        .filter(|p| !p.is_empty() && *p != default_port)
        .map(str::to_string);
    Some(Parts {
        scheme,
        user,
        host: host.to_ascii_lowercase(),
        port,
        path: percent_normalized(path),
    })
}

/// `text` with the escapes of unreserved characters decoded and the hex
/// digits of the others in upper case, as git normalises URLs.
fn percent_normalized(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        match escaped_byte(bytes, i) {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(char::from(b));
                i += 3;
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                i += 3;
            }
            None => {
                let c = text[i..].chars().next().unwrap_or_default();
                out.push(c);
                i += c.len_utf8().max(1);
            }
        }
    }
    out
}

/// `text` with its `%XX` escapes decoded, as git decodes a URL's user
/// and password (bytes that are not UTF-8 are replaced).
pub(crate) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match escaped_byte(bytes, i) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte a `%XX` escape at `i` of `bytes` stands for, if one is there.
fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    let hex = bytes.get(i + 1..i + 3).filter(|_| bytes[i] == b'%')?;
    u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// The same labels, a `*` label of `pattern` matching any one label.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| *p == "*" || p == h)
}

/// The length of `prefix` as a path prefix of `path` ending at a `/`,
/// both taken to end in an implicit `/` (counted).
fn path_match(path: &str, prefix: &str) -> Option<usize> {
    if prefix == "/" {
        return Some(1);
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_urls_git_matches() {
        // `git config --get-urlmatch http.proxy <url>` (git 2.47) for a
        // key `http.<prefix>.proxy`: whether it applies.
        let remote = "https://example.com/org/repo";
        for (prefix, url, git) in [
            ("https://example.com", remote, true),
            ("https://example.com/", remote, true),
            ("https://EXAMPLE.com", remote, true),
            ("https://example.com:443", remote, true),
            (
                "https://example.com",
                "https://example.com:443/org/repo",
                true,
            ),
            ("https://example.com/org", remote, true),
            ("https://example.com/or", remote, false),
            ("https://example.com/org/repo.git", remote, false),
            ("https://*.example.com", "https://git.example.com/r", true),
            (
                "https://*.example.com",
                "https://a.git.example.com/r",
                false,
            ),
            ("https://user@example.com", "https://example.com/r", false),
            (
                "https://user@example.com",
                "https://user:pw@example.com/r",
                true,
            ),
            ("https://example.com", "https://user@example.com/r", true),
            ("http://example.com", "https://example.com/r", false),
            ("https://example.com/org/", "https://example.com/org", true),
            (
                "https://example.com/%6Frg",
                "https://example.com/org/r",
                true,
            ),
            ("https://example.com:8443", "https://example.com/r", false),
            ("example.com", "https://example.com/r", false),
        ] {
            let key = format!("http.{prefix}.proxy");
            assert_eq!(
                rank(&key, "proxy", url).is_some(),
                git,
                "{prefix} for {url}"
            );
        }
        assert_eq!(rank("http.proxy", "proxy", remote), Some((0, 0, false)));
        assert_eq!(
            rank("http.https://example.com.proxy", "extraheader", remote),
            None
        );
    }

    #[test]
    fn the_more_specific_key_ranks_higher() {
        let url = "https://user@git.corp/org/repo";
        let r = |prefix: &str| rank(&format!("http.{prefix}.x"), "x", url).unwrap();
        assert!(r("https://git.corp/org") > r("https://git.corp/"));
        assert!(r("https://user@git.corp/") > r("https://git.corp/"));
        assert!(r("https://git.corp/") > r("https://*.corp/"));
        assert_eq!(r("https://git.corp/org/"), r("https://git.corp/org"));
    }
}
