//! Sharing the unchanged files of the previous worktree with a new one.
//!
//! An update usually changes a few files of many. Checking every file out
//! again writes the whole tree to disk (a second of system time for 5,000
//! small files on a slow disk); a hard link to the previous worktree's copy
//! costs a directory entry, and readers keep that file's pages in the cache.
//!
//! Sharing an inode is safe because no file of a worktree is ever written
//! in place: the checkout (ours or libgit2's) writes only the paths left
//! absent here, as new files, and worktrees are otherwise only read,
//! chmod-ed (the same mode in both) and removed. A file is shared only
//! when the previous worktree's index vouches for it:
//! - same path, mode and blob in both commits (libgit2's `read_tree` keeps an
//!   entry's stat data only then);
//! - the file still has the inode, size and modification time recorded when
//!   it was checked out, so an edit in place (a hook appending to a file)
//!   is not passed on;
//! - it was last modified before that index was written, or else (a change
//!   in the same clock tick would not show in the timestamp: git's "racily
//!   clean" entries) its content hashes to the blob;
//! - it is ours: the kernel's `protected_hardlinks` refuses to link another
//!   user's file (a root taken over by another UID), and its owner would be
//!   wrong in our tree.
//!
//! A tree a pre-publish hook will work in gets no base at all (`sync.rs`):
//! an edit in place there would reach the published tree before the swap.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::super::tree_path::make_dirs_within;
use super::super::{Cancel, ChangedPaths, GitError, GitRepo, Hash};
use super::{checked, Started, SKIP_WORKTREE};
use crate::parallel::in_chunks;

/// A complete worktree of ours at `hash`, made with the same recipe, whose
/// files a new worktree may share: its directory, and the name its admin
/// directory has in this repository (the hash for a top-level worktree;
/// a submodule's is registered under its top-level worktree's name).
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    pub dir: &'a Path,
    pub admin: &'a str,
    pub hash: Hash,
    /// Set when the base is the caller's to take (see `advance.rs`): what
    /// changed from it to the new commit.
    pub yours: Option<&'a ChangedPaths>,
}

/// Mode of a gitlink (a submodule's commit) in an index entry.
const GITLINK: u32 = 0o160000;

