//! git-sync's own HTTP clients (the protocol v2 listing and fetch, Git LFS)
//! through a SOCKS proxy, with the handshake of `socks.rs`: the one
//! libgit2's connections go through (see `stream.rs`), so that both speak
//! to a proxy alike, as git's curl does.
//!
//! ureq's own SOCKS client sends a SOCKS4 proxy an empty user id where
//! curl sends the proxy URL's user, and words its failures otherwise.
//! Here ureq connects to the proxy (a resolver that gives the proxy's
//! addresses, whatever the server), a connector makes our handshake on
//! that connection, and TLS, for `https://`, then goes over it. Who looks
//! the server's name up is the handshake's to decide (`socks4`/`socks5`:
//! us; `socks4a`/`socks5h`: the proxy).

use std::io;
use std::net::ToSocketAddrs;

use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, NativeTlsConnector, NextTimeout, TcpConnector, Transport,
    TransportAdapter,
};

use super::proxy::Proxy;
use super::socks::Socks;

/// A client made from `config` that reaches every server through the
/// SOCKS proxy of `proxy_url`; `None` when that is no SOCKS proxy, an
/// error (never holding the URL) when it is no proxy URL git takes.
pub(crate) fn through_socks(
    config: ureq::config::Config,
    proxy_url: &str,
) -> Option<Result<ureq::Agent, String>> {
    let proxy = match Proxy::parse(proxy_url) {
        Ok(p) if p.kind.is_socks() => p,
        Ok(_) => return None,
        Err(why) => return Some(Err(why)),
    };
    let connector = TcpConnector::default()
        .chain(Handshake {
            socks: Socks {
                kind: proxy.kind,
                login: proxy.login,
            },
            proxy_host: proxy.host.clone(),
        })
        .chain(NativeTlsConnector::default());
    let resolver = ProxyAddrs {
        host: proxy.host,
        port: proxy.port,
    };
    Some(Ok(ureq::Agent::with_parts(config, connector, resolver)))
}

/// Asks the proxy, at the other end of the connection ureq opened, for
/// one to the request's server.
#[derive(Debug)]
struct Handshake {
    socks: Socks,
    /// For the words of an error.
    proxy_host: String,
}

impl<In: Transport> Connector<In> for Handshake {
    type Out = In;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<In>, ureq::Error> {
        let Some(to_proxy) = chained else {
            return Ok(None);
        };
        let (host, port) = server_of(details.uri).ok_or(ureq::Error::HostNotFound)?;
        let mut conn = TransportAdapter::new(to_proxy, details.current_time.clone());
        conn.set_timeout(details.timeout);
        self.socks.connect(&mut conn, &host, port).map_err(|e| {
            let why = format!("through the SOCKS proxy {}: {e}", self.proxy_host);
            ureq::Error::Io(io::Error::new(e.kind(), why))
        })?;
        Ok(Some(conn.into_inner()))
    }
}

/// The server a request goes to: its host (an IPv6 address without
/// brackets) and port, the scheme's when the URL names none.
fn server_of(uri: &Uri) -> Option<(String, u16)> {
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    Some((host.to_string(), port))
}

/// Gives the proxy's addresses, whatever server a request is for: ureq
/// connects there, and no name of a server is looked up before the
/// handshake.
#[derive(Debug)]
struct ProxyAddrs {
    host: String,
    port: u16,
}

impl Resolver for ProxyAddrs {
    fn resolve(
        &self,
        _uri: &Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let found = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| {
                let why = format!("failed to resolve address for {}: {e}", self.host);
                ureq::Error::Io(io::Error::new(e.kind(), why))
            })?;
        let mut addrs = self.empty();
        // ureq keeps up to 16 addresses, as its own resolver does.
        for addr in found.take(16) {
            addrs.push(addr);
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_of_a_url_with_or_without_a_port() {
        let of = |u: &str| server_of(&u.parse().unwrap());
        assert_eq!(of("https://h.example/r"), Some(("h.example".into(), 443)));
        assert_eq!(of("http://h.example/r"), Some(("h.example".into(), 80)));
        assert_eq!(
            of("http://10.0.0.1:8080/r"),
            Some(("10.0.0.1".into(), 8080))
        );
        assert_eq!(of("https://[::1]:8443/r"), Some(("::1".into(), 8443)));
    }

    #[test]
    fn only_a_socks_proxy_gets_this_client() {
        let config = || ureq::Agent::config_builder().build();
        assert!(through_socks(config(), "http://proxy:3128").is_none());
        assert!(through_socks(config(), "socks4a://bot@proxy").is_some_and(|a| a.is_ok()));
        let refused = through_socks(config(), "ftp://user:S3CRET@proxy");
        let why = refused.and_then(Result::err).unwrap_or_default();
        assert!(why.contains("ftp") && !why.contains("S3CRET"), "{why}");
    }
}
