//! Which proxy, if any, a remote URL goes through, decided the way git
//! decides: `http.<url>.proxy` then `http.proxy` from the git config, else
//! the scheme's environment variable (`https_proxy` / `http_proxy`, either
//! case, then `all_proxy`), unless `no_proxy` names the host. An empty
//! config value turns proxying off.
//!
//! We decide instead of letting libgit2 (`ProxyOptions::auto`) for two
//! reasons: libgit2 1.9 words a plain `http://` request for a proxy but
//! connects to the origin server (so the stream has to be pointed at the
//! proxy, see `stream::route`), and both must agree on the answer.

use super::urlmatch;

/// A proxy for one remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    /// The proxy URL, with a scheme (`http://` when none was given).
    pub url: String,
}

impl Proxy {
    /// `host` and `port` of a plain `http://` proxy; `None` for other kinds.
    pub fn plain_http_address(&self) -> Option<(String, u16)> {
        host_port(self.url.strip_prefix("http://")?, 80)
    }
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

/// The proxy for `url`. `config` holds the git config's `http.proxy` and
/// `http.<url>.proxy` entries, `env` looks up an environment variable.
pub(crate) fn for_url(
    url: &str,
    config: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> Option<Proxy> {
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
    let url = if chosen.contains("://") {
        chosen.to_string()
    } else {
        format!("http://{chosen}")
    };
    Some(Proxy { url })
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
        for_url(url, &config, env).map(|p| p.url)
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
        let p = Proxy {
            url: "http://user:pw@proxy:3128/".into(),
        };
        assert_eq!(p.plain_http_address(), Some(("proxy".into(), 3128)));
        let tls = Proxy {
            url: "https://proxy:3128".into(),
        };
        assert_eq!(tls.plain_http_address(), None);
    }
}
