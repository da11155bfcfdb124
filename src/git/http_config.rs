//! `http.*` settings that libgit2 does not read itself, for one remote URL,
//! as git reads them: a `http.<url>.<name>` whose URL prefix matches the
//! remote (the longest prefix wins) over `http.<name>`. The proxy choice
//! is in [`super::proxy`]; the extra headers are here, and the URL the
//! remote really has (`url.<base>.insteadOf`), which these choices follow.

use super::urlmatch;

/// `url` as git rewrites it: the longest `url.<base>.insteadOf` value that
/// starts it is replaced by `<base>` (`entries` as libgit2 lists them:
/// `url.<base>.insteadof`). libgit2 rewrites the URL of a remote the same
/// way; git-sync needs the result to decide everything else.
pub(crate) fn rewrite_url(url: &str, entries: &[(String, String)]) -> String {
    entries
        .iter()
        .rev() // of equally long prefixes, the first wins (as in libgit2)
        .filter_map(|(key, prefix)| {
            let base = key.strip_prefix("url.")?.strip_suffix(".insteadof")?;
            (!prefix.is_empty() && url.starts_with(prefix.as_str())).then_some((prefix.len(), base))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(
            || url.to_string(),
            |(len, base)| format!("{base}{}", &url[len..]),
        )
}

/// Headers libgit2 sets itself and refuses as custom ones.
const LIBGIT2_OWN: [&str; 6] = [
    "User-Agent",
    "Host",
    "Accept",
    "Content-Type",
    "Transfer-Encoding",
    "Content-Length",
];

/// The `http.extraHeader` values to send to `url`, from the config entries
/// in their order, as git collects them: `http.extraHeader` and the
/// `http.<url>.extraHeader` that match (see `urlmatch`), each one less
/// specific than one before it left out, an empty value dropping those
/// before it. A value libgit2 would refuse (not `Name: value`, or a header
/// it sets itself) is left out with a warning that names the key only:
/// the value is often a token, and libgit2's own error would quote it.
pub(crate) fn extra_headers(url: &str, entries: &[(String, String)]) -> Vec<String> {
    let mut headers = Vec::new();
    for (key, value) in counting(entries, "extraheader", url) {
        if value.is_empty() {
            headers.clear();
        } else if sendable(value) {
            headers.push(value.clone());
        } else {
            tracing::warn!(key = %crate::redact::redact(key), "left out an http.extraHeader that is not a 'Name: value' header libgit2 may send");
        }
    }
    headers
}

/// Whether TLS certificates of `url` are checked, as git decides: the most
/// specific of `http.sslVerify` and the `http.<url>.sslVerify` that match
/// (see `urlmatch`; the last of equals), unless `GIT_SSL_NO_VERIFY` is set
/// (`env` looks it up), which turns checks off everywhere.
pub(crate) fn ssl_verify(
    url: &str,
    entries: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> bool {
    if env("GIT_SSL_NO_VERIFY").is_some() {
        return false;
    }
    counting(entries, "sslverify", url)
        .last()
        .map_or(true, |(_, value)| {
            !matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "false" | "no" | "off" | "0" | ""
            )
        })
}

/// The entries of `http.<name>` and `http.<url>.<name>` (`name` in lower
/// case) that count for `url`, in their order, as git reads them: those
/// that match (see `urlmatch`), each one less specific than one before it
/// left out.
fn counting<'a>(
    entries: &'a [(String, String)],
    name: &'a str,
    url: &'a str,
) -> impl Iterator<Item = &'a (String, String)> + 'a {
    let mut best = None;
    entries.iter().filter(move |(key, _)| {
        let Some(rank) = urlmatch::rank(key, name, url) else {
            return false;
        };
        if best.is_some_and(|best| rank < best) {
            return false;
        }
        best = Some(rank);
        true
    })
}

/// A `Name: value` header's name and value, trimmed.
pub(crate) fn split_header(header: &str) -> Option<(&str, &str)> {
    let (name, value) = header.split_once(':')?;
    Some((name.trim(), value.trim()))
}

/// Whether any of `headers` is named one of `names` (case aside).
pub(crate) fn any_named(headers: &[String], names: &[&str]) -> bool {
    headers
        .iter()
        .filter_map(|h| split_header(h))
        .any(|(name, _)| names.iter().any(|n| name.eq_ignore_ascii_case(n)))
}

/// Whether libgit2 sends `header` as given.
fn sendable(header: &str) -> bool {
    let Some((name, _)) = header.split_once(':') else {
        return false;
    };
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    // libgit2 compares the name as a prefix of its own, case-sensitively.
    let own = LIBGIT2_OWN
        .iter()
        .any(|h| h.starts_with(name) || h.eq_ignore_ascii_case(name));
    token && !own && !header.contains(['\r', '\n', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn insteadof_rewrites_the_longest_matching_prefix_once() {
        let cfg = entries(&[
            ("url.https://mirror/.insteadof", "https://github.com/"),
            (
                "url.https://bot@github.com/org/.insteadof",
                "https://github.com/org/",
            ),
            (
                "url.https://other/org/.insteadof",
                "https://github.com/org/",
            ),
            ("url.file:///never/.insteadof", ""),
            ("http.proxy", "https://github.com/"),
        ]);
        assert_eq!(
            rewrite_url("https://github.com/org/site.git", &cfg),
            "https://bot@github.com/org/site.git",
            "longest prefix, the first of equals"
        );
        assert_eq!(
            rewrite_url("https://github.com/x/y", &cfg),
            "https://mirror/x/y"
        );
        assert_eq!(rewrite_url("git@host:r.git", &cfg), "git@host:r.git");
    }

    #[test]
    fn ssl_verify_as_git_decides_it_for_a_url() {
        let url = "https://git.corp:8443/org/repo.git";
        let no_env = |_: &str| None;
        let verify = |pairs: &[(&str, &str)]| ssl_verify(url, &entries(pairs), no_env);
        assert!(verify(&[]));
        assert!(!verify(&[("http.sslverify", "false")]));
        assert!(!verify(&[(
            "http.https://git.corp:8443/.sslverify",
            "false"
        )]));
        assert!(!verify(&[(
            "http.https://git.corp:8443/org/.sslverify",
            "off"
        )]));
        // Another server, port or path: not this URL's.
        for other in [
            "https://git.corp/",
            "https://other.corp:8443/",
            "https://git.corp:8443/other/",
        ] {
            assert!(
                verify(&[(&format!("http.{other}.sslverify"), "false")]),
                "{other}"
            );
        }
        // The more specific wins, whatever the order; of equals, the last.
        assert!(verify(&[
            ("http.https://git.corp:8443/org/.sslverify", "true"),
            ("http.sslverify", "false"),
        ]));
        assert!(!verify(&[
            ("http.sslverify", "true"),
            ("http.sslverify", "no")
        ]));
        let env = |k: &str| (k == "GIT_SSL_NO_VERIFY").then(String::new);
        assert!(!ssl_verify(
            url,
            &entries(&[("http.sslverify", "true")]),
            env
        ));
    }

    #[test]
    fn extra_headers_as_git_collects_them() {
        let url = "https://git.corp/org/repo.git";
        let e = entries(&[
            ("http.extraheader", "X-Dropped: 1"),
            ("http.extraheader", ""),
            ("http.extraheader", "X-Trace: 2"),
            (
                "http.https://git.corp/.extraheader",
                "Authorization: Bearer t",
            ),
            ("http.https://other/.extraheader", "X-Other: 3"),
            ("http.extraheader", "not a header"),
            ("http.extraheader", "Host: evil"),
            ("http.extraheader", "Acc: prefix of Accept"),
        ]);
        assert_eq!(
            extra_headers(url, &e),
            ["X-Trace: 2", "Authorization: Bearer t"]
        );

        // What git 2.47 sent to a local server for these configs (header
        // names aside).
        let u = "http://127.0.0.1:18778";
        let sent = |url: &str, cfg: &[(&str, &str)]| extra_headers(url, &entries(cfg));
        let general_first = [
            ("http.extraheader", "X-General: a"),
            ("http.http://127.0.0.1:18778/.extraheader", "X-Specific: b"),
        ];
        let url = format!("{u}/org/repo");
        assert_eq!(
            sent(&url, &general_first),
            ["X-General: a", "X-Specific: b"]
        );
        let general_last = [general_first[1], general_first[0]];
        assert_eq!(sent(&url, &general_last), ["X-Specific: b"]);
        let deeper = [
            ("http.http://127.0.0.1:18778/org.extraheader", "X-Deeper: c"),
            ("http.http://127.0.0.1:18778/.extraheader", "X-Specific: b"),
            ("http.extraheader", "X-General: a"),
            ("http.http://127.0.0.1:18778/org/.extraheader", "X-Again: e"),
        ];
        assert_eq!(sent(&url, &deeper), ["X-Deeper: c", "X-Again: e"]);
        let users = [
            ("http.http://user@127.0.0.1:18778.extraheader", "X-User: d"),
            ("http.http://127.0.0.1:18778.extraheader", "X-Nouser: b"),
        ];
        let with_user = "http://user@127.0.0.1:18778/org/repo";
        assert_eq!(sent(with_user, &users), ["X-User: d"]);
        assert_eq!(sent(&url, &users), ["X-Nouser: b"]);
    }
}
