//! How deep the store's history goes below a commit, against `--depth`.
//!
//! A shallow store lists in `.git/shallow` the commits whose parents it
//! does not hold. A commit already here may still need a fetch: after a
//! restart with a larger `--depth` (or 0, all history), git-sync brings the
//! history it now asks for, rather than keeping the old depth until the
//! next commit.

use std::collections::{BTreeSet, HashSet, VecDeque};

use git2::Oid;

use super::{GitError, GitRepo, Hash};

/// The commits of `.git/shallow`: their parents are not in the store.
pub(super) fn read_shallow(repo: &GitRepo) -> BTreeSet<Oid> {
    std::fs::read_to_string(repo.gitdir.join("shallow"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Write `.git/shallow` as `commits` (removed when there are none), by
/// rename so that a crash leaves the old list or the new one.
pub(super) fn write_shallow(repo: &GitRepo, commits: &BTreeSet<Oid>) -> Result<(), GitError> {
    let shallow = repo.gitdir.join("shallow");
    if commits.is_empty() {
        let _ = std::fs::remove_file(&shallow);
        return Ok(());
    }
    let text: String = commits.iter().map(|h| format!("{h}\n")).collect();
    let tmp = repo.gitdir.join("shallow.git-sync.tmp");
    std::fs::write(&tmp, text).map_err(|e| GitError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &shallow).map_err(|e| GitError::io("rename", &shallow, e))
}

impl GitRepo {
    /// Whether the history below `hash` stops short of `depth` commits
    /// (0: all history): a commit less deep than that is a shallow one.
    /// Checked once per commit and depth (the store only gets deeper).
    pub fn history_short_of(&self, hash: Hash, depth: u32) -> bool {
        if self.deep_enough.get() == Some((hash, depth)) {
            return false;
        }
        let shallow = read_shallow(self);
        let short = !shallow.is_empty() && self.cut_above(hash, depth, &shallow);
        if !short {
            self.deep_enough.set(Some((hash, depth)));
        }
        short
    }

    /// Take the history below `hash` as deep enough for `depth` from now
    /// on: a fetch asked for more and the server sent what it had.
    pub fn settle_depth(&self, hash: Hash, depth: u32) {
        self.deep_enough.set(Some((hash, depth)));
    }

    /// libgit2 keeps the commits it parsed with their parents as
    /// `.git/shallow` had them then. Once a fetch has made shallow commits
    /// whole (a larger --depth, or 0), open the repository afresh: their
    /// parents would stay hidden, and a gc walking the history would stop
    /// there and drop what was just fetched.
    pub(super) fn reopen_if_deepened(&mut self, before: &BTreeSet<Oid>) -> Result<(), GitError> {
        let now = read_shallow(self);
        if before.iter().all(|c| now.contains(c)) {
            return Ok(());
        }
        self.reopen()
    }

    /// Walk from `hash` (level 1) down to level `depth` (0: to the roots):
    /// is a commit above that level shallow, or missing?
    fn cut_above(&self, hash: Hash, depth: u32, shallow: &BTreeSet<Oid>) -> bool {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([(hash, 1u32)]);
        while let Some((id, level)) = queue.pop_front() {
            if !seen.insert(id) || (depth != 0 && level >= depth) {
                continue;
            }
            if shallow.contains(&id) {
                return true;
            }
            let Ok(commit) = self.repo.find_commit(id) else {
                return true;
            };
            queue.extend(commit.parent_ids().map(|p| (p, level + 1)));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::git;
    use super::*;

    #[test]
    fn shallow_commits_above_the_depth_make_the_history_short() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        for i in 0..5 {
            std::fs::write(src.join("f"), i.to_string()).unwrap();
            git(&src, &["add", "f"]);
            git(&src, &["commit", "-q", "-m", &format!("c{i}")]);
        }
        let url = format!("file://{}", src.display());
        let clone = tmp.path().join("clone");
        git(tmp.path(), &["clone", "-q", "--depth", "2", &url, "clone"]);
        git(&clone, &["checkout", "-q", "-b", "git-sync"]);
        let repo = GitRepo::open(&clone).unwrap();
        let head: Hash = git(&clone, &["rev-parse", "HEAD"]).trim().parse().unwrap();
        assert!(!repo.history_short_of(head, 1));
        assert!(!repo.history_short_of(head, 2));
        assert!(repo.history_short_of(head, 3));
        assert!(repo.history_short_of(head, 0));
        git(&clone, &["fetch", "-q", "--unshallow"]);
        assert!(!repo.history_short_of(head, 0));
        assert!(
            !repo.history_short_of(head, 9),
            "5 commits are all there is"
        );
    }
}
