//! Advancing the previous worktree to the new commit in place, where no
//! reader ever sees it.
//!
//! In dest mode the worktree is private: readers are served a copy
//! (`publish/dest.rs`), and the previous worktree is removed once the copy
//! holds the new commit. Sharing its unchanged files by hard links
//! (`unchanged.rs`) then costs a link per file to make the new tree and an
//! unlink per file to remove the old one: most of a one-file update of
//! 50,000 files. Instead the previous worktree becomes the new one: its
//! directory takes the new one's place (one rename), and only the paths
//! the commit changed (`tree_diff.rs`) are removed and written again, in the
//! directory and its index (entries of unchanged files, and their stat
//! data, stay as they are).
//!
//! Its files are not looked at one by one, as sharing does: the caller
//! vouches that nothing but this process wrote in that worktree since it
//! made it (no hook runs in it; `sync.rs` says when). A tree with
//! submodules is not advanced (their worktrees are registered under the
//! name of the tree they sit in). Cut short, the new tree has no recipe
//! yet and the next pass makes it anew (the old one is gone: every file is
//! written then).

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::super::tree_path::is_plainly_safe;
use super::super::{Cancel, ChangedPaths, GitError, GitRepo};
use super::{checked, gitfile, Base, Started};
use crate::layout::remove_any;

/// Up to how many changed paths have their index entries removed one by
/// one (see [`GitRepo::advance`]).
const UNINDEX_ONE_BY_ONE: usize = if cfg!(test) { 4 } else { 256 };

