//! Git LFS: the files a repository keeps on an LFS server, published
//! with their content rather than as the pointers the commit holds.
//!
//! git does it with the git-lfs program as a filter (`filter=lfs` in
//! `.gitattributes`), which upstream's image lacks, and this one has no
//! git at all: here, once a worktree is checked out, each pointer file
//! under `filter=lfs` is replaced by its object. Objects are kept in the
//! repository's `lfs/objects` (git-lfs's layout) and hard-linked into the
//! worktrees, so an update downloads only the objects it adds; one no
//! worktree links to any more is removed at the next clean-up.
//!
//! Objects come from the LFS server of an HTTP(S) repository (or of an
//! SSH one, reached over HTTPS as git-lfs does: see `batch.rs`), with the
//! repository's credentials, or from the `lfs/objects` of a repository on
//! this machine, as git-lfs copies them from a `file://` remote.
//! `GIT_LFS_SKIP_SMUDGE=1`, as for git-lfs, publishes the pointers.

mod batch;
mod pointer;
mod retry;
mod settings;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::local::local_path;
use super::worktree::index_entry;
use super::{Cancel, GitError, GitRepo, Hash};
use crate::redact::redact;
use pointer::{Pointer, MAX_POINTER_SIZE};
use settings::LfsSettings;

const USER_AGENT: &str = concat!("git-lfs/3.3.0 (git-sync v", env!("CARGO_PKG_VERSION"), ")");

/// Why objects could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("cancelled")]
    Cancelled,
    /// Why, in words without credentials.
    #[error("{0}")]
    Failed(String),
    /// A failure that may pass (see [`retry`]): why, and when the server
    /// asked to be asked again, if it did.
    #[error("{why}")]
    Passing {
        why: String,
        after: Option<std::time::Duration>,
    },
}

impl Failure {
    /// A failure that may pass, without a time to come back.
    fn passing(why: String) -> Self {
        Failure::Passing { why, after: None }
    }
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Failure::Failed(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Self {
        Failure::Failed(why.to_string())
    }
}

/// An LFS file of the worktree: a pointer to replace by its object, or
/// one already replaced whose index entry is brought up to date.
struct PointerFile {
    path: Vec<u8>,
    blob: git2::Oid,
    mode: u32,
    pointer: Pointer,
    /// Already its content: shared with the previous worktree, whose
    /// index entry (copied) holds the inode's change time from before the
    /// link made it anew; git would hash the file and find it modified.
    shared: bool,
}

impl GitRepo {
    fn lfs_dir(&self) -> PathBuf {
        self.gitdir.join("lfs")
    }

    /// The `lfs.fetchinclude`/`lfs.fetchexclude` our git config sets, as
    /// a line of a worktree's recipe (empty when neither is set).
    pub fn lfs_fetch_filter(&self) -> String {
        settings::configured_filter(&self.repo)
    }

