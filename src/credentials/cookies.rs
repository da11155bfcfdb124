//! A Netscape cookie file (git's `http.cookieFile`, upstream's
//! `--cookie-file`): the cookies that match a remote URL are sent with each
//! HTTP request to it as one `Cookie:` header. Cookie values are secrets:
//! only their count is ever logged.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// One line of a cookie file.
#[derive(Clone, PartialEq, Eq)]
struct Cookie {
    /// Without a leading dot.
    domain: String,
    include_subdomains: bool,
    path: String,
    secure: bool,
    /// Seconds since the epoch; 0 = a session cookie (never expires here).
    expires: u64,
    name: String,
    value: String,
}

/// The cookies of one file, read for one pass.
#[derive(Clone, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CookieJar({} cookies)", self.cookies.len())
    }
}

/// The parts of an `http(s)://` URL that cookies match on.
struct Request<'a> {
    secure: bool,
    host: String,
    path: &'a str,
}

fn parse_request(url: &str) -> Option<Request<'_>> {
    let (secure, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        // [v6]:port
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    Some(Request {
        secure,
        host: host.to_ascii_lowercase(),
        path,
    })
}

impl Cookie {
    /// Does this cookie go with a request for `req` at `now`?
    fn matches(&self, req: &Request<'_>, now: u64) -> bool {
        let domain_ok = req.host == self.domain
            || (self.include_subdomains
                && req
                    .host
                    .strip_suffix(&self.domain)
                    .is_some_and(|head| head.ends_with('.')));
        // RFC 6265 path-match: a prefix ending at a `/` boundary.
        let path_ok = req.path.strip_prefix(&self.path).is_some_and(|rest| {
            self.path.ends_with('/') || rest.is_empty() || rest.starts_with('/')
        });
        domain_ok
            && path_ok
            && (!self.secure || req.secure)
            && (self.expires == 0 || self.expires > now)
    }
}

impl CookieJar {
    /// Parse the text of a cookie file. Malformed lines are skipped, as curl
    /// and git do; their count is returned for a warning.
    pub fn parse(text: &str) -> (CookieJar, usize) {
        let mut cookies = Vec::new();
        let mut skipped = 0;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            // `#HttpOnly_` marks an HTTP-only cookie; other `#` lines are comments.
            let line = match line.strip_prefix("#HttpOnly_") {
                Some(rest) => rest,
                None if line.starts_with('#') || line.trim().is_empty() => continue,
                None => line,
            };
            let fields: Vec<&str> = line.split('\t').collect();
            // Six fields: a cookie with no value, which curl sends as `name=`.
            let [domain, subdomains, path, secure, expires, name, value] = match fields[..] {
                [d, s, p, sec, e, n] => [d, s, p, sec, e, n, ""],
                [d, s, p, sec, e, n, v] => [d, s, p, sec, e, n, v],
                _ => {
                    skipped += 1;
                    continue;
                }
            };
            let Ok(expires) = expires.parse::<u64>() else {
                skipped += 1;
                continue;
            };
            // As curl: the flag alone says whether subdomains get it, a
            // leading dot of the domain aside.
            cookies.push(Cookie {
                domain: domain.trim_start_matches('.').to_ascii_lowercase(),
                include_subdomains: subdomains.eq_ignore_ascii_case("TRUE"),
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.into()
                },
                secure: secure.eq_ignore_ascii_case("TRUE"),
                expires,
                name: name.into(),
                value: value.into(),
            });
        }
        (CookieJar { cookies }, skipped)
    }

    /// Read and parse a cookie file.
    pub fn read(path: &Path) -> Result<CookieJar, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read cookie file {}: {e}", path.display()))?;
        let (jar, skipped) = CookieJar::parse(&text);
        if skipped > 0 {
            tracing::warn!(file = %path.display(), lines = skipped, "malformed cookie lines skipped");
        }
        Ok(jar)
    }

    /// The `Cookie:` header for requests to `url`, if any cookie matches.
    /// In curl's order: longer paths first, then longer domains, then
    /// longer names.
    pub fn header_for(&self, url: &str) -> Option<String> {
        let req = parse_request(url)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut hits: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.matches(&req, now))
            .collect();
        if hits.is_empty() {
            return None;
        }
        hits.sort_by_key(|c| std::cmp::Reverse((c.path.len(), c.domain.len(), c.name.len())));
        let pairs: Vec<String> = hits
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Some(format!("Cookie: {}", pairs.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Netscape HTTP Cookie File\n\
        git.example.com\tFALSE\t/\tTRUE\t0\tsession\ts1\n\
        #HttpOnly_.example.com\tTRUE\t/org\tFALSE\t4102444800\tteam\tt1\n\
        old.example.com\tFALSE\t/\tFALSE\t1\texpired\tx\n\
        broken line\n";

    #[test]
    fn parses_and_matches_domain_path_secure_and_expiry() {
        let (jar, skipped) = CookieJar::parse(FILE);
        assert_eq!(skipped, 1);
        assert_eq!(
            jar.header_for("https://git.example.com/org/repo.git")
                .as_deref(),
            Some("Cookie: team=t1; session=s1")
        );
        // The secure cookie is not sent over plain HTTP.
        assert_eq!(
            jar.header_for("http://git.example.com:8080/org/repo")
                .as_deref(),
            Some("Cookie: team=t1")
        );
        // `/org` does not path-match `/organisation`.
        assert_eq!(
            jar.header_for("https://user:pw@git.example.com/organisation/r")
                .as_deref(),
            Some("Cookie: session=s1")
        );
        assert_eq!(jar.header_for("http://old.example.com/r"), None);
        assert_eq!(jar.header_for("http://notexample.com/org/r"), None);
        assert_eq!(jar.header_for("ssh://git.example.com/org/r"), None);
        assert!(!format!("{jar:?}").contains("s1"));
    }

    #[test]
    fn read_as_curl_reads_them() {
        // What curl 7.88 sends from this file (checked against a server
        // echoing the header): the flag, not a leading dot, opens the
        // cookie to subdomains; six fields are a cookie with no value;
        // longer paths, then longer names, first.
        let (jar, skipped) = CookieJar::parse(
            ".sub.test\tFALSE\t/\tFALSE\t0\tdotted\t1\n\
             sub.test\tFALSE\t/\tFALSE\t0\tsix\n\
             sub.test\tFALSE\t/org\tFALSE\t0\tlong\t2\n\
             sub.test\tFALSE\t/\tFALSE\t0\tshort\t3\n",
        );
        assert_eq!(skipped, 0);
        assert_eq!(
            jar.header_for("http://sub.test:18777/org/x").as_deref(),
            Some("Cookie: long=2; dotted=1; short=3; six=")
        );
        assert_eq!(jar.header_for("http://a.sub.test/org/x"), None);
    }
}
