//! The on-disk layout under `--root`:
//!
//! ```text
//! R/.git/                  our git state
//! R/.worktrees/<hash>/     one checked-out commit per published hash
//! R/<link> -> .worktrees/<hash>
//! ```
//!
//! This module prepares R at start (creating it, adopting an earlier run's
//! state, or emptying a directory that is not ours) and removes worktrees
//! that are no longer needed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::git::{GitError, GitRepo, Hash};
use crate::root_lock::{self, Held, RootLock};
use crate::safe_to_empty::{self, WillNotEmpty};

/// Errors preparing or tidying the root.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{path}: another git-sync{} is syncing into it; each process needs a --root (or --dest) of its own",
        holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse { path: PathBuf, holder: Option<u32> },
    #[error(transparent)]
    WillNotEmpty(#[from] WillNotEmpty),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LayoutError + 'a {
    move |source| LayoutError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Why this process may not create files in `dir`, named by `flag`, if it
/// may not: said before any work, rather than as git's "failed to make
/// directory".
fn cannot_write_in(dir: &Path, flag: &'static str) -> Option<io::Error> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let flags = libc::AT_EACCESS;
    // SAFETY: faccessat only reads the NUL-terminated path it is given.
    let ok = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::W_OK | libc::X_OK,
            flags,
        )
    };
    if ok == 0 {
        return None;
    }
    Some(unwritable(io::Error::last_os_error(), flag))
}

/// `e`, from making or writing in the directory `flag` names, with the
/// usual fix when it is one of those a user meets.
fn unwritable(e: io::Error, flag: &'static str) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EROFS) if flag == "--state-dir" => io::Error::other(
            "the file system is read-only: --state-dir must be writable (by default it is \
             under $TMPDIR or /tmp: with a read-only root file system, mount an emptyDir \
             there or give --state-dir one)",
        ),
        Some(libc::EROFS) => io::Error::other(format!(
            "the file system is read-only (a volume mounted readOnly?): {flag} must be writable"
        )),
        Some(libc::EACCES) => {
            let (uid, gid) = crate::user::effective_ids();
            io::Error::other(format!(
                "permission denied to uid {uid} gid {gid}: make {flag} writable for them (in \
                 Kubernetes, the Pod's securityContext.fsGroup gives the volume to that group)"
            ))
        }
        _ => e,
    }
}

/// Paths under the root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub worktrees: PathBuf,
    /// How the user names the root: `--root`, or `--state-dir` (dest mode).
    flag: &'static str,
}

/// How a stand-in's name ends (see [`Layout::stand_in`]).
const STAND_IN_SUFFIX: &str = ".stand-in";

/// How soon a retired worktree a hook is at work in is looked at again.
const RECHECK_IN_USE: Duration = Duration::from_secs(1);

/// How soon a removal that failed in `.worktrees` is tried again.
const RETRY_REMOVAL: Duration = Duration::from_secs(60);

/// Make `due` no later than `after`.
fn sooner(due: &mut Option<Duration>, after: Duration) {
    *due = Some(due.map_or(after, |d| d.min(after)));
}

/// Whether `name` is a full 40-hex commit hash.
pub fn is_hash_name(name: &str) -> bool {
    name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Remove a file, a symlink or a whole directory tree; missing is fine.
/// Directories of ours made read-only inside the tree (by a hook: `go mod
/// download` leaves its cache so) are made writable again first, as
/// `chmod -R u+w` before `rm -rf`.
pub fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => match fs::remove_dir_all(path) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                make_dirs_writable(path);
                fs::remove_dir_all(path)
            }
            other => other,
        },
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Give the owner full access to `dir` and every directory below it, where
/// it lacks it and we may change it (others' are left as they are: their
/// removal fails with the error that says why).
fn make_dirs_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700));
    }
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            make_dirs_writable(&e.path());
        }
    }
}

/// A copy of the tree `from` at `to` made of hard links where the system
/// allows them (`fs.protected_hardlinks` refuses files of another UID we
/// cannot write), real copies elsewhere; for readers to use while `from` is
/// rebuilt.
pub fn hardlink_copy(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            hardlink_copy(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Delete stale `*.lock` files under `dir` left by a killed process: we are
/// the only writer of this repository, so any lock at start is stale.
fn remove_stale_locks(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            // objects/ holds no locks and is large: skip it.
            if e.file_name() != "objects" {
                remove_stale_locks(&path);
            }
        } else if path.extension().is_some_and(|x| x == "lock") {
            tracing::info!(path = %path.display(), "removing stale lock file");
            let _ = fs::remove_file(&path);
        }
    }
}

