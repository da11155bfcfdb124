//! Listing the refs of a git:// remote with protocol v2, and fetching on
//! that session (see `v2_session.rs`): git's daemon hands the `version=2`
//! parameter of the request line on to `git-upload-pack`, as git sends it
//! (since 2.18). libgit2 sends none, so its polls receive every ref the
//! repository has.

use std::io::Write;
use std::time::Duration;

use super::pkt_line;
use super::ssh_url::split_port;
use super::v2_session::{ls_refs, Listed};

/// The port of git's daemon when a URL names none.
const DAEMON_PORT: u16 = 9418;

/// Where a git:// URL leads.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DaemonPlace {
    /// `host[:port]` as the URL writes it: what the request names.
    pub authority: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl DaemonPlace {
    /// `git://host[:port]/path` (the host maybe `[an IPv6 address]`).
    pub fn parse(url: &str) -> Option<DaemonPlace> {
        let rest = url.strip_prefix("git://")?;
        let (authority, path) = rest.split_at(rest.find('/')?);
        // `git://host/~user/repo` asks for `~user/repo`, as git reads it.
        let path = path
            .strip_prefix('/')
            .filter(|p| p.starts_with('~'))
            .unwrap_or(path);
        let (host, port) = split_port(authority)?;
        let port = port.unwrap_or(DAEMON_PORT);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('@') || path.len() < 2 {
            return None;
        }
        Some(DaemonPlace {
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// The request line git sends a daemon for a protocol v2 session.
fn request(place: &DaemonPlace) -> Vec<u8> {
    let line = format!(
        "git-upload-pack {}\0host={}\0\0version=2\0",
        place.path, place.authority
    );
    let mut out = Vec::new();
    pkt_line::write(&mut out, line.as_bytes());
    out
}

/// The refs of the repository at `place` whose names start with one of
/// `prefixes`, over protocol v2, and the session, open for a fetch.
pub(super) fn list(place: &DaemonPlace, prefixes: &[String], timeout: Duration) -> Listed {
    // (Over TCP with no delay, reads and writes bounded by `timeout`;
    // or over `core.gitProxy`'s program.)
    let mut conn = super::stream::open(&place.host, place.port, Some(timeout))?;
    conn.write_all(&request(place))?;
    ls_refs(Box::new(conn), prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_and_the_request_git_sends_for_them() {
        let place = DaemonPlace::parse("git://h.example:9000/srv/r.git").unwrap();
        assert_eq!(
            (place.host.as_str(), place.port, place.path.as_str()),
            ("h.example", 9000, "/srv/r.git")
        );
        assert_eq!(
            request(&place),
            b"003egit-upload-pack /srv/r.git\0host=h.example:9000\0\0version=2\0"
        );
        let v6 = DaemonPlace::parse("git://[::1]/~me/r").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.path.as_str()),
            ("::1", 9418, "~me/r")
        );
        for not in [
            "git://h",
            "git://h/",
            "ssh://h/r",
            "git://u@h/r",
            "git://h:x/r",
        ] {
            assert_eq!(DaemonPlace::parse(not), None, "{not}");
        }
    }
}
