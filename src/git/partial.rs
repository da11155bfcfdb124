//! Partial clones: `--filter` (`blob:none`, `blob:limit=<n>`) with a
//! sparse checkout. The commit and its trees are fetched with the filter,
//! which leaves out the files' contents; before a checkout, the contents
//! it writes (the files the sparse patterns select, and every
//! `.gitattributes` and `.gitmodules`, which the checkout reads) are
//! fetched by their hashes if the store lacks them, as git fetches a
//! partial clone's missing objects. A monorepo's one directory costs
//! that directory's files, not the whole tree's.
//!
//! Only our own protocol v2 fetch speaks filters (libgit2 has none), over
//! HTTP(S) and, through a session of ours, SSH and git://; and only a
//! server with `uploadpack.allowFilter` takes one. Otherwise whole objects
//! come, as before. From a local repository, our copy (`local.rs`) leaves
//! every blob to the filling. A store that was ever fetched with a filter
//! is marked ([`MARKER`]) for good: a checkout may need to fill it (after
//! a restart with other patterns, or without `--filter`), and garbage
//! collection keeps only what it has.

use std::fs;

use super::{Cancel, GitError, GitRepo, Hash};
use crate::redact::redact;
use crate::sparse::SparsePatterns;

/// In our git directory: the store may lack objects (git marks this with
/// `.promisor` packs and `extensions.partialClone`, which libgit2 does not
/// know).
const MARKER: &str = "git-sync-partial";

