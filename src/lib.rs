//! git-sync: keep a directory in sync with a git repository and publish each
//! new commit atomically. See `../shared/design.md` for the contract.
//!
//! Modules, one per responsibility:
//! - [`config`]: flags, environment, validation → [`config::Config`]
//! - [`git`]: every libgit2 call (remote query, fetch, worktrees, gc)
//! - [`layout`]: the directories under `--root`
//! - [`root_lock`]: one git-sync per root
//! - [`safe_to_empty`]: never emptying `/`, a home or a project by mistake
//! - [`publish`]: making a worktree visible (the atomic symlink)
//! - [`paths`]: relative paths within the volume
//! - [`sync`]: one sync pass
//! - [`daemon`]: the loop and its failure policy
//! - [`triggers`], [`local_watch`]: signals, and the watcher on a local
//!   source, which start a pass at once
//! - [`pid1`]: a minimal init, when we are a container's first process
//! - [`systemd`]: telling systemd when git-sync is ready (`Type=notify`)
//! - [`file_stamp`]: telling a renewed file from the one read before

pub mod config;
pub mod credentials;
pub mod daemon;
pub mod file_stamp;
pub mod git;
pub mod hooks;
pub mod http;
pub mod layout;
pub mod local_watch;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod parallel;
pub mod paths;
pub mod pid1;
pub mod publish;
pub mod redact;
pub mod root_lock;
pub mod safe_to_empty;
pub mod sparse;
pub mod status_files;
pub mod sync;
pub mod systemd;
pub mod triggers;
pub mod user;

/// The version as upstream writes it (`v4.4.0`, from `git describe`):
/// `--version` prints it alone and the first log line carries it, so
/// scripts and log queries written for upstream read ours alike.
pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Lock `m`, also after a panic in another holder: what our mutexes guard
/// stays meaningful then (plain values, or state that is checked again on
/// disk), and a sidecar that stopped on a poisoned lock would serve nothing.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