impl GitRepo {
    /// Make the worktree `base` the new worktree `name` at `path` (just
    /// registered: holding its `.git` file only), advanced to `commit`:
    /// what `changes` (from `base`) names removed. Returns the paths left
    /// to write, those of `commit` below the changed paths (of those at
    /// `only`, when given: the paths sparse patterns select), and the
    /// index (to write once they are, adding theirs); or `None`,
    /// nothing done, when `changes` is not from `base`, names the whole
    /// tree or a path that is not plainly safe, or the base's index cannot
    /// be read.
    pub(super) fn advance(
        &self,
        commit: &git2::Commit<'_>,
        path: &Path,
        name: &str,
        (base, changes): (Base<'_>, &ChangedPaths),
        only: Option<&[Vec<u8>]>,
        cancel: &Cancel,
    ) -> Result<Option<Started>, GitError> {
        let safe = |p: &PathBuf| is_plainly_safe(p.as_os_str().as_bytes());
        if changes.from != base.hash || !changes.paths.iter().all(safe) {
            return Ok(None);
        }
        // The base's index goes with it, and is read (once, as it checks
        // its checksum) where it now belongs.
        let new_index = self.admin_dir(name).join("index");
        let old_index = self.admin_dir(base.admin).join("index");
        let index = fs::rename(&old_index, &new_index)
            .map_err(|e| e.to_string())
            .and_then(|()| git2::Index::open(&new_index).map_err(|e| e.to_string()));
        let mut index = match index {
            Ok(index) => index,
            Err(error) => {
                tracing::debug!(%error, "the previous worktree's index cannot be read: not advancing it");
                let _ = fs::rename(&new_index, &old_index);
                return Ok(None);
            }
        };
        // `path` holds its `.git` file only: without it, an empty directory
        // the base's takes the place of.
        let dot_git = path.join(".git");
        let pointer = gitfile(path, &self.admin_dir(name));
        fs::remove_file(&dot_git).map_err(|e| GitError::io("remove", &dot_git, e))?;
        if let Err(e) = fs::rename(base.dir, path) {
            tracing::debug!(error = %e, "the previous worktree cannot be moved: not advancing it");
            let _ = fs::rename(&new_index, &old_index);
            fs::write(&dot_git, &pointer).map_err(|e| GitError::io("write", &dot_git, e))?;
            return Ok(None);
        }
        fs::write(&dot_git, &pointer).map_err(|e| GitError::io("write", &dot_git, e))?;
        self.forget_worktree(base.admin)?;

        let tree = commit.tree().map_err(|e| GitError::local("read tree", e))?;
        // The entries of a few paths are removed one by one; with many, the
        // index is read onto the new tree at once (entries that did not
        // change keep their stat data), as each removal shifts all the
        // entries after it.
        let one_by_one = changes.paths.len() <= UNINDEX_ONE_BY_ONE;
        let mut write = Vec::new();
        for (n, rel) in changes.paths.iter().enumerate() {
            checked(n, cancel)?;
            let on_disk = path.join(rel);
            remove_any(&on_disk).map_err(|e| GitError::io("remove", &on_disk, e))?;
            // Its entries too: the files written in their place add theirs
            // (and those sparse patterns leave out are marked again).
            if one_by_one {
                index
                    .remove_path(rel)
                    .and_then(|()| index.remove_dir(rel, 0))
                    .map_err(|e| GitError::local(format!("unindex {}", rel.display()), e))?;
            }
            files_at(&self.repo, &tree, rel, &mut write)?;
        }
        if !one_by_one {
            index
                .read_tree(&tree)
                .map_err(|e| GitError::local("read tree into the index", e))?;
        }
        if let Some(only) = only {
            let only: HashSet<&[u8]> = only.iter().map(Vec::as_slice).collect();
            write.retain(|p| only.contains(p.as_slice()));
        }
        tracing::debug!(
            changed = changes.paths.len(),
            to_check_out = write.len(),
            "advancing the previous worktree in place"
        );
        Ok(Some(Started {
            paths: write,
            index,
        }))
    }
}

/// Add to `out` the files (blobs) of `tree` at `rel`: the one there, or
/// all below it; none if `tree` has nothing there.
fn files_at(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    rel: &Path,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), GitError> {
    let entry = match tree.get_path(rel) {
        Ok(entry) => entry,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(()),
        Err(e) => return Err(GitError::local(format!("read {}", rel.display()), e)),
    };
    let top = rel.as_os_str().as_bytes();
    match entry.kind() {
        Some(git2::ObjectType::Blob) => out.push(top.to_vec()),
        Some(git2::ObjectType::Tree) => {
            let below = repo
                .find_tree(entry.id())
                .map_err(|e| GitError::local(format!("read tree {}", entry.id()), e))?;
            below
                .walk(git2::TreeWalkMode::PreOrder, |dir, e| {
                    if e.kind() == Some(git2::ObjectType::Blob) {
                        out.push([top, b"/", dir.as_bytes(), e.name_bytes()].concat());
                    }
                    git2::TreeWalkResult::Ok
                })
                .map_err(|e| GitError::local("walk tree", e))?;
        }
        // A gitlink: trees with submodules are not advanced.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_util::{commit_entries, git};
    use crate::git::Hash;
    use crate::sparse::SparsePatterns;
    use std::collections::BTreeMap;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const FILE: u32 = 0o100644;
    const EXEC: u32 = 0o100755;
    const LINK: u32 = 0o120000;
    const GITLINK: u32 = 0o160000;

    fn commit(repo: &git2::Repository, files: &[(&str, u32, &str)]) -> Hash {
        commit_entries(repo, files)
    }

    /// Everything below `dir` but its `.git` file: each path's kind,
    /// content (or target) and executable bit.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (String, Vec<u8>, bool)> {
        fn walk(top: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (String, Vec<u8>, bool)>) {
            for e in fs::read_dir(dir).unwrap() {
                let path = e.unwrap().path();
                let rel = path.strip_prefix(top).unwrap().to_path_buf();
                if rel == Path::new(".git") {
                    continue;
                }
                let meta = fs::symlink_metadata(&path).unwrap();
                let exec = meta.permissions().mode() & 0o100 != 0;
                if meta.is_dir() {
                    out.insert(rel, ("dir".into(), Vec::new(), exec));
                    walk(top, &path, out);
                } else if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).unwrap();
                    out.insert(
                        rel,
                        ("link".into(), target.into_os_string().into_vec(), false),
                    );
                } else {
                    out.insert(rel, ("file".into(), fs::read(&path).unwrap(), exec));
                }
            }
        }
        use std::os::unix::ffi::OsStringExt;
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    fn ino(path: &Path) -> u64 {
        fs::symlink_metadata(path).unwrap().ino()
    }

    struct Setup {
        _t: tempfile::TempDir,
        git: GitRepo,
        dirs: PathBuf,
    }

    impl Setup {
        fn new() -> Setup {
            let t = tempfile::TempDir::new().unwrap();
            let git = GitRepo::init(&t.path().join("root")).unwrap();
            let dirs = t.path().join("worktrees");
            Setup { _t: t, git, dirs }
        }

        fn dir(&self, hash: Hash) -> PathBuf {
            self.dirs.join(hash.to_string())
        }

        /// A worktree of `hash` made afresh, under `name`.
        fn fresh(&self, hash: Hash, name: &str, sparse: Option<&str>) -> PathBuf {
            let dir = self.dirs.join(name);
            let patterns = sparse.map(SparsePatterns::parse);
            let sparse = patterns.as_ref().zip(sparse);
            self.git
                .create_worktree(hash, &dir, name, sparse, None, &Cancel::new())
                .unwrap();
            dir
        }

