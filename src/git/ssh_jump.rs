//! OpenSSH's `ProxyJump` in process, where no `ssh` program is there to
//! run it as OpenSSH does (the default image has none): to the first jump
//! host over libssh2 (straight, or over its own `ProxyCommand`), logged in
//! to with the keys and host key checks its own configuration gives (as
//! for the server), then a `direct-tcpip` channel from there to the next
//! jump host, logged in to over that channel, and so on to the server,
//! which libgit2 and our own sessions speak SSH over. For each channel, a
//! thread copies bytes between it and one end of a socket pair; the other
//! end is the connection (a socket, as libssh2 wants one), until either
//! side closes.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::auth::SshClientConfig;
use super::proxy_command::CommandStream;
use super::ssh_config;
use super::ssh_ls_refs::{self, SshPlace};
use super::ssh_url::SshUrl;
use super::stream::{connect_tcp, Conn};
use super::SshAuth;

/// A jump host, and how to log in to it.
#[derive(Debug, Clone)]
pub(crate) struct JumpHost {
    pub place: SshPlace,
    pub auth: SshAuth,
    /// Its own `ProxyCommand` (tokens expanded), run to reach it when it
    /// is the first hop.
    pub command: Option<String>,
}

impl PartialEq for JumpHost {
    fn eq(&self, other: &Self) -> bool {
        // (The login settings come with the place, from the same files.)
        self.place == other.place
            && self.auth.key_files == other.auth.key_files
            && self.command == other.command
    }
}

impl Eq for JumpHost {}

impl std::fmt::Display for JumpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.place;
        write!(f, "{}@{}:{}", p.user, p.host, p.port)
    }
}

/// At most this many jump hosts: jump hosts whose own `ProxyJump` lead
/// back to each other would otherwise never end.
const MAX_HOPS: usize = 16;

/// The jump hosts of a `ProxyJump` (`hops`: `[user@]host[:port]` or
/// `ssh://` URIs, comma-separated) in the order they are reached, as
/// OpenSSH reaches them: the first over its own `ProxyJump` or
/// `ProxyCommand` if the configuration files give it one, each next one
/// over a channel from the one before. Each is logged in to as the files
/// say of it (`HostName`, `Port`, `User`, `IdentityFile`...; as the local
/// user when nothing names one), with `auth`'s keys and known hosts; the
/// ssh command line's destination options (`-p`, `-l`, `-J`...) are the
/// server's alone, as OpenSSH does not give them to the `ssh` it runs for
/// a jump host.
pub(crate) fn jump_hosts(hops: &str, auth: &SshAuth) -> Result<Vec<JumpHost>, String> {
    let given = &auth.client_config;
    let files = SshClientConfig {
        files: given.files.clone(),
        home: given.home.clone(),
        config_file: given.config_file.clone(),
        ..SshClientConfig::default()
    };
    let mut found = Vec::new();
    add_hops(hops, auth, &files, 0, &mut found)?;
    Ok(found)
}

/// [`jump_hosts`] of `hops`, reached after `found`; `depth` of the first
/// ones' own `ProxyJump` followed to get there.
fn add_hops(
    hops: &str,
    auth: &SshAuth,
    files: &SshClientConfig,
    depth: usize,
    found: &mut Vec<JumpHost>,
) -> Result<(), String> {
    for (i, hop) in hops.split(',').map(str::trim).enumerate() {
        if depth + found.len() >= MAX_HOPS {
            return Err(format!(
                "ProxyJump: more than {MAX_HOPS} jump hosts (do the jump hosts' own ProxyJump lead back to each other?)"
            ));
        }
        let bare = hop.strip_prefix("ssh://").unwrap_or(hop);
        let hop_url = format!("ssh://{}/", bare.trim_end_matches('/'));
        let destination = ssh_config::destination(&hop_url, files).unwrap_or_default();
        let place = SshUrl::parse(destination.url.as_deref().unwrap_or(&hop_url))
            .filter(|u| !u.host.is_empty())
            .map(|u| SshPlace {
                user: u.user.unwrap_or_else(local_user),
                host: u.host,
                port: u.port.unwrap_or(22),
                path: String::new(),
            })
            .ok_or_else(|| format!("ProxyJump: {hop:?} is not a jump host ([user@]host[:port])"))?;
        let mut command = None;
        if i == 0 {
            match &destination.jump {
                Some(own) => add_hops(own, auth, files, depth + 1, found)?,
                None => command = destination.proxy_command.clone(),
            }
        }
        let auth = auth.for_destination(&destination);
        found.push(JumpHost {
            place,
            auth,
            command,
        });
    }
    Ok(())
}

