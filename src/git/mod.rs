//! Every libgit2 call lives here, behind a small interface that speaks the
//! domain: ask the remote what a ref points at, fetch one commit, materialise
//! it as a worktree, drop what is no longer reachable.

mod auth;
mod big_files;
mod cancel;
mod client_cert;
mod config_file;
mod daemon_ls_refs;
mod depth;
mod fetch_v0;
mod fetch_v2;
mod gc;
mod http_config;
mod known_hosts;
mod lfs;
mod local;
mod ls_refs;
mod origin;
mod pack_copy;
mod pack_index;
mod partial;
mod pkt_line;
mod proxy;
mod proxy_command;
mod refs;
mod reftable;
mod remote;
mod socks;
mod socks_agent;
mod ssh_config;
mod ssh_home;
mod ssh_jump;
mod ssh_key;
mod ssh_ls_refs;
mod ssh_url;
mod stream;
mod submodules;
#[cfg(test)]
pub(crate) mod test_util;
mod tls;
mod tls_context;
mod tree_diff;
mod tree_path;
mod urlmatch;
mod v2_session;
mod worktree;

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::config::gitconfig::Tls;
pub use cancel::{Cancel, Hold};
pub(crate) use client_cert::certificates as certificates_in_pem;

/// Why git would not take `value` as a proxy (`http.proxy`), if it would
/// not; an empty value is no proxy. See `proxy.rs`.
pub fn proxy_refusal(value: &str) -> Option<String> {
    match value.trim() {
        "" => None,
        named => proxy::Proxy::parse(named).err(),
    }
}

pub use auth::{
    credentials_in_url, AskHelpers, Auth, CredentialSet, Credentials, HelperAsker, HostLogin,
    Password, SshAuth, SshClientConfig,
};
pub use gc::GcStats;
pub use local::{local_head_resolves, local_path, local_refs_dirs};
pub use partial::applies as filter_applies;
pub(crate) use proxy::for_go_client as go_client_proxy;
pub use proxy_command::SshProxy;
pub use remote::Target;
pub(crate) use socks_agent::through_socks;
pub use ssh_config::SYSTEM_FILE as SSH_SYSTEM_CONFIG;
pub use submodules::Superproject;
pub(crate) use tls::for_url as tls_for_url;
pub use tree_diff::ChangedPaths;
pub(crate) use urlmatch::{percent_decoded, url_matches};
pub use worktree::Base;

/// A commit hash.
pub type Hash = git2::Oid;

/// Name of the local branch our repository's HEAD is on.
pub const SYNC_BRANCH: &str = "git-sync";

/// What to add to libgit2's word for a repository of SHA-256 object names
/// ("unknown object format 'sha256'", "unknown remote object format
/// 'sha256'"): the libgit2 git-sync is built with knows SHA-1 only.
fn object_format_hint(message: &str) -> Option<&'static str> {
    message.contains("object format 'sha256'").then_some(
        " (a SHA-256 repository, made by git init --object-format=sha256: git-sync \
         syncs SHA-1 repositories only, as libgit2 does)",
    )
}

/// What to add when a ref was not found: an abbreviated hash cannot be
/// asked for (a remote knows refs and full hashes only); a missing HEAD
/// means an empty repository, or one whose HEAD names no branch (`near`
/// then holds some of its branches); a misspelt name, the names `near` it.
fn not_found_hint(git_ref: &str, near: &[String]) -> String {
    let quoted: Vec<String> = near.iter().map(|n| format!("{n:?}")).collect();
    let listed = match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, others)) => format!("{} or {last}", others.join(", ")),
        None => String::new(),
    };
    if (4..40).contains(&git_ref.len()) && git_ref.bytes().all(|b| b.is_ascii_hexdigit()) {
        " (an abbreviated hash cannot be looked up remotely: give all 40 characters)".into()
    } else if git_ref == "HEAD" && near.is_empty() {
        " (the repository has no commits yet, or no default branch)".into()
    } else if git_ref == "HEAD" {
        format!(" (its HEAD names no branch: give --ref one of its branches, such as {listed})")
    } else if git_ref.starts_with("origin/") || git_ref.starts_with("refs/remotes/") {
        " (remote-tracking names such as origin/main exist in a clone only: give the \
         remote's own name, main)"
            .into()
    } else if near.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {listed}?)")
    }
}

