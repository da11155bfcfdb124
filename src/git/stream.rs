//! The TCP stream libgit2 uses for every network transport (HTTP, and the
//! socket under TLS and SSH), replaced by one that sets `TCP_NODELAY`.
//!
//! Why: libgit2's own socket stream leaves Nagle's algorithm on, and its HTTP
//! client writes a POST's headers and body in two small writes. The body then
//! waits for the ACK of the headers, which the server delays by ~40 ms: every
//! fetch (two POSTs) lost ~90 ms to it, measured with `benches/sync_vs_git.rs`
//! against git http-backend on loopback.
//!
//! libgit2 lets an application register the standard stream
//! (`git_stream_register`), which is not wrapped by the git2 crate, so the
//! few declarations below mirror `include/git2/sys/stream.h`. The SSH
//! transport reaches into the stream for its file descriptor by casting it to
//! libgit2's private `git_socket_stream` (`parent, host, port, s`); our stream
//! starts with that exact layout. Both are specific to the libgit2 that
//! libgit2-sys vendors, which is why Cargo.toml pins libgit2-sys exactly.

use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::proxy_command::CommandStream;
use super::socks::Socks;
use super::ssh_jump::{JumpHost, JumpStream};

/// `GIT_STREAM_VERSION`.
const STREAM_VERSION: c_int = 1;
/// `GIT_STREAM_STANDARD`.
const STREAM_STANDARD: c_int = 1;
/// `GIT_TIMEOUT`.
const GIT_TIMEOUT: isize = -37;

/// Read/write/connect timeout in ms; 0 means none.
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);

/// Origins reached through a proxy libgit2 does not connect to itself,
/// as `(origin, route)`. libgit2 1.9 words a proxied `http://` request for
/// an HTTP proxy (absolute URL, `Proxy-Authorization`) but opens the
/// connection to the origin server, and knows no SOCKS proxy; [`connect`]
/// opens it to the proxy instead, and for SOCKS asks the proxy for the
/// origin (see `socks.rs`).
static ROUTES: Mutex<Vec<(HostPort, Route)>> = Mutex::new(Vec::new());

type HostPort = (String, u16);

/// How connections to an origin go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// To this HTTP proxy, which libgit2's requests are worded for.
    HttpProxy(HostPort),
    /// Through this SOCKS proxy.
    Socks(HostPort, Socks),
    /// Over the standard input and output of this command (an SSH
    /// server's `ProxyCommand`, tokens expanded).
    Command(String),
    /// Over the standard input and output of this program, run with the
    /// host and port (a `git://` server's `core.gitProxy`).
    GitProxy(String),
    /// Over a channel from the last of these SSH servers, each reached
    /// over a channel from the one before (a `ProxyJump` made in process).
    Jump(Vec<JumpHost>),
    /// Nowhere: connections fail, saying why (a `ProxyJump` that cannot be
    /// made, which nothing may go around).
    Refused(String),
}

/// A connection: a TCP socket, a proxy command's socket, or one of a
/// channel through a jump host.
#[derive(Debug)]
pub(crate) enum Conn {
    Tcp(TcpStream),
    Command(CommandStream),
    Jump(JumpStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Command(s) => s.read(buf),
            Conn::Jump(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Command(s) => s.write(buf),
            Conn::Jump(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Command(s) => s.flush(),
            Conn::Jump(s) => s.flush(),
        }
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Command(s) => s.as_raw_fd(),
            Conn::Jump(s) => s.as_raw_fd(),
        }
    }
}

/// A connection to `host:port` as it is routed (see [`route`]): over its
/// proxy command (SSH and git daemon servers) or proxy, else straight
/// over TCP. For our own sessions, and libgit2's connections.
pub(crate) fn open(host: &str, port: u16, timeout: Option<Duration>) -> Result<Conn, String> {
    match route_of(host, port) {
        None => connect_tcp(host, port, timeout).map(Conn::Tcp),
        Some(Route::HttpProxy(proxy)) => connect_tcp(&proxy.0, proxy.1, timeout).map(Conn::Tcp),
        Some(Route::Socks(proxy, socks)) => socks
            .open((&proxy.0, proxy.1), host, port, timeout)
            .map(Conn::Tcp),
        Some(Route::Command(command)) => CommandStream::spawn(&command, timeout).map(Conn::Command),
        Some(Route::GitProxy(program)) => {
            CommandStream::spawn_git_proxy(&program, host, port, timeout).map(Conn::Command)
        }
        Some(Route::Jump(hops)) => JumpStream::open(&hops, host, port, timeout).map(Conn::Jump),
        Some(Route::Refused(why)) => Err(why),
    }
}

