//! Publishing a checked-out commit to readers, in one of two ways behind
//! one trait:
//! - [`LinkPublisher`] (link mode, the default): a relative symlink swapped
//!   atomically; readers see one whole tree or the other.
//! - [`DestPublisher`] (dest mode, the 2015 contract): the served directory
//!   itself is updated file by file, each file atomically.

mod dest;
mod link;

use std::io;
use std::path::{Path, PathBuf};

pub use dest::DestPublisher;
pub use link::LinkPublisher;

use crate::git::{ChangedPaths, Hash};

/// Errors while publishing.
#[derive(Debug, thiserror::Error)]
#[error("publish {path}: {source}")]
pub struct PublishError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> PublishError + '_ {
    move |source| PublishError {
        path: path.to_path_buf(),
        source,
    }
}

/// Something that makes a checked-out commit visible to readers.
pub trait Publisher {
    /// Where readers look: the link, or the dest directory.
    fn place(&self) -> &Path;
    /// The hash readers currently see, if known.
    fn current(&self) -> Option<Hash>;
    /// The hash whose tree a new one may share its unchanged files with:
    /// the one last published, also where [`Publisher::current`] does not
    /// vouch for what readers see yet (the sharing checks every file
    /// against that tree's index anyway).
    fn last_published(&self) -> Option<Hash> {
        self.current()
    }
    /// What readers see at start, before this process published anything:
    /// the commit an earlier run left them, if any.
    fn served_from_before(&self) -> Option<Hash> {
        self.current()
    }
    /// Make the worktree at `worktree` (holding `hash`) the visible one.
    /// `changed`, when the caller knows it: what differs from the commit
    /// it names to `hash` (see [`Publisher::uses_changes`]).
    fn publish(
        &mut self,
        hash: Hash,
        worktree: &Path,
        changed: Option<&ChangedPaths>,
    ) -> Result<(), PublishError>;
    /// Whether [`Publisher::publish`] makes use of the paths a commit
    /// changed since [`Publisher::current`] (which cost a walk of the
    /// trees to find): a publisher that copies files does.
    fn uses_changes(&self) -> bool {
        false
    }
    /// Whether readers read the published worktree itself (through a link)
    /// rather than a copy: only then must it stay as published until it
    /// is retired.
    fn readers_use_worktree(&self) -> bool {
        true
    }
    /// The name of the directory in `.worktrees` readers are sent to, when
    /// they read one (it may be a stand-in, see `Layout::stand_in`).
    fn served_name(&self) -> Option<String> {
        None
    }
}