    /// Replace the LFS pointer files of `hash`'s worktree at `path` by
    /// their objects, fetching those the store lacks from `repo_url`'s LFS
    /// server; the worktree's index then vouches for the new files (so the
    /// next worktree shares them). Nothing to do, and no cost but a look
    /// at the `.gitattributes` files, unless they name `filter=lfs`.
    pub fn fetch_lfs_files(
        &self,
        hash: Hash,
        path: &Path,
        repo_url: &str,
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        let wt = git2::Repository::open(path)
            .map_err(|e| GitError::local(format!("open worktree {}", path.display()), e))?;
        let commit = wt
            .find_commit(hash)
            .map_err(|e| GitError::local(format!("find commit {hash}"), e))?;
        if !names_lfs(&wt, &commit, &self.clean_trees.borrow()) {
            return Ok(());
        }
        let settings =
            LfsSettings::read(&self.repo, &commit, &self.lfs_dir().join("tmp/lfsconfig"));
        let (files, left_out): (Vec<PointerFile>, Vec<PointerFile>) =
            pointer_files(&wt, &commit, path)?
                .into_iter()
                .partition(|f| settings.fetches(&String::from_utf8_lossy(&f.path)));
        let mut index = wt.index().map_err(|e| GitError::local("open index", e))?;
        let restored = leave_pointers(&wt, &mut index, path, &left_out)?;
        if files.is_empty() && restored == 0 {
            return Ok(());
        }
        let objects = self.lfs_dir().join("objects");
        let wanted: BTreeSet<&Pointer> = files
            .iter()
            .filter(|f| !f.shared)
            .map(|f| &f.pointer)
            .collect();
        let missing: Vec<Pointer> = wanted
            .into_iter()
            .filter(|p| !stored(&objects, p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let t = std::time::Instant::now();
            let fetched = self.fetch_lfs_objects(&settings, repo_url, &missing, cancel);
            tolerate(settings.skip_download_errors, fetched).map_err(|e| match e {
                Failure::Cancelled => GitError::Cancelled,
                Failure::Failed(message) | Failure::Passing { why: message, .. } => {
                    GitError::Remote {
                        op: "git-lfs download from",
                        url: redact(repo_url),
                        message,
                    }
                }
            })?;
            tracing::debug!(
                %hash,
                objects = missing.len(),
                bytes = missing.iter().map(|p| p.size).sum::<u64>(),
                ms = t.elapsed().as_millis() as u64,
                "git-lfs objects downloaded"
            );
        }
        let files = match settings.skip_download_errors {
            true => files
                .into_iter()
                .filter(|f| f.shared || stored(&objects, &f.pointer))
                .collect(),
            false => files,
        };
        for f in &files {
            if cancel.is_cancelled() {
                return Err(GitError::Cancelled);
            }
            let file = path.join(std::ffi::OsStr::from_bytes(&f.path));
            let object = objects.join(f.pointer.store_path());
            if !f.shared {
                put_in_place(&object, &file)
                    .map_err(|e| GitError::io("put the git-lfs object at", &file, e))?;
            }
            record(&mut index, f, &file)?;
        }
        index
            .write()
            .map_err(|e| GitError::local("write index", e))?;
        tracing::debug!(%hash, files = files.len(), "git-lfs files in place");
        Ok(())
    }

    /// Get `missing` into the store from where `repo_url` keeps its LFS
    /// objects (or from the LFS server the settings name); why not, in a
    /// message without credentials. With `lfs.skipdownloaderrors`, an
    /// object that cannot be had is said in the log and left out (and
    /// the caller passes over a failure of them all, a server that cannot
    /// be reached).
    fn fetch_lfs_objects(
        &self,
        settings: &LfsSettings,
        repo_url: &str,
        missing: &[Pointer],
        cancel: &Cancel,
    ) -> Result<(), Failure> {
        let configured = settings.url.as_deref();
        let skip = settings.skip_download_errors;
        if configured.is_none() {
            if let Some(source) = local_path(repo_url) {
                return self.copy_local_objects(&source, missing, skip, cancel);
            }
        }
        let effective = self.url_settings(repo_url).effective;
        let (bare, in_url) = match super::auth::credentials_in_url(&effective) {
            Some((bare, c)) => (bare, Some((c.username, c.password))),
            None => (effective.clone(), None),
        };
        // Over SSH, the server says where its LFS server is, and with what
        // credentials (as git-lfs asks it); one without the command is
        // asked over HTTPS.
        let told = match configured {
            Some(_) => None,
            None => match self.lfs_authenticate(&bare) {
                Some(Ok(said)) => Some(batch::read_authenticate(&said)?),
                Some(Err(why)) => {
                    tracing::debug!(reason = %redact(&why), "no LFS server from git-lfs-authenticate: asking the URL's host over HTTPS");
                    None
                }
                None => None,
            },
        };
        let endpoint = match (&configured, &told) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some((href, _))) => href.clone(),
            (None, None) => batch::endpoint_of(&bare)
                .ok_or_else(|| "no LFS server is known for this URL (set lfs.url)".to_string())?,
        };
        let settings = self.url_settings(&endpoint);
        let (timeout, tls) = super::ls_refs::settings().ok_or("no HTTP client")?;
        let tls = crate::config::gitconfig::Tls {
            verify: settings.verify_tls,
            ..super::tls::for_url(tls, &endpoint)
        };
        if let Some(Err(why)) = &settings.proxy {
            return Err(format!("the LFS server's proxy: {why}").into());
        }
        let proxy = settings.usable_proxy().map(|p| p.url.as_str());
        let agent = crate::credentials::lfs_http_agent(*timeout, &tls, USER_AGENT, proxy)?;
        let mut headers = settings.extra_headers.clone();
        headers.extend(self.credentials.cookies.header_for(&endpoint));
        let told_authorization = told.as_ref().is_some_and(|(_, h)| {
            headers.extend(h.iter().cloned());
            super::http_config::any_named(h, &["authorization"])
        });
        // The repository's credentials for its own LFS server; a server
        // named by lfs.url gets those configured for its URL.
        let for_url = match configured {
            Some(_) => endpoint.as_str(),
            None => bare.as_str(),
        };
        let basic = in_url
            .filter(|_| configured.is_none())
            .or_else(|| {
                self.credentials
                    .for_url(for_url)
                    .map(|c| (c.username.clone(), c.password.clone()))
            })
            .filter(|_| !told_authorization);
        // (Our git config: how transfers go.)
        let config = self.repo.config().ok();
        let mut server = batch::Server {
            agent,
            endpoint,
            headers,
            basic,
            helpers: self.credentials.helpers.as_ref(),
            authorization: None,
            retries: retry::Retries::from_config(config.as_ref()),
        };
        let mut downloads = Vec::with_capacity(missing.len());
        for located in server.locate(missing, cancel)? {
            match located {
                Ok(d) => downloads.push(d),
                Err(why) => tolerate(skip, Err(why.into()))?,
            }
        }
        let concurrent = concurrent_transfers(config.as_ref());
        let lfs = self.lfs_dir();
        let retries = server.retries;
        crate::parallel::queued(concurrent, &downloads, |d| {
            let stored = retries.run("download", cancel, || {
                store_object(&lfs, &d.pointer, |out| server.download(d, out, cancel))
            });
            tolerate(skip, stored)
        })
    }