/// The servers a remote operation's connections may reach when its
/// requests carry headers meant for the remote's server alone (an
/// `Authorization` extra header, cookies): libgit2 sends its custom headers
/// with every request, also after a redirect to another server, where
/// git's curl strips those two.
#[derive(Debug, Clone)]
pub(crate) struct Confinement {
    /// `scheme://host:port` of the remote, for the message.
    pub origin: String,
    /// Host and port pairs (lowercase) that may be connected to: the
    /// remote's, its HTTPS port when it is HTTP, its proxy's.
    pub allowed: Vec<HostPort>,
}

impl Confinement {
    /// Whether `host` may be reached (on an allowed port, checked when
    /// connecting; a TLS certificate names the host only).
    pub fn allows_host(&self, host: &str) -> bool {
        self.allowed
            .iter()
            .any(|(h, _)| h.eq_ignore_ascii_case(host))
    }

    /// The error for a connection to `host:port` it does not allow.
    pub fn refusal(&self, host: &str, port: u16) -> String {
        format!(
            "a redirect from {} leads to {host}:{port}, which would receive the Authorization \
             or Cookie headers configured for {}: refused (point --repo at the new location)",
            self.origin, self.origin
        )
    }
}

thread_local! {
    /// The confinement of this thread's current remote operation (libgit2
    /// connects on the thread that called it), if any.
    static CONFINED: std::cell::RefCell<Option<Confinement>> =
        const { std::cell::RefCell::new(None) };
}

/// Confine this thread's next connections (until the next call).
pub(crate) fn confine(confinement: Option<Confinement>) {
    CONFINED.with(|c| *c.borrow_mut() = confinement);
}

/// This thread's confinement, if any.
pub(crate) fn confinement() -> Option<Confinement> {
    CONFINED.with(|c| c.borrow().clone())
}

/// Send connections to `origin` (host lowercase) by `route`, or straight
/// to it again when `None`.
pub(crate) fn route(origin: HostPort, route: Option<Route>) {
    let mut routes = crate::lock(&ROUTES);
    routes.retain(|(o, _)| *o != origin);
    if let Some(r) = route {
        routes.push((origin, r));
    }
}

/// The proxy command connections to `host:port` go over, if any (an SSH
/// `ProxyCommand`, or a `core.gitProxy` program), for messages.
pub(crate) fn command_of(host: &str, port: u16) -> Option<String> {
    match route_of(host, port)? {
        Route::Command(command) => Some(command),
        Route::GitProxy(program) => Some(format!("{program} {host} {port}")),
        Route::HttpProxy(_) | Route::Socks(..) | Route::Jump(_) | Route::Refused(_) => None,
    }
}

/// How a connection to `host:port` goes, if not straight there.
fn route_of(host: &str, port: u16) -> Option<Route> {
    let routes = crate::lock(&ROUTES);
    let key = (host.to_ascii_lowercase(), port);
    routes
        .iter()
        .find(|(o, _)| *o == key)
        .map(|(_, r)| r.clone())
}

/// `git_stream` from `git2/sys/stream.h`.
#[repr(C)]
struct RawStream {
    version: c_int,
    /// The bitfield `encrypted:1, proxy_support:1`: both 0 for a socket.
    flags: c_uint,
    timeout: c_int,
    connect_timeout: c_int,
    connect: Option<unsafe extern "C" fn(*mut RawStream) -> c_int>,
    certificate: Option<unsafe extern "C" fn(*mut *mut c_void, *mut RawStream) -> c_int>,
    set_proxy: Option<unsafe extern "C" fn(*mut RawStream, *const c_void) -> c_int>,
    read: Option<unsafe extern "C" fn(*mut RawStream, *mut c_void, usize) -> isize>,
    write: Option<unsafe extern "C" fn(*mut RawStream, *const c_char, usize, c_int) -> isize>,
    close: Option<unsafe extern "C" fn(*mut RawStream) -> c_int>,
    free: Option<unsafe extern "C" fn(*mut RawStream)>,
}

/// `git_stream_registration`.
#[repr(C)]
struct Registration {
    version: c_int,
    init: Option<unsafe extern "C" fn(*mut *mut RawStream, *const c_char, *const c_char) -> c_int>,
    wrap: Option<unsafe extern "C" fn(*mut *mut RawStream, *mut RawStream, *const c_char) -> c_int>,
}