impl GitRepo {
    /// Give the new worktree `name` at `path` (its admin files written) an
    /// index for `commit`, and hard-link into it every file of `base` that
    /// is unchanged and vouched for (of those at `only`, when given: the
    /// paths sparse patterns select). Returns the paths left to check out
    /// and the new index (to write once they are), or `None` (nothing
    /// done) when sharing does not pay: `base` has no
    /// usable index, or most files changed. `cancel` stops it between two
    /// files (a stat, then a link, per file adds up for a large tree).
    pub(super) fn share_unchanged(
        &self,
        commit: &git2::Commit<'_>,
        path: &Path,
        name: &str,
        base: Base<'_>,
        only: Option<&[Vec<u8>]>,
        cancel: &Cancel,
    ) -> Result<Option<Started>, GitError> {
        let check = |n: usize| checked(n, cancel);
        let only: Option<HashSet<&[u8]>> = only.map(|o| o.iter().map(Vec::as_slice).collect());
        let old_index = self.admin_dir(base.admin).join("index");
        let Ok(index_written) = fs::metadata(&old_index).and_then(|m| m.modified()) else {
            return Ok(None);
        };
        // The new directory was made by us just now: its owner is our UID.
        let uid = fs::metadata(path)
            .map_err(|e| GitError::io("stat", path, e))?
            .uid();
        let new_index = self.admin_dir(name).join("index");
        let Some(index) = index_for(&old_index, &new_index, commit) else {
            return Ok(None);
        };

        let mut entries = Vec::new();
        for (n, entry) in index.iter().enumerate() {
            check(n)?;
            if only
                .as_ref()
                .is_some_and(|o| !o.contains(entry.path.as_slice()))
            {
                continue;
            }
            entries.push(entry);
        }
        let gitlinks: Vec<PathBuf> = entries
            .iter()
            .filter(|e| e.mode == GITLINK)
            .map(|e| PathBuf::from(OsStr::from_bytes(&e.path)))
            .collect();
        entries.retain(|e| e.mode != GITLINK);
        // A stat per file, then a link per file: on two threads or more
        // for a large tree, where the system calls are the whole cost.
        let vouched = in_chunks(&entries, |chunk| -> Result<Vec<bool>, GitError> {
            let mut out = Vec::with_capacity(chunk.len());
            for (n, e) in chunk.iter().enumerate() {
                check(n)?;
                let file = base.dir.join(OsStr::from_bytes(&e.path));
                out.push(vouched_for(e, &file, index_written, uid));
            }
            Ok(out)
        })?;
        let (mut share, mut write) = (Vec::new(), Vec::new());
        for (entry, ok) in entries.into_iter().zip(vouched) {
            if ok {
                share.push(PathBuf::from(OsStr::from_bytes(&entry.path)));
            } else {
                write.push(entry.path);
            }
        }
        if share.len() < write.len() {
            let _ = fs::remove_file(&new_index);
            return Ok(None);
        }

        let mut made = HashSet::new();
        let mut make_dir = |dir: &Path| -> Result<(), GitError> {
            if dir.as_os_str().is_empty() || !made.insert(dir.to_path_buf()) {
                return Ok(());
            }
            make_dirs_within(path, dir)
        };
        for rel in &share {
            if let Some(parent) = rel.parent() {
                make_dir(parent)?;
            }
        }
        let not_linked = hard_link_all(&share, base.dir, path, cancel)?;
        let linked = share.len() - not_linked.len();
        write.extend(not_linked);
        // libgit2 makes a submodule's directory as it checks out its
        // superproject; the submodule itself is checked out afterwards.
        for dir in gitlinks {
            make_dir(&dir)?;
        }
        tracing::debug!(
            shared = linked,
            to_check_out = write.len(),
            "sharing the unchanged files of the previous worktree"
        );
        Ok(Some(Started {
            paths: write,
            index,
        }))
    }
}

impl GitRepo {
    /// Whether worktree `name` at `path` holds exactly what its index
    /// recorded at checkout: every file vouched for as for sharing (files
    /// sparse patterns leave out aside), nothing else, and no submodule
    /// (their trees are not looked into). Such a tree can be published
    /// again as it is, instead of checked out anew.
    pub fn worktree_unchanged(&self, path: &Path, name: &str) -> bool {
        let index_path = self.admin_dir(name).join("index");
        let Ok(written) = fs::metadata(&index_path).and_then(|m| m.modified()) else {
            return false;
        };
        let Ok(index) = git2::Index::open(&index_path) else {
            return false;
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        let mut files = 0usize;
        let vouched = index.iter().all(|e| {
            if e.flags_extended & SKIP_WORKTREE != 0 {
                return true;
            }
            files += 1;
            e.mode != GITLINK
                && vouched_for(&e, &path.join(OsStr::from_bytes(&e.path)), written, uid)
        });
        // Every file of the index is there: no more files means no others.
        vouched && count_files(path, true) == Some(files)
    }
}

/// How many files (not directories) are under `dir`, its top-level `.git`
/// file left out when `top`; `None` if a directory cannot be read.
fn count_files(dir: &Path, top: bool) -> Option<usize> {
    let mut n = 0;
    for e in fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        if e.file_type().ok()?.is_dir() {
            n += count_files(&e.path(), false)?;
        } else if !(top && e.file_name() == ".git") {
            n += 1;
        }
    }
    Some(n)
}

/// A copy of the base's index at `new`, read onto `commit`'s tree (stat
/// data kept for the entries that did not change). `None`, and no copy,
/// when the base's index cannot be used (damaged, say): every file is then
/// checked out, as without a base.
fn index_for(old: &Path, new: &Path, commit: &git2::Commit<'_>) -> Option<git2::Index> {
    let made = fs::copy(old, new).map_err(|e| e.to_string()).and_then(|_| {
        let mut index = git2::Index::open(new).map_err(|e| e.message().to_string())?;
        let tree = commit.tree().map_err(|e| e.message().to_string())?;
        index
            .read_tree(&tree)
            .map_err(|e| e.message().to_string())?;
        Ok(index)
    });
    match made {
        Ok(index) => Some(index),
        Err(error) => {
            tracing::warn!(index = %old.display(), %error, "the previous worktree's index cannot be read: checking out every file");
            let _ = fs::remove_file(new);
            None
        }
    }
}

