//! The watcher on a local source repository (`file://` or a path): a sync
//! within milliseconds of a commit, polling kept as the safety net.
//!
//! inotify follows directories, not paths: a repository removed and cloned
//! again (or restored, or a symlink pointed at another release) at the same
//! place would be left to polling. So the directory holding the path is
//! watched for it too: a repository put in its place is watched at once,
//! and synced once its HEAD names a commit. One inotify instance does it
//! all (the per-user limit on them is 128 by default), and one thread looks
//! at the path again when told.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// How long a repository gone from its path is looked for again, after its
/// parent directory saw it go (a clone in place, a restore), and how often.
const LOOK_AGAIN_FOR: Duration = Duration::from_secs(10);
const LOOK_AGAIN_EVERY: Duration = Duration::from_millis(100);

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

/// What the watcher's events are looked at for; set by [`Followed::look`],
/// read by the watcher's thread.
#[derive(Default)]
struct Interest {
    /// The git directories (the repository's, and a linked worktree's
    /// own) whose refs written wake a sync.
    gitdirs: Vec<PathBuf>,
    /// The repository's path, and where it leads when a symlink: an entry
    /// of that name made, removed or renamed makes the path looked at again.
    paths: Vec<PathBuf>,
}

impl Interest {
    fn on(&self, event: &notify::Event, sync_now: &Notify, look_again: &mpsc::Sender<()>) {
        if !is_write(&event.kind) {
            return;
        }
        if event.paths.iter().any(|p| self.paths.contains(p)) {
            let _ = look_again.send(());
        }
        // Removals alone are no ref written (git deletes a ref under a lock
        // file it makes): a repository being removed wakes nothing.
        let about_refs = |p: &PathBuf| self.gitdirs.iter().any(|g| is_ref_change(g, p));
        if !matches!(event.kind, EventKind::Remove(_)) && event.paths.iter().any(about_refs) {
            sync_now.notify_one();
        }
    }
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

/// Where `path` leads through symlinks; for a symlink whose target is
/// missing (a release removed, to be made again), where that target
/// would be: the directory it would come into is watched.
fn leads_to(path: &Path) -> Option<PathBuf> {
    if let Ok(real) = std::fs::canonicalize(path) {
        return Some(real);
    }
    let mut at = path.to_path_buf();
    // (As many links as the kernel follows; a loop of them ends here.)
    for _ in 0..40 {
        let target = std::fs::read_link(&at).ok()?;
        let next = at.parent()?.join(target);
        at = std::fs::canonicalize(next.parent()?)
            .ok()?
            .join(next.file_name()?);
        if std::fs::symlink_metadata(&at).is_err() {
            return Some(at);
        }
    }
    None
}

/// The watcher on a local source repository, kept pointed at whatever
/// repository is at its path (see the module's doc).
pub struct LocalWatch {
    followed: Arc<Mutex<Followed>>,
}

struct Followed {
    /// The source's URL (a path or `file://`) and its path, absolute but
    /// not resolved: a symlink may be pointed at another repository.
    url: String,
    path: PathBuf,
    /// The git directories of the repository found at the path, the
    /// repository's first.
    gitdirs: Option<Vec<PathBuf>>,
    identity: Identity,
    watcher: RecommendedWatcher,
    interest: Arc<RwLock<Interest>>,
    /// The watches made for the repository found (the parent of the path
    /// is watched for good).
    watches: Vec<PathBuf>,
    /// Whether a repository was watched before: another one found is new.
    watched_before: bool,
    /// Whether the first look, made before the first pass, is done.
    started: bool,
    sync_now: Arc<Notify>,
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
    /// Watch the local repository `url` names (`None` for a network URL,
    /// or when no watcher can be made: polling only, said in the log).
    pub fn start(url: String, sync_now: Arc<Notify>) -> Option<Self> {
        let path = std::path::absolute(crate::git::local_path(&url)?).ok()?;
        let (tx, rx) = mpsc::channel();
        let interest = Arc::new(RwLock::new(Interest {
            gitdirs: Vec::new(),
            paths: vec![path.clone()],
        }));
        let made = {
            let (interest, sync_now) = (interest.clone(), sync_now.clone());
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    read(&interest).on(&event, &sync_now, &tx);
                }
            })
        };
        let mut watcher = match made {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the local repository; polling only");
                return None;
            }
        };
        if let Some(parent) = path.parent() {
            if let Err(e) = watcher.watch(parent, RecursiveMode::NonRecursive) {
                // (Polls still find a repository put in its place.)
                tracing::info!(dir = %parent.display(), error = %e, "cannot watch where the local repository is; a repository replaced there is found by the next poll");
            }
        }
        let mut followed = Followed {
            url,
            path,
            gitdirs: None,
            identity: [None, None],
            watcher,
            interest,
            watches: Vec::new(),
            watched_before: false,
            started: false,
            sync_now,
        };
        followed.look();
        followed.started = true;
        let followed = Arc::new(Mutex::new(followed));
        // The thread holds no strong reference: the end of the watch ends
        // the watcher, whose callback holds the only sender, which ends it.
        let weak = Arc::downgrade(&followed);
        let spawned = std::thread::Builder::new()
            .name("local-watch".into())
            .spawn(move || look_again_when_told(&weak, &rx));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot watch where the local repository is");
        }
        Some(LocalWatch { followed })
    }

    /// Look whether the repository watched is still at its path (a
    /// `stat`), and watch the one there if not.
    pub fn follow(&self) {
        lock(&self.followed).look();
    }
}

