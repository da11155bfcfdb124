//! Which proxy, if any, a remote URL goes through, decided the way git
//! decides: `http.<url>.proxy` then `http.proxy` from the git config, else
//! the scheme's environment variable (`https_proxy` / `http_proxy`, either
//! case, then `all_proxy`), unless `no_proxy` names the host. An empty
//! config value turns proxying off.
//!
//! We decide instead of letting libgit2 (`ProxyOptions::auto`) for three
//! reasons: libgit2 1.9 words a plain `http://` request for a proxy but
//! connects to the origin server (so the stream has to be pointed at the
//! proxy, see `stream::route`), it knows no SOCKS proxy (it connects
//! straight to the server; our stream speaks SOCKS instead, `socks.rs`),
//! and both must agree on the answer.
//!
//! The proxy's URL is read as git's curl reads it: `http://` when it names
//! no scheme, `https://`, `socks4://` (or `socks://`), `socks4a://`,
//! `socks5://` and `socks5h://` (the last two differ in who looks the
//! server's name up: us, or the proxy), port 1080 unless it names one
//! (443 for `https://`); any other scheme fails, as in git.

use super::urlmatch;

/// A proxy's kind, by the scheme of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Http,
    Https,
    /// SOCKS4: the server's IPv4 address, looked up here.
    Socks4,
    /// SOCKS4a: the server's name, looked up by the proxy.
    Socks4a,
    /// SOCKS5: the server's address, looked up here.
    Socks5,
    /// SOCKS5 with the server's name, looked up by the proxy.
    Socks5h,
}

impl Kind {
    fn of(scheme: &str) -> Option<Kind> {
        Some(match scheme {
            "http" => Kind::Http,
            "https" => Kind::Https,
            "socks4" | "socks" => Kind::Socks4,
            "socks4a" => Kind::Socks4a,
            "socks5" => Kind::Socks5,
            "socks5h" => Kind::Socks5h,
            _ => return None,
        })
    }

    fn scheme(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Https => "https",
            Kind::Socks4 => "socks4",
            Kind::Socks4a => "socks4a",
            Kind::Socks5 => "socks5",
            Kind::Socks5h => "socks5h",
        }
    }

    /// Whether it is a SOCKS proxy, which our stream speaks to.
    pub fn is_socks(self) -> bool {
        !matches!(self, Kind::Http | Kind::Https)
    }
}

/// A proxy for one remote.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    /// The proxy URL as curl would read it: its scheme, any
    /// `user:password@` as given, its host and port.
    pub url: String,
    pub kind: Kind,
    /// Host (lowercase, IPv6 without brackets) and port.
    pub host: String,
    pub port: u16,
    /// The user name and password in the URL (percent-decoded), if any.
    pub login: Option<(String, String)>,
}

/// Without the URL's password: it never reaches a log line.
impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &crate::redact::redact(&self.url))
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// The proxy a git config or environment value names, or why git
    /// would not take it. The words never hold the value (it may hold a
    /// password).
    pub fn parse(value: &str) -> Result<Proxy, String> {
        let value = value.trim();
        let (scheme, rest) = match value.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_string(), value),
        };
        let kind = Kind::of(&scheme).ok_or_else(|| {
            format!(
                "a proxy of scheme {:?}, which git does not take (http, https, socks4, socks4a, \
                 socks5 or socks5h)",
                scheme.chars().take(20).collect::<String>()
            )
        })?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let default_port = if kind == Kind::Https { 443 } else { 1080 };
        let (host, port) = host_port(hostport, default_port)
            .filter(|(h, _)| {
                !h.contains(['[', ']'])
                    && (!h.contains(':') || h.parse::<std::net::Ipv6Addr>().is_ok())
            })
            .ok_or("a proxy URL without a host, or with a malformed one or port")?;
        let bracketed = match host.contains(':') {
            true => format!("[{host}]"),
            false => host.clone(),
        };
        let at = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let login = userinfo.map(|u| {
            let (user, password) = u.split_once(':').unwrap_or((u, ""));
            (percent_decoded(user), percent_decoded(password))
        });
        Ok(Proxy {
            url: format!("{}://{at}{bracketed}:{port}", kind.scheme()),
            kind,
            host,
            port,
            login,
        })
    }

    /// `host` and `port` of a plain `http://` proxy; `None` for other kinds.
    pub fn plain_http_address(&self) -> Option<(String, u16)> {
        (self.kind == Kind::Http).then(|| (self.host.clone(), self.port))
    }

    /// The URL libgit2 is told of: an HTTP(S) proxy's; `None` for SOCKS,
    /// which our stream speaks to where libgit2 would not.
    pub fn for_libgit2(&self) -> Option<&str> {
        (!self.kind.is_socks()).then_some(self.url.as_str())
    }
}