/// The name of the user running git-sync, which OpenSSH logs in to a
/// jump host as when nothing names another; `git` when the system knows
/// no name for it.
fn local_user() -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: `passwd` is plain data (integers and pointers), for which
    // all zeroes is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local, `buf.len()` is the size of
    // `buf`; getpwuid_r fills `pwd` with pointers into `buf` (alive until
    // the name is copied below) or leaves `result` null.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return "git".to_string();
    }
    // SAFETY: a NUL-terminated name in `buf`, as getpwuid_r succeeded.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_string_lossy().into_owned()
}

/// Whether an `ssh` program is on `PATH` (to run a `ProxyJump` as
/// OpenSSH does, with all of the jump host's configuration).
pub(crate) fn ssh_program_found() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join("ssh"))))
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A connection to the server through the jump host. Dropped, it closes;
/// the thread then closes the channel and the jump host's session.
#[derive(Debug)]
pub(crate) struct JumpStream {
    socket: UnixStream,
}

/// How long a closed connection's channel may take to say it closed too.
const CLOSING: Duration = Duration::from_secs(5);

impl JumpStream {
    /// A connection to `host:port` through the jump hosts `hops`, in the
    /// order they are reached; reads and writes wait at most `timeout`, as
    /// does logging in to each jump host.
    pub(crate) fn open(
        hops: &[JumpHost],
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<JumpStream, String> {
        let within = timeout.unwrap_or(Duration::from_secs(120));
        let Some((first, further)) = hops.split_first() else {
            return Err("ProxyJump names no jump host".into());
        };
        // Straight to the first (the server's route is this one), or over
        // its own proxy command.
        let conn = match &first.command {
            Some(command) => CommandStream::spawn(command, Some(within)).map(Conn::Command),
            None => connect_tcp(&first.place.host, first.place.port, Some(within)).map(Conn::Tcp),
        };
        let mut session = log_in(conn.map_err(|why| failed(first, why))?, first, within)?;
        let mut from = first;
        for hop in further {
            let (host, port) = (&hop.place.host, hop.place.port);
            let stream = Self::through(session, from, host, port, Some(within))?;
            session = log_in(Conn::Jump(stream), hop, within)?;
            from = hop;
        }
        Self::through(session, from, host, port, timeout)
    }

    /// A connection to `host:port` over a channel from `session`, logged
    /// in to the jump host `hop`, which a new thread then serves.
    fn through(
        session: ssh2::Session,
        hop: &JumpHost,
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<JumpStream, String> {
        let channel = session
            .channel_direct_tcpip(host, port, None)
            .map_err(|e| failed(hop, format!("cannot reach {host}:{port} from there: {e}")))?;
        let (ours, theirs) = UnixStream::pair().map_err(|e| failed(hop, e.to_string()))?;
        ours.set_read_timeout(timeout)
            .and_then(|()| ours.set_write_timeout(timeout))
            .and_then(|()| theirs.set_nonblocking(true))
            .map_err(|e| failed(hop, e.to_string()))?;
        session.set_blocking(false);
        std::thread::Builder::new()
            .name("ssh-jump".into())
            .spawn(move || pump(session, channel, theirs))
            .map_err(|e| failed(hop, e.to_string()))?;
        Ok(JumpStream { socket: ours })
    }
}

/// A session with the jump host `hop`, over `conn`, logged in to.
fn log_in(conn: Conn, hop: &JumpHost, within: Duration) -> Result<ssh2::Session, String> {
    ssh_ls_refs::open_over(conn, &hop.place, &hop.auth, within).map_err(|e| failed(hop, e.reason()))
}

/// What went wrong with the jump host `hop`, said so.
fn failed(hop: &JumpHost, why: String) -> String {
    format!("jump host {hop}: {why}")
}

impl Read for JumpStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for JumpStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.socket.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.socket.flush()
    }
}

