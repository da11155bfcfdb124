//! Keep credentials out of logs and errors.

/// Replace the password in every `scheme://user:password@host` in `text`
/// with `***`. A bare `scheme://token@host` is redacted as a whole (a token
/// often stands as the user over HTTPS), but for SSH, whose user is an
/// account name (`ssh://git@host`); and so is every value of the URL's
/// query (`?token=***`): webhook URLs carry keys there.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        let scheme = head[..i]
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '+'))
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let ssh = is_ssh(&scheme);
        out.push_str(head);
        let url_end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let host_at = match userinfo_end(&tail[..url_end]) {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:***")),
                    None if ssh => out.push_str(userinfo),
                    None => out.push_str("***"),
                }
                at
            }
            None => 0,
        };
        // The host ends at the first '/' after it.
        let end = tail[host_at..url_end]
            .find('/')
            .map_or(url_end, |i| host_at + i);
        out.push_str(&tail[host_at..end]);
        rest = &tail[end..];
        // The rest of this URL: its path as is, its query's values hidden.
        let url_end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        let (url_rest, after) = rest.split_at(url_end);
        out.push_str(&without_query_values(url_rest));
        rest = after;
    }
    out.push_str(rest);
    out
}

fn is_ssh(scheme: &str) -> bool {
    matches!(scheme, "ssh" | "git+ssh" | "ssh+git")
}

/// Where the user information of a URL ends (its `@`), given what follows
/// its `://`: at the last '@' before the query, since a password or token
/// pasted unencoded may hold '/' or '@' (a URL with an '@' in its path
/// loses some of it, never a secret). Not in a local path: `file:///srv/a@b`
/// has no user.
fn userinfo_end(tail: &str) -> Option<usize> {
    let before_query = tail.find(['?', '#']).unwrap_or(tail.len());
    let authority = tail.find('/').unwrap_or(tail.len());
    let last_at = |end: usize| tail[..end].rfind('@');
    last_at(before_query)
        .filter(|_| authority > 0)
        .max(last_at(authority))
}

/// The repository URL `url` as it may be written to disk: without a
/// password, without a bare user but over SSH (a token often stands as the
/// user over HTTPS), without a query (whose values may be keys). A git
/// binary reading it brings its own credentials.
pub fn without_credentials(url: &str) -> String {
    let Some(i) = url.find("://") else {
        // A path, or SSH's `user@host:path`, which holds no password.
        return url.to_string();
    };
    let (head, tail) = url.split_at(i + 3);
    let tail = &tail[..tail.find(['?', '#']).unwrap_or(tail.len())];
    let Some(at) = userinfo_end(tail) else {
        return format!("{head}{tail}");
    };
    let user = tail[..at].split(':').next().unwrap_or_default();
    match is_ssh(&head[..i].to_ascii_lowercase()) {
        true => format!("{head}{user}@{}", &tail[at + 1..]),
        false => format!("{head}{}", &tail[at + 1..]),
    }
}

/// `path?k=v&k2=v2#frag` as `path?k=***&k2=***#frag`.
fn without_query_values(path: &str) -> String {
    let Some((before, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) => format!("{k}=***"),
            None if pair.is_empty() => String::new(),
            None => "***".to_string(),
        })
        .collect();
    let mut out = format!("{before}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{redact, without_credentials};

    #[test]
    fn urls_written_to_disk_carry_no_credentials() {
        for (url, kept) in [
            ("https://bob:s3cret@host/r.git", "https://host/r.git"),
            ("https://tok@host/x", "https://host/x"),
            ("https://u:pa/ss@host/r", "https://host/r"),
            ("https://host/r?token=abc", "https://host/r"),
            ("SSH://git:pw@host:2222/r", "SSH://git@host:2222/r"),
            ("ssh://git@host/a@b", "ssh://git@host/a@b"),
            ("git@host:o/r.git", "git@host:o/r.git"),
            ("file:///srv/@org/a@b", "file:///srv/@org/a@b"),
            ("/srv/repo", "/srv/repo"),
            ("git://h/r", "git://h/r"),
        ] {
            assert_eq!(without_credentials(url), kept, "{url}");
        }
    }

    #[test]
    fn passwords_are_hidden() {
        for (text, shown) in [
            (
                "fetch https://bob:s3cret@host/r.git failed",
                "fetch https://bob:***@host/r.git failed",
            ),
            ("https://tok@host/x", "https://***@host/x"),
            // An SSH user is an account name; its password is still hidden.
            (
                "ls-remote ssh://git@host:2222/r.git",
                "ls-remote ssh://git@host:2222/r.git",
            ),
            ("(git+SSH://me:pw@h/r)", "(git+SSH://me:***@h/r)"),
            ("xssh://tok@h", "xssh://***@h"),
            ("file:///tmp/x", "file:///tmp/x"),
            ("no url here", "no url here"),
            (
                "POST \"https://u:p@h/hook?token=abc&x=1#f\" then http://h/?k",
                "POST \"https://u:***@h/hook?token=***&x=***#f\" then http://h/?***",
            ),
            // Pasted unencoded, a secret may hold '/', '@', ':', '+' or '='.
            (
                "clone https://u:pa/ss@host/r failed",
                "clone https://u:***@host/r failed",
            ),
            (
                "https://t/ok+=@github.com/o/r",
                "https://***@github.com/o/r",
            ),
            ("https://u:p@s/s:w@h:8/r", "https://u:***@h:8/r"),
            ("https://h/hook?email=a@b.c", "https://h/hook?email=***"),
            ("ssh://git@h/a@b", "ssh://git@h/a@b"),
            ("https://u:p?s#s@h/r", "https://u:***@h/r"),
            ("file:///srv/@org/a@b", "file:///srv/@org/a@b"),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }
}
