//! Dropping unreachable objects. libgit2 has no `git gc`, so we do what it
//! amounts to for us: write one new pack holding exactly the commits we keep
//! (each `depth` deep) with their trees, delete every other pack and loose
//! object, and rewrite `.git/shallow` to the new history boundary.
//!
//! The new pack is written by copying each kept object as the old packs
//! store it (`pack_copy`, as git reuses packed data), so a repack costs
//! about a copy of what is kept. `--git-gc=always` repacks once unreachable
//! objects take a quarter of the packs' bytes (measured from the pack
//! indexes), or once fetches have left more than a few packs; `auto` only
//! for the pack count; `aggressive` after every update, with libgit2's pack
//! writer, which searches every delta afresh: a smaller store for far more
//! CPU (it cannot reuse deltas; half a minute for a few hundred MB of
//! binaries).
//!
//! At `--depth=0`, finding the garbage means walking the whole history
//! (1.3 s per update for 20,000 commits). While the history only moves
//! forward from what the store is known to hold (`Known::tips`), nothing
//! becomes unreachable: the garbage is then measured from the pack indexes
//! alone, and a repack copies every object once, without a walk (or, when
//! only the pack count calls for it, rolls the small packs up into one).
//! What is known of the store survives a restart (`TIPS_FILE`).
//!
//! Here: when a gc is due and what it keeps; `known`: what we know of the
//! store without reading it; `repack`: rewriting it.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{pack_index, Cancel, GitError, GitRepo, Hash};
use crate::config::GcMode;

mod known;
mod repack;

pub(super) use known::Known;
use known::MinimalStore;
use repack::garbage;

/// How old a temporary file in `objects/pack` is before it is taken for a
/// leftover of a fetch that died: a younger one may be another process's
/// fetch under way (a hook's git filling a partial store).
const TEMP_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Pack files beyond which `--git-gc=auto` repacks.
const AUTO_MAX_PACKS: usize = 16;
/// Loose objects beyond which `--git-gc=auto` repacks.
const AUTO_MAX_LOOSE: usize = 256;
/// Pack files beyond which `--git-gc=always` repacks, garbage or not.
const ALWAYS_MAX_PACKS: usize = 8;
/// `--git-gc=always` repacks once unreachable objects (and copies of an
/// object in several packs) take 1/GARBAGE_SHARE of the packs' bytes.
const GARBAGE_SHARE: u64 = 4;

/// What a garbage collection did.
#[derive(Debug, Default, Clone, Copy)]
pub struct GcStats {
    pub packs_removed: usize,
    pub loose_removed: usize,
    pub objects_kept: usize,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Remove the temporary files `temps` in `pack_dir` that are older than
/// [`TEMP_GRACE`]: leftovers of a fetch that died.
fn remove_stale_temps(pack_dir: &Path, temps: Vec<String>) {
    for t in temps {
        let path = pack_dir.join(t);
        let age = fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed());
        if age.is_ok_and(|a| a.map_or(true, |a| a >= TEMP_GRACE)) {
            let _ = fs::remove_file(path);
        }
    }
}

/// Pack base names (`pack-<hash>`) in `pack_dir`, and stray temporary files.
fn list_packs(pack_dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut packs = BTreeSet::new();
    let mut temps = Vec::new();
    if let Ok(rd) = fs::read_dir(pack_dir) {
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if let Some(base) = name.strip_suffix(".pack") {
                packs.insert(base.to_string());
            } else if name.starts_with("pack_git2_") || name.starts_with("tmp_") {
                temps.push(name);
            }
        }
    }
    (packs.into_iter().collect(), temps)
}

/// Loose object directories (`objects/ab`) and how many objects they hold.
fn loose_dirs(objects: &Path) -> (Vec<PathBuf>, usize) {
    let mut dirs = Vec::new();
    let mut count = 0;
    if let Ok(rd) = fs::read_dir(objects) {
        for e in rd.flatten() {
            let name = e.file_name();
            if is_hex(&name.to_string_lossy(), 2) {
                count += fs::read_dir(e.path()).map(|r| r.count()).unwrap_or(0);
                dirs.push(e.path());
            }
        }
    }
    (dirs, count)
}

/// The object store as a gc found it.
struct Store<'a> {
    dir: &'a Path,
    packs: &'a [String],
    loose: &'a [PathBuf],
    loose_count: usize,
}

