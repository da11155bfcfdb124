//! OpenSSH's `ProxyJump` in process, where no `ssh` program is there to
//! run it as OpenSSH does (the default image has none): one hop, to the
//! jump host over libssh2, logged in to with the keys and host key checks
//! its own configuration gives (as for the server), then a `direct-tcpip`
//! channel from there to the server, which libgit2 and our own sessions
//! speak SSH over. A thread copies bytes between the channel and one end
//! of a socket pair; the other end is the connection (a socket, as
//! libssh2 wants one), until either side closes.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::ssh_ls_refs::{self, SshPlace};
use super::SshAuth;

/// A jump host, and how to log in to it.
#[derive(Debug, Clone)]
pub(crate) struct JumpHost {
    pub place: SshPlace,
    pub auth: SshAuth,
}

impl PartialEq for JumpHost {
    fn eq(&self, other: &Self) -> bool {
        // (The login settings come with the place, from the same files.)
        self.place == other.place && self.auth.key_files == other.auth.key_files
    }
}

impl Eq for JumpHost {}

impl std::fmt::Display for JumpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.place;
        write!(f, "{}@{}:{}", p.user, p.host, p.port)
    }
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
    /// A connection to `host:port` from `jump`; reads and writes wait at
    /// most `timeout`, as does logging in to the jump host.
    pub(crate) fn open(
        jump: &JumpHost,
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<JumpStream, String> {
        let failed = |why: String| format!("jump host {jump}: {why}");
        let login_within = timeout.unwrap_or(Duration::from_secs(120));
        // Straight to the jump host (the server's route is this one).
        let (jump_host, jump_port) = (&jump.place.host, jump.place.port);
        let conn = super::stream::connect_tcp(jump_host, jump_port, Some(login_within))
            .map(super::stream::Conn::Tcp)
            .map_err(failed)?;
        let session = ssh_ls_refs::open_over(conn, &jump.place, &jump.auth, login_within)
            .map_err(|e| failed(e.reason()))?;
        let channel = session
            .channel_direct_tcpip(host, port, None)
            .map_err(|e| failed(format!("cannot reach {host}:{port} from there: {e}")))?;
        let (ours, theirs) = UnixStream::pair().map_err(|e| failed(e.to_string()))?;
        ours.set_read_timeout(timeout)
            .and_then(|()| ours.set_write_timeout(timeout))
            .and_then(|()| theirs.set_nonblocking(true))
            .map_err(|e| failed(e.to_string()))?;
        session.set_blocking(false);
        std::thread::Builder::new()
            .name("ssh-jump".into())
            .spawn(move || pump(session, channel, theirs))
            .map_err(|e| failed(e.to_string()))?;
        Ok(JumpStream { socket: ours })
    }
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
