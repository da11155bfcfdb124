//! What starts a sync besides the timer, and what stops git-sync: signals
//! (SIGTERM/SIGINT stop, `--sync-on-signal` syncs) and a watcher on a local
//! source repository's refs. Triggers coalesce: a burst starts one sync.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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
            // Removals alone are no ref written (git deletes a ref under a
            // lock file it makes): a repository being removed wakes nothing.
            let written = is_write(&event.kind) && !matches!(event.kind, EventKind::Remove(_));
            if written && event.paths.iter().any(about_refs) {
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

/// Which directories a repository's path names now (device, inode): the
/// path itself, through a symlink if it is one, and its `.git`. A
/// repository cloned again at the same path, or a symlink pointed at
/// another, is another one.
type Identity = [Option<(u64, u64)>; 2];

fn identity(path: &Path) -> Identity {
    use std::os::unix::fs::MetadataExt;
    let of = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    [of(path), of(&path.join(".git"))]
}

/// How long a repository gone from its path is looked for again, after its
/// parent directory saw it go (a clone in place, a restore), and how often.
const LOOK_AGAIN_FOR: Duration = Duration::from_secs(10);
const LOOK_AGAIN_EVERY: Duration = Duration::from_millis(100);

/// The watcher on a local source repository, kept pointed at whatever
/// repository is at its path: inotify follows directories, not paths, so a
/// repository removed and cloned again (or restored, or a symlink pointed
/// elsewhere) at the same place would otherwise be left to polling. The
/// directory holding the path is watched for it: a repository put in its
/// place is watched at once, and synced once its HEAD names a commit.
pub struct LocalWatch {
    followed: Arc<Mutex<Followed>>,
    /// The watch on the path's parent directory.
    _parent: Option<notify::RecommendedWatcher>,
}

struct Followed {
    /// The source's URL (a path or `file://`) and its path, absolute but
    /// not resolved: a symlink may be pointed at another repository.
    url: String,
    path: PathBuf,
    /// The git directories watched, the repository's first.
    gitdirs: Option<Vec<PathBuf>>,
    identity: Identity,
    watcher: Option<notify::RecommendedWatcher>,
    /// Where a symlinked path leads, watched in its parent as the path is.
    resolved: Option<notify::RecommendedWatcher>,
    /// Whether a repository was watched before: another one found is new.
    watched_before: bool,
    /// Whether the first look, made before the first pass, is done.
    started: bool,
    sync_now: Arc<Notify>,
    /// Tells the thread that looks again.
    look_again: mpsc::Sender<()>,
}

#[derive(PartialEq, Eq)]
enum Look {
    /// The repository watched is still at the path.
    Same,
    /// A repository is at the path (and watched, unless that failed).
    Found,
    /// No repository is at the path.
    Missing,
}

impl LocalWatch {
    /// Watch the local repository `url` names (`None` for a network URL).
    pub fn start(url: String, sync_now: Arc<Notify>) -> Option<Self> {
        let path = std::path::absolute(crate::git::local_path(&url)?).ok()?;
        let (tx, rx) = mpsc::channel();
        let mut followed = Followed {
            url,
            path: path.clone(),
            gitdirs: None,
            identity: [None, None],
            watcher: None,
            resolved: None,
            watched_before: false,
            started: false,
            sync_now,
            look_again: tx.clone(),
        };
        followed.look();
        followed.started = true;
        let followed = Arc::new(Mutex::new(followed));
        // The thread holds no strong reference: the end of the watch drops
        // every sender, which ends it.
        let weak = Arc::downgrade(&followed);
        let spawned = std::thread::Builder::new()
            .name("local-watch".into())
            .spawn(move || look_again_when_told(&weak, &rx));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot watch where the local repository is");
        }
        let parent = watch_name(&path, tx);
        Some(LocalWatch {
            followed,
            _parent: parent,
        })
    }

    /// Look whether the repository watched is still at its path (a
    /// `stat`), and watch the one there if not.
    pub fn follow(&self) {
        lock(&self.followed).look();
    }
}

fn lock(f: &Mutex<Followed>) -> std::sync::MutexGuard<'_, Followed> {
    // A panic in `look` leaves nothing half-made that matters here.
    f.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Followed {
    fn look(&mut self) -> Look {
        let now = identity(&self.path);
        if self.gitdirs.is_some() && now == self.identity {
            return Look::Same;
        }
        self.watcher = None;
        self.resolved = std::fs::canonicalize(&self.path)
            .ok()
            .filter(|r| *r != self.path)
            .and_then(|r| watch_name(&r, self.look_again.clone()));
        self.identity = now;
        self.gitdirs = crate::git::local_refs_dirs(&self.url).filter(|d| !d.is_empty());
        let Some(dirs) = &self.gitdirs else {
            return Look::Missing;
        };
        let dir = &dirs[0]; // (not empty: filtered above)
        match watch_refs(dirs, self.sync_now.clone()) {
            Ok(w) => {
                self.watcher = Some(w);
                if !self.watched_before {
                    tracing::info!(refs = %dir.display(), "watching the local repository for changes");
                } else {
                    tracing::info!(refs = %dir.display(), "the local repository was replaced: watching the new one");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the local repository; polling only");
            }
        }
        // Its refs may differ from what was synced (or it was missing, and
        // passes failed): a sync, once they name a commit (a clone in place
        // writes them last, which the watch just made sees).
        if self.started && crate::git::local_head_resolves(&self.url) {
            self.sync_now.notify_one();
        }
        self.watched_before = true;
        Look::Found
    }
}

/// Watch the directory holding `path` for entries of its name made,
/// removed or renamed, and tell `tx`.
fn watch_name(path: &Path, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let parent = path.parent()?;
    let name = path.file_name()?.to_os_string();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let about_it = |p: &PathBuf| p.file_name() == Some(name.as_os_str());
            if is_write(&event.kind) && event.paths.iter().any(about_it) {
                let _ = tx.send(());
            }
        }
    });
    let watched = watcher.and_then(|mut w| {
        w.watch(parent, RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            // (Polls still find a repository put in its place.)
            tracing::info!(dir = %parent.display(), error = %e, "cannot watch where the local repository is; a repository replaced there is found by the next poll");
            None
        }
    }
}

/// At each word from the parent's watch, once a burst of them has settled,
/// look at the path again, and while no repository is there, again every
/// [`LOOK_AGAIN_EVERY`] for [`LOOK_AGAIN_FOR`] (a clone in place makes its
/// directory before its `.git`). Ends with the watch.
fn look_again_when_told(followed: &std::sync::Weak<Mutex<Followed>>, rx: &mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        let give_up = Instant::now() + LOOK_AGAIN_FOR;
        loop {
            match rx.recv_timeout(LOOK_AGAIN_EVERY) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let Some(followed) = followed.upgrade() else {
                return;
            };
            if lock(&followed).look() != Look::Missing || Instant::now() >= give_up {
                break;
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
