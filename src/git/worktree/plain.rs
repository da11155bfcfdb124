//! Writing a commit's files ourselves, where no filter can change them.
//!
//! libgit2's checkout diffs the target tree against the new, empty
//! worktree, looks every path up again (`access`, `stat`) before writing
//! it, and keeps its plan in memory until done: 50,000 small files took
//! 0.8 s on tmpfs and about 0.6 KiB each. When what lands on disk is the
//! blob itself (no attribute or config that filters, see `worktree.rs`) and
//! every name in the tree is plainly safe (`tree_path.rs`), the tree is
//! walked (its directories made, its files listed, about 40 bytes each),
//! then written: per file one blob read, one `open`, `write` and `fstat`,
//! and the index entry that a checkout would leave. A large tree is written
//! on one thread per core.
//!
//! The index starts as the tree read whole (one sort), or as the index the
//! sharing of unchanged files left; each written file's entry is then
//! replaced by one carrying its stat data, so `git status` finds it clean
//! and the next update can share it.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::super::tree_path::{dirs_on_the_way, make_dirs_within};
use super::super::{Cancel, GitError};
use super::{index_entry, CANCEL_EVERY};
use crate::parallel::threads_for;

/// Tree entry modes (git's, as libgit2 reports them).
const TREE: u32 = 0o040000;
const SYMLINK: u32 = 0o120000;
const GITLINK: u32 = 0o160000;

/// Write into the worktree at `dir` the files of `tree` at `only` (every
/// file when `None`), read through `repo` (a handle on its object store and
/// config), and their entries into `index`. The tree's
/// names must all be plainly safe; `dir` holds nothing of the tree yet,
/// but for what the sharing of unchanged files put there (or the previous
/// worktree, advanced in place, left: see `advance.rs`). With `only`, only
/// the trees on the way to its paths are read.
pub(super) fn write_tree(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    dir: &Path,
    only: Option<&[Vec<u8>]>,
    index: &mut git2::Index,
    cancel: &Cancel,
) -> Result<usize, GitError> {
    if index.is_empty() {
        index
            .read_tree(tree)
            .map_err(|e| GitError::local("read tree into the index", e))?;
    }
    // With `only`, no directory off the way to its paths is walked.
    let on_the_way = only.map(dirs_on_the_way);
    let only: Option<HashSet<&[u8]>> = only.map(|o| o.iter().map(Vec::as_slice).collect());
    // libgit2 makes symlinks unless told the file system has none.
    let symlinks = repo
        .config()
        .and_then(|c| c.get_bool("core.symlinks"))
        .unwrap_or(true);
    // The walk: directories made, the files to write listed (their paths
    // in one buffer: a large tree's list stays small).
    let mut files = Files::default();
    // Trees still to walk: their path (ending in '/', empty at the top).
    let mut pending: Vec<(Vec<u8>, git2::Tree<'_>)> = vec![(Vec::new(), tree.clone())];
    while let Some((prefix, tree)) = pending.pop() {
        let mut dir_made = prefix.is_empty();
        for entry in tree.iter() {
            let mode = entry.filemode() as u32;
            if mode == TREE {
                let mut path = prefix.clone();
                path.extend_from_slice(entry.name_bytes());
                path.push(b'/');
                if on_the_way
                    .as_ref()
                    .is_some_and(|dirs| !dirs.contains(path.as_slice()))
                {
                    continue;
                }
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(|e| GitError::local(format!("read tree {}", entry.id()), e))?;
                pending.push((path, sub));
                continue;
            }
            let name = entry.name_bytes();
            if only
                .as_ref()
                .is_some_and(|o| !o.contains([&prefix[..], name].concat().as_slice()))
            {
                continue;
            }
            if !dir_made {
                let rel = Path::new(OsStr::from_bytes(&prefix[..prefix.len() - 1]));
                make_dirs_within(dir, rel)?;
                dir_made = true;
            }
            files.push(&prefix, name, entry.id(), mode);
        }
    }
    let files = &files;
    // The files: a blob read, an open, a write and an fstat each, system
    // calls above all; a large tree on one thread per core, each with its
    // own handle on the object store (libgit2's are not shared between
    // threads), their index entries added here as they come.
    let threads = threads_for(files.items.len());
    if threads < 2 {
        let writer = Writer {
            repo,
            top: dir,
            symlinks,
            files,
        };
        return writer.write_all(&files.items, &[cancel], |batch| add(index, batch).map(drop));
    }
    let store = repo.commondir().to_path_buf();
    // Set by the first writer that fails: the others stop too.
    let failed = Cancel::new();
    let (results, index_error) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<git2::IndexEntry>>(4 * threads);
        let workers: Vec<_> = files
            .items
            .chunks(files.items.len().div_ceil(threads))
            .map(|chunk| {
                let (tx, store, failed) = (tx.clone(), &store, &failed);
                s.spawn(move || {
                    let written = git2::Repository::open_bare(store)
                        .map_err(|e| GitError::local("open the object store", e))
                        .and_then(|repo| {
                            let writer = Writer {
                                repo: &repo,
                                top: dir,
                                symlinks,
                                files,
                            };
                            // The pass's flag, or another writer's failure.
                            writer.write_all(chunk, &[cancel, failed], |batch| {
                                // Not refused: the receiver drains until
                                // every writer is done.
                                tx.send(batch).map_err(|_| GitError::Cancelled)
                            })
                        });
                    if written.is_err() {
                        failed.cancel();
                    }
                    written
                })
            })
            .collect();
        drop(tx);
        let mut index_error = None;
        for batch in rx {
            if index_error.is_none() {
                if let Err(e) = add(index, batch) {
                    index_error = Some(e);
                    failed.cancel();
                }
            }
        }
        let results: Vec<Result<usize, GitError>> = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        (results, index_error)
    });
    outcome(results, index_error)
}