/// Config our repository starts with, before `--git-config` (which may
/// override it; submodule stores get both). `pack.windowMemory`: libgit2's
/// pack writer, which `--git-gc=aggressive` repacks with, redoes every
/// delta (other repacks copy them, see `pack_copy`); a 2 MiB window leaves
/// small files all 10 candidates and gives a large one one or two (a
/// repack of 300 MB of 1 MB binaries: 55 s of CPU before, 15 s after).
/// `gc.auto`, `maintenance.auto`: the store is collected by git-sync
/// (`--git-gc`); a git binary in a hook (a `git fetch`, the lazy fetch of a
/// partial store) would otherwise start a gc of its own in it, beside ours.
fn store_defaults() -> Vec<(String, String)> {
    vec![
        ("pack.windowMemory".into(), "2m".into()),
        ("gc.auto".into(), "0".into()),
        ("maintenance.auto".into(), "false".into()),
    ]
}

/// Why a commit named by its full hash cannot be synced: the repository
/// does not have it.
fn no_such_commit(hash: Hash) -> String {
    format!(
        "commit {hash} is not in the repository (no branch or tag reaches it); \
         --ref takes a commit the remote has, by its full hash"
    )
}

/// Errors of the git layer. URLs in messages are redacted.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{op} {url} failed: {message}")]
    Remote {
        op: &'static str,
        url: String,
        message: String,
    },
    #[error("ref {git_ref:?} not found in {url}{}", not_found_hint(.git_ref, .near))]
    RefNotFound {
        git_ref: String,
        url: String,
        /// Names the remote has near it (see `refs::near`).
        near: Vec<String>,
    },
    #[error("ref {git_ref:?} is ambiguous in {url}: {candidates}; give the full name")]
    AmbiguousRef {
        git_ref: String,
        url: String,
        candidates: String,
    },
    #[error("{name} in {url} is a {kind}, not a commit; only commits can be checked out")]
    NotACommit {
        name: String,
        url: String,
        kind: String,
    },
    #[error("{op} failed: {message}")]
    Local { op: String, message: String },
    /// Our object store could not give what it should hold: a pack or an
    /// object damaged or gone (a disk's fault, a hand's). Nothing the
    /// remote did; a store made afresh mends it.
    #[error("{op} failed: {message}")]
    Store { op: String, message: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

/// Whether libgit2's `e` says an object store could not give what it
/// holds (a pack or an object damaged or gone): see [`GitError::Store`].
fn is_store_damage(e: &git2::Error) -> bool {
    matches!(e.class(), git2::ErrorClass::Odb | git2::ErrorClass::Zlib)
}

impl GitError {
    fn local(op: impl Into<String>, e: git2::Error) -> Self {
        let (op, message) = (op.into(), crate::redact::redact(e.message()));
        match is_store_damage(&e) {
            true => GitError::Store { op, message },
            false => GitError::Local { op, message },
        }
    }
    /// This error as a step of `op`, of the same kind (a cancel stays one).
    fn within(self, op: String) -> Self {
        match self {
            GitError::Cancelled => self,
            GitError::Store { .. } => GitError::Store {
                op,
                message: self.to_string(),
            },
            _ => GitError::Local {
                op,
                message: self.to_string(),
            },
        }
    }
    fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        GitError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The error for a `--ref` that names no single ref of `url`.
fn ref_error(e: refs::NoRef, git_ref: &str, url: &str) -> GitError {
    let (git_ref, url) = (git_ref.to_string(), crate::redact::redact(url));
    match e {
        refs::NoRef::Missing(near) => GitError::RefNotFound { git_ref, url, near },
        refs::NoRef::Ambiguous(names) => GitError::AmbiguousRef {
            git_ref,
            url,
            candidates: names.join(", "),
        },
    }
}

/// The error for a ref that names a tree or a blob (a tag may do so).
fn not_a_commit(name: &str, url: &str, kind: Option<git2::ObjectType>) -> GitError {
    GitError::NotACommit {
        name: name.to_string(),
        url: crate::redact::redact(url),
        kind: kind.map_or("non-commit object", |k| k.str()).to_string(),
    }
}

/// libgit2's object cache, per open repository (its default: 256 MiB).
const OBJECT_CACHE_BYTES: libc::ssize_t = 4 << 20;

/// How much of a pack file libgit2 maps at a time, and how much of all
/// packs it keeps mapped before unmapping the least recently used windows
/// (its defaults on 64-bit: 1 GiB windows, 8 GiB in all).
const PACK_WINDOW_BYTES: usize = 8 << 20;
const PACK_MAPPED_LIMIT_BYTES: usize = 32 << 20;

/// Process-wide libgit2 settings. `network_timeout_ms` bounds a connect and
/// any single network read, so a hung server cannot outlive --sync-timeout.
/// The TLS settings are process-wide in libgit2, so they are applied here
/// (see `tls`).
pub fn init_globals(network_timeout_ms: i32, tls: &Tls) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let cas = tls::look_around();
        let timeout = std::time::Duration::from_millis(network_timeout_ms.max(0) as u64);
        if let Err(e) = stream::register(timeout) {
            tracing::warn!(error = %e, "using libgit2's own sockets (slower HTTP fetches)");
        }
        // SAFETY: these libgit2 options are set once, before any other
        // libgit2 call of this process, from a single thread.
        unsafe {
            // We run as arbitrary UIDs over volumes owned by someone else.
            let _ = git2::opts::set_verify_owner_validation(false);
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(network_timeout_ms);
            let _ = git2::opts::set_server_timeout_in_milliseconds(network_timeout_ms);
            // libgit2 keeps up to 256 MiB of parsed commits and trees per
            // open repository, and our walks read each one once: a sidecar
            // syncing a long history sat on 360 MB where 90 MB were needed
            // (a first sync of 20,000 commits from a local path).
            let _ = git2::opts::set_cache_max_size(OBJECT_CACHE_BYTES);
            // Mapped pack pages count in the resident set and in a
            // container's memory: with whole packs mapped, an update that
            // changed a 100 MB file peaked at 412 MiB (both versions' packs
            // mapped) and a first sync of 50 x 1 MB binaries from a local
            // path at 62 MiB; with these windows, 312 and 20 MiB, in the
            // same time (benches/sync_vs_git.rs).
            let _ = git2::opts::set_mwindow_size(PACK_WINDOW_BYTES);
            let _ = git2::opts::set_mwindow_mapped_limit(PACK_MAPPED_LIMIT_BYTES);
        }
        // libgit2 hashes every object it reads again, to check it; git
        // does not (objects are checked as they arrive: the indexer hashes
        // each one, our pack copies check CRCs, zlib its own sums). That
        // was 6% of a first sync's CPU, spent on the checkout alone.
        git2::opts::strict_hash_verification(false);
        // Nor does an index entry need its blob in the store: a partial
        // clone's sparse checkout records the files it leaves out, whose
        // contents were never fetched (as git records them). We create no
        // objects, and the entries we add come from trees.
        git2::opts::strict_object_creation(false);
        tls::configure(cas, tls);
        ls_refs::init(timeout, tls);
        skip_unreadable_user_config();
        // SAFETY: still before any other libgit2 call, on one thread.
        unsafe { worktree::find_global_files() };
    });
}

