//! What we know of the object store without reading it all: whether it is
//! already what a gc would write, and (at `--depth=0`) which commits reach
//! every object in it, remembered across restarts.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::{list_packs, loose_dirs};
use crate::git::{GitRepo, Hash};

/// The object store holds one pack with exactly the objects of `keep`,
/// each `depth` deep, and nothing else: a gc for the same would rewrite it
/// as it is. True after our own gc, and after a fetch into an empty store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::git) struct MinimalStore {
    keep: BTreeSet<Hash>,
    depth: u32,
    pack: String,
}

impl MinimalStore {
    /// The claim a store of `packs` and `loose` objects would make for
    /// `keep`: only a single pack can be minimal.
    pub(super) fn of(packs: &[String], loose: usize, keep: &[Hash], depth: u32) -> Option<Self> {
        match packs {
            [pack] if loose == 0 => Some(MinimalStore {
                keep: keep.iter().copied().collect(),
                depth,
                pack: pack.clone(),
            }),
            _ => None,
        }
    }
}

/// What we know of the object store without reading it all. `tips` outlives
/// the process in [`TIPS_FILE`] (without it, the first update after each
/// restart walked the whole history again: 1.3 s of CPU for 20,000
/// commits, every run of a `--one-time` job).
#[derive(Debug, Default)]
pub(in crate::git) struct Known {
    /// The store is exactly what a gc would write.
    pub(super) minimal: Option<MinimalStore>,
    /// At `--depth=0`: commits whose histories reach every object in the
    /// store (extra copies of an object aside). While every later fetch
    /// only moves forward from them, no object has become garbage, so a gc
    /// need not walk the history to know what to drop.
    pub(super) tips: Option<BTreeSet<Hash>>,
}

/// `Known::tips`, one hash per line, in the git directory. Written after
/// each gc and removed before each fetch, so a crash in between leaves no
/// claim behind. A wrong claim could only keep garbage: a gc that trusts it
/// copies every object the packs hold.
const TIPS_FILE: &str = "git-sync-tips";

impl Known {
    /// What an earlier process left in `gitdir`.
    pub(in crate::git) fn load(gitdir: &Path) -> Known {
        let tips = fs::read_to_string(gitdir.join(TIPS_FILE))
            .ok()
            .and_then(|text| {
                text.lines()
                    .map(crate::git::parse_full_hash)
                    .collect::<Option<BTreeSet<Hash>>>()
            })
            .filter(|tips| !tips.is_empty());
        Known {
            minimal: None,
            tips,
        }
    }
}

impl GitRepo {
    /// Record a successful fetch of `hash` that brought objects reachable
    /// from `brought` (`None`: from who knows where), into a store that was
    /// `known` before (and empty, if `was_empty`).
    pub(in crate::git) fn after_fetch(
        &mut self,
        known: Known,
        was_empty: bool,
        brought: Option<&[Hash]>,
        hash: Hash,
        depth: u32,
    ) {
        let Some(brought) = brought else {
            return; // self.known stays forgotten
        };
        if was_empty && brought.iter().all(|b| *b == hash) {
            // Just `hash`, `depth` deep: what the first gc would write.
            self.note_minimal(&[hash], depth);
            self.known.tips = (depth == 0).then(|| BTreeSet::from([hash]));
            return;
        }
        self.known.tips = known.tips.map(|mut tips| {
            tips.insert(hash);
            tips.extend(brought);
            tips
        });
    }

    /// Whether the object store holds nothing (before a first fetch).
    pub(in crate::git) fn store_is_empty(&self) -> bool {
        let objects = self.gitdir.join("objects");
        list_packs(&objects.join("pack")).0.is_empty() && loose_dirs(&objects).1 == 0
    }

    /// Record that the store now holds exactly `keep`, `depth` deep (or
    /// forget what we knew, when it is not a single pack).
    pub(in crate::git) fn note_minimal(&mut self, keep: &[Hash], depth: u32) {
        let objects = self.gitdir.join("objects");
        let packs = list_packs(&objects.join("pack")).0;
        self.known.minimal = MinimalStore::of(&packs, loose_dirs(&objects).1, keep, depth);
    }

    /// The store is about to change: what `TIPS_FILE` claims may no
    /// longer hold.
    pub(in crate::git) fn forget_saved_tips(&self) {
        let _ = fs::remove_file(self.gitdir.join(TIPS_FILE));
    }

    /// Leave `Known::tips` for the next process (written whole or not at
    /// all; if lost to a crash, that process walks the history once).
    pub(super) fn save_tips(&self) {
        let path = self.gitdir.join(TIPS_FILE);
        let Some(tips) = &self.known.tips else {
            let _ = fs::remove_file(&path);
            return;
        };
        let text: String = tips.iter().map(|t| format!("{t}\n")).collect();
        let tmp = path.with_extension("tmp");
        if let Err(e) = fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, &path)) {
            let _ = fs::remove_file(&tmp);
            tracing::debug!(error = %e, "cannot save what the store is known to hold");
        }
    }
}