impl GitRepo {
    /// Drop objects not needed by `keep` (each kept `depth` commits deep,
    /// 0 = all history present), if `mode` says it is time. `cancel` stops
    /// a repack between objects; the store is then as it was.
    pub fn gc(
        &mut self,
        mode: GcMode,
        keep: &[Hash],
        depth: u32,
        cancel: &Cancel,
    ) -> Result<Option<GcStats>, GitError> {
        self.prune_lfs_store();
        let result = self.collect(mode, keep, depth, cancel);
        self.save_tips();
        self.mark_promisor_packs();
        result
    }

    fn collect(
        &mut self,
        mode: GcMode,
        keep: &[Hash],
        depth: u32,
        cancel: &Cancel,
    ) -> Result<Option<GcStats>, GitError> {
        let objects = self.gitdir.join("objects");
        let pack_dir = objects.join("pack");
        let (packs, temps) = list_packs(&pack_dir);
        let (loose, loose_count) = loose_dirs(&objects);
        remove_stale_temps(&pack_dir, temps);
        let due = match mode {
            GcMode::Off => false,
            GcMode::Always | GcMode::Aggressive => packs.len() + loose_count > 0,
            GcMode::Auto => packs.len() > AUTO_MAX_PACKS || loose_count > AUTO_MAX_LOOSE,
        };
        // A worktree kept for its readers may hold a commit this store no
        // longer has (the repository was set up again under it): its files
        // need no objects, and there is nothing of it to keep.
        let present: Vec<Hash> = keep
            .iter()
            .copied()
            .filter(|h| self.repo.find_commit(*h).is_ok())
            .collect();
        let keep = &present[..];
        if !due || keep.is_empty() {
            return Ok(None);
        }
        let now = MinimalStore::of(&packs, loose_count, keep, depth);
        if now.is_some() && now == self.known.minimal {
            // Exactly what a repack would write (a first fetch, say).
            return Ok(None);
        }
        let store = Store {
            dir: &pack_dir,
            packs: &packs,
            loose: &loose,
            loose_count,
        };
        let forward = depth == 0 && loose_count == 0 && mode != GcMode::Aggressive;
        if forward && self.only_forward(keep) {
            return self.gc_forward(mode, keep, &store, cancel);
        }
        self.known.tips = None;
        let (commits, boundary) = self.kept_history(keep, depth)?;
        let (new_pack, objects_kept) = if mode == GcMode::Aggressive {
            tracing::debug!(
                commits = commits.len(),
                packs = packs.len(),
                loose = loose_count,
                "git gc: repacking"
            );
            self.repack_searching_deltas(&commits, &pack_dir, cancel)?
        } else {
            let live = self
                .live_objects(&commits)
                .map_err(|e| GitError::local("gc: list objects", e))?;
            let few_packs = loose_count == 0 && packs.len() <= ALWAYS_MAX_PACKS;
            if mode == GcMode::Always
                && few_packs
                && !self.worth_repacking(&store, &live, keep, depth)
            {
                return Ok(None);
            }
            tracing::debug!(
                commits = commits.len(),
                objects = live.len(),
                packs = packs.len(),
                loose = loose_count,
                "git gc: repacking"
            );
            let wanted: Vec<git2::Oid> = live.into_iter().collect();
            (
                self.copy_into_pack(&pack_dir, &wanted, cancel)?,
                wanted.len(),
            )
        };
        let stats = self.replace_store(&store, &new_pack, objects_kept, Some(&boundary))?;
        self.note_minimal(keep, depth);
        if depth == 0 {
            self.known.tips = Some(keep.iter().copied().collect());
        }
        Ok(Some(stats))
    }