/// What the writers did, as one result: how many files they wrote, or the
/// error that stopped the others, not the "cancelled" they stopped with
/// ("cancelled" only if that is all there is: the pass was).
fn outcome(
    results: Vec<Result<usize, GitError>>,
    index_error: Option<GitError>,
) -> Result<usize, GitError> {
    let mut cancelled = false;
    let mut written = 0;
    for result in results {
        match result {
            Ok(n) => written += n,
            Err(GitError::Cancelled) => cancelled = true,
            Err(e) => return Err(e),
        }
    }
    match (index_error, cancelled) {
        (Some(e), _) => Err(e),
        (None, true) => Err(GitError::Cancelled),
        (None, false) => Ok(written),
    }
}

/// Add `batch` to `index`; how many.
fn add(index: &mut git2::Index, batch: Vec<git2::IndexEntry>) -> Result<usize, GitError> {
    for entry in &batch {
        index
            .add(entry)
            .map_err(|e| GitError::local("index a written file", e))?;
    }
    Ok(batch.len())
}

/// The files of a tree to write: each a path (a range of `paths`), a blob
/// and a tree mode.
#[derive(Default)]
struct Files {
    paths: Vec<u8>,
    items: Vec<(std::ops::Range<usize>, git2::Oid, u32)>,
}

impl Files {
    fn push(&mut self, prefix: &[u8], name: &[u8], id: git2::Oid, mode: u32) {
        let start = self.paths.len();
        self.paths.extend_from_slice(prefix);
        self.paths.extend_from_slice(name);
        self.items.push((start..self.paths.len(), id, mode));
    }
}

struct Writer<'a, 'r> {
    repo: &'r git2::Repository,
    top: &'a Path,
    symlinks: bool,
    files: &'a Files,
}

impl Writer<'_, '_> {
    /// Write `items` of the files, handing their index entries to `sink`
    /// in batches; how many were written. Any of `stop` set ends it between
    /// two files (looked at every [`CANCEL_EVERY`]).
    fn write_all(
        &self,
        items: &[(std::ops::Range<usize>, git2::Oid, u32)],
        stop: &[&Cancel],
        mut sink: impl FnMut(Vec<git2::IndexEntry>) -> Result<(), GitError>,
    ) -> Result<usize, GitError> {
        let mut batch = Vec::with_capacity(CANCEL_EVERY);
        for (n, (range, id, mode)) in items.iter().enumerate() {
            if n % CANCEL_EVERY == 0 {
                if stop.iter().any(|c| c.is_cancelled()) {
                    return Err(GitError::Cancelled);
                }
                if !batch.is_empty() {
                    sink(std::mem::take(&mut batch))?;
                }
            }
            batch.push(self.write(&self.files.paths[range.clone()], *id, *mode)?);
        }
        if !batch.is_empty() {
            sink(batch)?;
        }
        Ok(items.len())
    }

