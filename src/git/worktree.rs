//! Materialising a commit as a linked worktree of our repository.
//!
//! A linked worktree is `<wt>/.git` (a file naming the admin directory) plus
//! `<gitdir>/worktrees/<name>/` holding `gitdir`, `commondir` and `HEAD`. We
//! write those few files ourselves, detached at the commit, then the files:
//! ourselves where no filter can change them (`attributes.rs` says when,
//! `plain.rs` writes them), through libgit2's checkout otherwise. That
//! keeps full control of what is checked out (sparse patterns, shared and
//! streamed files) while a git binary, where one exists, sees a normal
//! worktree (`git -C <wt> log` works).

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;

use super::big_files::{BigFile, BigFiles};
use super::tree_path::survey;
use super::{Cancel, GitError, GitRepo, Hash};
use crate::paths::relative_path;
use crate::sparse::SparsePatterns;

mod advance;
mod attributes;
mod plain;
mod unchanged;
pub(crate) use attributes::find_global_files;
use attributes::{asks_for_encoding, may_convert, may_filter, repository_filters};
pub(super) use attributes::{attribute_files, mentions_lfs};
pub use unchanged::Base;

/// The index entry of the file at `path` in a tree (blob `id`, `mode`),
/// as it was found on disk (`meta`) once written.
pub(super) fn index_entry(
    path: &[u8],
    id: git2::Oid,
    mode: u32,
    meta: &fs::Metadata,
) -> git2::IndexEntry {
    use std::os::unix::fs::MetadataExt;
    // The index keeps 32 bits of each (git and libgit2 truncate alike).
    let time = |s: i64, ns: i64| git2::IndexTime::new(s as i32, ns as u32);
    git2::IndexEntry {
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        dev: meta.dev() as u32,
        ino: meta.ino() as u32,
        mode,
        uid: meta.uid(),
        gid: meta.gid(),
        file_size: meta.len() as u32,
        id,
        flags: path.len().min(0xfff) as u16,
        flags_extended: 0,
        path: path.to_vec(),
    }
}

/// A new worktree started from the previous one (its unchanged files
/// shared, or it advanced in place): what is left to write, and the index
/// made for the new tree (to write once they are, adding theirs).
struct Started {
    paths: Vec<Vec<u8>>,
    index: git2::Index,
}

/// `GIT_INDEX_ENTRY_SKIP_WORKTREE` in an index entry's `flags_extended`
/// (libgit2's index.h): a file sparse patterns leave out.
const SKIP_WORKTREE: u16 = 1 << 14;

/// In a worktree's admin directory: how its tree was made (git ignores it).
const RECIPE_FILE: &str = "git-sync-recipe";

/// How many files are written (or shared) between two looks at the cancel
/// flag: a large tree on a slow disk takes long, and SIGTERM and
/// `--sync-timeout` stop it.
const CANCEL_EVERY: usize = 64;

/// Whether to go on at the `n`th item of a long walk: a cancellation is
/// looked at every [`CANCEL_EVERY`] items.
fn checked(n: usize, cancel: &Cancel) -> Result<(), GitError> {
    if n % CANCEL_EVERY == 0 && cancel.is_cancelled() {
        Err(GitError::Cancelled)
    } else {
        Ok(())
    }
}

impl GitRepo {
    fn admin_dir(&self, name: &str) -> PathBuf {
        self.gitdir.join("worktrees").join(name)
    }

