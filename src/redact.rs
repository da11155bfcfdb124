//! Keep credentials out of logs and errors.

/// Replace the password in every `scheme://user:password@host` in `text`
/// with `***`. A bare `scheme://token@host` is redacted as a whole.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:***")),
                    None => out.push_str("***"),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("fetch https://bob:s3cret@host/r.git failed"),
            "fetch https://bob:***@host/r.git failed"
        );
        assert_eq!(redact("https://tok@host/x"), "https://***@host/x");
        assert_eq!(redact("file:///tmp/x"), "file:///tmp/x");
        assert_eq!(redact("no url here"), "no url here");
    }
}
