//! SSH URLs as git writes them, taken apart and put back together:
//! `ssh://[user@]host[:port]/path` (also `git+ssh://`, `ssh+git://`) and
//! scp-like `[user@]host:path`, whose bracketed form `[user@host:port]:path`
//! names a port (git and libgit2 read both). `ssh_config.rs` rewrites a
//! host alias into the real destination with them, in the URL's own form.

/// The parts of an SSH URL, as written (no defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SshUrl {
    /// `ssh`, `git+ssh`, `ssh+git`; `None`: scp-like.
    pub scheme: Option<String>,
    pub user: Option<String>,
    /// Without the brackets of an IPv6 address.
    pub host: String,
    pub port: Option<u16>,
    /// After the host: `/srv/r.git` (also `/~me/r`) in a URL; `org/r.git`
    /// or `/srv/r.git` scp-like.
    pub path: String,
}

impl SshUrl {
    pub fn parse(url: &str) -> Option<SshUrl> {
        let parsed = match url.split_once("://") {
            Some((scheme, rest)) => {
                if !matches!(scheme, "ssh" | "git+ssh" | "ssh+git") {
                    return None;
                }
                let (authority, path) = rest.split_at(rest.find('/')?);
                let (user, host_port) = split_user(authority);
                let (host, port) = split_port(host_port)?;
                SshUrl {
                    scheme: Some(scheme.to_string()),
                    user,
                    host: unbracketed(host).to_string(),
                    port,
                    path: path.to_string(),
                }
            }
            None => scp_like(url)?,
        };
        (!parsed.host.is_empty() && !parsed.path.is_empty()).then_some(parsed)
    }

    /// The URL, in its own form.
    pub fn to_url(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let v6 = self.host.contains(':');
        let host = match v6 {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        };
        let port = self.port.filter(|&p| p != 22);
        match (&self.scheme, port) {
            (Some(scheme), port) => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{scheme}://{user}{host}{port}{}", self.path)
            }
            (None, None) => format!("{user}{host}:{}", self.path),
            (None, Some(port)) if !v6 => format!("[{user}{host}:{port}]:{}", self.path),
            // The bracketed scp-like form cannot hold an IPv6 address and
            // a port: a URL then, where a relative path is one under the
            // home directory, as git-upload-pack reads `~/`.
            (None, Some(port)) => {
                let path = match self.path.starts_with('/') {
                    true => self.path.clone(),
                    false => format!("/~/{}", self.path),
                };
                format!("ssh://{user}{host}:{port}{path}")
            }
        }
    }
}

/// `user@rest` (the last `@`, as a user name may hold one) or `rest`.
fn split_user(authority: &str) -> (Option<String>, &str) {
    match authority.rsplit_once('@') {
        Some((user, rest)) => (Some(user.to_string()), rest),
        None => (None, authority),
    }
}

/// `host[:port]` (the host maybe `[an IPv6 address]`); `None` for a port
/// that is not a number.
pub(super) fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let after_host = authority.rfind(']').unwrap_or(0);
    match authority.rfind(':').filter(|&c| c > after_host) {
        Some(c) => Some((&authority[..c], Some(authority[c + 1..].parse().ok()?))),
        None => Some((authority, None)),
    }
}

fn unbracketed(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// scp-like: `[user@]host:path` (a colon before any slash),
/// `[user@]{[host:port],[ipv6]}:path` or `[user@host:port]:path`.
fn scp_like(url: &str) -> Option<SshUrl> {
    let colon = url.find(':')?;
    let bracket = url.find('[').filter(|&b| b < colon);
    let (user, host, port, path) = match bracket {
        Some(open) => {
            let (user, before) = match &url[..open] {
                "" => (None, ""),
                before => (Some(before.strip_suffix('@')?.to_string()), before),
            };
            let close = open + url[open..].find("]:")?;
            let inside = &url[open + 1..close];
            let path = &url[close + 2..];
            if inside.matches(':').count() > 1 {
                (user, inside.to_string(), None, path)
            } else {
                let (inner_user, host_port) = split_user(inside);
                if inner_user.is_some() && !before.is_empty() {
                    return None;
                }
                let (host, port) = split_port(host_port)?;
                (user.or(inner_user), host.to_string(), port, path)
            }
        }
        None => {
            let host_part = &url[..colon];
            if host_part.contains('/') {
                return None;
            }
            let (user, host) = split_user(host_part);
            (user, host.to_string(), None, &url[colon + 1..])
        }
    };
    Some(SshUrl {
        scheme: None,
        user,
        host,
        port,
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::SshUrl;

    fn url(
        scheme: Option<&str>,
        user: Option<&str>,
        host: &str,
        port: Option<u16>,
        path: &str,
    ) -> SshUrl {
        SshUrl {
            scheme: scheme.map(str::to_string),
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            path: path.to_string(),
        }
    }

    #[test]
    fn both_forms_are_taken_apart_and_put_back_as_written() {
        let cases = [
            (
                "ssh://me@h.example:2222/srv/r.git",
                url(
                    Some("ssh"),
                    Some("me"),
                    "h.example",
                    Some(2222),
                    "/srv/r.git",
                ),
            ),
            ("ssh://h/~me/r", url(Some("ssh"), None, "h", None, "/~me/r")),
            (
                "git+ssh://git@[::1]:2200/r",
                url(Some("git+ssh"), Some("git"), "::1", Some(2200), "/r"),
            ),
            (
                "git@github.com:org/repo.git",
                url(None, Some("git"), "github.com", None, "org/repo.git"),
            ),
            ("[::1]:r", url(None, None, "::1", None, "r")),
            (
                "[git@h.example:2222]:org/r.git",
                url(None, Some("git"), "h.example", Some(2222), "org/r.git"),
            ),
            (
                "[h.example:2222]:/srv/r.git",
                url(None, None, "h.example", Some(2222), "/srv/r.git"),
            ),
        ];
        for (text, parts) in cases {
            assert_eq!(SshUrl::parse(text).as_ref(), Some(&parts), "{text}");
            assert_eq!(parts.to_url(), text);
        }
        // A user before the brackets is read, and written inside them.
        assert_eq!(
            SshUrl::parse("me@[h:2222]:r")
                .map(|u| u.to_url())
                .as_deref(),
            Some("[me@h:2222]:r")
        );
        for not_ssh in [
            "https://h/r",
            "/local/path",
            "./a:b",
            "h:",
            "ssh://h",
            "[h:x]:r",
            "ssh://h:x/r",
        ] {
            assert_eq!(SshUrl::parse(not_ssh), None, "{not_ssh}");
        }
    }

    #[test]
    fn a_port_is_written_where_each_form_can_hold_it() {
        let mut u = SshUrl::parse("alias:org/r.git").unwrap();
        u.host = "git.example".into();
        u.port = Some(22);
        assert_eq!(u.to_url(), "git.example:org/r.git");
        u.port = Some(443);
        u.user = Some("git".into());
        assert_eq!(u.to_url(), "[git@git.example:443]:org/r.git");
        u.host = "fd00::1".into();
        assert_eq!(u.to_url(), "ssh://git@[fd00::1]:443/~/org/r.git");
        u.path = "/srv/r.git".into();
        assert_eq!(u.to_url(), "ssh://git@[fd00::1]:443/srv/r.git");
    }
}
