//! A `.netrc` file (`$NETRC`, else `$HOME/.netrc`): the logins that git,
//! through curl, sends to HTTP(S) servers for which it has no credentials
//! of its own, so upstream's git-sync used them too.
//!
//! The syntax is curl's: whitespace-separated tokens, `machine <host>` or
//! `default` opening an entry, `login`, `password` (and `account`, not
//! used) inside it, `macdef <name>` followed by lines up to an empty one
//! (skipped), `#` starting a comment to the end of its line, and
//! double-quoted tokens with `\"`, `\\`, `\n`, `\r`, `\t` escapes.

use crate::git::{Credentials, HostLogin};

/// The entries of `text`, in order; an entry without a password is kept
/// (curl sends its login with an empty password).
pub fn parse(text: &str) -> Vec<HostLogin> {
    let mut entries: Vec<HostLogin> = Vec::new();
    let mut tokens = Tokens { rest: text };
    while let Some(token) = tokens.next() {
        match token.as_str() {
            "machine" => {
                let host = tokens.next().unwrap_or_default().to_ascii_lowercase();
                entries.push(entry(Some(host)));
            }
            "default" => entries.push(entry(None)),
            "login" | "password" | "account" => {
                let value = tokens.next().unwrap_or_default();
                if let Some(last) = entries.last_mut() {
                    match token.as_str() {
                        "login" => last.credentials.username = value,
                        "password" => last.credentials.password = value,
                        _ => {}
                    }
                }
            }
            "macdef" => tokens.skip_macro(),
            // Unknown words are passed over, as curl's older parser did.
            _ => {}
        }
    }
    entries
}

fn entry(host: Option<String>) -> HostLogin {
    HostLogin {
        scheme: None,
        host,
        port: None,
        credentials: Credentials {
            username: String::new(),
            password: String::new(),
        },
    }
}

struct Tokens<'a> {
    rest: &'a str,
}

impl Tokens<'_> {
    fn next(&mut self) -> Option<String> {
        loop {
            self.rest = self.rest.trim_start();
            if self.rest.starts_with('#') {
                let end = self.rest.find('\n').unwrap_or(self.rest.len());
                self.rest = &self.rest[end..];
                continue;
            }
            break;
        }
        if self.rest.is_empty() {
            return None;
        }
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = &quoted[i + 1..];
                        return Some(value);
                    }
                    '\\' => match chars.next().map(|(_, e)| e) {
                        Some('n') => value.push('\n'),
                        Some('r') => value.push('\r'),
                        Some('t') => value.push('\t'),
                        Some(other) => value.push(other),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            // No closing quote: the rest of the file is the token.
            self.rest = "";
            return Some(value);
        }
        let end = self
            .rest
            .find(char::is_whitespace)
            .unwrap_or(self.rest.len());
        let token = self.rest[..end].to_string();
        self.rest = &self.rest[end..];
        Some(token)
    }

    /// Past a macro: its name's line, then lines up to an empty one.
    fn skip_macro(&mut self) {
        let mut lines = self.rest.split_inclusive('\n');
        let mut skipped = lines.next().map_or(0, str::len);
        for line in lines {
            skipped += line.len();
            if line.trim_end_matches(['\r', '\n']).is_empty() {
                break;
            }
        }
        self.rest = &self.rest[skipped..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(text: &str) -> Vec<(Option<String>, String, String)> {
        parse(text)
            .into_iter()
            .map(|e| (e.host, e.credentials.username, e.credentials.password))
            .collect()
    }

    fn e(host: Option<&str>, login: &str, password: &str) -> (Option<String>, String, String) {
        (host.map(str::to_string), login.into(), password.into())
    }

    #[test]
    fn entries_on_one_line_or_many_with_comments_and_macros() {
        let text = "# my logins\n\
                    machine Git.Example.com login bot password s3cret\n\
                    macdef init\n\
                    cd /pub\n\
                    machine not.an.entry login x password y\n\
                    \n\
                    machine other.example\n  login   me # trailing words\n  password pw account acct\n\
                    default login anonymous password guest\n";
        assert_eq!(
            flat(text),
            vec![
                e(Some("git.example.com"), "bot", "s3cret"),
                e(Some("other.example"), "me", "pw"),
                e(None, "anonymous", "guest"),
            ]
        );
    }

    #[test]
    fn quoted_tokens_keep_spaces_and_escapes() {
        let text = r#"machine h login "a user" password "p\"w d\\x\t""#;
        assert_eq!(flat(text), vec![e(Some("h"), "a user", "p\"w d\\x\t")]);
        // An unterminated quote ends with the file.
        assert_eq!(
            flat("machine h login u password \"open"),
            vec![e(Some("h"), "u", "open")]
        );
    }
}
