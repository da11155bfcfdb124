//! Dest mode: the served directory itself mirrors the checked-out commit.
//!
//! The whole directory cannot be swapped atomically (it is a volume mount),
//! so every file is: a new or changed file is written under a temporary name
//! in its own directory and renamed into place; only then are removed files
//! and emptied directories deleted. A reader never sees a torn or missing
//! file that exists in both versions; between two commits it may briefly see
//! a mix of files. No git state is ever written into the served directory
//! (the worktree's `.git` file is not copied; a `.git` found there, as the
//! 2015 git-sync left, is removed).
//!
//! Which commit the directory holds is recorded in the private state
//! directory, and trusted only after this process has mirrored it once: at
//! start the directory is always reconciled, every file compared, which
//! repairs whatever happened to it meanwhile. From then on an update looks
//! at the paths the commit changed only (when the caller knows them): a
//! one-file commit to a 50,000-file site copies one file rather than
//! reading 100,000. Every pass checks that the names at the top of the
//! tree mirrored last are all still there, as link mode checks its tree:
//! if not (files removed by hand, the directory emptied), the directory
//! is no longer trusted, and every file is compared again.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

mod mirror;

use super::{err, PublishError, Publisher};
use crate::git::{ChangedPaths, Hash};
use crate::paths::{holds_all, holds_anything};
use mirror::{mirror, top_names, MirrorStats};

/// Suffix of the temporary names files are written under.
const TMP_SUFFIX: &str = ".git-sync-tmp";

/// Dest mode publisher.
#[derive(Debug)]
pub struct DestPublisher {
    dest: PathBuf,
    marker: PathBuf,
    /// Whether `dest` was reconciled by this process, and holds what it
    /// left there.
    verified: bool,
    /// Whether this process mirrored a commit into `dest` once.
    mirrored_once: bool,
    /// The names at the top of the tree mirrored last.
    top: Vec<OsString>,
}

impl DestPublisher {
    /// `state_dir` is private: the marker of the mirrored hash lives there.
    pub fn new(dest: &Path, state_dir: &Path) -> Self {
        DestPublisher {
            dest: dest.to_path_buf(),
            marker: state_dir.join("dest-published"),
            verified: false,
            mirrored_once: false,
            top: Vec::new(),
        }
    }

    /// After this process first mirrored `hash` (every file compared), say
    /// what it found that no commit explains: the directory other than
    /// `hash`'s tree although `hash` was mirrored into it (changed by hand,
    /// or the tree made again another way: other sparse patterns, a
    /// pre-publish hook writing other bytes), or entries no commit
    /// mirrored by git-sync's private state holds (put there by hand, or
    /// left by a container whose private state is gone). Removals
    /// between two known commits are the commit's, and not worth a line.
    fn say_what_the_first_mirror_found(&self, hash: Hash, stats: &MirrorStats) {
        let dest = self.dest.display();
        match self.last_published() {
            Some(left) if left == hash && stats.written + stats.removed > 0 => {
                tracing::info!(%dest, %hash, written = stats.written, removed = stats.removed,
                    "the dest directory differed from this commit's tree (changed by hand, or the tree made again another way): brought in line");
            }
            None if stats.removed > 0 => {
                tracing::info!(%dest, removed = stats.removed,
                    "removed from the dest directory what the commit does not hold (an earlier commit's files, or files put there by hand)");
            }
            _ => {}
        }
    }
}

impl Publisher for DestPublisher {
    fn place(&self) -> &Path {
        &self.dest
    }

    fn current(&self) -> Option<Hash> {
        // (As link mode's check of its tree: the top, one directory read.)
        (self.verified && holds_all(&self.dest, &self.top))
            .then(|| self.last_published())
            .flatten()
    }

    fn uses_changes(&self) -> bool {
        true
    }

    fn readers_use_worktree(&self) -> bool {
        false
    }

    /// The commit an earlier run mirrored, if the directory holds anything
    /// (it is compared file by file at the first pass).
    fn served_from_before(&self) -> Option<Hash> {
        self.last_published().filter(|_| holds_anything(&self.dest))
    }

    /// What the marker records, mirrored by this process or an earlier one.
    fn last_published(&self) -> Option<Hash> {
        fs::read_to_string(&self.marker).ok()?.trim().parse().ok()
    }