    /// Check `hash` out into a new worktree at `path` (which must not exist),
    /// registered under `name`; with `sparse`, only the paths it selects.
    /// With `base`, a worktree made the same way, files unchanged since it
    /// are shared with it rather than written again (see `unchanged.rs`),
    /// or when it is ours to take, it becomes the new worktree (see
    /// `advance.rs`).
    /// `cancel` stops the sharing, and a tree written without libgit2,
    /// between two files.
    pub fn create_worktree(
        &self,
        hash: Hash,
        path: &Path,
        name: &str,
        sparse: Option<(&SparsePatterns, &str)>,
        base: Option<Base<'_>>,
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        let tree = self
            .repo
            .find_commit(hash)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::local(format!("read tree of {hash}"), e))?;
        let names = survey(&self.repo, &tree, &self.clean_trees.borrow());
        if let Some(twice) = names.named_twice {
            return Err(GitError::Local {
                op: format!("checkout {hash}"),
                message: format!(
                    "invalid path '{twice}': named twice in one directory (a hand-made \
                     tree; git fsck calls it duplicateEntries)"
                ),
            });
        }
        let admin = self.register_worktree(hash, path, name)?;
        let wt = git2::Repository::open(path)
            .map_err(|e| GitError::local(format!("open worktree {}", path.display()), e))?;
        let commit = wt
            .find_commit(hash)
            .map_err(|e| GitError::local(format!("find commit {hash}"), e))?;
        let mut checkout = CheckoutBuilder::new();
        checkout.force().remove_untracked(true);
        // Loading the filter list costs libgit2 several path resolutions per
        // file (a third of a 5,000-file checkout); skip it when no filter
        // can apply, as git's output is then the blob itself (see
        // attributes.rs).
        let clean = &names.clean;
        let (repo_filters, attributes) = (repository_filters(&wt), attribute_files(&commit, clean));
        let filtered = repo_filters
            || attributes
                .as_ref()
                .map_or(true, |files| may_convert(&wt, files));
        if !filtered {
            checkout.disable_filters(true);
        }
        if attributes
            .as_ref()
            .is_some_and(|files| asks_for_encoding(&wt, files))
        {
            say_encoding_not_applied(hash);
        }
        // With sparse patterns: the paths they select, and the files they
        // leave out (marked skip-worktree in the index).
        let (selected, skipped) = match sparse {
            None => (None, Vec::new()),
            Some(sparse) => {
                let (selected, skipped) = sparse_selection(&admin, &commit, sparse)?;
                (Some(selected), skipped)
            }
        };
        // A file is shared only if it would be checked out the same now:
        // the same blob at the same path (see unchanged.rs), under the same
        // attributes, and none from the repository (not in the recipe).
        let base = base.filter(|b| {
            !repo_filters
                && attributes.is_some()
                && wt
                    .find_commit(b.hash)
                    .is_ok_and(|c| attribute_files(&c, clean) == attributes)
        });
        // A base that is ours to take is advanced in place, if it can be.
        let advanced = match base.and_then(|b| b.yours.filter(|_| !names.gitlinks).map(|c| (b, c)))
        {
            Some(taken) => self.advance(&commit, path, name, taken, selected.as_deref(), cancel)?,
            None => None,
        };
        let unshared = match (advanced, base) {
            (Some(made), _) => Some(made),
            (None, Some(b)) => {
                self.share_unchanged(&commit, path, name, b, selected.as_deref(), cancel)?
            }
            (None, None) => None,
        };
        // What is left to write: these paths, or every one (None); and the
        // index made for them, if any (else the worktree's own).
        let (to_write, made_index) = match unshared {
            Some(Started { paths, index }) => (Some(paths), Some(index)),
            None => (selected, None),
        };
        // Large files are streamed from their pack instead (big_files.rs).
        let big = (!repo_filters && attributes.is_some())
            .then(|| BigFiles::find(&self.gitdir.join("objects/pack")))
            .filter(|b| !b.is_empty());
        // (The tree as our repository reads it, not the worktree's handle:
        // the survey just cached its subtrees there, and a large tree's
        // take megabytes.)
        let streamed = big
            .as_ref()
            .map(|b| b.in_tree(&tree, to_write.as_deref()))
            .unwrap_or_default();
        let to_write = without(to_write, &streamed, &commit)?;
        let files = Files {
            to_write,
            made_index,
        };
        if !filtered && names.all_plain {
            self.write_plain(&wt, &tree, path, files, cancel)
                .map_err(|e| e.within(format!("checkout {hash}")))?;
        } else {
            check_out_files(&wt, &commit, checkout, files)?;
        }
        if let Some(big) = &big {
            write_large_files(&wt, &commit, (big, streamed), filtered, path, cancel)?;
        }
        if !skipped.is_empty() {
            mark_skip_worktree(&wt, &skipped)?;
        }
        wt.set_head_detached(hash)
            .map_err(|e| GitError::local(format!("set HEAD of worktree to {hash}"), e))?;
        *self.clean_trees.borrow_mut() = names.clean;
        Ok(())
    }

    /// Write `files` into `path` as the blobs they are, without libgit2's
    /// checkout (see plain.rs): no filter applies.
    fn write_plain(
        &self,
        wt: &git2::Repository,
        tree: &git2::Tree<'_>,
        path: &Path,
        files: Files,
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        let mut index = files
            .made_index
            .map_or_else(|| wt.index(), Ok)
            .map_err(|e| GitError::local("open index", e))?;
        let only = files.to_write.as_deref();
        let written = plain::write_tree(&self.repo, tree, path, only, &mut index, cancel)?;
        index
            .write()
            .map_err(|e| GitError::local("write index", e))?;
        tracing::debug!(files = written, "written without libgit2's checkout");
        Ok(())
    }

    /// Register a new worktree `name` at `path`, detached at `hash`: its
    /// admin directory (made afresh) and `.git` file, as `git worktree add`
    /// writes them. Returns the admin directory.
    fn register_worktree(&self, hash: Hash, path: &Path, name: &str) -> Result<PathBuf, GitError> {
        let admin = self.admin_dir(name);
        if admin.exists() {
            fs::remove_dir_all(&admin).map_err(|e| GitError::io("remove", &admin, e))?;
        }
        fs::create_dir_all(&admin).map_err(|e| GitError::io("create", &admin, e))?;
        fs::create_dir_all(path).map_err(|e| GitError::io("create", path, e))?;
        let write = |p: PathBuf, text: String| {
            fs::write(&p, text).map_err(|e| GitError::io("write", &p, e))
        };
        write(
            admin.join("gitdir"),
            format!("{}\n", path.join(".git").display()),
        )?;
        write(admin.join("commondir"), "../..\n".to_string())?;
        write(admin.join("HEAD"), format!("{hash}\n"))?;
        write(path.join(".git"), gitfile(path, &admin))?;
        Ok(admin)
    }

    /// Whether the worktree at `path` is a sound worktree of ours at `hash`
    /// (its `.git` file and admin directory as [`GitRepo::create_worktree`]
    /// writes them, read directly: opening it as a repository cost a third
    /// of an idle poll) with every top-level entry of the commit's tree on
    /// disk (gitlinks aside; with `whole` false, as for a sparse checkout,
    /// only the first part). Comparing every file would cost a stat per
    /// file per poll; the top level catches, for a few stats, a tree
    /// emptied behind our back (`rm -rf <link>/*`, a network volume that
    /// lost it), which readers would otherwise be served until the next
    /// commit.
    pub fn worktree_intact(&self, path: &Path, hash: Hash, whole: bool) -> bool {
        let admin = self.admin_dir(&hash.to_string());
        let holds = |p: PathBuf, text: String| fs::read(p).ok() == Some(text.into_bytes());
        let ours = holds(path.join(".git"), gitfile(path, &admin))
            && holds(admin.join("HEAD"), format!("{hash}\n"))
            && admin.join("commondir").is_file();
        if !ours || !whole {
            return ours;
        }
        let mut cache = self.top_level.borrow_mut();
        if cache.as_ref().map(|(h, _)| *h) != Some(hash) {
            *cache = self.top_level_names(hash).map(|names| (hash, names));
        }
        cache
            .as_ref()
            .is_some_and(|(_, names)| crate::paths::holds_all(path, names))
    }

    /// The names at the top of `hash`'s tree, gitlinks left out.
    fn top_level_names(&self, hash: Hash) -> Option<Vec<std::ffi::OsString>> {
        let tree = self.repo.find_commit(hash).and_then(|c| c.tree()).ok()?;
        let names = tree
            .iter()
            .filter(|e| e.kind() != Some(git2::ObjectType::Commit))
            .map(|e| std::ffi::OsStr::from_bytes(e.name_bytes()).to_owned())
            .collect();
        Some(names)
    }

    /// The commit worktree `name` has checked out, as its admin `HEAD` says.
    pub(super) fn worktree_head(&self, name: &str) -> Option<Hash> {
        let head = fs::read_to_string(self.admin_dir(name).join("HEAD")).ok()?;
        head.trim().parse().ok()
    }

    /// Record that worktree `name` is complete, made as `recipe` says.
    pub fn record_recipe(&self, name: &str, recipe: &str) -> Result<(), GitError> {
        let path = self.admin_dir(name).join(RECIPE_FILE);
        fs::write(&path, recipe).map_err(|e| GitError::io("write", &path, e))
    }

    /// What [`GitRepo::record_recipe`] recorded for worktree `name`: none
    /// when its making did not finish.
    pub fn recipe_of(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.admin_dir(name).join(RECIPE_FILE)).ok()
    }

    /// Forget the admin directory of worktree `name` (its files are removed
    /// by the caller).
    pub fn forget_worktree(&self, name: &str) -> Result<(), GitError> {
        let admin = self.admin_dir(name);
        match fs::remove_dir_all(&admin) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(GitError::io("remove", &admin, e)),
        }
    }

    /// Names of all registered worktrees.
    pub fn worktree_names(&self) -> Vec<String> {
        fs::read_dir(self.gitdir.join("worktrees"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What the `.git` file of the worktree at `path` says: where its admin
/// directory is, relative to the worktree (as git writes submodules'), so
/// that git still finds it with the volume mounted elsewhere: another
/// container running `git log` in the published tree, a root moved.
fn gitfile(path: &Path, admin: &Path) -> String {
    let admin = if path.is_absolute() && admin.is_absolute() {
        relative_path(path, admin)
    } else {
        admin.to_path_buf()
    };
    format!("gitdir: {}\n", admin.display())
}

/// A file of a tree.
pub(super) struct TreeFile {
    pub(super) path: String,
    pub(super) id: git2::Oid,
    pub(super) mode: u32,
}

impl TreeFile {
    /// A submodule's commit rather than a file.
    pub(super) fn is_gitlink(&self) -> bool {
        self.mode == u32::from(git2::FileMode::Commit)
    }
}

/// What is left to write in a new worktree: these paths, or every one
/// (`None`); and the index made for them, if any (else the worktree's own).
struct Files {
    to_write: Option<Vec<Vec<u8>>>,
    made_index: Option<git2::Index>,
}

/// Check `files` of `commit` out into the worktree `wt` with libgit2's
/// checkout, which applies the filters.
fn check_out_files(
    wt: &git2::Repository,
    commit: &git2::Commit<'_>,
    mut checkout: CheckoutBuilder<'_>,
    files: Files,
) -> Result<(), GitError> {
    // libgit2's checkout reads the index from disk.
    if let Some(mut index) = files.made_index {
        index
            .write()
            .map_err(|e| GitError::local("write index", e))?;
    }
    // (An empty list would mean every path to libgit2.)
    if files
        .to_write
        .as_ref()
        .is_some_and(|paths| paths.is_empty())
    {
        return Ok(());
    }
    for p in files.to_write.into_iter().flatten() {
        checkout.disable_pathspec_match(true).path(p);
    }
    wt.checkout_tree(commit.as_object(), Some(&mut checkout))
        .map_err(|e| GitError::local(format!("checkout {}", commit.id()), e))
}

/// With sparse-checkout patterns (and their text, recorded in the
/// worktree's `admin` directory as git does): the paths of `commit` they
/// select, and the files they leave out.
fn sparse_selection(
    admin: &Path,
    commit: &git2::Commit<'_>,
    (patterns, text): (&SparsePatterns, &str),
) -> Result<(Vec<Vec<u8>>, Vec<TreeFile>), GitError> {
    let info = admin.join("info");
    fs::create_dir_all(&info).map_err(|e| GitError::io("create", &info, e))?;
    let file = info.join("sparse-checkout");
    fs::write(&file, text).map_err(|e| GitError::io("write", &file, e))?;
    let (selected, skipped): (Vec<_>, Vec<_>) = tree_files(commit)?
        .into_iter()
        .partition(|f| patterns.includes_entry(&f.path, f.is_gitlink()));
    let selected = selected.into_iter().map(|f| f.path.into_bytes()).collect();
    Ok((selected, skipped))
}

/// Say once that libgit2 does not apply `working-tree-encoding`.
fn say_encoding_not_applied(hash: Hash) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(
            %hash,
            "the repository's .gitattributes set working-tree-encoding, which libgit2 \
             does not apply: those files are published as stored (UTF-8), not \
             converted as git would"
        )
    });
}

