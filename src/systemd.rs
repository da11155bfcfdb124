//! systemd's notification protocol (`sd_notify(3)`), for the standalone
//! daemon run as a `Type=notify` service: systemd hears `READY=1` once the
//! first pass succeeded, a tree published (so `systemctl start` returns,
//! and units ordered after git-sync start, only then), shows the last
//! outcome in `systemctl status` (`STATUS=`), and hears `STOPPING=1` at a
//! stop signal. Without `$NOTIFY_SOCKET` (a container, a shell) nothing is
//! sent and nothing is opened.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::OnceLock;

/// The socket systemd listens on, and an unbound one to send from.
struct Notify {
    from: UnixDatagram,
    to: SocketAddr,
}

/// `$NOTIFY_SOCKET`'s socket, opened at the first notification.
fn socket() -> Option<&'static Notify> {
    static SOCKET: OnceLock<Option<Notify>> = OnceLock::new();
    SOCKET
        .get_or_init(|| {
            let path = std::env::var_os("NOTIFY_SOCKET")?;
            open(&path)
                .map_err(|e| tracing::warn!(socket = ?path, error = %e, "cannot use $NOTIFY_SOCKET: systemd will not hear from git-sync"))
                .ok()
        })
        .as_ref()
}

/// A path, or a name in the abstract namespace when it starts with `@`.
fn open(path: &OsStr) -> io::Result<Notify> {
    let to = match path.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(Path::new(path))?,
    };
    Ok(Notify {
        from: UnixDatagram::unbound()?,
        to,
    })
}

/// Send `state` (`KEY=value` lines); a failure is logged at `-v` and
/// otherwise ignored, as `sd_notify` callers do.
fn notify(state: &str) {
    if let Some(s) = socket() {
        if let Err(e) = s.from.send_to_addr(state.as_bytes(), &s.to) {
            tracing::debug!(error = %e, "cannot notify systemd");
        }
    }
}

/// One line of status: the protocol is a line per key.
fn status_line(status: &str) -> String {
    format!("STATUS={}", status.replace('\n', " "))
}

/// The first pass succeeded: git-sync is ready.
pub fn ready(status: &str) {
    notify(&format!("READY=1\n{}", status_line(status)));
}

/// What `systemctl status` shows.
pub fn status(status: &str) {
    notify(&status_line(status));
}

/// A stop signal came: git-sync is finishing.
pub fn stopping() {
    notify("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_abstract_names_are_addressed_as_systemd_gives_them() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = open(path.as_os_str()).unwrap();
        n.from.send_to_addr(b"READY=1", &n.to).unwrap();
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");

        let name = format!("git-sync-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = open(OsStr::new(&format!("@{name}"))).unwrap();
        n.from.send_to_addr(b"STOPPING=1", &n.to).unwrap();
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STOPPING=1");
        assert_eq!(status_line("a\nb"), "STATUS=a b");
    }
}
