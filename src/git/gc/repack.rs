//! Rewriting the object store: the history and objects to keep, a new
//! pack of them (copied as stored, or with deltas searched afresh), and the
//! old packs and loose objects removed once it is complete.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::path::Path;

use super::{GcStats, Store};
use crate::git::{pack_copy, pack_index, Cancel, GitError, GitRepo, Hash};

impl GitRepo {
    /// Write `wanted` into a new pack, copied as the store holds them.
    pub(super) fn copy_into_pack(
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
                let (op, damaged) = ("gc: write pack".into(), e.is_damage());
                e.into_git(|message| match damaged {
                    true => GitError::Store { op, message },
                    false => GitError::Local { op, message },
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
    pub(super) fn replace_store(
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
            crate::git::depth::write_shallow(self, boundary)?;
        }
        self.reopen()?;
        Ok(stats)
    }

    /// The commits to keep, walked `depth` deep, and those of them whose
    /// parents are not kept: the new shallow list.
    pub(super) fn kept_history(
        &self,
        keep: &[Hash],
        depth: u32,
    ) -> Result<(Vec<Hash>, BTreeSet<Hash>), GitError> {
        // libgit2 applies `.git/shallow` to `parent_ids()`: a shallow commit
        // shows no parents, yet it is a boundary and must stay listed.
        let was_shallow = crate::git::depth::read_shallow(self);
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

    /// Every object of `commits`: themselves, their trees and blobs (in
    /// a partial store, those it has).
    pub(super) fn live_objects(&self, commits: &[Hash]) -> Result<HashSet<git2::Oid>, git2::Error> {
        let odb = self.repo.odb()?;
        let partial = self.is_partial();
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
                        Some(git2::ObjectType::Blob) if !partial || odb.exists(entry.id()) => {
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
    pub(super) fn repack_searching_deltas(
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
        if self.is_partial() {
            // (libgit2 would look for the blobs a partial store lacks.)
            let live = self
                .live_objects(commits)
                .map_err(|e| GitError::local("gc: list objects", e))?;
            for id in live {
                pb.insert_object(id, None)
                    .map_err(|e| stopped(format!("gc: pack object {id}"), e))?;
            }
        } else {
            for hash in commits {
                pb.insert_commit(*hash)
                    .map_err(|e| stopped(format!("gc: pack commit {hash}"), e))?;
            }
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
pub(super) struct Garbage {
    /// Objects not in `live`.
    pub(super) unreachable: u64,
    /// Every copy of an object but one.
    pub(super) copies: u64,
    /// All of the packs' entries.
    pub(super) total: u64,
}

pub(super) fn garbage(
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