/// Every blob (file or symlink) and gitlink (submodule) of the commit's
/// tree.
pub(super) fn tree_files(commit: &git2::Commit<'_>) -> Result<Vec<TreeFile>, GitError> {
    let tree = commit.tree().map_err(|e| GitError::local("read tree", e))?;
    let mut files = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if matches!(
            entry.kind(),
            Some(git2::ObjectType::Blob | git2::ObjectType::Commit)
        ) {
            files.push(TreeFile {
                path: format!("{dir}{}", entry.name().unwrap_or_default()),
                id: entry.id(),
                mode: entry.filemode() as u32,
            });
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| GitError::local("walk tree", e))?;
    Ok(files)
}

/// Record the files a sparse checkout left out in the index, flagged
/// skip-worktree, as git does: `git status` is then clean.
fn mark_skip_worktree(wt: &git2::Repository, skipped: &[TreeFile]) -> Result<(), GitError> {
    /// `GIT_INDEX_ENTRY_EXTENDED` in `flags` (libgit2's index.h).
    const EXTENDED: u16 = 0x4000;
    let mut index = wt.index().map_err(|e| GitError::local("open index", e))?;
    for f in skipped {
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: f.mode,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: f.id,
            flags: EXTENDED | (f.path.len().min(0xfff) as u16),
            flags_extended: SKIP_WORKTREE,
            path: f.path.clone().into_bytes(),
        };
        index
            .add(&entry)
            .map_err(|e| GitError::local(format!("index {}", f.path), e))?;
    }
    index.write().map_err(|e| GitError::local("write index", e))
}