impl Layout {
    /// The layout under `root`, which the user names by `flag`.
    pub fn new(root: &Path, flag: &'static str) -> Self {
        Layout {
            root: root.to_path_buf(),
            worktrees: root.join(".worktrees"),
            flag,
        }
    }

    pub fn worktree(&self, hash: Hash) -> PathBuf {
        self.worktrees.join(hash.to_string())
    }

    /// Where readers are sent while the published worktree of `hash` is
    /// checked out again; removed like a stale worktree.
    pub fn stand_in(&self, hash: Hash) -> PathBuf {
        self.worktrees.join(format!("{hash}{STAND_IN_SUFFIX}"))
    }

    /// The worktree of a hash given as text.
    pub fn worktree_named(&self, hash: &str) -> PathBuf {
        self.worktrees.join(hash)
    }

    /// Create the root if need be and lock it for this process (see
    /// [`crate::root_lock`]); before [`Layout::prepare`] touches anything.
    pub fn lock(&self) -> Result<Option<RootLock>, LayoutError> {
        self.create_root()?;
        root_lock::lock(&self.root).map_err(|Held(holder)| LayoutError::InUse {
            path: self.root.clone(),
            holder,
        })
    }

    fn create_root(&self) -> Result<(), LayoutError> {
        fs::create_dir_all(&self.root).map_err(|e| {
            // EEXIST from mkdir: something that is not a directory is there.
            let e = match e.kind() {
                io::ErrorKind::AlreadyExists => io::Error::other(format!(
                    "a file is there, not a directory: {} must be a directory",
                    self.flag
                )),
                _ => unwritable(e, self.flag),
            };
            io_err("create", &self.root)(e)
        })?;
        if let Some(e) = cannot_write_in(&self.root, self.flag) {
            return Err(io_err("write in", &self.root)(e));
        }
        Ok(())
    }

    /// Make the root ready to sync `repo` and open our repository in it.
    /// `keep` are paths under the root that must survive emptying (the
    /// link, the error file).
    pub fn prepare(&self, keep: &[PathBuf], repo: &str) -> Result<GitRepo, LayoutError> {
        self.create_root()?;
        // A git config libgit2 cannot read makes every repository look
        // broken: fail here, before anything is judged unusable and removed.
        crate::git::check_user_config()?;
        let gitdir = self.root.join(".git");
        let mut unusable = None;
        if gitdir.exists() {
            match GitRepo::open(&self.root) {
                Ok(repo) => {
                    // Ours: a lock at start was left by a killed run (never
                    // touched in a repository that is not ours).
                    remove_stale_locks(&gitdir);
                    self.remove_v3_leftovers()?;
                    fs::create_dir_all(&self.worktrees)
                        .map_err(io_err("create", &self.worktrees))?;
                    return Ok(repo);
                }
                Err(e) => unusable = Some(e),
            }
        }
        self.empty_root(keep, repo, unusable)?;
        let repo = GitRepo::init(&self.root)?;
        fs::create_dir_all(&self.worktrees).map_err(io_err("create", &self.worktrees))?;
        Ok(repo)
    }

    /// Remove every entry of the root, but never the root itself: it may be
    /// a mount point (nor, for that reason, its `lost+found`).
    /// Paths in `keep` (at any depth) and the directories leading to them
    /// stay.
    /// `unusable` says why a repository found there was not taken as ours.
    fn empty_root(
        &self,
        keep: &[PathBuf],
        repo: &str,
        unusable: Option<GitError>,
    ) -> Result<(), LayoutError> {
        fn empty(
            dir: &Path,
            top: &Path,
            keep: &[PathBuf],
            removed: &mut usize,
        ) -> Result<(), LayoutError> {
            for p in fs::read_dir(dir)
                .map_err(io_err("read", dir))?
                .flatten()
                .map(|e| e.path())
            {
                if keep.contains(&p) || (dir == top && safe_to_empty::is_lost_and_found(&p)) {
                    continue;
                }
                let leads_to_kept = keep.iter().any(|k| k.starts_with(&p));
                let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
                if leads_to_kept && is_dir {
                    empty(&p, top, keep, removed)?;
                } else {
                    remove_any(&p).map_err(io_err("remove", &p))?;
                    *removed += 1;
                }
            }
            Ok(())
        }
        let anything_to_remove = fs::read_dir(&self.root)
            .map_err(io_err("read", &self.root))?
            .flatten()
            .any(|e| !keep.contains(&e.path()) && !safe_to_empty::is_lost_and_found(&e.path()));
        if anything_to_remove {
            safe_to_empty::check(&self.root, self.flag, repo, false)?;
        }
        if let Some(e) = unusable {
            tracing::warn!(root = %self.root.display(), error = %e,
                "repository in root is unusable; starting again from an empty root");
        }
        let mut removed = 0;
        empty(&self.root, &self.root, keep, &mut removed)?;
        if removed > 0 && keep.is_empty() {
            tracing::warn!(root = %self.root.display(), entries = removed,
                "root is not ours or its repository is unusable: emptied it");
        } else if removed > 0 {
            tracing::warn!(root = %self.root.display(), entries = removed,
                "root is not ours or its repository is unusable: emptied it, keeping the published tree");
        }
        Ok(())
    }