fn lock(f: &Mutex<Followed>) -> std::sync::MutexGuard<'_, Followed> {
    // A panic in `look` leaves nothing half-made that matters here.
    f.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read(i: &RwLock<Interest>) -> std::sync::RwLockReadGuard<'_, Interest> {
    // Written whole under the lock: nothing half-made to see.
    i.read().unwrap_or_else(PoisonError::into_inner)
}

impl Followed {
    fn look(&mut self) -> Look {
        let now = identity(&self.path);
        if self.gitdirs.is_some() && now == self.identity {
            return Look::Same;
        }
        self.identity = now;
        self.gitdirs = crate::git::local_refs_dirs(&self.url).filter(|d| !d.is_empty());
        let resolved = leads_to(&self.path).filter(|r| *r != self.path);
        {
            // Not held across the watcher's calls below: they wait for its
            // thread, which takes it to read an event.
            let mut interest = self
                .interest
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            interest.gitdirs = self.gitdirs.clone().unwrap_or_default();
            interest.paths = std::iter::once(self.path.clone())
                .chain(resolved.clone())
                .collect();
        }
        let watched = self.watch_anew(resolved.as_deref());
        let Some(dir) = self.gitdirs.as_ref().and_then(|d| d.first()) else {
            return Look::Missing;
        };
        match watched {
            Ok(()) if self.watched_before => {
                tracing::info!(refs = %dir.display(), "the local repository was replaced: watching the new one");
            }
            Ok(()) => {
                tracing::info!(refs = %dir.display(), "watching the local repository for changes");
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

    /// Drop the watches made for the repository found before, and make
    /// those of the one found now: its git directories and refs, and the
    /// directory holding where a symlinked path leads.
    fn watch_anew(&mut self, resolved: Option<&Path>) -> notify::Result<()> {
        for old in self.watches.drain(..) {
            // (Gone with its directory, if that was removed.)
            let _ = self.watcher.unwatch(&old);
        }
        let parent = self.path.parent();
        let mut wanted = Vec::new();
        if let Some(p) = resolved
            .and_then(Path::parent)
            .filter(|p| Some(*p) != parent)
        {
            wanted.push((p.to_path_buf(), RecursiveMode::NonRecursive));
        }
        for gitdir in self.gitdirs.iter().flatten() {
            wanted.push((gitdir.clone(), RecursiveMode::NonRecursive));
            let refs = gitdir.join("refs");
            if refs.is_dir() {
                wanted.push((refs, RecursiveMode::Recursive));
            }
            // Refs kept in reftables: a new `tables.list` for every update.
            let reftable = gitdir.join("reftable");
            if reftable.is_dir() {
                wanted.push((reftable, RecursiveMode::NonRecursive));
            }
        }
        for (dir, mode) in wanted {
            // The parent of the path is watched for good.
            if Some(dir.as_path()) != parent {
                self.watcher.watch(&dir, mode)?;
                self.watches.push(dir);
            }
        }
        Ok(())
    }
}

/// At each word from the watcher about the path, once a burst of them has
/// settled, look at the path again, and while no repository is there,
/// again every [`LOOK_AGAIN_EVERY`] for [`LOOK_AGAIN_FOR`] (a clone in
/// place makes its directory before its `.git`). Ends with the watcher.
fn look_again_when_told(followed: &Weak<Mutex<Followed>>, rx: &mpsc::Receiver<()>) {
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
    use super::{is_ref_change, is_write, leads_to};
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
    fn a_dangling_symlink_leads_where_its_target_would_be() {
        let t = tempfile::TempDir::new().unwrap();
        let dir = std::fs::canonicalize(t.path()).unwrap();
        std::fs::create_dir(dir.join("releases")).unwrap();
        let link = |name: &str, to: &str| std::os::unix::fs::symlink(to, dir.join(name)).unwrap();
        link("current", "releases/app");
        link("via", "current");
        link("loop", "loop");
        let app = dir.join("releases/app");
        assert_eq!(leads_to(&dir.join("current")), Some(app.clone()));
        assert_eq!(leads_to(&dir.join("via")), Some(app.clone()));
        assert_eq!(leads_to(&dir.join("loop")), None);
        assert_eq!(leads_to(&dir.join("none")), None);
        std::fs::create_dir(&app).unwrap();
        assert_eq!(leads_to(&dir.join("via")), Some(app));
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