extern "C" {
    fn git_stream_register(kind: c_int, registration: *mut Registration) -> c_int;
}

/// Our stream. The first four fields have the layout of libgit2's private
/// `git_socket_stream`, which the SSH transport reads `s` from.
#[repr(C)]
struct NoDelayStream {
    parent: RawStream,
    host: *mut c_char,
    port: *mut c_char,
    s: c_int,
    conn: Option<Conn>,
    /// Whether anything was written yet: the first write of a git://
    /// connection is its request, see [`repaired_daemon_request`].
    wrote: bool,
}

fn set_error(msg: &str) {
    let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: libgit2 copies the NUL-terminated message.
    unsafe {
        libgit2_sys::git_error_set_str(libgit2_sys::GIT_ERROR_NET as c_int, msg.as_ptr());
    }
}

fn timeout() -> Option<Duration> {
    match TIMEOUT_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// # Safety
/// `stream` is a pointer made by [`init`].
unsafe fn ours<'a>(stream: *mut RawStream) -> &'a mut NoDelayStream {
    &mut *(stream as *mut NoDelayStream)
}

fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libgit2 passes NUL-terminated strings, or our own CStrings.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

unsafe extern "C" fn connect(stream: *mut RawStream) -> c_int {
    let st = ours(stream);
    let (host, port) = (c_str(st.host), c_str(st.port));
    let port: u16 = match port.parse() {
        Ok(p) => p,
        Err(_) => {
            set_error(&format!("invalid port {port:?}"));
            return -1;
        }
    };
    if let Some(c) = confinement() {
        let key = (host.to_ascii_lowercase(), port);
        if !c.allowed.contains(&key) {
            set_error(&c.refusal(&host, port));
            return -1;
        }
    }
    let conn = match open(&host, port, timeout()) {
        Ok(conn) => conn,
        Err(e) => {
            set_error(&e);
            return -1;
        }
    };
    st.s = conn.as_raw_fd();
    st.conn = Some(conn);
    0
}

/// A TCP connection to `host:port`, with no delay and `timeout` for
/// connecting, reading and writing.
pub(super) fn connect_tcp(
    host: &str,
    port: u16,
    timeout: Option<Duration>,
) -> Result<TcpStream, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("failed to resolve address for {host}: {e}"))?;
    let mut last = format!("failed to connect to {host}: no address");
    for addr in addrs {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                let _ = tcp.set_read_timeout(timeout);
                let _ = tcp.set_write_timeout(timeout);
                return Ok(tcp);
            }
            Err(e) => last = format!("failed to connect to {host}: {e}"),
        }
    }
    Err(last)
}

fn io_result(r: std::io::Result<usize>, what: &str) -> isize {
    match r {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            set_error(&format!("could not {what} socket: timed out"));
            GIT_TIMEOUT
        }
        Err(e) => {
            set_error(&format!("could not {what} socket: {e}"));
            -1
        }
    }
}

unsafe extern "C" fn read(stream: *mut RawStream, data: *mut c_void, len: usize) -> isize {
    let st = ours(stream);
    let Some(tcp) = st.conn.as_mut() else {
        set_error("read from a closed socket");
        return -1;
    };
    // SAFETY: libgit2 hands us a writable buffer of `len` bytes.
    let buf = std::slice::from_raw_parts_mut(data as *mut u8, len);
    io_result(tcp.read(buf), "read from")
}

unsafe extern "C" fn write(
    stream: *mut RawStream,
    data: *const c_char,
    len: usize,
    _flags: c_int,
) -> isize {
    let st = ours(stream);
    let Some(tcp) = st.conn.as_mut() else {
        set_error("write to a closed socket");
        return -1;
    };
    // SAFETY: libgit2 hands us `len` readable bytes.
    let buf = std::slice::from_raw_parts(data as *const u8, len);
    if !std::mem::replace(&mut st.wrote, true) {
        if let Some(request) = repaired_daemon_request(buf, &c_str(st.host), &c_str(st.port)) {
            // All of it, or libgit2 would resend a part of its own.
            return io_result(tcp.write_all(&request).map(|()| len), "write to");
        }
    }
    io_result(tcp.write(buf), "write to")
}