impl AsRawFd for JumpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for JumpStream {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// Copy bytes between `local` (non-blocking) and `channel` (of a
/// non-blocking session) until the server closes, or until the local end
/// is closed and the channel says it is done (or [`CLOSING`] passed).
fn pump(session: ssh2::Session, mut channel: ssh2::Channel, mut local: UnixStream) {
    let remote = session.as_raw_fd();
    let mut buf = vec![0u8; 32 * 1024];
    // From the local end, for the server; from the server, for the local end.
    let (mut up, mut down): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let mut local_closed: Option<Instant> = None;
    let mut eof_sent = false;
    let would_block = |e: &std::io::Error| e.kind() == ErrorKind::WouldBlock;
    loop {
        let mut moved = false;
        if up.is_empty() && local_closed.is_none() {
            match local.read(&mut buf) {
                Ok(0) => (local_closed, moved) = (Some(Instant::now()), true),
                Ok(n) => (up, moved) = (buf[..n].to_vec(), true),
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if !up.is_empty() {
            match channel.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    moved |= n > 0;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if local_closed.is_some() && up.is_empty() && !eof_sent {
            match channel.send_eof().map_err(std::io::Error::from) {
                Ok(()) => (eof_sent, moved) = (true, true),
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if down.is_empty() {
            match channel.read(&mut buf) {
                // The server closed: what it sent is passed on, then done.
                Ok(0) if channel.eof() => break,
                Ok(n) => {
                    down.extend_from_slice(&buf[..n]);
                    moved |= n > 0;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if !down.is_empty() {
            match local.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    moved = true;
                }
                Err(e) if would_block(&e) => {}
                // The local end is gone: nothing is wanted any more.
                Err(_) => break,
            }
        }
        if local_closed.is_some_and(|at| at.elapsed() > CLOSING) {
            break;
        }
        if !moved {
            wait(
                &session,
                remote,
                &local,
                up.is_empty() && local_closed.is_none(),
                down.is_empty(),
            );
        }
    }
    // What the server sent last, then a clean close, briefly waited for.
    if !down.is_empty() {
        let _ = local.set_nonblocking(false);
        let _ = local.write_all(&down);
    }
    drop(local);
    session.set_timeout(1000);
    session.set_blocking(true);
    let _ = channel.close();
    let _ = session.disconnect(None, "", None);
}

/// Wait (at most a second) until the server's socket is ready the way the
/// session waits for, or for reading when `read_remote`, or the local end
/// for reading (`read_local`) or writing (when something waits for it).
fn wait(
    session: &ssh2::Session,
    remote: RawFd,
    local: &UnixStream,
    read_local: bool,
    read_remote: bool,
) {
    let blocked = session.block_directions();
    let mut remote_events = 0;
    if read_remote
        || matches!(
            blocked,
            ssh2::BlockDirections::Inbound | ssh2::BlockDirections::Both
        )
    {
        remote_events |= libc::POLLIN;
    }
    if matches!(
        blocked,
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    ) {
        remote_events |= libc::POLLOUT;
    }
    let mut local_events = 0;
    if read_local {
        local_events |= libc::POLLIN;
    }
    if !read_remote {
        // Something from the server waits for the local end.
        local_events |= libc::POLLOUT;
    }
    let mut fds = [
        libc::pollfd {
            fd: remote,
            events: remote_events,
            revents: 0,
        },
        libc::pollfd {
            fd: local.as_raw_fd(),
            events: local_events,
            revents: 0,
        },
    ];
    // SAFETY: two initialised pollfd entries, owned here for the call.
    unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn auth(config: &Path, command_line: SshClientConfig) -> SshAuth {
        SshAuth {
            key_files: vec![PathBuf::from("/keys/given")],
            known_hosts: None,
            accept_new_hosts: false,
            global_known_hosts: Vec::new(),
            agent: false,
            client_config: SshClientConfig {
                files: vec![config.to_path_buf()],
                ..command_line
            },
            host_key_alias: None,
        }
    }

    /// `user@host:port` of each hop, and its own command if any.
    fn route(hops: &str, auth: &SshAuth) -> Result<Vec<String>, String> {
        Ok(jump_hosts(hops, auth)?
            .iter()
            .map(|h| match &h.command {
                Some(c) => format!("{h} via {c}"),
                None => h.to_string(),
            })
            .collect())
    }

    #[test]
    fn hops_are_reached_in_order_the_first_over_its_own_proxy() {
        let dir = tempfile::TempDir::new().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "Host inner\n  HostName inner.example\n  User in\n  Port 2201\n  ProxyJump outer\n  \
             IdentityFile /keys/inner\n\
             Host outer\n  User out\n  ProxyCommand nc %h %p\n\
             Host loop\n  ProxyJump loop\n\
             Host last\n  ProxyJump ignored\n",
        )
        .unwrap();
        // The command line's port, user and jump are the server's alone.
        let given = SshClientConfig {
            port: Some(2222),
            user: Some("server-user".into()),
            proxy: Some(Some(super::super::SshProxy::Jump("inner".into()))),
            ..SshClientConfig::default()
        };
        let auth = auth(&config, given);
        assert_eq!(
            route("inner,me@last:2200", &auth).unwrap(),
            [
                "out@outer:22 via nc outer 22",
                "in@inner.example:2201",
                "me@last:2200"
            ]
        );
        let hosts = jump_hosts("inner", &auth).unwrap();
        assert_eq!(
            hosts[1].auth.key_files,
            [PathBuf::from("/keys/given"), PathBuf::from("/keys/inner")]
        );
        // Nothing named: the local user, as OpenSSH logs in.
        assert_eq!(
            route("ssh://[::1]:2022", &auth).unwrap(),
            [format!("{}@::1:2022", local_user())]
        );
        let endless = route("loop", &auth).unwrap_err();
        assert!(endless.contains("more than 16 jump hosts"), "{endless}");
        let bad = route("outer,,last", &auth).unwrap_err();
        assert!(bad.contains("\"\" is not a jump host"), "{bad}");
    }
}