/// Whether `file` (in the previous worktree) is still what `entry` (read
/// from its index, then matched against the new commit) says was checked
/// out there, as the module's comment lists.
fn vouched_for(entry: &git2::IndexEntry, file: &Path, index_written: SystemTime, uid: u32) -> bool {
    let Ok(meta) = fs::symlink_metadata(file) else {
        return false;
    };
    let kind_matches = if entry.mode == u32::from(git2::FileMode::Link) {
        meta.file_type().is_symlink()
    } else {
        meta.file_type().is_file()
    };
    let as_recorded = kind_matches
        && meta.uid() == uid
        // The index keeps 32 bits of both.
        && meta.ino() as u32 == entry.ino
        && meta.len() as u32 == entry.file_size
        && meta.mtime() == i64::from(entry.mtime.seconds())
        && meta.mtime_nsec() == i64::from(entry.mtime.nanoseconds());
    // Modified in the clock tick the index was written (a checkout of a few
    // files fits in one): an edit just after would not show in the
    // timestamp, so the content must be the blob, as git checks then.
    as_recorded
        && (meta.modified().is_ok_and(|m| m < index_written) || holds_blob(file, &meta, entry.id))
}

/// Whether `file` (a symlink: its target) hashes to `id` as a blob.
fn holds_blob(file: &Path, meta: &fs::Metadata, id: git2::Oid) -> bool {
    let hashed = if meta.file_type().is_symlink() {
        fs::read_link(file).and_then(|target| {
            let bytes = target.into_os_string().into_encoded_bytes();
            git2::Oid::hash_object(git2::ObjectType::Blob, &bytes).map_err(std::io::Error::other)
        })
    } else {
        git2::Oid::hash_file(git2::ObjectType::Blob, file).map_err(std::io::Error::other)
    };
    hashed.is_ok_and(|h| h == id)
}

/// Hard-link each of `files` (relative paths, their directories made)
/// from the tree at `from` into the tree at `to`. Returns those left to
/// write: an inode at the file system's limit of links, or every one from
/// the first failure on (a file system without hard links).
fn hard_link_all(
    files: &[PathBuf],
    from: &Path,
    to: &Path,
    cancel: &Cancel,
) -> Result<Vec<Vec<u8>>, GitError> {
    in_chunks(files, |chunk| -> Result<Vec<Vec<u8>>, GitError> {
        let mut left = Vec::new();
        let mut linking = true;
        for (n, rel) in chunk.iter().enumerate() {
            checked(n, cancel)?;
            if linking {
                match fs::hard_link(from.join(rel), to.join(rel)) {
                    Ok(()) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "no hard links here: checking out every file");
                        linking = false;
                    }
                }
            }
            left.push(rel.clone().into_os_string().into_encoded_bytes());
        }
        Ok(left)
    })
}

#[cfg(test)]
mod tests {
    use super::super::CANCEL_EVERY;
    use super::*;
    use std::time::Duration;

    /// An index entry as a checkout of `file` records it.
    fn entry_of(file: &Path) -> git2::IndexEntry {
        let meta = fs::symlink_metadata(file).unwrap();
        super::super::index_entry(b"f", git2::Oid::ZERO_SHA1, 0o100644, &meta)
    }