/// `%XX` escapes of a URL's user name or password decoded, as curl does.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The scheme, host and port of a URL (`None` for non-HTTP remotes).
pub(crate) fn http_origin(url: &str) -> Option<(&'static str, String, u16)> {
    if let Some(rest) = url.strip_prefix("https://") {
        return host_port(rest, 443).map(|(h, p)| ("https", h, p));
    }
    let rest = url.strip_prefix("http://")?;
    host_port(rest, 80).map(|(h, p)| ("http", h, p))
}

/// Host (lowercase, IPv6 without brackets) and port of `authority[/path]`,
/// dropping any `user:password@`.
fn host_port(rest: &str, default_port: u16) -> Option<(String, u16)> {
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse().ok()?,
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// The proxy for `url`, or why git would not take the one named.
/// `config` holds the git config's `http.proxy` and `http.<url>.proxy`
/// entries, `env` looks up an environment variable.
pub(crate) fn for_url(
    url: &str,
    config: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> Option<Result<Proxy, String>> {
    let (scheme, host, port) = http_origin(url)?;
    let chosen = match configured(url, config) {
        Some(value) => value,
        None => {
            let var = if scheme == "https" {
                "https_proxy"
            } else {
                "http_proxy"
            };
            [var.to_string(), var.to_ascii_uppercase()]
                .into_iter()
                .chain(["all_proxy".into(), "ALL_PROXY".into()])
                .find_map(|name| env(&name).filter(|v| !v.is_empty()))?
        }
    };
    let chosen = chosen.trim();
    if chosen.is_empty() {
        return None;
    }
    let no_proxy = env("no_proxy")
        .or_else(|| env("NO_PROXY"))
        .unwrap_or_default();
    if excluded(&no_proxy, &host, port) {
        return None;
    }
    Some(Proxy::parse(chosen))
}

/// The proxy upstream's Go client (`http.ProxyFromEnvironment`) takes for
/// `url`, for git-sync's requests that are not git's (webhooks, askpass
/// URLs, token endpoints), or why the one named cannot be taken:
/// `HTTPS_PROXY` or `HTTP_PROXY` by the URL's scheme (either case, upper
/// first), never `ALL_PROXY`; none for `localhost` and loopback addresses,
/// a sidecar of the Pod the proxy could not reach; `NO_PROXY` as above.
pub(crate) fn for_go_client(
    url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<Result<Proxy, String>> {
    let (scheme, host, port) = http_origin(url)?;
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return None;
    }
    let names = match scheme {
        "https" => ["HTTPS_PROXY", "https_proxy"],
        _ => ["HTTP_PROXY", "http_proxy"],
    };
    let chosen = names
        .iter()
        .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))?;
    let no_proxy = env("NO_PROXY")
        .or_else(|| env("no_proxy"))
        .unwrap_or_default();
    if excluded(&no_proxy, &host, port) {
        return None;
    }
    Some(Proxy::parse(&chosen))
}

/// The configured proxy for `url`: of `http.proxy` and the
/// `http.<url>.proxy` keys that match it (`urlmatch.rs`), the most
/// specific, the last of equals, as git reads them.
fn configured(url: &str, entries: &[(String, String)]) -> Option<String> {
    entries
        .iter()
        .filter_map(|(key, value)| Some((urlmatch::rank(key, "proxy", url)?, value)))
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, value)| value.clone())
}

/// Whether `no_proxy` (comma- or space-separated hosts, `.domain` or
/// `domain` for a domain and its subdomains, optional `:port`, `*` for
/// all) names `host:port`. As curl reads it, but for `host:port` entries,
/// which curl never matches and Go's clients (kubectl's) match by port:
/// here too.
fn excluded(no_proxy: &str, host: &str, port: u16) -> bool {
    no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some((net, bits)) = entry.split_once('/') {
                return in_network(host, net, bits);
            }
            let (name, entry_port) = match host_port(entry, 0) {
                Some((h, p)) => (h, p),
                None => return false,
            };
            if entry_port != 0 && entry_port != port {
                return false;
            }
            // A fully qualified `name.` is the same name, as curl reads it.
            let name = name.trim_start_matches('.').trim_end_matches('.');
            let host = host.trim_end_matches('.');
            host == name || host.ends_with(&format!(".{name}"))
        })
}

