//! Listing the refs of an SSH remote with protocol v2, as `ls_refs.rs`
//! does over HTTP(S): `git-upload-pack` started with `GIT_PROTOCOL=
//! version=2` (what git sends, and what GitHub's and GitLab's servers, or
//! an OpenSSH server with `AcceptEnv GIT_PROTOCOL`, pass on), then one
//! `ls-refs` for the names `--ref` may mean. libgit2 speaks only version 0,
//! where the server first sends every ref it has: on a repository with
//! 100,000 pull-request refs, megabytes every poll.
//!
//! A commit the listing shows is fetched on the same session (see
//! `v2_session.rs`). `remote/over_session.rs` uses it for a server that
//! advertised many refs to libgit2 (or any, with `--filter`). The host key
//! is checked against the known_hosts file before any key is offered; any
//! failure here leaves the pass to libgit2, which reports it as before.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::ssh_url::SshUrl;
use super::v2_session::{ls_refs, Listed, NoListing};
use super::{known_hosts, ssh_key, SshAuth};

/// Where an SSH URL leads: `ssh://[user@]host[:port]/path` (also
/// `git+ssh://`, `ssh+git://`) or scp-like `[user@]host:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SshPlace {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl SshPlace {
    pub fn parse(url: &str) -> Option<SshPlace> {
        let url = SshUrl::parse(url)?;
        // `ssh://host/~user/repo` is `~user/repo`, as git reads it.
        let path = match url.scheme {
            Some(_) => url.path.strip_prefix('/').filter(|p| p.starts_with('~')),
            None => None,
        };
        Some(SshPlace {
            path: path.map_or_else(|| url.path.clone(), str::to_string),
            user: url.user.unwrap_or_else(|| "git".to_string()),
            host: url.host,
            port: url.port.unwrap_or(22),
        })
    }
}

/// `path` quoted for the remote shell, as git quotes it.
fn shell_quote(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''"))
}

/// The host key methods to ask for, from the types `known_hosts` lists for
/// the host: libssh2 otherwise prefers ed25519, and a server also holding
/// one would show a key the file does not list.
fn host_key_methods(types: &[String]) -> String {
    let mut methods: Vec<&str> = Vec::new();
    for t in types {
        match t.as_str() {
            "ssh-rsa" => methods.extend(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
            other => methods.push(other),
        }
    }
    methods.dedup();
    methods.join(",")
}

/// The refs of the repository at `place` whose names start with one of
/// `prefixes`, over protocol v2, and the session, open for a fetch.
pub(super) fn list(
    place: &SshPlace,
    auth: &SshAuth,
    prefixes: &[String],
    timeout: Duration,
) -> Listed {
    let session = open(place, auth, timeout)?;
    let mut channel = session.channel_session()?;
    // A server that does not pass the variable on answers with version 0.
    let _ = channel.setenv("GIT_PROTOCOL", "version=2");
    channel.exec(&format!("git-upload-pack {}", shell_quote(&place.path)))?;
    ls_refs(Box::new(Channel { channel, session }), prefixes)
}

/// What `git-lfs-authenticate <path> download` prints on the server of
/// `place`: the JSON that tells git-lfs where the repository's LFS server
/// is and the header that authorises it there (GitHub's and GitLab's
/// servers have the command).
pub(super) fn lfs_authenticate(
    place: &SshPlace,
    auth: &SshAuth,
    timeout: Duration,
) -> Result<String, String> {
    let session = open(place, auth, timeout).map_err(NoListing::reason)?;
    let run = || -> Result<String, Box<dyn std::error::Error>> {
        let mut channel = session.channel_session()?;
        let command = format!("git-lfs-authenticate {} download", shell_quote(&place.path));
        channel.exec(&command)?;
        let mut out = String::new();
        (&mut channel).take(1 << 20).read_to_string(&mut out)?;
        let mut said = String::new();
        let _ = channel.stderr().take(4096).read_to_string(&mut said);
        channel.wait_close()?;
        match channel.exit_status()? {
            0 => Ok(out),
            status => {
                let last = said
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                Err(format!(
                    "git-lfs-authenticate ended with status {status}: {}",
                    last.trim()
                )
                .into())
            }
        }
    };
    let said = run().map_err(|e| e.to_string());
    let _ = session.disconnect(None, "", None);
    said
}

/// An authenticated session with the server of `place`, its host key
/// checked first.
fn open(place: &SshPlace, auth: &SshAuth, timeout: Duration) -> Result<ssh2::Session, NoListing> {
    let conn = super::stream::open(&place.host, place.port, Some(timeout))?;
    open_over(conn, place, auth, timeout)
}

/// [`open`] over `conn`, a connection to `place`'s host.
pub(super) fn open_over(
    conn: super::stream::Conn,
    place: &SshPlace,
    auth: &SshAuth,
    timeout: Duration,
) -> Result<ssh2::Session, NoListing> {
    let mut session = ssh2::Session::new()?;
    session.set_tcp_stream(conn);
    session.set_timeout(timeout.as_millis().try_into().unwrap_or(u32::MAX));
    if auth.known_hosts.is_some() {
        let mut types = Vec::new();
        for file in auth.known_hosts_files() {
            let (host, port) = auth.host_key_name(&place.host, place.port);
            for kind in known_hosts::key_types(file, host, port) {
                if !types.contains(&kind) {
                    types.push(kind);
                }
            }
        }
        if !types.is_empty() {
            session.method_pref(ssh2::MethodType::HostKey, &host_key_methods(&types))?;
        }
    }
    session.handshake()?;
    if auth.known_hosts.is_some() {
        let (key, _) = session.host_key().ok_or("no host key")?;
        auth.check_host_key(&place.host, place.port, key)?;
    }
    for key in usable_keys(&auth.key_files) {
        if session
            .userauth_pubkey_file(&place.user, None, &key, None)
            .is_ok()
        {
            break;
        }
    }
    if !session.authenticated() && auth.agent {
        offer_agent_keys(&session, &place.user);
    }
    if !session.authenticated() {
        return Err(NoListing::Failed("no SSH key was accepted".into()));
    }
    Ok(session)
}

/// An SSH channel to `git-upload-pack`, and its session, closed together.
struct Channel {
    channel: ssh2::Channel,
    session: ssh2::Session,
}

impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.channel.read(buf)?;
        if read == 0 && !buf.is_empty() {
            // The command ended: what it said on stderr tells why (git's
            // "fatal: '/x' does not appear to be a git repository").
            let mut said = String::new();
            let _ = self.channel.stderr().take(4096).read_to_string(&mut said);
            if let Some(line) = said.lines().rev().find(|l| !l.trim().is_empty()) {
                return Err(std::io::Error::other(format!(
                    "the server says: {}",
                    line.trim()
                )));
            }
        }
        Ok(read)
    }
}

impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.channel.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.channel.flush()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = self.channel.send_eof();
        let _ = self.session.disconnect(None, "", None);
    }
}

/// Offer each key of the ssh-agent at `SSH_AUTH_SOCK` until one is
/// accepted (ssh2's `userauth_agent` offers the first one only).
fn offer_agent_keys(session: &ssh2::Session, user: &str) {
    let Ok(mut agent) = session.agent() else {
        return;
    };
    if agent
        .connect()
        .and_then(|()| agent.list_identities())
        .is_err()
    {
        tracing::debug!("the ssh-agent at SSH_AUTH_SOCK cannot be reached");
        return;
    }
    for key in agent.identities().unwrap_or_default() {
        if agent.userauth(user, &key).is_ok() {
            break;
        }
    }
    let _ = agent.disconnect();
}

/// The key files that are there and usable, in order.
fn usable_keys(files: &[PathBuf]) -> impl Iterator<Item = PathBuf> + '_ {
    files.iter().filter(|k| ssh_key::check(k).is_ok()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(user: &str, host: &str, port: u16, path: &str) -> Option<SshPlace> {
        Some(SshPlace {
            user: user.into(),
            host: host.into(),
            port,
            path: path.into(),
        })
    }

    #[test]
    fn ssh_urls_in_both_forms() {
        let parse = SshPlace::parse;
        assert_eq!(
            parse("ssh://me@h.example:2222/srv/r.git"),
            place("me", "h.example", 2222, "/srv/r.git")
        );
        assert_eq!(parse("ssh://h/~me/r"), place("git", "h", 22, "~me/r"));
        assert_eq!(
            parse("git+ssh://git@[::1]:22/r"),
            place("git", "::1", 22, "/r")
        );
        assert_eq!(
            parse("git@github.com:org/repo.git"),
            place("git", "github.com", 22, "org/repo.git")
        );
        assert_eq!(parse("[::1]:r"), place("git", "::1", 22, "r"));
        assert_eq!(parse("https://h/r"), None);
        assert_eq!(parse("/local/path"), None);
        assert_eq!(parse("./a:b"), None);
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn rsa_keys_ask_for_the_sha2_signatures_first() {
        let types = ["ssh-rsa".to_string(), "ssh-ed25519".to_string()];
        assert_eq!(
            host_key_methods(&types),
            "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519"
        );
    }
}
