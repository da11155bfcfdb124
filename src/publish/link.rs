//! Link mode: `--link` is a relative symlink to `.worktrees/<hash>`.
//!
//! A new symlink is made beside the link under a temporary name and renamed
//! over it (`rename(2)` is atomic), then the directory is fsynced. Readers
//! see the old tree or the new one, never a mix, and `basename(readlink)` is
//! the published hash.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{err, PublishError, Publisher};
use crate::git::{ChangedPaths, Hash};
use crate::layout::is_hash_name;
use crate::paths::relative_path;

/// Link mode: `--link` is a relative symlink to `.worktrees/<hash>`.
#[derive(Debug, Clone)]
pub struct LinkPublisher {
    link: PathBuf,
}

impl LinkPublisher {
    pub fn new(link: &Path) -> Self {
        LinkPublisher {
            link: link.to_path_buf(),
        }
    }

    /// The link path must be free or a symlink (ours, replaced). An empty
    /// directory there (a mount point's placeholder) is removed; a
    /// directory with files or a regular file is someone's: left alone,
    /// and the publish fails saying so, as `rename(2)` would replace a file
    /// silently.
    fn make_room(&self) -> Result<(), PublishError> {
        let someones = |what: &str| {
            err(&self.link)(io::Error::other(format!(
                "{what}, not a symlink git-sync made: move it away (git-sync does not delete \
                 it) or give another --link"
            )))
        };
        match fs::symlink_metadata(&self.link) {
            Ok(m) if m.is_dir() => match fs::remove_dir(&self.link) {
                Ok(()) => Ok(()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                    Err(someones("a directory with files in it"))
                }
                Err(e) => Err(err(&self.link)(e)),
            },
            Ok(m) if m.file_type().is_symlink() => Ok(()),
            Ok(_) => Err(someones("a file")),
            Err(_) => Ok(()),
        }
    }

    fn tmp_link(&self) -> PathBuf {
        let name = self
            .link
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.link.with_file_name(format!(".{name}.git-sync.tmp"))
    }
}

impl Publisher for LinkPublisher {
    fn place(&self) -> &Path {
        &self.link
    }

    fn current(&self) -> Option<Hash> {
        let name = self.served_name()?;
        is_hash_name(&name).then(|| name.parse().ok()).flatten()
    }

    fn served_name(&self) -> Option<String> {
        let target = fs::read_link(&self.link).ok()?;
        Some(target.file_name()?.to_str()?.to_string())
    }

    fn publish(
        &mut self,
        _hash: Hash,
        worktree: &Path,
        _changed: Option<&ChangedPaths>,
    ) -> Result<(), PublishError> {
        let dir = self
            .link
            .parent()
            .ok_or_else(|| err(&self.link)(io::Error::other("link has no parent directory")))?;
        fs::create_dir_all(dir).map_err(err(dir))?;
        // Resolve symlinks in both directories, so the relative path is right
        // wherever the volume is mounted.
        let real_dir = fs::canonicalize(dir).map_err(err(dir))?;
        let real_wt = fs::canonicalize(worktree).map_err(err(worktree))?;
        let target = relative_path(&real_dir, &real_wt);

        self.make_room()?;
        let tmp = self.tmp_link();
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(&tmp)(e)),
            _ => {}
        }
        std::os::unix::fs::symlink(&target, &tmp).map_err(err(&tmp))?;
        fs::rename(&tmp, &self.link).map_err(err(&self.link))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err(dir))?;
        Ok(())
    }
}