    fn publish(
        &mut self,
        hash: Hash,
        worktree: &Path,
        changed: Option<&ChangedPaths>,
    ) -> Result<(), PublishError> {
        // What changed since a commit this process mirrored, and the
        // directory holds as it left it; else every file.
        let scope = changed
            .filter(|c| self.current() == Some(c.from))
            .map(Scope::of);
        // Until this succeeds the directory may hold part of `hash` while
        // the marker names the commit before (a path changed there and
        // changed back next would be left as it is): a failure means every
        // file is compared next time.
        self.verified = false;
        fs::create_dir_all(&self.dest).map_err(err(&self.dest))?;
        let stats = mirror(worktree, &self.dest, scope.as_ref())?;
        self.top = top_names(worktree)?;
        if !self.mirrored_once {
            self.say_what_the_first_mirror_found(hash, &stats);
        }
        tracing::debug!(
            written = stats.written,
            removed = stats.removed,
            unchanged = stats.unchanged,
            only_changed_paths = scope.is_some(),
            "dest directory updated"
        );
        let tmp = self.marker.with_extension("tmp");
        fs::write(&tmp, format!("{hash}\n")).map_err(err(&tmp))?;
        fs::rename(&tmp, &self.marker).map_err(err(&self.marker))?;
        self.verified = true;
        self.mirrored_once = true;
        Ok(())
    }
}

/// The paths a mirror pass looks at, when not all: those a commit changed
/// (each with all below it) and the directories on the way to them.
#[derive(Debug)]
pub struct Scope {
    whole: HashSet<PathBuf>,
    on_the_way: HashSet<PathBuf>,
}

impl Scope {
    fn of(changed: &ChangedPaths) -> Scope {
        let whole: HashSet<PathBuf> = changed.paths.iter().cloned().collect();
        let on_the_way = whole
            .iter()
            .flat_map(|p| p.ancestors().skip(1))
            .map(Path::to_path_buf)
            .collect();
        Scope { whole, on_the_way }
    }

    /// How to treat the entry `rel` of a directory in scope: `None` to
    /// leave it, `Some(None)` for all of it, `Some(Some(self))` to look
    /// into it for what changed.
    fn below(&self, rel: &Path) -> Option<Option<&Scope>> {
        if self.whole.contains(rel) {
            Some(None)
        } else if self.on_the_way.contains(rel) {
            Some(Some(self))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_failed_publish_every_file_is_compared_again() {
        let t = tempfile::TempDir::new().unwrap();
        let (dest, state) = (t.path().join("dest"), t.path().join("state"));
        fs::create_dir_all(&state).unwrap();
        let tree = |name: &str, text: &str| {
            let dir = t.path().join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("page.html"), text).unwrap();
            dir
        };
        let hash = |n: u8| Hash::from_bytes(&[n; 20]).unwrap();
        let (a, b, c) = (hash(1), hash(2), hash(3));
        let mut p = DestPublisher::new(&dest, &state);
        p.publish(a, &tree("a", "A"), None).unwrap();
        assert_eq!(p.current(), Some(a));

        // B is mirrored, but its marker cannot be written.
        let marker = state.join("dest-published");
        fs::remove_file(&marker).unwrap();
        fs::create_dir_all(marker.join("in-the-way")).unwrap();
        let a_to_b = ChangedPaths {
            from: a,
            paths: vec!["page.html".into()],
        };
        assert!(p.publish(b, &tree("b", "B"), Some(&a_to_b)).is_err());
        assert_eq!(fs::read_to_string(dest.join("page.html")).unwrap(), "B");
        fs::remove_dir_all(&marker).unwrap();
        fs::write(&marker, format!("{a}\n")).unwrap();
        // What a restart would find served: the marker's commit, while
        // the directory holds anything.
        let restarted = DestPublisher::new(&dest, &state);
        assert_eq!(restarted.served_from_before(), Some(a));

        // C holds what A holds: nothing changed from A, but the directory
        // is not A's.
        let a_to_c = ChangedPaths {
            from: a,
            paths: vec![],
        };
        p.publish(c, &tree("c", "A"), Some(&a_to_c)).unwrap();
        assert_eq!(fs::read_to_string(dest.join("page.html")).unwrap(), "A");
        assert_eq!(p.current(), Some(c));
        fs::remove_file(dest.join("page.html")).unwrap();
        assert_eq!(
            p.served_from_before(),
            None,
            "an empty directory serves nothing"
        );
    }
}