    /// git-sync v3 kept worktrees as `R/<hash>`: drop them on upgrade.
    fn remove_v3_leftovers(&self) -> Result<(), LayoutError> {
        for e in fs::read_dir(&self.root)
            .map_err(io_err("read", &self.root))?
            .flatten()
        {
            let name = e.file_name();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir && is_hash_name(&name.to_string_lossy()) {
                let p = e.path();
                tracing::info!(path = %p.display(), "removing v3-era worktree");
                remove_any(&p).map_err(io_err("remove", &p))?;
            }
        }
        Ok(())
    }

    /// Mark a worktree (or a stand-in) as no longer current: its age for
    /// `--stale-worktree-timeout` counts from now (and survives restarts).
    pub fn mark_retired(&self, dir: &Path) {
        if let Ok(f) = fs::File::open(dir) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Remove worktrees other than `current` (and those `in_use` by a
    /// hook) that stopped being current more than `keep_for` ago, anything
    /// else found in `.worktrees` but the `served` entry, and admin entries
    /// of worktrees that are gone. Returns
    /// the hashes still kept (current first) and the earliest time a kept
    /// one becomes removable, or an entry that could not be removed is
    /// tried again (`RETRY_REMOVAL`; it is logged, not an error).
    pub fn clean_worktrees(
        &self,
        repo: &GitRepo,
        current: Option<Hash>,
        served: Option<&str>,
        in_use: &[Hash],
        keep_for: Duration,
    ) -> Result<(Vec<Hash>, Option<Duration>), LayoutError> {
        let mut kept: Vec<Hash> = current.into_iter().collect();
        let mut next_due: Option<Duration> = None;
        // One entry that resists (a file of another user in it, one still
        // open on NFS) keeps neither the others nor the gc from their work.
        let mut resisted = false;
        let mut remove = |path: &Path| match remove_any(path) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "cannot remove it; will try again");
                resisted = true;
                false
            }
        };
        let now = SystemTime::now();
        let rd = match fs::read_dir(&self.worktrees) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((kept, None)),
            Err(e) => return Err(io_err("read", &self.worktrees)(e)),
        };
        for e in rd.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if served == Some(name.as_str()) {
                // What readers use: the current worktree, or its stand-in.
                continue;
            }
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let age = || {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .unwrap_or(Duration::MAX)
            };
            let mut wait = |age: Duration| {
                let left = keep_for.checked_sub(age).filter(|l| !l.is_zero())?;
                sooner(&mut next_due, left);
                Some(())
            };
            if is_dir && name.ends_with(STAND_IN_SUFFIX) {
                // A stand-in readers may still be in: kept like a worktree.
                if wait(age()).is_none() {
                    remove(&path);
                }
                continue;
            }
            let hash = is_hash_name(&name)
                .then(|| name.parse::<Hash>().ok())
                .flatten()
                .filter(|_| is_dir);
            let Some(hash) = hash else {
                tracing::info!(path = %path.display(), "removing unexpected entry in .worktrees");
                remove(&path);
                continue;
            };
            if Some(hash) == current {
                continue;
            }
            if in_use.contains(&hash) {
                // Looked at again soon: a hook is at work in it.
                kept.push(hash);
                sooner(&mut next_due, RECHECK_IN_USE);
                continue;
            }
            if wait(age()).is_some() {
                kept.push(hash);
                continue;
            }
            tracing::debug!(hash = %hash, "removing stale worktree");
            if remove(&path) {
                repo.forget_worktree(&name)?;
            }
        }
        if resisted {
            sooner(&mut next_due, RETRY_REMOVAL);
        }
        for name in repo.worktree_names() {
            if !self.worktrees.join(&name).is_dir() {
                repo.forget_worktree(&name)?;
            }
        }
        repo.forget_submodule_worktrees(|name| self.worktrees.join(name).is_dir())?;
        Ok((kept, next_due))
    }
}