/// Write the large `files` of `commit` left out of its checkout into the
/// worktree `wt` at `dir`: streamed, but for those its attributes (now on
/// disk) may filter, when `filtered`, which libgit2 checks out after all.
/// `cancel` stops the streaming.
fn write_large_files(
    wt: &git2::Repository,
    commit: &git2::Commit<'_>,
    (big, files): (&BigFiles, Vec<BigFile>),
    filtered: bool,
    dir: &Path,
    cancel: &Cancel,
) -> Result<(), GitError> {
    let (by_libgit2, streamed): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|f| filtered && may_filter(wt, &f.path));
    if !by_libgit2.is_empty() {
        let mut checkout = CheckoutBuilder::new();
        checkout.force().disable_pathspec_match(true);
        for f in &by_libgit2 {
            checkout.path(&f.path);
        }
        wt.checkout_tree(commit.as_object(), Some(&mut checkout))
            .map_err(|e| GitError::local(format!("checkout {}", commit.id()), e))?;
    }
    let mut index = wt.index().map_err(|e| GitError::local("open index", e))?;
    big.write_all(&streamed, dir, &mut index, cancel)
}

/// The paths to write (`None`: every path of `commit`) without those that
/// are `streamed`.
fn without(
    to_write: Option<Vec<Vec<u8>>>,
    streamed: &[BigFile],
    commit: &git2::Commit<'_>,
) -> Result<Option<Vec<Vec<u8>>>, GitError> {
    if streamed.is_empty() {
        return Ok(to_write);
    }
    let out: HashSet<&[u8]> = streamed.iter().map(|f| f.path.as_slice()).collect();
    let all = match to_write {
        Some(paths) => paths,
        None => tree_files(commit)?
            .into_iter()
            .map(|f| f.path.into_bytes())
            .collect(),
    };
    Ok(Some(
        all.into_iter()
            .filter(|p| !out.contains(p.as_slice()))
            .collect(),
    ))
}