    /// Copy `missing` from the LFS store of the repository at `source`.
    fn copy_local_objects(
        &self,
        source: &Path,
        missing: &[Pointer],
        skip: bool,
        cancel: &Cancel,
    ) -> Result<(), Failure> {
        let repo = git2::Repository::open(source)
            .map_err(|e| format!("open {}: {}", source.display(), e.message()))?;
        let theirs = repo.commondir().join("lfs/objects");
        for p in missing {
            if cancel.is_cancelled() {
                return Err(Failure::Cancelled);
            }
            let from = theirs.join(p.store_path());
            let stored = store_object(&self.lfs_dir(), p, |out| {
                let file = fs::File::open(&from).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        format!("object {} is not in {}", p.oid, theirs.display())
                    }
                    _ => format!("read {}: {e}", from.display()),
                })?;
                copy_checked(file, out, p, cancel)
            });
            tolerate(skip, stored)?;
        }
        Ok(())
    }

    /// Remove the stored LFS objects no worktree links to (and what an
    /// interrupted download left); how many were removed.
    pub(super) fn prune_lfs_store(&self) -> usize {
        let lfs = self.lfs_dir();
        let _ = fs::remove_dir_all(lfs.join("tmp"));
        let mut removed = 0;
        let Ok(first) = fs::read_dir(lfs.join("objects")) else {
            return 0;
        };
        for a in first.flatten() {
            for b in fs::read_dir(a.path()).into_iter().flatten().flatten() {
                for object in fs::read_dir(b.path()).into_iter().flatten().flatten() {
                    let alone = object.metadata().is_ok_and(|m| m.nlink() == 1);
                    if alone && fs::remove_file(object.path()).is_ok() {
                        removed += 1;
                    }
                }
                let _ = fs::remove_dir(b.path());
            }
            let _ = fs::remove_dir(a.path());
        }
        if removed > 0 {
            tracing::debug!(removed, "git-lfs objects no worktree uses removed");
        }
        removed
    }
}