        /// The worktree of `to` made from that of `from` (made afresh
        /// first), offered to take over with what changed between them.
        fn made_from(&self, from: Hash, to: Hash, sparse: Option<&str>, changes: &ChangedPaths) {
            let patterns = sparse.map(SparsePatterns::parse);
            let sparse = patterns.as_ref().zip(sparse);
            let (from_dir, from_name) = (self.dir(from), from.to_string());
            let base = Base {
                dir: &from_dir,
                admin: &from_name,
                hash: from,
                yours: Some(changes),
            };
            let to_name = to.to_string();
            self.git
                .create_worktree(
                    to,
                    &self.dir(to),
                    &to_name,
                    sparse,
                    Some(base),
                    &Cancel::new(),
                )
                .unwrap();
        }
    }

    fn before() -> Vec<(&'static str, u32, &'static str)> {
        vec![
            ("keep/a.txt", FILE, "kept"),
            ("edit.txt", FILE, "1"),
            ("gone/deep/a.txt", FILE, "a"),
            ("was_file", FILE, "f"),
            ("run.sh", EXEC, "#!/bin/sh\n"),
            ("link", LINK, "edit.txt"),
        ]
    }

    fn after() -> Vec<(&'static str, u32, &'static str)> {
        vec![
            ("keep/a.txt", FILE, "kept"),
            ("edit.txt", FILE, "2"),
            ("was_file/now.txt", FILE, "d"),
            ("new/deep/b.txt", FILE, "b"),
            ("run.sh", FILE, "#!/bin/sh\n"),
            ("link", LINK, "keep/a.txt"),
        ]
    }

    /// `git status` in `dir`, untracked files too: empty when the tree
    /// and its index hold exactly the commit checked out.
    fn status(dir: &Path) -> String {
        git(dir, &["status", "--porcelain", "--untracked-files=all"])
    }

    #[test]
    fn a_tree_taken_over_becomes_the_new_commit_exactly_and_only_changed_files_are_new() {
        let s = Setup::new();
        let (a, b) = (
            commit(&s.git.repo, &before()),
            commit(&s.git.repo, &after()),
        );
        s.fresh(a, &a.to_string(), None);
        let kept = ino(&s.dir(a).join("keep/a.txt"));
        let changes = s.git.changed_paths(a, b).unwrap();
        s.made_from(a, b, None, &changes);

        assert!(!s.dir(a).exists(), "the old tree became the new one");
        assert!(!s.git.worktree_names().contains(&a.to_string()));
        assert_eq!(
            ino(&s.dir(b).join("keep/a.txt")),
            kept,
            "an unchanged file stays"
        );
        let fresh = s.fresh(b, "fresh", None);
        assert_eq!(snapshot(&s.dir(b)), snapshot(&fresh));
        assert_eq!(status(&s.dir(b)), "");
        // The index vouches for every file, as a checkout's does.
        assert!(s.git.worktree_unchanged(&s.dir(b), &b.to_string()));
        assert_eq!(s.git.worktree_head(&b.to_string()), Some(b));
    }

    #[test]
    fn a_few_changes_are_unindexed_one_by_one_many_at_once_alike() {
        // after() changes more paths than are unindexed one by one here.
        let few: Vec<_> = before()
            .into_iter()
            .filter(|(p, ..)| !p.starts_with("gone/"))
            .map(|(p, mode, c)| (p, mode, if p == "edit.txt" { "3" } else { c }))
            .collect();
        for (files, many) in [(few, false), (after(), true)] {
            let s = Setup::new();
            let (a, b) = (commit(&s.git.repo, &before()), commit(&s.git.repo, &files));
            s.fresh(a, &a.to_string(), None);
            let changes = s.git.changed_paths(a, b).unwrap();
            assert_eq!(
                changes.paths.len() > UNINDEX_ONE_BY_ONE,
                many,
                "{changes:?}"
            );
            s.made_from(a, b, None, &changes);
            assert!(!s.dir(a).exists());
            let fresh = s.fresh(b, "fresh", None);
            assert_eq!(snapshot(&s.dir(b)), snapshot(&fresh));
            assert_eq!(status(&s.dir(b)), "");
            assert!(s.git.worktree_unchanged(&s.dir(b), &b.to_string()));
        }
    }

    #[test]
    fn a_tree_cut_short_while_taken_over_is_made_whole_again_without_it() {
        let s = Setup::new();
        let (a, b) = (
            commit(&s.git.repo, &before()),
            commit(&s.git.repo, &after()),
        );
        s.fresh(a, &a.to_string(), None);
        let changes = s.git.changed_paths(a, b).unwrap();
        let (dir_a, name_a, name_b) = (s.dir(a), a.to_string(), b.to_string());
        let base = Base {
            dir: &dir_a,
            admin: &name_a,
            hash: a,
            yours: Some(&changes),
        };
        let cancel = Cancel::new();
        cancel.cancel();
        let cut = s
            .git
            .create_worktree(b, &s.dir(b), &name_b, None, Some(base), &cancel);
        assert!(matches!(cut, Err(GitError::Cancelled)), "{cut:?}");
        assert!(!dir_a.exists(), "taken before it was cut short");
        // What the next pass does: the half-made tree removed, made again
        // with the old one as its base, which is gone.
        fs::remove_dir_all(s.dir(b)).unwrap();
        let base = Base {
            yours: None,
            ..base
        };
        s.git
            .create_worktree(b, &s.dir(b), &name_b, None, Some(base), &Cancel::new())
            .unwrap();
        let fresh = s.fresh(b, "fresh", None);
        assert_eq!(snapshot(&s.dir(b)), snapshot(&fresh));
        assert_eq!(status(&s.dir(b)), "");
    }

