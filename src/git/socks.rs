//! The client side of a SOCKS proxy's handshake, which our stream
//! (`stream.rs`) makes on the connection to the proxy before libgit2 uses
//! it as its connection to the server: SOCKS4 (RFC-less, the 1992
//! protocol), SOCKS4a (the server's name sent for the proxy to look up),
//! SOCKS5 (RFC 1928) with no authentication or a user name and password
//! (RFC 1929), the server's address looked up here or, for `socks5h`, its
//! name sent. As git's curl speaks to the proxies its `http.proxy` names.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::proxy::Kind;

/// How to ask a SOCKS proxy for a connection.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Socks {
    pub kind: Kind,
    /// The user name and password (SOCKS5), or user id (SOCKS4), if any.
    pub login: Option<(String, String)>,
}

/// Without the login: a password never reaches a log line.
impl std::fmt::Debug for Socks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks")
            .field("kind", &self.kind)
            .field("login", &self.login.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The reasons a handshake fails, in words for the error message, of a
/// kind that says whether trying again may help (a client that tries
/// again, as the LFS downloads do, looks at it): a connection the proxy
/// could not make may be made later; a login it refuses, a protocol it
/// does not speak or a name it cannot be sent will not change.
fn refused(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, why.into())
}

/// A refusal of the proxy's login (or of its lack).
fn denied(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why.into())
}

/// Something of the handshake one side does not speak.
fn unsupported(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, why.into())
}

/// Something the handshake cannot carry (a name too long, a NUL).
fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.into())
}

impl Socks {
    /// A connection to `host:port` through the proxy at `proxy` (host,
    /// port), `timeout` bounding each step; or why there is none, in words
    /// that name the proxy's host, never its login.
    pub fn open(
        &self,
        proxy: (&str, u16),
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<TcpStream, String> {
        let mut tcp = super::stream::connect_tcp(proxy.0, proxy.1, timeout)?;
        self.connect(&mut tcp, host, port)
            .map_err(|e| format!("through the SOCKS proxy {}: {e}", proxy.0))?;
        Ok(tcp)
    }

    /// Ask the proxy at the other end of `conn` for a connection to
    /// `host:port`; on success `conn` leads to the server.
    pub fn connect<S: Read + Write>(&self, conn: &mut S, host: &str, port: u16) -> io::Result<()> {
        match self.kind {
            Kind::Socks4 | Kind::Socks4a => self.socks4(conn, host, port),
            Kind::Socks5 | Kind::Socks5h => self.socks5(conn, host, port),
            Kind::Http | Kind::Https => Err(unsupported("not a SOCKS proxy")),
        }
    }

    fn socks4<S: Read + Write>(&self, conn: &mut S, host: &str, port: u16) -> io::Result<()> {
        let user = self.login.as_ref().map_or("", |(u, _)| u.as_str());
        let mut request = vec![4, 1];
        request.extend_from_slice(&port.to_be_bytes());
        let named = match (self.kind, host.parse::<IpAddr>()) {
            (_, Ok(IpAddr::V4(ip))) => {
                request.extend_from_slice(&ip.octets());
                None
            }
            (Kind::Socks4a, Err(_)) => {
                // 0.0.0.x: "the name follows".
                request.extend_from_slice(&[0, 0, 0, 1]);
                Some(host)
            }
            _ => {
                let ip = resolve(host, port)?
                    .find_map(|a| match a.ip() {
                        IpAddr::V4(v4) => Some(v4),
                        IpAddr::V6(_) => None,
                    })
                    .ok_or_else(|| {
                        refused(format!(
                            "{host} has no IPv4 address, which a SOCKS4 proxy needs"
                        ))
                    })?;
                request.extend_from_slice(&ip.octets());
                None
            }
        };
        push_nul_terminated(&mut request, user)?;
        if let Some(name) = named {
            push_nul_terminated(&mut request, name)?;
        }
        conn.write_all(&request)?;
        let mut reply = [0u8; 8];
        conn.read_exact(&mut reply)?;
        match reply[1] {
            90 => Ok(()),
            91 => Err(refused("the SOCKS4 proxy refused the connection")),
            92 | 93 => Err(denied(
                "the SOCKS4 proxy refused the connection: it could not check the user id",
            )),
            other => Err(refused(format!(
                "the SOCKS4 proxy answered {other}, not 90"
            ))),
        }
    }

    fn socks5<S: Read + Write>(&self, conn: &mut S, host: &str, port: u16) -> io::Result<()> {
        // Offered: no authentication, and a password when there is one.
        let greeting: &[u8] = match self.login {
            Some(_) => &[5, 2, 0, 2],
            None => &[5, 1, 0],
        };
        conn.write_all(greeting)?;
        let mut chosen = [0u8; 2];
        conn.read_exact(&mut chosen)?;
        if chosen[0] != 5 {
            return Err(unsupported("the proxy does not speak SOCKS5"));
        }
        match (chosen[1], &self.login) {
            (0, _) => {}
            (2, Some((user, password))) => {
                let mut auth = vec![1];
                push_counted(&mut auth, user, "user name")?;
                push_counted(&mut auth, password, "password")?;
                conn.write_all(&auth)?;
                let mut status = [0u8; 2];
                conn.read_exact(&mut status)?;
                if status[1] != 0 {
                    return Err(denied(
                        "the SOCKS5 proxy refused the user name and password of its URL",
                    ));
                }
            }
            (0xff, None) | (2, None) => {
                return Err(denied(
                    "the SOCKS5 proxy wants a user name and password (give them in its URL)",
                ))
            }
            _ => {
                return Err(unsupported(
                    "the SOCKS5 proxy wants an authentication git-sync does not speak",
                ))
            }
        }
        let mut request = vec![5, 1, 0];
        match host.parse::<IpAddr>() {
            Ok(ip) => push_address(&mut request, ip),
            Err(_) if self.kind == Kind::Socks5h => {
                request.push(3);
                push_counted(&mut request, host, "host name")?;
            }
            Err(_) => {
                let addr = resolve(host, port)?
                    .next()
                    .ok_or_else(|| refused(format!("{host} has no address")))?;
                push_address(&mut request, addr.ip());
            }
        }
        request.extend_from_slice(&port.to_be_bytes());
        conn.write_all(&request)?;
        let mut head = [0u8; 4];
        conn.read_exact(&mut head)?;
        if head[1] != 0 {
            return Err(refused(format!(
                "the SOCKS5 proxy could not connect to {host}:{port}: {}",
                socks5_reply(head[1])
            )));
        }
        // The address the proxy connected from, read and dropped.
        let rest = match head[3] {
            1 => 4 + 2,
            4 => 16 + 2,
            3 => {
                let mut len = [0u8; 1];
                conn.read_exact(&mut len)?;
                usize::from(len[0]) + 2
            }
            other => {
                return Err(refused(format!(
                    "the SOCKS5 proxy sent address type {other}"
                )))
            }
        };
        let mut bound = vec![0u8; rest];
        conn.read_exact(&mut bound)
    }
}

fn resolve(host: &str, port: u16) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    (host, port).to_socket_addrs().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("failed to resolve address for {host}: {e}"),
        )
    })
}

