//! What SSH and git:// servers were found to be ([`Known`]), left in the
//! git directory for the next process. Without it each process let libgit2
//! list every ref of a repository known to have many before it knew
//! better: a sidecar started after an init container's `--one-time` sync,
//! and each run of a `--one-time` job, paid for a version 0 listing (over
//! SSH with 50,000 refs, megabytes and a third of a second) and then for
//! another with libgit2's fetch.
//!
//! One line per server: a key (the SHA-1 of its URL, so no user name ever
//! lands on disk), `many` or `few` refs, and when a listing of ours was
//! last left to libgit2 (Unix seconds, `-` for never). Written whole or not
//! at all; a file lost or garbled only costs what a new store costs.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::Known;
use crate::git::ls_refs::{still_left, ASK_AGAIN_AFTER};

const FILE: &str = "git-sync-servers";

/// Known servers, by [`key`].
pub(in crate::git) type Servers = HashMap<String, Known>;

/// The key of the server of `url` (a URL after `insteadOf`).
pub(in crate::git) fn key(url: &str) -> String {
    git2::Oid::hash_object(git2::ObjectType::Blob, url.as_bytes())
        .map_or_else(|_| url.to_string(), |oid| oid.to_string())
}

/// What an earlier process left in `gitdir`.
pub(in crate::git) fn load(gitdir: &Path) -> Servers {
    let Ok(text) = std::fs::read_to_string(gitdir.join(FILE)) else {
        return Servers::new();
    };
    text.lines().filter_map(parse_line).collect()
}

/// Leave `servers` for the next process.
pub(in crate::git) fn save(gitdir: &Path, servers: &Servers) {
    let path = gitdir.join(FILE);
    let mut lines: Vec<String> = servers.iter().map(|(k, v)| line(k, v)).collect();
    lines.sort();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(error = %e, "cannot save what the servers were found to be");
    }
}

fn line(key: &str, known: &Known) -> String {
    let refs = if known.many_refs { "many" } else { "few" };
    // An Instant has no date: when it was, by the clock.
    let left = known
        .left_at
        .filter(|at| still_left(*at))
        .and_then(|at| SystemTime::now().checked_sub(at.elapsed()))
        .and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or_else(|| "-".to_string(), |since| since.as_secs().to_string());
    format!("{key} {refs} {left}")
}

fn parse_line(line: &str) -> Option<(String, Known)> {
    let mut words = line.split(' ');
    let (key, refs, left) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    let many_refs = match refs {
        "many" => true,
        "few" => false,
        _ => return None,
    };
    let left_at = match left {
        "-" => None,
        secs => {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.parse().ok()?);
            // A clock set back since: as if it were now.
            let ago = SystemTime::now().duration_since(at).unwrap_or_default();
            (ago < ASK_AGAIN_AFTER)
                .then(|| Instant::now().checked_sub(ago))
                .flatten()
        }
    };
    Some((key.to_string(), Known { many_refs, left_at }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_saved_is_loaded_by_the_next_process() {
        let dir = tempfile::TempDir::new().unwrap();
        let now = Instant::now();
        let mut servers = Servers::new();
        let url = "ssh://git@example.com/big.git";
        servers.insert(
            key(url),
            Known {
                many_refs: true,
                left_at: None,
            },
        );
        servers.insert(
            key("git://example.com/v0.git"),
            Known {
                many_refs: true,
                left_at: Some(now - Duration::from_secs(60)),
            },
        );
        let long_ago = now.checked_sub(ASK_AGAIN_AFTER + Duration::from_secs(5));
        if let Some(long_ago) = long_ago {
            servers.insert(
                key("git://example.com/long-ago.git"),
                Known {
                    many_refs: false,
                    left_at: Some(long_ago),
                },
            );
        }
        save(dir.path(), &servers);
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!text.contains("example.com"), "{text}");
        let loaded = load(dir.path());
        assert_eq!(loaded.len(), servers.len());
        let big = &loaded[&key(url)];
        assert!(big.worth_listing() && big.left_at.is_none());
        let v0 = &loaded[&key("git://example.com/v0.git")];
        assert!(v0.many_refs && v0.left() && !v0.worth_listing());
        let ago = v0.left_at.unwrap().elapsed();
        assert!(ago >= Duration::from_secs(59) && ago < Duration::from_secs(70));
        if long_ago.is_some() {
            let old = &loaded[&key("git://example.com/long-ago.git")];
            assert!(!old.many_refs && !old.left());
        }
    }

    #[test]
    fn a_garbled_file_is_read_as_far_as_it_makes_sense() {
        let dir = tempfile::TempDir::new().unwrap();
        let good = format!("{} many -\n", key("ssh://h/r"));
        std::fs::write(
            dir.path().join(FILE),
            format!("x\n{good}k some -\nk many soon\nk many - extra\n"),
        )
        .unwrap();
        let loaded = load(dir.path());
        assert_eq!(loaded.len(), 1, "{loaded:?}");
        assert!(loaded[&key("ssh://h/r")].many_refs);
        assert!(load(&dir.path().join("nowhere")).is_empty());
    }
}