    /// Whether the packs of `store` hold enough garbage (objects not in
    /// `live`, and copies) to be worth a repack now. When they hold none
    /// unreachable and the whole history is kept (`depth` 0), the store's
    /// tips are `keep`.
    fn worth_repacking(
        &mut self,
        store: &Store<'_>,
        live: &HashSet<git2::Oid>,
        keep: &[Hash],
        depth: u32,
    ) -> bool {
        match garbage(store.dir, store.packs, live) {
            Ok(g) if (g.unreachable + g.copies) * GARBAGE_SHARE < g.total => {
                tracing::debug!(
                    garbage_bytes = g.unreachable + g.copies,
                    pack_bytes = g.total,
                    packs = store.packs.len(),
                    "git gc: too little garbage to be worth a repack yet"
                );
                if g.unreachable == 0 && depth == 0 {
                    self.known.tips = Some(keep.iter().copied().collect());
                }
                false
            }
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(error = %e, "git gc: garbage not measured; repacking");
                true
            }
        }
    }

    /// Whether every object in the store is reachable from `keep`'s full
    /// histories, as far as we know without walking them: the store's tips
    /// are known, and each is one of `keep` or an ancestor of one.
    fn only_forward(&self, keep: &[Hash]) -> bool {
        let Some(tips) = &self.known.tips else {
            return false;
        };
        tips.iter().all(|tip| {
            keep.iter()
                .any(|k| k == tip || self.repo.graph_descendant_of(*k, *tip).unwrap_or(false))
        })
    }

    /// gc at `--depth=0` when every object is reachable (`only_forward`):
    /// the only garbage is extra copies of objects (bases a fetch appended
    /// to its pack), measured from the pack indexes alone, and a repack
    /// copies every object once, without walking the history. When it is
    /// the count of packs, not garbage, that makes a repack due, and the
    /// small packs add up to less than half the largest, only they are
    /// rolled up into one (the largest is left as it is, as git's
    /// geometric repack does): a store of a long history is not rewritten
    /// every few updates.
    fn gc_forward(
        &mut self,
        mode: GcMode,
        keep: &[Hash],
        store: &Store<'_>,
        cancel: &Cancel,
    ) -> Result<Option<GcStats>, GitError> {
        let mut indexes = Vec::with_capacity(store.packs.len());
        for pack in store.packs {
            let index = pack_index::PackIndex::read(store.dir, pack)
                .map_err(|e| GitError::io("gc: read the index of", &store.dir.join(pack), e))?;
            let bytes: u64 = index.sizes().map(|(_, size)| size).sum();
            indexes.push((pack, index, bytes));
        }
        // The largest first: an object in several packs counts as garbage
        // in all but the largest.
        indexes.sort_by_key(|(_, _, bytes)| std::cmp::Reverse(*bytes));
        let mut ids: HashSet<git2::Oid> = HashSet::new();
        let (mut copies, mut total) = (0, 0);
        for (_, index, _) in &indexes {
            for (id, size) in index.sizes() {
                total += size;
                if !ids.insert(id) {
                    copies += size;
                }
            }
        }
        let worth = copies * GARBAGE_SHARE >= total;
        let due = match mode {
            GcMode::Auto => store.packs.len() > AUTO_MAX_PACKS,
            _ => store.packs.len() > ALWAYS_MAX_PACKS || worth,
        };
        self.known.tips = Some(keep.iter().copied().collect());
        if !due {
            tracing::debug!(
                garbage_bytes = copies,
                pack_bytes = total,
                packs = store.packs.len(),
                "git gc: history only moved forward; too little garbage to be worth a repack yet"
            );
            return Ok(None);
        }
        let largest = indexes.first().map_or(0, |(_, _, bytes)| *bytes);
        if !worth && (total - largest) * 2 < largest {
            let (big, small) = indexes.split_at(1);
            let wanted: Vec<git2::Oid> = small
                .iter()
                .flat_map(|(_, index, _)| index.sizes().map(|(id, _)| id))
                .filter(|id| big.iter().all(|(_, index, _)| index.find(*id).is_none()))
                .collect();
            let small_packs: Vec<String> = small.iter().map(|(p, _, _)| (*p).clone()).collect();
            tracing::debug!(
                packs = small_packs.len(),
                objects = wanted.len(),
                "git gc: history only moved forward; rolling the small packs up into one"
            );
            let new_pack = if wanted.is_empty() {
                big[0].0.clone() // nothing but copies of what it holds
            } else {
                self.copy_into_pack(store.dir, &wanted, cancel)?
            };
            let rolled = Store {
                dir: store.dir,
                packs: &small_packs,
                loose: &[],
                loose_count: 0,
            };
            let stats = self.replace_store(&rolled, &new_pack, wanted.len(), None)?;
            self.note_minimal(keep, 0);
            return Ok(Some(stats));
        }
        tracing::debug!(
            objects = ids.len(),
            packs = store.packs.len(),
            garbage_bytes = copies,
            pack_bytes = total,
            largest_pack_bytes = largest,
            "git gc: history only moved forward; repacking without walking it"
        );
        let wanted: Vec<git2::Oid> = ids.into_iter().collect();
        let new_pack = self.copy_into_pack(store.dir, &wanted, cancel)?;
        let stats = self.replace_store(store, &new_pack, wanted.len(), None)?;
        self.note_minimal(keep, 0);
        Ok(Some(stats))
    }
}
