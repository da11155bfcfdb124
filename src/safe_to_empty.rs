//! Whether git-sync may empty a directory it did not make.
//!
//! As upstream, a `--root` that is not ours is emptied entry by entry (it
//! is usually a volume holding a crashed run's leftovers), and dest mode
//! makes `--dest` hold exactly the commit. Both are right for a volume and
//! ruinous for a directory given by mistake: `--root=/`, `--root=~`,
//! `--root=.` or `--root=docs` in a project. Before anything is removed,
//! this module looks for signs that the directory is not a sync directory
//! at all, and says which one it found; the caller then stops without
//! touching it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::git;

/// A directory git-sync will not empty, and why.
#[derive(Debug, thiserror::Error)]
#[error(
    "{flag} {path}: will not empty it ({reason}), as git-sync would a directory it did \
     not make: choose a new or empty directory, or empty this one yourself"
)]
pub struct WillNotEmpty {
    pub flag: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

/// Check `dir` (which exists) before emptying it for syncing `repo`. `flag`
/// names it in the error. A git working tree in it may be replaced only
/// when `replace_clone` and it is a clone of `repo` (as the 2015 git-sync
/// left its `--dest`).
pub fn check(
    dir: &Path,
    flag: &'static str,
    repo: &str,
    replace_clone: bool,
) -> Result<(), WillNotEmpty> {
    let refuse = |reason: String| WillNotEmpty {
        flag,
        path: dir.to_path_buf(),
        reason,
    };
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if real == Path::new("/") {
        return Err(refuse("it is the filesystem's root".into()));
    }
    if let Some(mount) = mount_inside(&real) {
        return Err(refuse(format!(
            "another filesystem is mounted at {}",
            mount.display()
        )));
    }
    let source = git::local_path(repo).map(|p| ("the repository it syncs from", p));
    let holds = |places: Vec<(&'static str, PathBuf)>| {
        let found = places
            .into_iter()
            .filter_map(|(what, p)| Some((what, fs::canonicalize(p).ok()?)))
            .find(|(_, p)| p.starts_with(&real));
        found.map(|(what, p)| {
            refuse(if p == real {
                format!("it is {what}")
            } else {
                format!("it holds {what}, {}", p.display())
            })
        })
    };
    if let Some(refusal) = holds(source.into_iter().collect()) {
        return Err(refusal);
    }
    // A root git-sync made (or upstream's v4, same layout) is a sync
    // directory wherever it is, even one that is also where it was started:
    // a damaged one is started again from empty.
    if real.join(".worktrees").is_dir() {
        return Ok(());
    }
    if let Some(refusal) = holds(precious_places()) {
        return Err(refusal);
    }
    if let Some(origin) = git::checked_out_clone(&real) {
        if !replace_clone || origin.as_deref() != Some(repo) {
            let of = origin.map_or(String::new(), |o| {
                format!(" (a clone of {})", crate::redact::redact(&o))
            });
            return Err(refuse(format!(
                "it is the working tree of a git repository{of}"
            )));
        }
    }
    if let Some(top) = git::tracked_within(&real) {
        return Err(refuse(format!(
            "it holds files tracked by the git repository at {}",
            top.display()
        )));
    }
    Ok(())
}

/// Whether `path` is a filesystem's `lost+found` directory, which a volume
/// holds at its top (a fresh ext4 persistent volume, say): never ours to
/// remove (fsck wants it; a non-root git-sync may not even list it), and
/// never in the way, as a commit's files go under `.worktrees` in a root.
pub fn is_lost_and_found(path: &Path) -> bool {
    path.file_name() == Some(std::ffi::OsStr::new("lost+found"))
        && fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Places whose loss nobody asks for by pointing git-sync at a parent:
/// the home directory, the directory git-sync was started in, the one
/// holding its own binary.
fn precious_places() -> Vec<(&'static str, PathBuf)> {
    let mut places = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        places.push(("the home directory", PathBuf::from(home)));
    }
    if let Ok(cwd) = std::env::current_dir() {
        places.push(("the directory git-sync was started in", cwd));
    }
    if let Some(bin_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        places.push(("git-sync's own binary", bin_dir));
    }
    places
}

/// An entry of `dir` on another filesystem than `dir` itself: emptying
/// would reach into that filesystem (`/proc` under `/`, a volume mounted
/// inside another).
fn mount_inside(dir: &Path) -> Option<PathBuf> {
    let dev = fs::metadata(dir).ok()?.dev();
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() && m.dev() != dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_may_be_emptied() {
        let t = tempfile::TempDir::new().unwrap();
        fs::write(t.path().join("left-over"), "x").unwrap();
        check(t.path(), "--root", "https://example.com/r", false).unwrap();
    }

    #[test]
    fn the_filesystem_root_and_the_parents_of_the_binary_may_not() {
        let e = check(Path::new("/"), "--root", "https://example.com/r", false).unwrap_err();
        assert!(e.to_string().contains("filesystem's root"), "{e}");
        let exe = std::env::current_exe().unwrap();
        let parent = exe.parent().unwrap().parent().unwrap();
        let e = check(parent, "--root", "https://example.com/r", false).unwrap_err();
        assert!(e.to_string().contains("own binary"), "{e}");
    }

    #[test]
    fn a_working_tree_is_refused_naming_its_origin_without_its_password() {
        let t = tempfile::TempDir::new().unwrap();
        let origin = "https://me:s3cret-token@git.example.com/site.git";
        let repo = git2::Repository::init(t.path()).unwrap();
        repo.remote("origin", origin).unwrap();
        fs::write(t.path().join("index.html"), "mine").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("index.html")).unwrap();
        index.write().unwrap();
        let e = check(t.path(), "--root", origin, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("working tree of a git repository (a clone of https://me:***@"),
            "{e}"
        );
        assert!(!e.contains("s3cret-token"), "{e}");
        // In dest mode a clone of the repository synced is replaced.
        check(t.path(), "--dest", origin, true).unwrap();
        check(
            t.path(),
            "--dest",
            "https://git.example.com/other.git",
            true,
        )
        .unwrap_err();
        // An index whose files are not there is no working tree.
        fs::remove_file(t.path().join("index.html")).unwrap();
        check(t.path(), "--root", origin, false).unwrap();
    }
}