    #[test]
    fn only_a_file_as_its_index_recorded_it_is_vouched_for() {
        let t = tempfile::TempDir::new().unwrap();
        let file = t.path().join("f");
        fs::write(&file, "content").unwrap();
        let meta = fs::metadata(&file).unwrap();
        let (modified, uid) = (meta.modified().unwrap(), meta.uid());
        let entry = entry_of(&file);
        let later = modified + Duration::from_secs(1);
        assert!(vouched_for(&entry, &file, later, uid));
        // Modified in the tick the index was written: it could have changed
        // unseen, so only its content vouches for it.
        assert!(!vouched_for(&entry, &file, modified, uid));
        let id = git2::Oid::hash_object(git2::ObjectType::Blob, b"content").unwrap();
        let with_id = git2::IndexEntry {
            id,
            ..entry_of(&file)
        };
        assert!(vouched_for(&with_id, &file, modified, uid));
        assert!(!vouched_for(&entry, &file, later, uid + 1), "another owner");
        let symlink = git2::IndexEntry {
            mode: 0o120000,
            ..entry_of(&file)
        };
        assert!(!vouched_for(&symlink, &file, later, uid), "another kind");
        assert!(!vouched_for(&entry, &t.path().join("gone"), later, uid));

        // Rewritten with the same size, or replaced by another inode.
        fs::write(&file, "CONTENT").unwrap();
        let same_size = fs::metadata(&file).unwrap().modified().unwrap();
        if same_size != modified {
            assert!(!vouched_for(&entry, &file, later, uid));
        }
        let entry = entry_of(&file);
        fs::write(t.path().join("other"), "CONTENT").unwrap();
        fs::rename(t.path().join("other"), &file).unwrap();
        let later = fs::metadata(&file).unwrap().modified().unwrap() + Duration::from_secs(1);
        assert_ne!(fs::metadata(&file).unwrap().ino() as u32, entry.ino);
        assert!(!vouched_for(&entry, &file, later, uid));
    }

    /// A commit of `files` files `f<i>` holding `<i>`, one of them (`f0`)
    /// holding `first` instead.
    fn commit_of(repo: &git2::Repository, files: usize, first: &str) -> Hash {
        let mut tree = repo.treebuilder(None).unwrap();
        for i in 0..files {
            let text = if i == 0 {
                first.to_string()
            } else {
                i.to_string()
            };
            let blob = repo.blob(text.as_bytes()).unwrap();
            tree.insert(format!("f{i}"), blob, 0o100644).unwrap();
        }
        let tree = repo.find_tree(tree.write().unwrap()).unwrap();
        let who = git2::Signature::now("t", "t@t").unwrap();
        repo.commit(None, &who, &who, "c", &tree, &[]).unwrap()
    }

    #[test]
    fn a_cancelled_pass_stops_sharing_between_files() {
        // Few files are shared on this thread, many on several.
        for files in [100, crate::parallel::PARALLEL_FROM + 100] {
            cancelled_then_shared(files);
        }
    }

    fn cancelled_then_shared(files: usize) {
        let t = tempfile::TempDir::new().unwrap();
        let git = GitRepo::init(&t.path().join("root")).unwrap();
        let (old, new) = (
            commit_of(&git.repo, files, "a"),
            commit_of(&git.repo, files, "b"),
        );
        let (old_dir, new_dir) = (t.path().join("old"), t.path().join("new"));
        let old_name = old.to_string();
        git.create_worktree(old, &old_dir, &old_name, None, None, &Cancel::new())
            .unwrap();
        let base = Base {
            dir: &old_dir,
            admin: &old_name,
            hash: old,
            yours: None,
        };
        let cancel = Cancel::new();
        cancel.cancel();
        let made = git.create_worktree(new, &new_dir, "new", None, Some(base), &cancel);
        assert!(matches!(made, Err(GitError::Cancelled)), "{made:?}");
        let shared = fs::read_dir(&new_dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != ".git")
            .count();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        assert!(
            shared < CANCEL_EVERY * threads,
            "{shared} files shared after cancel"
        );

        // Not cancelled, all but the changed file are shared.
        fs::remove_dir_all(&new_dir).unwrap();
        git.create_worktree(new, &new_dir, "new", None, Some(base), &Cancel::new())
            .unwrap();
        let links = |f: &str| fs::metadata(new_dir.join(f)).unwrap().nlink();
        assert_eq!((links("f0"), links("f1")), (1, 2));
        let shared = (1..files).filter(|i| links(&format!("f{i}")) == 2).count();
        assert_eq!(shared, files - 1);
        assert_eq!(fs::read_to_string(new_dir.join("f0")).unwrap(), "b");
    }
}
