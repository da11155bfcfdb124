//! `http.*` settings that libgit2 does not read itself, for one remote URL,
//! as git reads them: a `http.<url>.<name>` whose URL prefix matches the
//! remote (the longest prefix wins) over `http.<name>`. The proxy choice
//! is in [`super::proxy`]; the extra headers are here.

/// The length of `<prefix>` when `key` (as libgit2 lists it: section and
/// name lowercase) is `http.<prefix>.<name>` and the prefix starts `url` at
/// a path boundary: git's URL matching, without wildcards.
pub(crate) fn matching_prefix(key: &str, name: &str, url: &str) -> Option<usize> {
    let prefix = key
        .strip_prefix("http.")?
        .strip_suffix(name)?
        .strip_suffix('.')?;
    let rest = url.strip_prefix(prefix.trim_end_matches('/'))?;
    (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
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
/// in their order: `http.extraHeader` and every matching
/// `http.<url>.extraHeader`, an empty value dropping those before it, as
/// git does. A value libgit2 would refuse (not `Name: value`, or a header
/// it sets itself) is left out with a warning that names the key only:
/// the value is often a token, and libgit2's own error would quote it.
pub(crate) fn extra_headers(url: &str, entries: &[(String, String)]) -> Vec<String> {
    let mut headers = Vec::new();
    for (key, value) in entries {
        if key != "http.extraheader" && matching_prefix(key, "extraheader", url).is_none() {
            continue;
        }
        if value.is_empty() {
            headers.clear();
        } else if sendable(value) {
            headers.push(value.clone());
        } else {
            tracing::warn!(%key, "left out an http.extraHeader that is not a 'Name: value' header libgit2 may send");
        }
    }
    headers
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
    fn url_prefixes_match_at_path_boundaries() {
        let url = "https://git.corp/org/repo.git";
        assert_eq!(
            matching_prefix("http.https://git.corp/.proxy", "proxy", url),
            Some(17)
        );
        assert!(matching_prefix("http.https://git.corp/org.proxy", "proxy", url).is_some());
        assert_eq!(
            matching_prefix("http.https://git.corp/or.proxy", "proxy", url),
            None
        );
        assert_eq!(matching_prefix("http.proxy", "proxy", url), None);
        assert_eq!(
            matching_prefix("http.https://git.corp/.proxy", "extraheader", url),
            None
        );
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
    }
}
