//! What starts a sync besides the timer, and what stops git-sync: signals
//! (SIGTERM/SIGINT stop, `--sync-on-signal` syncs) and a watcher on a local
//! source repository's refs. Triggers coalesce: a burst starts one sync.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use signal_hook::consts::{SIGINT, SIGTERM};
use tokio::sync::{watch, Notify};

/// Listen for signals on a thread. Returns the shutdown flag: it turns true
/// at the first SIGTERM or SIGINT; a second one exits at once.
pub fn install_signals(
    sync_signal: Option<i32>,
    sync_now: Arc<Notify>,
) -> std::io::Result<watch::Receiver<bool>> {
    let mut wanted = vec![SIGTERM, SIGINT];
    wanted.extend(sync_signal);
    let mut signals = signal_hook::iterator::Signals::new(&wanted)?;
    let (tx, rx) = watch::channel(false);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGTERM || sig == SIGINT {
                    if *tx.borrow() {
                        tracing::warn!(signal = sig, "second stop signal: exiting now");
                        std::process::exit(1);
                    }
                    tracing::info!(signal = sig, "stop signal: finishing");
                    let _ = tx.send(true);
                } else {
                    tracing::info!(signal = sig, "sync signal received");
                    sync_now.notify_one();
                }
            }
        })?;
    Ok(rx)
}

/// Whether an event writes something: git moves a ref by creating
/// `<ref>.lock` and renaming it over the ref. Opening and reading (which a
/// sync of this very repository does) must not count, or every pass would
/// start the next one.
fn is_write(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(m) => !matches!(m, ModifyKind::Metadata(_)),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Whether an event path is about refs (a branch, tag or HEAD moved).
fn is_ref_change(gitdir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(gitdir) else {
        return false;
    };
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    matches!(
        first.as_deref(),
        Some("refs" | "HEAD" | "packed-refs" | "reftable")
    )
}

/// Watch `gitdirs` (a local source repository's git directory, and a
/// linked worktree's own) and wake a sync whenever their refs change. The
/// watcher lives as long as the value.
fn watch_refs(
    gitdirs: &[PathBuf],
    sync_now: Arc<Notify>,
) -> notify::Result<notify::RecommendedWatcher> {
    let roots = gitdirs.to_vec();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let about_refs = |p: &PathBuf| roots.iter().any(|root| is_ref_change(root, p));
            if is_write(&event.kind) && event.paths.iter().any(about_refs) {
                sync_now.notify_one();
            }
        }
    })?;
    for gitdir in gitdirs {
        watcher.watch(gitdir, RecursiveMode::NonRecursive)?;
        let refs = gitdir.join("refs");
        if refs.is_dir() {
            watcher.watch(&refs, RecursiveMode::Recursive)?;
        }
        // Refs kept in reftables: a new `tables.list` for every update.
        let reftable = gitdir.join("reftable");
        if reftable.is_dir() {
            watcher.watch(&reftable, RecursiveMode::NonRecursive)?;
        }
    }
    Ok(watcher)
}

/// Which directory a path names now (device, inode): a repository cloned
/// again at the same path is another one.
fn identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir).ok()?;
    Some((m.dev(), m.ino()))
}

/// The watcher on a local source repository, kept pointed at whatever
/// repository is at its path: inotify follows directories, not paths, so a
/// repository removed and cloned again (or restored) at the same place
/// would otherwise be left to polling.
pub struct LocalWatch {
    /// The git directories watched, the repository's first.
    gitdirs: Option<Vec<PathBuf>>,
    identity: Option<(u64, u64)>,
    watcher: Option<notify::RecommendedWatcher>,
    sync_now: Arc<Notify>,
}

impl LocalWatch {
    pub fn new(sync_now: Arc<Notify>) -> Self {
        LocalWatch {
            gitdirs: None,
            identity: None,
            watcher: None,
            sync_now,
        }
    }

    /// Watch the repository whose git directories `find` names (`None`:
    /// there is none at the moment), unless the one looked at last is
    /// still there: then only a `stat`, and `find` (which opens the
    /// repository) is not called. A watch that failed is not tried again
    /// until the repository changes.
    pub fn follow(&mut self, find: impl FnOnce() -> Option<Vec<PathBuf>>) {
        if let Some(dir) = self.gitdirs.as_ref().and_then(|d| d.first()) {
            if identity(dir) == self.identity {
                return;
            }
        }
        let replaced = self.gitdirs.is_some();
        self.watcher = None;
        self.gitdirs = find().filter(|d| !d.is_empty());
        let Some(dirs) = &self.gitdirs else {
            return;
        };
        let dir = &dirs[0]; // (not empty: filtered above)
        self.identity = identity(dir);
        match watch_refs(dirs, self.sync_now.clone()) {
            Ok(w) => {
                if replaced {
                    tracing::info!(refs = %dir.display(), "the local repository was replaced: watching the new one");
                } else {
                    tracing::info!(refs = %dir.display(), "watching the local repository for changes");
                }
                self.watcher = Some(w);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the local repository; polling only");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_ref_change, is_write};
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, EventKind, MetadataKind, ModifyKind,
        RenameMode,
    };
    use std::path::Path;

    #[test]
    fn only_writes_wake_a_sync() {
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert!(is_write(&kind), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
        ] {
            assert!(!is_write(&kind), "{kind:?}");
        }
    }

    #[test]
    fn only_refs_wake_a_sync() {
        let g = Path::new("/r/.git");
        assert!(is_ref_change(g, Path::new("/r/.git/refs/heads/main.lock")));
        assert!(is_ref_change(g, Path::new("/r/.git/HEAD")));
        assert!(is_ref_change(g, Path::new("/r/.git/packed-refs")));
        assert!(is_ref_change(g, Path::new("/r/.git/reftable/tables.list")));
        assert!(!is_ref_change(g, Path::new("/r/.git/objects/ab/cd")));
        assert!(!is_ref_change(g, Path::new("/r/.git/index")));
    }
}