    /// Write the entry at `path` (its directory made); its index entry.
    fn write(&self, path: &[u8], id: git2::Oid, mode: u32) -> Result<git2::IndexEntry, GitError> {
        let rel = Path::new(OsStr::from_bytes(path));
        let dest = self.top.join(rel);
        let (meta, mode) = match mode {
            GITLINK => {
                // The submodule is checked out into it afterwards.
                make_dirs_within(self.top, rel)?;
                (fs::symlink_metadata(&dest), GITLINK)
            }
            SYMLINK if self.symlinks => {
                let target = self.blob(id, &dest)?;
                let made = std::os::unix::fs::symlink(OsStr::from_bytes(target.content()), &dest);
                (made.and_then(|()| fs::symlink_metadata(&dest)), SYMLINK)
            }
            // Without symlinks, a file holding the link's target (as git).
            SYMLINK => (self.write_file(id, &dest, 0o644)?, SYMLINK),
            // Regular files: executable or not, as git reads a mode.
            m if m & 0o170000 == 0o100000 => {
                let mode = if m & 0o100 != 0 { 0o755 } else { 0o644 };
                (self.write_file(id, &dest, mode)?, 0o100000 | mode)
            }
            other => {
                return Err(GitError::Local {
                    op: format!("write {}", dest.display()),
                    message: format!("unknown tree entry mode {other:o}"),
                })
            }
        };
        let meta = meta.map_err(|e| GitError::io("write", &dest, e))?;
        Ok(index_entry(path, id, mode, &meta))
    }