/// Whether libgit2 can read the system and user git config files (a
/// syntax error in `~/.gitconfig` fails every repository operation).
pub fn check_user_config() -> Result<(), GitError> {
    git2::Config::open_default()
        .map(drop)
        .map_err(|e| GitError::local("read the git config", e))
}

/// libgit2 fails every repository operation when it cannot even stat a
/// user-level config file, as when an arbitrary UID runs with a HOME it may
/// not enter (`/root`); git warns and goes on. Leave such a level out, so
/// that the same holds here.
fn skip_unreadable_user_config() {
    use git2::ConfigLevel;
    for (level, file) in [
        (ConfigLevel::Global, ".gitconfig"),
        (ConfigLevel::XDG, "config"),
    ] {
        // SAFETY: called once from init_globals, before any other libgit2
        // call of this process, from a single thread.
        let Ok(dirs) = (unsafe { git2::opts::get_search_path(level) }) else {
            continue;
        };
        let dirs = dirs.to_string_lossy().into_owned();
        let denied = std::env::split_paths(&dirs).map(|d| d.join(file)).find(|p| {
            matches!(std::fs::metadata(p), Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied)
        });
        if let Some(path) = denied {
            tracing::warn!(path = %path.display(), "cannot read this git config (permission denied): ignored, as git does");
            // SAFETY: as above.
            if let Err(e) = unsafe { git2::opts::set_search_path(level, "") } {
                tracing::warn!(error = %e.message(), "cannot leave that git config out");
            }
        }
    }
}

