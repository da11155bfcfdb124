//! Materialising a commit as a linked worktree of our repository.
//!
//! A linked worktree is `<wt>/.git` (a file naming the admin directory) plus
//! `<gitdir>/worktrees/<name>/` holding `gitdir`, `commondir` and `HEAD`. We
//! write those few files ourselves, detached at the commit, and let libgit2
//! do the checkout: that keeps full control of what is checked out (sparse
//! checkout comes later) while a git binary, where one exists, sees a normal
//! worktree (`git -C <wt> log` works).

use std::fs;
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;

use super::{GitError, GitRepo, Hash};

impl GitRepo {
    fn admin_dir(&self, name: &str) -> PathBuf {
        self.gitdir.join("worktrees").join(name)
    }

    /// Check `hash` out into a new worktree at `path` (which must not exist),
    /// registered under `name`.
    pub fn create_worktree(&self, hash: Hash, path: &Path, name: &str) -> Result<(), GitError> {
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
        write(path.join(".git"), format!("gitdir: {}\n", admin.display()))?;

        let wt = git2::Repository::open(path)
            .map_err(|e| GitError::local(format!("open worktree {}", path.display()), e))?;
        let commit = wt
            .find_commit(hash)
            .map_err(|e| GitError::local(format!("find commit {hash}"), e))?;
        let mut checkout = CheckoutBuilder::new();
        checkout.force().remove_untracked(true);
        // Loading the filter list costs libgit2 several path resolutions per
        // file (a third of a 5,000-file checkout); skip it when no filter
        // can apply, as git's output is then the blob itself.
        if !needs_filters(&wt, &commit) {
            checkout.disable_filters(true);
        }
        wt.checkout_tree(commit.as_object(), Some(&mut checkout))
            .map_err(|e| GitError::local(format!("checkout {hash}"), e))?;
        wt.set_head_detached(hash)
            .map_err(|e| GitError::local(format!("set HEAD of worktree to {hash}"), e))?;
        Ok(())
    }

    /// The commit checked out in the worktree at `path`, if it is a sound
    /// worktree of ours.
    pub fn worktree_head(&self, path: &Path) -> Option<Hash> {
        let wt = git2::Repository::open_ext(
            path,
            git2::RepositoryOpenFlags::NO_SEARCH,
            std::iter::empty::<&std::ffi::OsStr>(),
        )
        .ok()?;
        if !wt.is_worktree() {
            return None;
        }
        let head = wt.head().ok()?.target();
        head
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

/// Whether checking out `commit` may need content filters: the tree has a
/// `.gitattributes` anywhere, or the repository sets attributes or line
/// ending conversion.
fn needs_filters(repo: &git2::Repository, commit: &git2::Commit<'_>) -> bool {
    if repo.commondir().join("info/attributes").exists() {
        return true;
    }
    if let Ok(cfg) = repo.config() {
        let autocrlf = cfg.get_string("core.autocrlf").unwrap_or_default();
        if matches!(autocrlf.as_str(), "true" | "input") || cfg.get_string("core.eol").is_ok() {
            return true;
        }
        if cfg.get_path("core.attributesFile").is_ok() {
            return true;
        }
    }
    let Ok(tree) = commit.tree() else { return true };
    let mut found = false;
    let _ = tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if entry.name_bytes() == b".gitattributes" {
            found = true;
            git2::TreeWalkResult::Abort
        } else {
            git2::TreeWalkResult::Ok
        }
    });
    found
}
