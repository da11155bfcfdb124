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

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use super::{pack_copy, pack_index, Cancel, GitError, GitRepo, Hash};
use crate::config::GcMode;

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

/// The object store holds one pack with exactly the objects of `keep`,
/// each `depth` deep, and nothing else: a gc for the same would rewrite it
/// as it is. True after our own gc, and after a fetch into an empty store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MinimalStore {
    keep: BTreeSet<Hash>,
    depth: u32,
    pack: String,
}

impl MinimalStore {
    /// The claim a store of `packs` and `loose` objects would make for
    /// `keep`: only a single pack can be minimal.
    fn of(packs: &[String], loose: usize, keep: &[Hash], depth: u32) -> Option<Self> {
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
pub(super) struct Known {
    /// The store is exactly what a gc would write.
    minimal: Option<MinimalStore>,
    /// At `--depth=0`: commits whose histories reach every object in the
    /// store (extra copies of an object aside). While every later fetch
    /// only moves forward from them, no object has become garbage, so a gc
    /// need not walk the history to know what to drop.
    tips: Option<BTreeSet<Hash>>,
}

/// `Known::tips`, one hash per line, in the git directory. Written after
/// each gc and removed before each fetch, so a crash in between leaves no
/// claim behind. A wrong claim could only keep garbage: a gc that trusts it
/// copies every object the packs hold.
const TIPS_FILE: &str = "git-sync-tips";

impl Known {
    /// What an earlier process left in `gitdir`.
    pub(super) fn load(gitdir: &Path) -> Known {
        let tips = fs::read_to_string(gitdir.join(TIPS_FILE))
            .ok()
            .and_then(|text| {
                text.lines()
                    .map(super::parse_full_hash)
                    .collect::<Option<BTreeSet<Hash>>>()
            })
            .filter(|tips| !tips.is_empty());
        Known {
            minimal: None,
            tips,
        }
    }
}

/// The object store as a gc found it.
struct Store<'a> {
    dir: &'a Path,
    packs: &'a [String],
    loose: &'a [PathBuf],
    loose_count: usize,
}

impl GitRepo {
    /// Record a successful fetch of `hash` that brought objects reachable
    /// from `brought` (`None`: from who knows where), into a store that was
    /// `known` before (and empty, if `was_empty`).
    pub(super) fn after_fetch(
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
    pub(super) fn store_is_empty(&self) -> bool {
        let objects = self.gitdir.join("objects");
        list_packs(&objects.join("pack")).0.is_empty() && loose_dirs(&objects).1 == 0
    }

    /// Record that the store now holds exactly `keep`, `depth` deep (or
    /// forget what we knew, when it is not a single pack).
    pub(super) fn note_minimal(&mut self, keep: &[Hash], depth: u32) {
        let objects = self.gitdir.join("objects");
        let packs = list_packs(&objects.join("pack")).0;
        self.known.minimal = MinimalStore::of(&packs, loose_dirs(&objects).1, keep, depth);
    }

    /// The store is about to change: what `TIPS_FILE` claims may no
    /// longer hold.
    pub(super) fn forget_saved_tips(&self) {
        let _ = fs::remove_file(self.gitdir.join(TIPS_FILE));
    }

    /// Leave `Known::tips` for the next process (written whole or not at
    /// all; if lost to a crash, that process walks the history once).
    fn save_tips(&self) {
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
        let result = self.collect(mode, keep, depth, cancel);
        self.save_tips();
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
        for t in temps {
            let _ = fs::remove_file(pack_dir.join(t));
        }
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
            if mode == GcMode::Always && loose_count == 0 && packs.len() <= ALWAYS_MAX_PACKS {
                match garbage(&pack_dir, &packs, &live) {
                    Ok(g) if (g.unreachable + g.copies) * GARBAGE_SHARE < g.total => {
                        tracing::debug!(
                            garbage_bytes = g.unreachable + g.copies,
                            pack_bytes = g.total,
                            packs = packs.len(),
                            "git gc: too little garbage to be worth a repack yet"
                        );
                        if g.unreachable == 0 && depth == 0 {
                            self.known.tips = Some(keep.iter().copied().collect());
                        }
                        return Ok(None);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "git gc: garbage not measured; repacking")
                    }
                }
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

    /// Write `wanted` into a new pack, copied as the store holds them.
    fn copy_into_pack(
        &self,
        pack_dir: &Path,
        wanted: &[git2::Oid],
        cancel: &Cancel,
    ) -> Result<String, GitError> {
        let odb = self
            .repo
            .odb()
            .map_err(|e| GitError::local("gc: open object database", e))?;
        pack_copy::write_pack(&odb, &[pack_dir.to_path_buf()], wanted, pack_dir, cancel)
            .map_err(|e| {
                e.into_git(|message| GitError::Local {
                    op: "gc: write pack".into(),
                    message,
                })
            })?
            .ok_or_else(|| GitError::Local {
                op: "gc: write pack".into(),
                message: "no objects to keep".into(),
            })
    }

    /// With `new_pack` complete on disk, delete every other pack and loose
    /// object of `store`, and write `boundary` as the new shallow list
    /// (`None`: the history's boundary is as it was).
    fn replace_store(
        &mut self,
        store: &Store<'_>,
        new_pack: &str,
        objects_kept: usize,
        boundary: Option<&BTreeSet<Hash>>,
    ) -> Result<GcStats, GitError> {
        let mut stats = GcStats {
            objects_kept,
            loose_removed: store.loose_count,
            ..GcStats::default()
        };
        for p in store.packs.iter().filter(|p| *p != new_pack) {
            for ext in ["pack", "idx", "rev", "keep", "bitmap", "mtimes", "promisor"] {
                let _ = fs::remove_file(store.dir.join(format!("{p}.{ext}")));
            }
            stats.packs_removed += 1;
        }
        for d in store.loose {
            fs::remove_dir_all(d).map_err(|e| GitError::io("gc: remove", d, e))?;
        }
        // Reflogs (none are written by us) would name dropped commits.
        let _ = fs::remove_dir_all(self.gitdir.join("logs"));
        if let Some(boundary) = boundary {
            let shallow = self.gitdir.join("shallow");
            let text: String = boundary.iter().map(|h| format!("{h}\n")).collect();
            if text.is_empty() {
                let _ = fs::remove_file(&shallow);
            } else {
                let tmp = self.gitdir.join("shallow.git-sync.tmp");
                fs::write(&tmp, text).map_err(|e| GitError::io("write", &tmp, e))?;
                fs::rename(&tmp, &shallow).map_err(|e| GitError::io("rename", &shallow, e))?;
            }
        }
        self.reopen()?;
        Ok(stats)
    }

    /// The commits to keep, walked `depth` deep, and those of them whose
    /// parents are not kept: the new shallow list.
    fn kept_history(
        &self,
        keep: &[Hash],
        depth: u32,
    ) -> Result<(Vec<Hash>, BTreeSet<Hash>), GitError> {
        // libgit2 applies `.git/shallow` to `parent_ids()`: a shallow commit
        // shows no parents, yet it is a boundary and must stay listed.
        let was_shallow: HashSet<Hash> = fs::read_to_string(self.gitdir.join("shallow"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let mut kept: HashSet<Hash> = HashSet::new();
        let mut commits = Vec::new();
        let mut boundary: BTreeSet<Hash> = BTreeSet::new();
        let mut queue: VecDeque<(Hash, u32)> = keep.iter().map(|h| (*h, 1)).collect();
        while let Some((hash, level)) = queue.pop_front() {
            if !kept.insert(hash) {
                continue;
            }
            let commit = self
                .repo
                .find_commit(hash)
                .map_err(|e| GitError::local(format!("gc: read commit {hash}"), e))?;
            commits.push(hash);
            let mut cut = was_shallow.contains(&hash);
            for parent in commit.parent_ids() {
                let within = depth == 0 || level < depth;
                if within && self.repo.find_commit(parent).is_ok() {
                    queue.push_back((parent, level + 1));
                } else {
                    cut = true;
                }
            }
            if cut {
                boundary.insert(hash);
            }
        }
        Ok((commits, boundary))
    }

    /// Every object of `commits`: themselves, their trees and blobs.
    fn live_objects(&self, commits: &[Hash]) -> Result<HashSet<git2::Oid>, git2::Error> {
        let mut live: HashSet<git2::Oid> = HashSet::new();
        for hash in commits {
            live.insert(*hash);
            let commit = self.repo.find_commit(*hash)?;
            let mut trees = vec![commit.tree_id()];
            while let Some(id) = trees.pop() {
                if !live.insert(id) {
                    continue;
                }
                let tree = self.repo.find_tree(id)?;
                for entry in tree.iter() {
                    match entry.kind() {
                        Some(git2::ObjectType::Tree) => trees.push(entry.id()),
                        Some(git2::ObjectType::Blob) => {
                            live.insert(entry.id());
                        }
                        // Submodule commits live in their own stores.
                        _ => {}
                    }
                }
            }
        }
        Ok(live)
    }

    /// `--git-gc=aggressive`: one pack of `commits` written by libgit2's
    /// pack writer, which searches every delta afresh (smaller, slower);
    /// its name and how many objects it holds.
    fn repack_searching_deltas(
        &self,
        commits: &[Hash],
        pack_dir: &Path,
        cancel: &Cancel,
    ) -> Result<(String, usize), GitError> {
        let mut pb = self
            .pack_builder(cancel)
            .map_err(|e| GitError::local("gc: start pack", e))?;
        let stopped = |op: String, e: git2::Error| {
            if cancel.is_cancelled() {
                GitError::Cancelled
            } else {
                GitError::local(op, e)
            }
        };
        for hash in commits {
            pb.insert_commit(*hash)
                .map_err(|e| stopped(format!("gc: pack commit {hash}"), e))?;
        }
        pb.write(pack_dir, 0)
            .map_err(|e| stopped("gc: write pack".into(), e))?;
        let objects = pb.object_count();
        pb.name()
            .ok()
            .flatten()
            .map(|n| (format!("pack-{n}"), objects))
            .ok_or_else(|| GitError::Local {
                op: "gc: write pack".into(),
                message: "libgit2 did not name the new pack".into(),
            })
    }
}

/// What a repack keeping `live` would drop from `packs`, in bytes.
struct Garbage {
    /// Objects not in `live`.
    unreachable: u64,
    /// Every copy of an object but one.
    copies: u64,
    /// All of the packs' entries.
    total: u64,
}

fn garbage(
    pack_dir: &Path,
    packs: &[String],
    live: &HashSet<git2::Oid>,
) -> Result<Garbage, String> {
    let mut g = Garbage {
        unreachable: 0,
        copies: 0,
        total: 0,
    };
    let mut seen: HashSet<git2::Oid> = HashSet::new();
    for pack in packs {
        let entries =
            pack_index::entry_sizes(pack_dir, pack).map_err(|e| format!("{pack}: {e}"))?;
        for (id, size) in entries {
            g.total += size;
            if !live.contains(&id) {
                g.unreachable += size;
            } else if !seen.insert(id) {
                g.copies += size;
            }
        }
    }
    Ok(g)
}
