//! The store's `origin` remote: the repository git-sync syncs, as upstream
//! names it (`git remote add origin <repo>`), for a git binary in a hook
//! (`git remote get-url origin`, `git fetch origin`, a submodule's URL
//! relative to it) and, in a partial store, the promisor remote that git
//! fetches the missing contents from (see `partial.rs`). Upstream writes
//! the URL as given; here without its credentials (see
//! [`without_credentials`]): a git in a hook brings its own.

use super::{GitError, GitRepo};
use crate::redact::without_credentials;

impl GitRepo {
    /// Make `url` the store's `origin` (and its promisor remote if the
    /// store may be partial). Keys already right are not written again.
    pub fn name_origin(&mut self, url: &str) -> Result<(), GitError> {
        let url = match super::local_path(url) {
            // Relative to our working directory, not to the hook's.
            Some(path) if !url.starts_with("file://") => std::path::absolute(&path)
                .map_or_else(|_| url.to_string(), |p| p.display().to_string()),
            _ => without_credentials(url),
        };
        // In the config file itself, not in `config_file::FILE`, which
        // submodules' stores are given too; and git reads a repository's
        // extensions from there, not from the files it includes.
        let mut local = self
            .repo
            .config()
            .and_then(|c| c.open_level(git2::ConfigLevel::Local))
            .map_err(|e| GitError::local("open repository config", e))?;
        let mut keys = vec![("remote.origin.url", url)];
        // At format version 0 git honours extensions.partialClone and
        // libgit2 reads no extension; at 1 it refuses those it does not
        // know.
        if local.get_i32("core.repositoryformatversion").unwrap_or(0) == 0 {
            keys.extend(self.promisor_keys().into_iter().flatten());
        }
        let mut changed = false;
        for (key, value) in keys {
            if local.get_string(key).ok().as_deref() != Some(value.as_str()) {
                local
                    .set_str(key, &value)
                    .map_err(|e| GitError::local("name the origin remote", e))?;
                changed = true;
            }
        }
        if changed {
            self.reopen()?;
        }
        Ok(())
    }
}