/// libgit2's git:// request (`git-upload-pack /repo\0host=...\0`, one
/// pkt-line) names the host as the URL up to its first colon: `[` for
/// `git://[::1]:9418/repo`, which git daemon refuses ("'[' without ']'").
/// That request with the host as git names it (`[::1]:9418`), or `None`
/// for anything else.
fn repaired_daemon_request(buf: &[u8], host: &str, port: &str) -> Option<Vec<u8>> {
    let declared = super::pkt_line::length(buf)?;
    let payload = buf
        .get(4..)
        .filter(|p| declared == buf.len() && p.starts_with(b"git-"))?;
    const HOST: &[u8] = b"\0host=";
    let at = payload.windows(HOST.len()).position(|w| w == HOST)? + HOST.len();
    let end = at + payload[at..].iter().position(|&b| b == 0)?;
    let named = &payload[at..end];
    if !named.starts_with(b"[") || named.contains(&b']') {
        return None;
    }
    let mut fixed = payload[..at].to_vec();
    fixed.extend_from_slice(format!("[{host}]:{port}").as_bytes());
    fixed.extend_from_slice(&payload[end..]);
    let mut request = Vec::new();
    super::pkt_line::write(&mut request, &fixed);
    (request.len() <= 0xffff).then_some(request)
}

unsafe extern "C" fn close(stream: *mut RawStream) -> c_int {
    let st = ours(stream);
    // (A proxy command's connection ends with the command.)
    if let Some(Conn::Tcp(tcp)) = st.conn.take() {
        let _ = tcp.shutdown(std::net::Shutdown::Both);
    }
    st.s = -1;
    0
}

unsafe extern "C" fn free(stream: *mut RawStream) {
    if stream.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in `init`; libgit2 frees it once.
    let st = Box::from_raw(stream as *mut NoDelayStream);
    drop(CString::from_raw(st.host));
    drop(CString::from_raw(st.port));
}

unsafe extern "C" fn init(
    out: *mut *mut RawStream,
    host: *const c_char,
    port: *const c_char,
) -> c_int {
    let (Ok(host), Ok(port)) = (CString::new(c_str(host)), CString::new(c_str(port))) else {
        set_error("invalid host or port");
        return -1;
    };
    let ms = c_int::try_from(TIMEOUT_MS.load(Ordering::Relaxed)).unwrap_or(c_int::MAX);
    let st = Box::new(NoDelayStream {
        parent: RawStream {
            version: STREAM_VERSION,
            flags: 0,
            timeout: ms,
            connect_timeout: ms,
            connect: Some(connect),
            certificate: None,
            set_proxy: None,
            read: Some(read),
            write: Some(write),
            close: Some(close),
            free: Some(free),
        },
        host: host.into_raw(),
        port: port.into_raw(),
        s: -1,
        conn: None,
        wrote: false,
    });
    *out = Box::into_raw(st) as *mut RawStream;
    0
}

/// Make libgit2 use our stream for every new connection. `timeout` bounds a
/// connect and each read and write (zero: no bound).
pub fn register(timeout: Duration) -> Result<(), String> {
    TIMEOUT_MS.store(
        u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    libgit2_sys::init();
    let mut reg = Registration {
        version: STREAM_VERSION,
        init: Some(init),
        wrap: None,
    };
    // SAFETY: libgit2 is initialised; it copies the registration.
    let rc = unsafe { git_stream_register(STREAM_STANDARD, &mut reg) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("git_stream_register failed ({rc})"))
    }
}

#[cfg(test)]
mod tests {
    use super::repaired_daemon_request;

    fn pkt(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        super::super::pkt_line::write(&mut v, payload);
        v
    }

    #[test]
    fn a_git_request_cut_at_an_ipv6_colon_names_the_whole_host() {
        let cut = pkt(b"git-upload-pack /site\0host=[\0");
        assert_eq!(
            repaired_daemon_request(&cut, "::1", "9418"),
            Some(pkt(b"git-upload-pack /site\0host=[::1]:9418\0"))
        );
        // Anything else goes out as libgit2 wrote it.
        for other in [
            pkt(b"git-upload-pack /site\0host=example.com\0"),
            pkt(b"git-upload-pack /site\0host=[::1]:9418\0"),
            b"0032git-upload-pack /site\0host=[\0".to_vec(),
            pkt(b"POST /x HTTP/1.1\0host=[\0"),
            b"GET / HTTP/1.1\r\n".to_vec(),
            b"00".to_vec(),
        ] {
            assert_eq!(repaired_daemon_request(&other, "::1", "9418"), None);
        }
    }
}