    fn blob(&self, id: git2::Oid, dest: &Path) -> Result<git2::Blob<'_>, GitError> {
        self.repo
            .find_blob(id)
            .map_err(|e| GitError::local(format!("read blob {id} for {}", dest.display()), e))
    }

    /// Write blob `id` as a new file `dest`, created `mode` less the umask
    /// (as libgit2's checkout); its metadata once written.
    fn write_file(
        &self,
        id: git2::Oid,
        dest: &Path,
        mode: u32,
    ) -> Result<io::Result<fs::Metadata>, GitError> {
        let blob = self.blob(id, dest)?;
        Ok(OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(dest)
            .and_then(|mut file| {
                file.write_all(blob.content())?;
                file.metadata()
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_util::{git, raw_tree};

    /// A repository with `n` files in a few directories, committed; its
    /// tree, and a directory to write it into.
    fn tree_of(t: &Path, n: usize) -> (git2::Repository, git2::Oid, std::path::PathBuf) {
        let src = t.join("src");
        for i in 0..n {
            let dir = src.join(format!("d{}", i % 7));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("f{i}")), i.to_string()).unwrap();
        }
        git(&src, &["init", "-q"]);
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-qm", "c"]);
        let repo = git2::Repository::open(&src).unwrap();
        let tree = repo.head().unwrap().peel_to_tree().unwrap().id();
        let out = t.join("out");
        fs::create_dir(&out).unwrap();
        (repo, tree, out)
    }

    #[test]
    fn every_file_is_written_and_indexed() {
        let t = tempfile::tempdir().unwrap();
        // Few files: written on this thread.
        let (repo, tree, out) = tree_of(t.path(), 150);
        let tree = repo.find_tree(tree).unwrap();
        let mut index = git2::Index::new().unwrap();
        let n = write_tree(&repo, &tree, &out, None, &mut index, &Cancel::new()).unwrap();
        assert_eq!(n, 150);
        assert_eq!(fs::read_to_string(out.join("d3/f10")).unwrap(), "10");
        let entry = index.get_path(Path::new("d3/f10"), 0).unwrap();
        assert_eq!(entry.file_size, 2, "stat data recorded");
        assert_eq!(index.len(), 150);
    }

    #[test]
    fn with_only_some_paths_only_the_trees_on_their_way_are_read() {
        let t = tempfile::tempdir().unwrap();
        let (repo, tree, out) = tree_of(t.path(), 150);
        // A directory whose tree the store lacks: read, it fails the write.
        let tree = repo.find_tree(tree).unwrap();
        // (An index already made: an empty one is read from the whole tree.)
        let mut index = git2::Index::new().unwrap();
        index.read_tree(&tree).unwrap();
        let mut builder = repo.treebuilder(Some(&tree)).unwrap();
        let missing = git2::Oid::from_str("1111111111111111111111111111111111111111").unwrap();
        let holder = raw_tree(&repo, &[("40000", "gone", missing)]);
        builder.insert("lost", holder, 0o040000).unwrap();
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();

        let only = [b"d3/f10".to_vec(), b"d5/f12".to_vec()];
        let n = write_tree(&repo, &tree, &out, Some(&only), &mut index, &Cancel::new()).unwrap();
        assert_eq!((n, walk_count(&out)), (2, 2));
        assert_eq!(fs::read_to_string(out.join("d5/f12")).unwrap(), "12");
        let all = write_tree(&repo, &tree, &out, None, &mut index, &Cancel::new());
        assert!(all.unwrap_err().to_string().contains("1111111"));
    }

    #[test]
    fn a_cancelled_pass_stops_between_files() {
        let t = tempfile::tempdir().unwrap();
        let (repo, tree, out) = tree_of(t.path(), 300);
        let tree = repo.find_tree(tree).unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        let mut index = git2::Index::new().unwrap();
        let e = write_tree(&repo, &tree, &out, None, &mut index, &cancel).unwrap_err();
        assert!(matches!(e, GitError::Cancelled), "{e}");
        let written = walk_count(&out);
        assert!(
            written < CANCEL_EVERY,
            "{written} files written after cancel"
        );
    }

    #[test]
    fn a_large_tree_is_written_alike_on_several_threads() {
        let t = tempfile::tempdir().unwrap();
        let files = crate::parallel::PARALLEL_FROM + 100;
        let (repo, tree, out) = tree_of(t.path(), files);
        let tree = repo.find_tree(tree).unwrap();
        let mut index = git2::Index::new().unwrap();
        let n = write_tree(&repo, &tree, &out, None, &mut index, &Cancel::new()).unwrap();
        assert_eq!((n, index.len(), walk_count(&out)), (files, files, files));
        for i in [0, 1, files / 2, files - 1] {
            let path = format!("d{}/f{i}", i % 7);
            assert_eq!(fs::read_to_string(out.join(&path)).unwrap(), i.to_string());
            let meta = fs::metadata(out.join(&path)).unwrap();
            let entry = index.get_path(Path::new(&path), 0).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!(
                (entry.ino, entry.file_size),
                (meta.ino() as u32, meta.len() as u32)
            );
        }
    }

    #[test]
    fn a_writer_that_fails_stops_the_others_and_its_error_is_the_one_told() {
        let t = tempfile::tempdir().unwrap();
        let files = crate::parallel::PARALLEL_FROM + 100;
        let (repo, tree, out) = tree_of(t.path(), files);
        let tree = repo.find_tree(tree).unwrap();
        // A file in the way of one of the tree's: it is not overwritten.
        let i = files / 3;
        let in_the_way = format!("d{}/f{i}", i % 7);
        fs::create_dir_all(out.join(format!("d{}", i % 7))).unwrap();
        fs::write(out.join(&in_the_way), "mine").unwrap();
        let mut index = git2::Index::new().unwrap();
        let e = write_tree(&repo, &tree, &out, None, &mut index, &Cancel::new()).unwrap_err();
        assert!(!matches!(e, GitError::Cancelled), "{e}");
        assert!(e.to_string().contains(&in_the_way), "{e}");
        assert_eq!(fs::read_to_string(out.join(&in_the_way)).unwrap(), "mine");
    }

    #[test]
    fn the_writers_outcome_is_the_error_that_stopped_them() {
        let full = || GitError::io("write", Path::new("f"), io::Error::other("disk full"));
        let told = |r: Result<usize, GitError>| match r {
            Ok(n) => n.to_string(),
            Err(GitError::Cancelled) => "cancelled".into(),
            Err(e) => e.to_string(),
        };
        assert_eq!(told(outcome(vec![Ok(2), Ok(3)], None)), "5");
        // The one stopped by another's failure says "cancelled": not told.
        let stopped = vec![Err(GitError::Cancelled), Err(full())];
        assert_eq!(told(outcome(stopped, None)), "write f: disk full");
        let index = GitError::local("index a written file", git2::Error::from_str("bad"));
        let stopped = vec![Ok(1), Err(GitError::Cancelled)];
        assert!(told(outcome(stopped, Some(index))).starts_with("index a written file"));
        let cancelled = vec![Err(GitError::Cancelled), Ok(1)];
        assert_eq!(told(outcome(cancelled, None)), "cancelled");
    }

    fn walk_count(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { walk_count(&p) } else { 1 })
            .sum()
    }
}