/// When `dir` is the working tree of a git repository with files checked
/// out (tracked paths present in `dir`): `Some` of its `origin` URL, if it
/// has one. `None` for anything else, our own roots included (their
/// commits are checked out in worktrees, never in the root).
pub fn checked_out_clone(dir: &Path) -> Option<Option<String>> {
    let repo = git2::Repository::open_ext(
        dir.join(".git"),
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()?;
    if repo.is_bare() || repo.workdir().is_none() {
        return None;
    }
    let index = repo.index().ok()?;
    if !any_on_disk(dir, index.iter()) {
        return None;
    }
    let origin = repo
        .find_remote("origin")
        .ok()
        .and_then(|r| r.url().ok().map(str::to_string));
    Some(origin)
}

/// When `dir` lies below the top of a git working tree (on the same
/// filesystem) and holds files that repository tracks, present on disk:
/// the top of that working tree. A parent repository that tracks nothing
/// in `dir` (a build directory it ignores, say) is no sign.
pub fn tracked_within(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let repo = git2::Repository::open_ext(
        dir.parent()?,
        git2::RepositoryOpenFlags::empty(),
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()?;
    let top = repo.workdir()?.canonicalize().ok()?;
    let rel = dir.strip_prefix(&top).ok()?.as_os_str().as_bytes();
    if rel.is_empty() {
        return None;
    }
    let prefix = [rel, b"/"].concat();
    let index = repo.index().ok()?;
    let first = index.find_prefix(prefix.clone()).ok()?;
    let below = (first..index.len())
        .filter_map(|i| index.get(i))
        .take_while(|e| e.path.starts_with(&prefix));
    any_on_disk(&top, below).then_some(top)
}

/// Whether any of the first few of these index `entries` of the working
/// tree at `top` is on disk: what tells files checked out from an index
/// left alone.
fn any_on_disk(top: &Path, entries: impl Iterator<Item = git2::IndexEntry>) -> bool {
    use std::os::unix::ffi::OsStrExt;
    entries.take(64).any(|e| {
        top.join(std::ffi::OsStr::from_bytes(&e.path))
            .symlink_metadata()
            .is_ok()
    })
}

/// The repository at `gitdir`, exactly there.
fn open_gitdir(gitdir: &Path) -> Result<git2::Repository, GitError> {
    git2::Repository::open_ext(
        gitdir,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .map_err(|e| GitError::local(format!("open {}", gitdir.display()), e))
}

/// Our git repository at `<root>/.git`.
pub struct GitRepo {
    repo: git2::Repository,
    gitdir: PathBuf,
    /// Credentials for the current pass.
    credentials: CredentialSet,
    /// Why the last SSH host key was refused (libgit2 loses the message).
    hostkey_error: std::cell::RefCell<Option<String>>,
    /// The `--git-config` pairs applied, for submodule stores (git's
    /// `--global` scope reaches them too).
    applied_config: Vec<(String, String)>,
    /// What we know of the object store without reading it (see `gc`).
    known: gc::Known,
    /// The proxy and extra headers of each remote URL, decided on first
    /// use.
    per_url: std::cell::RefCell<std::collections::HashMap<String, remote::UrlSettings>>,
    /// The top-level names of the last commit checked for intactness.
    top_level: std::cell::RefCell<Option<(Hash, Vec<std::ffi::OsString>)>>,
    /// The trees the last checkout's survey found clean (see `tree_path`).
    clean_trees: std::cell::RefCell<std::collections::HashSet<git2::Oid>>,
    /// The last commit and depth whose history was found deep enough.
    deep_enough: std::cell::Cell<Option<(Hash, u32)>>,
    /// What the server of each HTTP(S) URL was found to want and speak
    /// (see `ls_refs`).
    http_servers: std::cell::RefCell<std::collections::HashMap<String, ls_refs::Known>>,
    /// The same for each SSH or git:// server, by its URL's key, also
    /// what earlier processes found (see `v2_session::saved`).
    v2_servers: std::cell::RefCell<v2_session::saved::Servers>,
    /// `--filter`, when it applies (see `partial`).
    filter: Option<String>,
    /// The URLs whose servers refused it, though they offer filters.
    filter_refused: std::cell::RefCell<std::collections::HashSet<String>>,
}

impl GitRepo {
    /// Open the repository at `root/.git`, if it is one we made.
    pub fn open(root: &Path) -> Result<Self, GitError> {
        let gitdir = root.join(".git");
        config_file::forget_if_unreadable(&gitdir);
        let repo = open_gitdir(&gitdir)?;
        if repo.is_bare() {
            return Err(GitError::Local {
                op: format!("open {}", gitdir.display()),
                message: "not a git-sync repository".into(),
            });
        }
        // Our repository's HEAD is always on refs/heads/git-sync (maybe unborn).
        let expected = format!("refs/heads/{SYNC_BRANCH}");
        let on_branch = repo
            .find_reference("HEAD")
            .ok()
            .and_then(|h| h.symbolic_target().ok().flatten().map(|t| t == expected))
            .unwrap_or(false);
        if !on_branch {
            return Err(GitError::Local {
                op: format!("open {}", gitdir.display()),
                message: "HEAD is not on the git-sync branch".into(),
            });
        }
        // The branch's file damaged (by a disk, a hand) fails every pass
        // that moves it: as unusable as a damaged HEAD. (Unborn is fine.)
        match repo.find_reference(&expected) {
            Err(e) if e.code() != git2::ErrorCode::NotFound => {
                return Err(GitError::local(format!("open {}", gitdir.display()), e));
            }
            _ => {}
        }
        Ok(GitRepo::assemble(
            repo,
            gitdir,
            CredentialSet::default(),
            store_defaults(),
        ))
    }

    /// A `GitRepo` of the store `repo` at `gitdir`, with what is known of
    /// its objects loaded and nothing yet learned of its remotes.
    fn assemble(
        repo: git2::Repository,
        gitdir: PathBuf,
        credentials: CredentialSet,
        applied_config: Vec<(String, String)>,
    ) -> GitRepo {
        GitRepo {
            repo,
            known: gc::Known::load(&gitdir),
            v2_servers: std::cell::RefCell::new(v2_session::saved::load(&gitdir)),
            gitdir,
            credentials,
            hostkey_error: std::cell::RefCell::new(None),
            applied_config,
            per_url: Default::default(),
            top_level: Default::default(),
            clean_trees: Default::default(),
            deep_enough: Default::default(),
            http_servers: Default::default(),
            filter: None,
            filter_refused: Default::default(),
        }
    }

    /// Create a new repository at `root/.git`, HEAD on the git-sync branch.
    pub fn init(root: &Path) -> Result<Self, GitError> {
        let mut opts = git2::RepositoryInitOptions::new();
        // No external templates (hook samples of an installed git): we
        // never run hooks, and the image has none anyway.
        opts.initial_head(SYNC_BRANCH)
            .no_reinit(true)
            .mkpath(true)
            .external_template(false);
        let repo = git2::Repository::init_opts(root, &opts)
            .map_err(|e| GitError::local(format!("init {}", root.display()), e))?;
        // No reflogs: they would grow forever and name commits gc dropped.
        repo.config()
            .and_then(|mut c| c.set_bool("core.logAllRefUpdates", false))
            .map_err(|e| GitError::local("configure new repository", e))?;
        Self::open(root)
    }

    /// Let go of what libgit2 keeps for the packs it opened, the largest
    /// part a cache of delta bases of up to 16 MiB per pack that lives as
    /// long as the repository is open: an idle daemon needs none of it
    /// (after five updates of a 20,000-commit history at depth 0, the heap
    /// kept idle went from 6.5 to 5 MiB; see `memory`). Kept open as it is
    /// when it cannot be opened again (the next pass will say why).
    pub fn release_caches(&mut self) {
        match open_gitdir(&self.gitdir) {
            Ok(repo) => self.repo = repo,
            Err(e) => tracing::debug!(error = %e, "repository not reopened"),
        }
    }

    /// Use these credentials for the remote from now on (once a pass: the
    /// OpenSSH configuration is read again where it changed).
    pub fn set_credentials(&mut self, credentials: CredentialSet) {
        // The URLs' SSH destinations were decided with the OpenSSH
        // configuration the credentials name (before the first, with none).
        let client = |c: &CredentialSet| c.ssh.as_ref().map(|s| s.client_config.clone());
        if client(&self.credentials) != client(&credentials) {
            self.per_url.borrow_mut().clear();
        }
        self.credentials = credentials;
        self.reread_changed_ssh_config();
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &CredentialSet {
        &self.credentials
    }

    pub fn gitdir(&self) -> &Path {
        &self.gitdir
    }

    /// Add config entries (`--git-config` and the like) to those this
    /// repository runs with; they live in `config_file::FILE`, written
    /// whole, so keys given at an earlier start and not now are gone. Keys
    /// libgit2 does not use are stored all the same (harmless, and visible
    /// to a git binary in hooks).
    pub fn apply_config(&mut self, pairs: &[(String, String)]) -> Result<(), GitError> {
        self.applied_config.extend_from_slice(pairs);
        config_file::install(&self.repo, &self.gitdir, &self.applied_config)?;
        // libgit2 caches the parsed config of an open repository.
        self.reopen()
    }

    /// Our pack writer (gc, local fetches): every core for the delta
    /// search, as git's pack-objects, and stopped by `cancel` (libgit2
    /// reports progress between objects; a `false` ends the write).
    fn pack_builder(&self, cancel: &Cancel) -> Result<git2::PackBuilder<'_>, git2::Error> {
        let mut pb = self.repo.packbuilder()?;
        pb.set_threads(0);
        let go_on = cancel.clone();
        pb.set_progress_callback(move |_, _, _| !go_on.is_cancelled())?;
        Ok(pb)
    }

    /// Whether the commit is in our object database.
    pub fn has_commit(&self, hash: Hash) -> bool {
        self.repo.find_commit(hash).is_ok()
    }

    /// Point our branch (HEAD) at `hash`, so `git -C root log` shows it.
    pub fn set_sync_branch(&self, hash: Hash) -> Result<(), GitError> {
        self.repo
            .reference(
                &format!("refs/heads/{SYNC_BRANCH}"),
                hash,
                true,
                "git-sync: publish",
            )
            .map(|_| ())
            .map_err(|e| GitError::local("update branch git-sync", e))
    }

    /// Re-open the repository, dropping libgit2's caches of packs and refs.
    fn reopen(&mut self) -> Result<(), GitError> {
        self.repo = git2::Repository::open(&self.gitdir)
            .map_err(|e| GitError::local(format!("open {}", self.gitdir.display()), e))?;
        Ok(())
    }
}

/// Parse a full 40-hex commit hash.
pub fn parse_full_hash(s: &str) -> Option<Hash> {
    (s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.parse::<Hash>().ok())
        .flatten()
}