fn push_address(request: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            request.push(1);
            request.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            request.push(4);
            request.extend_from_slice(&v6.octets());
        }
    }
}

/// `text` with its length in one byte before it (SOCKS5's strings).
fn push_counted(out: &mut Vec<u8>, text: &str, what: &str) -> io::Result<()> {
    let len = u8::try_from(text.len()).map_err(|_| {
        invalid(format!(
            "a {what} longer than 255 bytes, which SOCKS5 cannot send"
        ))
    })?;
    out.push(len);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// `text` then a NUL (SOCKS4's strings), which it must not hold.
fn push_nul_terminated(out: &mut Vec<u8>, text: &str) -> io::Result<()> {
    if text.contains('\0') {
        return Err(invalid("a NUL in a SOCKS4 user id or host name"));
    }
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    Ok(())
}

/// RFC 1928's words for a reply code.
fn socks5_reply(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not allowed by its rules",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "an unknown reply",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that answers with `replies` and records what it was sent.
    struct Peer {
        replies: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn exchange(
        kind: Kind,
        login: Option<(&str, &str)>,
        replies: &[u8],
        host: &str,
    ) -> (io::Result<()>, Vec<u8>) {
        let socks = Socks {
            kind,
            login: login.map(|(u, p)| (u.into(), p.into())),
        };
        let mut peer = Peer {
            replies: io::Cursor::new(replies.to_vec()),
            sent: Vec::new(),
        };
        let result = socks.connect(&mut peer, host, 0x1f90);
        (result, peer.sent)
    }

    #[test]
    fn socks5_sends_the_name_for_socks5h_and_an_address_otherwise() {
        let ok = [5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 80];
        let (r, sent) = exchange(Kind::Socks5h, None, &ok, "git.corp");
        r.unwrap();
        let mut want = vec![5, 1, 0, 5, 1, 0, 3, 8];
        want.extend_from_slice(b"git.corp");
        want.extend_from_slice(&[0x1f, 0x90]);
        assert_eq!(sent, want);
        let (r, sent) = exchange(Kind::Socks5, None, &ok, "::1");
        r.unwrap();
        assert_eq!(sent[6], 4, "an IPv6 address: {sent:?}");
        assert_eq!(sent.len(), 3 + 4 + 16 + 2);
    }

    #[test]
    fn socks5_logs_in_with_the_urls_user_and_password() {
        let ok = [5, 2, 1, 0, 5, 0, 0, 3, 1, b'h', 0, 80];
        let (r, sent) = exchange(Kind::Socks5, Some(("me", "pw")), &ok, "10.0.0.1");
        r.unwrap();
        assert_eq!(&sent[..4], &[5, 2, 0, 2]);
        assert_eq!(&sent[4..11], &[1, 2, b'm', b'e', 2, b'p', b'w']);
        assert_eq!(&sent[11..], &[5, 1, 0, 1, 10, 0, 0, 1, 0x1f, 0x90]);
        let (r, _) = exchange(Kind::Socks5, Some(("me", "bad")), &[5, 2, 1, 1], "10.0.0.1");
        assert!(r.unwrap_err().to_string().contains("refused the user name"));
        let (r, _) = exchange(Kind::Socks5, None, &[5, 0xff], "10.0.0.1");
        assert!(r.unwrap_err().to_string().contains("wants a user name"));
    }

    #[test]
    fn socks5_failures_are_said_in_the_rfcs_words() {
        let (r, _) = exchange(Kind::Socks5h, None, &[5, 0, 5, 5, 0, 1], "h");
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("could not connect to h:8080: connection refused"),
            "{e}"
        );
        let (r, _) = exchange(Kind::Socks5h, None, &[4, 0], "h");
        assert!(r.unwrap_err().to_string().contains("does not speak SOCKS5"));
        // An answer cut short is an error, not a connection.
        let (r, _) = exchange(Kind::Socks5h, None, &[5, 0, 5, 0, 0, 1, 127], "h");
        assert!(r.is_err());
    }

    #[test]
    fn a_refusal_for_good_is_told_from_one_that_may_pass() {
        // The LFS downloads try again after an error of the kind
        // ConnectionRefused, not after the others.
        let kind =
            |kind, login, replies: &[u8]| exchange(kind, login, replies, "h").0.unwrap_err().kind();
        use io::ErrorKind::*;
        let login = Some(("me", "bad"));
        assert_eq!(kind(Kind::Socks5h, login, &[5, 2, 1, 1]), PermissionDenied);
        assert_eq!(kind(Kind::Socks5h, None, &[5, 0xff]), PermissionDenied);
        assert_eq!(kind(Kind::Socks5h, None, &[5, 1]), Unsupported);
        assert_eq!(
            kind(Kind::Socks4a, None, &[0, 92, 0, 0, 0, 0, 0, 0]),
            PermissionDenied
        );
        let name = "n".repeat(300);
        let (r, _) = exchange(Kind::Socks5h, None, &[5, 0], &name);
        assert_eq!(r.unwrap_err().kind(), InvalidInput);
        // The proxy could not reach the server: it may later.
        assert_eq!(
            kind(Kind::Socks5h, None, &[5, 0, 5, 4, 0, 1]),
            ConnectionRefused
        );
        assert_eq!(
            kind(Kind::Socks4a, None, &[0, 91, 0, 0, 0, 0, 0, 0]),
            ConnectionRefused
        );
    }

    #[test]
    fn its_debug_form_holds_no_password() {
        let socks = Socks {
            kind: Kind::Socks5,
            login: Some(("me".into(), "pw-S3CRET".into())),
        };
        assert!(!format!("{socks:?}").contains("S3CRET"));
    }

    #[test]
    fn socks4_sends_an_ipv4_address_and_socks4a_the_name() {
        let granted = [0, 90, 0, 0, 0, 0, 0, 0];
        let (r, sent) = exchange(Kind::Socks4, Some(("id", "")), &granted, "192.0.2.7");
        r.unwrap();
        assert_eq!(sent, [4, 1, 0x1f, 0x90, 192, 0, 2, 7, b'i', b'd', 0]);
        let (r, sent) = exchange(Kind::Socks4a, None, &granted, "git.corp");
        r.unwrap();
        let mut want = vec![4, 1, 0x1f, 0x90, 0, 0, 0, 1, 0];
        want.extend_from_slice(b"git.corp\0");
        assert_eq!(sent, want);
        let (r, _) = exchange(Kind::Socks4, None, &[0, 91, 0, 0, 0, 0, 0, 0], "192.0.2.7");
        assert!(r.unwrap_err().to_string().contains("refused"));
        let (r, _) = exchange(Kind::Socks4, None, &granted, "::1");
        assert!(r.unwrap_err().to_string().contains("no IPv4 address"));
    }
}