    #[test]
    fn a_sparse_tree_taken_over_keeps_to_its_patterns() {
        let patterns = "/keep/\n/new/\n/edit.txt\n";
        // Two changed paths, one of them left out (unindexed one by one);
        // and many (at once).
        let mut few = before();
        few.retain(|(p, ..)| *p != "edit.txt" && *p != "was_file");
        few.extend([("edit.txt", FILE, "4"), ("was_file", FILE, "g")]);
        for new in [few, after()] {
            let s = Setup::new();
            let (a, b) = (commit(&s.git.repo, &before()), commit(&s.git.repo, &new));
            s.fresh(a, &a.to_string(), Some(patterns));
            let changes = s.git.changed_paths(a, b).unwrap();
            s.made_from(a, b, Some(patterns), &changes);
            assert!(!s.dir(a).exists());
            let fresh = s.fresh(b, "fresh", Some(patterns));
            assert_eq!(snapshot(&s.dir(b)), snapshot(&fresh));
            assert!(!s.dir(b).join("was_file").exists());
            assert_eq!(status(&s.dir(b)), "");
            assert!(s.git.worktree_unchanged(&s.dir(b), &b.to_string()));
        }
    }

    #[test]
    fn a_tree_that_filters_is_taken_over_through_libgit2s_checkout() {
        let attrs = ("keep/.gitattributes", FILE, "*.txt text eol=crlf\n");
        let mut old = before();
        old.extend([attrs, ("keep/b.txt", FILE, "one\ntwo\n")]);
        // One changed path (unindexed one by one), and many (at once).
        let mut one = old.clone();
        one.retain(|(p, ..)| *p != "keep/b.txt");
        one.push(("keep/b.txt", FILE, "one\nthree\n"));
        let mut many = after();
        many.extend([attrs, ("keep/b.txt", FILE, "one\nthree\n")]);
        for new in [one, many] {
            let s = Setup::new();
            let (a, b) = (commit(&s.git.repo, &old), commit(&s.git.repo, &new));
            s.fresh(a, &a.to_string(), None);
            let changes = s.git.changed_paths(a, b).unwrap();
            s.made_from(a, b, None, &changes);
            assert!(!s.dir(a).exists());
            assert_eq!(
                fs::read(s.dir(b).join("keep/b.txt")).unwrap(),
                b"one\r\nthree\r\n"
            );
            let fresh = s.fresh(b, "fresh", None);
            assert_eq!(snapshot(&s.dir(b)), snapshot(&fresh));
            assert_eq!(status(&s.dir(b)), "");
        }
    }

    #[test]
    fn a_tree_is_not_taken_over_without_changes_from_it_that_it_can_apply() {
        let s = Setup::new();
        let (a, b) = (
            commit(&s.git.repo, &before()),
            commit(&s.git.repo, &after()),
        );
        let mut with_module = after();
        with_module.push((
            "vendor/lib",
            GITLINK,
            "1111111111111111111111111111111111111111",
        ));
        let c = commit(&s.git.repo, &with_module);
        let other = commit(&s.git.repo, &[("x", FILE, "x")]);
        s.fresh(a, &a.to_string(), None);
        let everything = ChangedPaths {
            from: a,
            paths: vec![PathBuf::new()],
        };
        let not_from_it = s.git.changed_paths(other, b).unwrap();
        let outside = ChangedPaths {
            from: a,
            paths: vec![PathBuf::from("../x")],
        };
        let fresh = snapshot(&s.fresh(b, "fresh", None));
        for changes in [everything, not_from_it, outside] {
            s.made_from(a, b, None, &changes);
            assert!(s.dir(a).is_dir(), "{changes:?}: shared, not taken");
            assert_eq!(snapshot(&s.dir(b)), fresh, "{changes:?}");
            s.git.forget_worktree(&b.to_string()).unwrap();
            fs::remove_dir_all(s.dir(b)).unwrap();
        }
        // A tree with a submodule: not taken either.
        let changes = s.git.changed_paths(a, c).unwrap();
        s.made_from(a, c, None, &changes);
        assert!(s.dir(a).is_dir());
        assert!(s.dir(c).join("vendor/lib").is_dir());
    }
}