/// Whether the IP address `host` lies in `net/bits` (CIDR).
fn in_network(host: &str, net: &str, bits: &str) -> bool {
    use std::net::IpAddr;
    let (Ok(host), Ok(net), Ok(bits)) = (
        host.parse::<IpAddr>(),
        net.trim_matches(['[', ']']).parse::<IpAddr>(),
        bits.parse::<u32>(),
    ) else {
        return false;
    };
    let (h, n, width) = match (host, net) {
        (IpAddr::V4(h), IpAddr::V4(n)) => (u128::from(h.to_bits()), u128::from(n.to_bits()), 32),
        (IpAddr::V6(h), IpAddr::V6(n)) => (h.to_bits(), n.to_bits(), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (width - bits)
    } & (u128::MAX >> (128 - width));
    h & mask == n & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(url: &str, config: &[(&str, &str)], env: &[(&str, &str)]) -> Option<String> {
        let config: Vec<(String, String)> = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        for_url(url, &config, env).map(|p| p.map_or_else(|e| e, |p| p.url))
    }

    #[test]
    fn config_wins_over_environment() {
        let env = [("https_proxy", "http://env:1")];
        assert_eq!(
            decide("https://h/r", &[("http.proxy", "cfg:3128")], &env),
            Some("http://cfg:3128".into())
        );
        assert_eq!(
            decide("https://h/r", &[], &env),
            Some("http://env:1".into())
        );
        assert_eq!(decide("https://h/r", &[("http.proxy", "")], &env), None);
    }

    #[test]
    fn environment_by_scheme() {
        let env = [
            ("HTTP_PROXY", "http://plain:1"),
            ("ALL_PROXY", "http://all:2"),
        ];
        assert_eq!(
            decide("http://h/r", &[], &env),
            Some("http://plain:1".into())
        );
        assert_eq!(
            decide("https://h/r", &[], &env),
            Some("http://all:2".into())
        );
        assert_eq!(decide("ssh://h/r", &[], &env), None);
        assert_eq!(decide("/local/path", &[], &env), None);
    }

    #[test]
    fn requests_that_are_not_gits_take_the_proxy_as_go_takes_it() {
        let env = [
            ("HTTPS_PROXY", "http://secure:1"),
            ("http_proxy", "socks5h://plain:2"),
            ("ALL_PROXY", "http://all:3"),
            ("NO_PROXY", ".corp"),
        ];
        let decide = |url: &str, env: &[(&str, &str)]| {
            let env = |k: &str| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            for_go_client(url, env).map(|p| p.map_or_else(|e| e, |p| p.url))
        };
        assert_eq!(
            decide("https://api.github.com/app", &env),
            Some("http://secure:1".into())
        );
        assert_eq!(
            decide("http://hooks.example/x", &env),
            Some("socks5h://plain:2".into())
        );
        // A sidecar of the Pod, and NO_PROXY's hosts: straight there.
        for direct in [
            "http://localhost:9090/-/reload",
            "http://127.0.0.1:8080/x",
            "http://[::1]:8080/x",
            "https://hooks.corp/x",
        ] {
            assert_eq!(decide(direct, &env), None, "{direct}");
        }
        // ALL_PROXY is git's, not Go's.
        assert_eq!(
            decide("https://h/x", &[("ALL_PROXY", "http://all:3")]),
            None
        );
        let bad = decide("https://h/x", &[("HTTPS_PROXY", "ftp://u:S3CRET@p")]);
        assert!(bad.is_some_and(|why| why.contains("ftp") && !why.contains("S3CRET")));
    }

    #[test]
    fn url_specific_proxy_longest_prefix() {
        let cfg = [
            ("http.https://git.example.com.proxy", "http://a:1"),
            ("http.https://git.example.com/team.proxy", "http://b:2"),
            ("http.proxy", "http://c:3"),
        ];
        assert_eq!(
            decide("https://git.example.com/team/repo", &cfg, &[]),
            Some("http://b:2".into())
        );
        assert_eq!(
            decide("https://git.example.com/other", &cfg, &[]),
            Some("http://a:1".into())
        );
        assert_eq!(
            decide("https://git.example.community/x", &cfg, &[]),
            Some("http://c:3".into())
        );
    }

    #[test]
    fn no_proxy_rules() {
        let with = |no: &'static str| [("http_proxy", "http://p:1"), ("no_proxy", no)];
        assert_eq!(decide("http://git.corp.io/r", &[], &with("corp.io")), None);
        assert_eq!(decide("http://git.corp.io/r", &[], &with(".corp.io")), None);
        assert_eq!(decide("http://git.corp.io/r", &[], &with("*")), None);
        assert_eq!(
            decide("http://127.0.0.1:8080/r", &[], &with("x, 127.0.0.1")),
            None
        );
        assert_eq!(
            decide("http://127.0.0.1:8080/r", &[], &with("127.0.0.1:8080")),
            None
        );
        assert!(decide("http://127.0.0.1:8080/r", &[], &with("127.0.0.1:9")).is_some());
        assert!(decide("http://notcorp.io/r", &[], &with("corp.io")).is_some());
        assert!(decide("http://[::1]:81/r", &[], &with("::2")).is_some());
        assert_eq!(decide("http://[::1]:81/r", &[], &with("[::1]")), None);
        assert_eq!(decide("http://10.1.2.3/r", &[], &with("10.0.0.0/8")), None);
        assert!(decide("http://11.1.2.3/r", &[], &with("10.0.0.0/8")).is_some());
        assert_eq!(decide("http://[fd00::5]/r", &[], &with("fd00::/8")), None);
        assert!(decide("http://example.com/r", &[], &with("10.0.0.0/8")).is_some());
        // As curl 7.88 reads them: any case, a trailing dot, no wildcard
        // but `*` alone.
        assert_eq!(decide("http://GIT.Corp.io/r", &[], &with("Corp.IO")), None);
        assert_eq!(decide("http://git.corp.io/r", &[], &with("corp.io.")), None);
        assert!(decide("http://git.corp.io/r", &[], &with("*.corp.io")).is_some());
    }

    #[test]
    fn origins_and_proxy_addresses() {
        assert_eq!(
            http_origin("http://u:p@Example.COM/x"),
            Some(("http", "example.com".into(), 80))
        );
        assert_eq!(
            http_origin("https://[::1]:8443/x"),
            Some(("https", "::1".into(), 8443))
        );
        let p = Proxy::parse("http://user:pw@proxy:3128/").unwrap();
        assert_eq!(p.plain_http_address(), Some(("proxy".into(), 3128)));
        let tls = Proxy::parse("https://proxy:3128").unwrap();
        assert_eq!(tls.plain_http_address(), None);
    }

    #[test]
    fn proxy_urls_as_curl_reads_them() {
        let read = |v: &str| Proxy::parse(v).map(|p| (p.url, p.kind, p.login));
        let no_login = |url: &str, kind| Ok((url.to_string(), kind, None));
        // Curl's default port is 1080, but for an HTTPS proxy.
        assert_eq!(
            read("proxy.corp"),
            no_login("http://proxy.corp:1080", Kind::Http)
        );
        assert_eq!(
            read("HTTP://Proxy:8080/"),
            no_login("http://proxy:8080", Kind::Http)
        );
        assert_eq!(read("https://p"), no_login("https://p:443", Kind::Https));
        assert_eq!(read("socks://p"), no_login("socks4://p:1080", Kind::Socks4));
        assert_eq!(
            read("socks4a://p:1"),
            no_login("socks4a://p:1", Kind::Socks4a)
        );
        assert_eq!(
            read("socks5://[::1]:9"),
            no_login("socks5://[::1]:9", Kind::Socks5)
        );
        assert_eq!(
            read("socks5h://a%40b:p%3Aw@p"),
            Ok((
                "socks5h://a%40b:p%3Aw@p:1080".into(),
                Kind::Socks5h,
                Some(("a@b".into(), "p:w".into()))
            ))
        );
        for bad in [
            "ftp://p:1",
            "::::",
            "http://",
            "http://p:x",
            "socks5://[::1:9",
        ] {
            let e = read(bad).unwrap_err();
            assert!(!e.contains(bad), "the value is not repeated: {e}");
        }
        assert!(read("ftp://p").unwrap_err().contains("\"ftp\""));
        let shown = format!("{:?}", Proxy::parse("u:pw-S3CRET@p").unwrap());
        assert!(!shown.contains("S3CRET"), "{shown}");
        let socks = Proxy::parse("socks5h://p").unwrap();
        assert!(socks.kind.is_socks() && socks.for_libgit2().is_none());
        assert_eq!(
            Proxy::parse("p:1").unwrap().for_libgit2(),
            Some("http://p:1")
        );
    }
}