/// Put object `p` in the store at `lfs`, written by `write` under a temporary
/// name then renamed: the store never holds part of an object.
fn store_object(
    lfs: &Path,
    p: &Pointer,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let target = lfs.join("objects").join(p.store_path());
    let tmp = lfs.join("tmp").join(format!("{}.part", p.oid));
    let make = || -> Result<(), Failure> {
        for dir in [tmp.parent(), target.parent()].into_iter().flatten() {
            fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let _ = fs::remove_file(&tmp);
        let mut out = std::io::BufWriter::with_capacity(
            256 << 10,
            fs::File::create(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?,
        );
        write(&mut out)?;
        // Dated a little in the past: a file linked to it is then older
        // than the index written after, which otherwise takes it for
        // one changed in the same clock tick ("racily clean") and
        // records no size for it; git would hash it (finding the
        // content, not the pointer, changed) and the next tree could
        // not share it.
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(2);
        out.into_inner()
            .map_err(|e| e.to_string())
            .and_then(|f| {
                f.set_modified(past)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("write {}: {e}", tmp.display()))?;
        fs::rename(&tmp, &target)
            .map_err(|e| format!("rename into {}: {e}", target.display()).into())
    };
    let made = make();
    if made.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    made
}

/// Whether an attribute file of the commit's tree, or the repository's
/// own `info/attributes`, names `filter=lfs` (on doubt, yes).
/// Trees in `clean` hold no `.gitattributes` (the checkout's survey of
/// this commit found so): they are not entered.
fn names_lfs(
    wt: &git2::Repository,
    commit: &git2::Commit<'_>,
    clean: &std::collections::HashSet<git2::Oid>,
) -> bool {
    use super::worktree::mentions_lfs as mentions;
    let own = fs::read(wt.commondir().join("info/attributes")).is_ok_and(|t| mentions(&t));
    own || super::worktree::attribute_files(commit, clean).map_or(true, |files| {
        files
            .iter()
            .any(|(_, id)| wt.find_blob(*id).map_or(true, |b| mentions(b.content())))
    })
}

/// The files of the commit, checked out at `dir`, whose blob is an LFS
/// pointer under `filter=lfs` (not those the sparse patterns left out);
/// those already replaced (shared from the previous worktree) marked so.
fn pointer_files(
    wt: &git2::Repository,
    commit: &git2::Commit<'_>,
    dir: &Path,
) -> Result<Vec<PointerFile>, GitError> {
    let odb = wt.odb().map_err(|e| GitError::local("open objects", e))?;
    let mut found = Vec::new();
    for f in super::worktree::tree_files(commit)? {
        let regular = f.mode == u32::from(git2::FileMode::Blob)
            || f.mode == u32::from(git2::FileMode::BlobExecutable);
        if !regular
            || odb
                .read_header(f.id)
                .map_or(true, |(size, _)| size > MAX_POINTER_SIZE)
        {
            continue;
        }
        let Ok(blob) = wt.find_blob(f.id) else {
            continue;
        };
        let Some(pointer) = Pointer::parse(blob.content()) else {
            continue;
        };
        let rel = Path::new(&f.path);
        let lfs = wt
            .get_attr(rel, "filter", git2::AttrCheckFlags::FILE_THEN_INDEX)
            .ok()
            .flatten()
            == Some("lfs");
        let on_disk = dir.join(rel);
        let still_pointer = fs::symlink_metadata(&on_disk)
            .is_ok_and(|m| m.is_file() && m.len() == blob.size() as u64)
            && fs::read(&on_disk).is_ok_and(|c| c == blob.content());
        if lfs && (still_pointer || on_disk.is_file()) {
            found.push(PointerFile {
                path: f.path.into_bytes(),
                blob: f.id,
                mode: f.mode,
                pointer,
                shared: !still_pointer,
            });
        }
    }
    Ok(found)
}

/// How many downloads run at a time: several, as git-lfs runs them
/// (`lfs.concurrenttransfers`, 8 unless set to at least 1; at most 64
/// here), for a server or storage service answers each after a while.
fn concurrent_transfers(config: Option<&git2::Config>) -> usize {
    config
        .and_then(|c| c.get_i32("lfs.concurrenttransfers").ok())
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n >= 1)
        .map_or(8, |n| n.min(64))
}

/// `result`, or, when `skip` (`lfs.skipdownloaderrors`) and it failed
/// (for one object, or all), the failure said in the log and passed over.
fn tolerate(skip: bool, result: Result<(), Failure>) -> Result<(), Failure> {
    match result {
        Err(Failure::Failed(why) | Failure::Passing { why, .. }) if skip => {
            tracing::warn!(error = %why, "git-lfs objects not downloaded: their files stay pointers (lfs.skipdownloaderrors)");
            Ok(())
        }
        other => other,
    }
}

/// Bring the index entry of `f` up to date with the file at `file`.
fn record(index: &mut git2::Index, f: &PointerFile, file: &Path) -> Result<(), GitError> {
    let meta = fs::symlink_metadata(file).map_err(|e| GitError::io("stat", file, e))?;
    index
        .add(&index_entry(&f.path, f.blob, f.mode, &meta))
        .map_err(|e| GitError::local("update index", e))
}

/// Leave the LFS files `left_out` (by `lfs.fetchinclude`/`fetchexclude`)
/// of the worktree at `dir` their pointers, putting back those that came
/// as content from the previous tree; how many were put back.
fn leave_pointers(
    wt: &git2::Repository,
    index: &mut git2::Index,
    dir: &Path,
    left_out: &[PointerFile],
) -> Result<usize, GitError> {
    let mut restored = 0;
    for f in left_out.iter().filter(|f| f.shared) {
        let file = dir.join(std::ffi::OsStr::from_bytes(&f.path));
        restore_pointer(wt, f, &file)?;
        record(index, f, &file)?;
        restored += 1;
    }
    if !left_out.is_empty() {
        tracing::debug!(
            files = left_out.len(),
            restored,
            "git-lfs files left pointers by lfs.fetchinclude/lfs.fetchexclude"
        );
    }
    Ok(restored)
}

/// Whether the store at `objects` holds `p`.
fn stored(objects: &Path, p: &Pointer) -> bool {
    fs::metadata(objects.join(p.store_path())).is_ok_and(|m| m.len() == p.size)
}

/// A temporary name next to `file` (nothing there).
fn beside(file: &Path) -> PathBuf {
    let tmp = file.with_file_name(format!(
        ".{}.lfs-tmp",
        file.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = fs::remove_file(&tmp);
    tmp
}

/// Put the pointer of `f` back at `file`, which holds its content (shared
/// with a tree that fetched it): written aside with the file's
/// permissions, then renamed over it.
fn restore_pointer(wt: &git2::Repository, f: &PointerFile, file: &Path) -> Result<(), GitError> {
    let blob = wt
        .find_blob(f.blob)
        .map_err(|e| GitError::local(format!("read blob {}", f.blob), e))?;
    let tmp = beside(file);
    let write = || -> std::io::Result<()> {
        let mode = fs::metadata(file)?.permissions().mode() & 0o7777;
        fs::write(&tmp, blob.content())?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        fs::rename(&tmp, file)
    };
    write().map_err(|e| GitError::io("put the git-lfs pointer back at", file, e))
}

/// Replace `file` by the stored `object`: a hard link when it has the
/// file's permissions, else a copy (another filesystem, another mode).
fn put_in_place(object: &Path, file: &Path) -> std::io::Result<()> {
    let mode = fs::metadata(file)?.permissions().mode() & 0o7777;
    // (The executable bits decide: --group-write adds the group's to
    // both, the object's first.)
    let tmp = beside(file);
    let same_mode =
        fs::metadata(object).is_ok_and(|m| m.permissions().mode() & 0o111 == mode & 0o111);
    if !(same_mode && fs::hard_link(object, &tmp).is_ok()) {
        fs::copy(object, &tmp)?;
        let copy = fs::File::options().write(true).open(&tmp)?;
        copy.set_permissions(fs::Permissions::from_mode(mode))?;
        // (Dated as the object, for the same reason.)
        copy.set_modified(fs::metadata(object)?.modified()?)?;
    }
    fs::rename(&tmp, file)
}

/// Copy `from` into `out`, checking it is the object `p` names (no more
/// is read than one byte beyond its size); `cancel` stops it.
fn copy_checked(
    from: impl std::io::Read,
    out: &mut dyn Write,
    p: &Pointer,
    cancel: &Cancel,
) -> Result<(), Failure> {
    let mut from = from.take(p.size + 1);
    let mut hasher = openssl::sha::Sha256::new();
    let (mut got, mut buf) = (0u64, vec![0u8; 64 << 10]);
    loop {
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        let n = from
            .read(&mut buf)
            .map_err(|e| Failure::passing(e.to_string()))?;
        if n == 0 {
            break;
        }
        got += n as u64;
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("writing the object: {e}"))?;
    }
    let hash: String = hasher.finish().iter().map(|b| format!("{b:02x}")).collect();
    if got < p.size {
        // (The connection ended early.)
        return Err(Failure::passing(format!(
            "object {}: got {got} of its {} bytes",
            p.oid, p.size
        )));
    }
    if got != p.size || hash != p.oid {
        return Err(format!(
            "object {}: got {got} bytes hashing to {hash}, not its {} bytes",
            p.oid, p.size
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_transfers_as_git_lfs_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let read = |text: &str| {
            std::fs::write(&path, text).unwrap();
            concurrent_transfers(Some(&git2::Config::open(&path).unwrap()))
        };
        assert_eq!(concurrent_transfers(None), 8);
        assert_eq!(read(""), 8);
        for (set, runs) in [("3", 3), ("0", 8), ("-2", 8), ("x", 8), ("1000", 64)] {
            let text = format!("[lfs]\n concurrenttransfers = {set}\n");
            assert_eq!(read(&text), runs, "{set}");
        }
    }
}