/// The filters applied: those that leave out blobs only. A commit's trees
/// are what a sparse checkout is decided from, so they always come.
pub fn applies(filter: &str) -> bool {
    filter == "blob:none"
        || filter.strip_prefix("blob:limit=").is_some_and(|n| {
            let digits = n.strip_suffix(['k', 'm', 'g', 'K', 'M', 'G']).unwrap_or(n);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
}

impl GitRepo {
    /// Ask for `filter` (one that [`applies`]) in fetches from now on, of
    /// servers that take it.
    pub fn set_filter(&mut self, filter: Option<String>) {
        self.filter = filter.filter(|f| applies(f));
    }

    /// The config keys that make `origin` the promisor remote of a store
    /// that may be partial (fetched, or to be fetched, with a filter): a
    /// git binary (a hook's) then reads it as a partial clone of its own,
    /// fetching the contents the store lacks when a command needs them
    /// (`git show`, `git diff`). `None` for a whole store.
    pub(super) fn promisor_keys(&self) -> Option<[(&'static str, String); 3]> {
        if self.filter.is_none() && !self.is_partial() {
            return None;
        }
        let filter = self.filter.clone().unwrap_or_else(|| "blob:none".into());
        Some([
            ("remote.origin.promisor", "true".into()),
            ("remote.origin.partialCloneFilter", filter),
            ("extensions.partialClone", "origin".into()),
        ])
    }

    /// In a partial store, mark every pack as one from the promisor remote
    /// (`<pack>.promisor`, empty, as git writes one): git then knows the
    /// objects they name but lack are to be fetched, not lost (`git fsck`,
    /// its gc and repack). Run after each pass's fetches and gc.
    pub(super) fn mark_promisor_packs(&self) {
        if !self.is_partial() {
            return;
        }
        let dir = self.gitdir.join("objects/pack");
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for name in entries.flatten().map(|e| e.file_name()) {
            let Some(base) = name.to_str().and_then(|n| n.strip_suffix(".pack")) else {
                continue;
            };
            let marker = dir.join(format!("{base}.promisor"));
            if !marker.exists() {
                if let Err(e) = fs::write(&marker, "") {
                    tracing::debug!(error = %e, pack = base, "pack not marked as a promisor pack");
                }
            }
        }
    }

    /// The filter to send `url`'s server, whose fetch takes one
    /// (`filters`), unless it refused ours; the store is marked partial
    /// first.
    pub(super) fn filter_for(&self, url: &str, filters: bool) -> Option<&str> {
        let refused = || self.filter_refused.borrow().contains(url);
        let filter = self.filter.as_deref().filter(|_| filters && !refused())?;
        if !self.is_partial() {
            let marker = self.gitdir.join(MARKER);
            let note = "the object store may lack objects: fetched with --filter\n";
            if let Err(e) = fs::write(&marker, note) {
                tracing::warn!(error = %e, "cannot mark the store as partial; fetching whole objects");
                return None;
            }
        }
        Some(filter)
    }

    /// After `url`'s server answered a filtered fetch with `error`: if
    /// it refused the filter (a server may allow some kinds only,
    /// `uploadpackfilter.<kind>.allow`), it is not sent one again.
    pub(super) fn note_filter_refused(&self, url: &str, error: &str) {
        if self.filter.is_some() && error.contains("filter") {
            tracing::info!(url = %redact(url), error = %redact(error), "the server refused --filter; fetching whole objects from it");
            self.filter_refused.borrow_mut().insert(url.to_string());
        }
    }

    /// Whether the store was ever fetched with a filter.
    pub(super) fn is_partial(&self) -> bool {
        self.gitdir.join(MARKER).is_file()
    }

    /// The contents a checkout of `hash` with `sparse` reads that the
    /// store lacks.
    fn missing_blobs(
        &self,
        hash: Hash,
        sparse: Option<&SparsePatterns>,
    ) -> Result<Vec<Hash>, GitError> {
        let commit = self
            .repo
            .find_commit(hash)
            .map_err(|e| GitError::local(format!("read commit {hash}"), e))?;
        let odb = self
            .repo
            .odb()
            .map_err(|e| GitError::local("open object database", e))?;
        let read = |path: &str| {
            let name = path.rsplit('/').next().unwrap_or(path);
            name == ".gitattributes"
                || path == ".gitmodules"
                || sparse.map_or(true, |p| p.includes_entry(path, false))
        };
        let mut missing: Vec<Hash> = super::worktree::tree_files(&commit)?
            .into_iter()
            .filter(|f| !f.is_gitlink() && read(&f.path) && !odb.exists(f.id))
            .map(|f| f.id)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        Ok(missing)
    }

    /// Before a checkout of `hash` with `sparse`: in a partial store, fetch
    /// from `url` the contents it will read that the store lacks. How many
    /// were fetched.
    pub fn fill_partial(
        &mut self,
        url: &str,
        hash: Hash,
        sparse: Option<&SparsePatterns>,
        cancel: &Cancel,
    ) -> Result<usize, GitError> {
        if !self.is_partial() {
            return Ok(0);
        }
        let missing = self.missing_blobs(hash, sparse)?;
        if missing.is_empty() {
            return Ok(0);
        }
        let t = std::time::Instant::now();
        let fetched = match super::local_path(&self.effective_url(url)) {
            Some(path) => Some(self.fetch_objects_local(url, &path, &missing, cancel)),
            None => match self.fetch_objects_over_http_v2(url, &missing, cancel) {
                Some(fetched) => Some(fetched),
                None => self.fetch_objects_over_session(url, &missing, cancel),
            },
        };
        match fetched {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => {
                return Err(GitError::Remote {
                    op: "fetch",
                    url: redact(url),
                    message: format!(
                        "the store lacks the contents of {} files of {hash} (it was fetched \
                         with --filter) and the server cannot send them by hash here \
                         (protocol v2 over HTTP(S), SSH or git:// is needed)",
                        missing.len()
                    ),
                })
            }
        }
        self.reopen()?;
        let odb = self
            .repo
            .odb()
            .map_err(|e| GitError::local("open object database", e))?;
        let still = missing.iter().filter(|id| !odb.exists(**id)).count();
        if still > 0 {
            return Err(GitError::Remote {
                op: "fetch",
                url: redact(url),
                message: format!("{still} of the files' contents asked for were not received"),
            });
        }
        tracing::debug!(%hash, blobs = missing.len(), ms = t.elapsed().as_millis() as u64, "fetched the contents a partial clone lacks");
        Ok(missing.len())
    }
}
