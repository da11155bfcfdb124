//! Which paths differ between the trees of two commits, found without
//! entering a subtree both hold unchanged (same tree id): a one-file change
//! in 50,000 files reads a few trees. Dest mode then copies only those
//! paths into the served directory (`publish/dest.rs`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{GitRepo, Hash};

/// What differs from commit `from` to another, as paths relative to the
/// top of the tree. A path stands for everything below it: a directory
/// added, removed or made a file, a submodule whose commit moved, and a
/// directory whose `.gitattributes` changed (how each of its unchanged
/// blobs is checked out may change with it) are one path each. The empty
/// path is the whole tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedPaths {
    pub from: Hash,
    pub paths: Vec<PathBuf>,
}

/// The name of the files that set how the blobs below them are checked out.
const ATTRIBUTES: &[u8] = b".gitattributes";

impl GitRepo {
    /// The paths that differ from `from` to `to`, or `None` when a tree
    /// cannot be read (the store no longer holds `from`, say).
    pub fn changed_paths(&self, from: Hash, to: Hash) -> Option<ChangedPaths> {
        let tree = |hash| self.repo.find_commit(hash).and_then(|c| c.tree()).ok();
        let (old, new) = (tree(from)?, tree(to)?);
        let mut paths = Vec::new();
        diff(&self.repo, &old, &new, Path::new(""), &mut paths).ok()?;
        Some(ChangedPaths { from, paths })
    }
}

/// The entries of `tree` by name: id and mode.
fn entries(tree: &git2::Tree<'_>) -> BTreeMap<Vec<u8>, (git2::Oid, i32)> {
    tree.iter()
        .map(|e| (e.name_bytes().to_vec(), (e.id(), e.filemode())))
        .collect()
}

fn is_tree(mode: i32) -> bool {
    mode == i32::from(git2::FileMode::Tree)
}

/// Add to `out` what differs between `old` and `new`, the trees at `dir`.
fn diff(
    repo: &git2::Repository,
    old: &git2::Tree<'_>,
    new: &git2::Tree<'_>,
    dir: &Path,
    out: &mut Vec<PathBuf>,
) -> Result<(), git2::Error> {
    let (old, new) = (entries(old), entries(new));
    if old.get(ATTRIBUTES) != new.get(ATTRIBUTES) {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut names: Vec<&Vec<u8>> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let path = || dir.join(OsStr::from_bytes(name));
        match (old.get(name), new.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(&(a, a_mode)), Some(&(b, b_mode))) if is_tree(a_mode) && is_tree(b_mode) => {
                diff(repo, &repo.find_tree(a)?, &repo.find_tree(b)?, &path(), out)?;
            }
            _ => out.push(path()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_util::commit_files;

    fn changed(files_a: &[(&str, &str)], files_b: &[(&str, &str)]) -> Vec<String> {
        let t = tempfile::TempDir::new().unwrap();
        let repo = GitRepo::init(t.path()).unwrap();
        let a = commit_files(&repo.repo, files_a);
        let b = commit_files(&repo.repo, files_b);
        let c = repo.changed_paths(a, b).unwrap();
        assert_eq!(c.from, a);
        c.paths.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn only_what_differs_is_listed_and_a_whole_new_or_gone_directory_once() {
        let a = [
            ("same/x.txt", "x"),
            ("dir/keep.txt", "k"),
            ("dir/edit.txt", "1"),
            ("gone/deep/a.txt", "a"),
            ("was_file", "f"),
            ("top.txt", "t"),
        ];
        let b = [
            ("same/x.txt", "x"),
            ("dir/keep.txt", "k"),
            ("dir/edit.txt", "2"),
            ("dir/new.txt", "n"),
            ("new/deep/b.txt", "b"),
            ("was_file/now_dir.txt", "d"),
            ("top.txt", "t"),
        ];
        assert_eq!(
            changed(&a, &b),
            ["dir/edit.txt", "dir/new.txt", "gone", "new", "was_file"]
        );
        assert!(changed(&a, &a).is_empty());
    }

    #[test]
    fn a_changed_gitattributes_makes_its_whole_directory_changed() {
        let a = [("site/.gitattributes", "*.txt text"), ("site/a.txt", "a")];
        let b = [
            ("site/.gitattributes", "*.txt eol=crlf"),
            ("site/a.txt", "a"),
        ];
        assert_eq!(changed(&a, &b), ["site"]);
        let top = [(".gitattributes", "* -text"), ("site/a.txt", "a")];
        assert_eq!(changed(&a, &top), [""]);
    }

    #[test]
    fn a_commit_the_store_lacks_gives_nothing_to_go_by() {
        let t = tempfile::TempDir::new().unwrap();
        let repo = GitRepo::init(t.path()).unwrap();
        let a = commit_files(&repo.repo, &[("a", "a")]);
        let missing: Hash = "1111111111111111111111111111111111111111".parse().unwrap();
        assert!(repo.changed_paths(missing, a).is_none());
        assert!(repo.changed_paths(a, missing).is_none());
    }
}
