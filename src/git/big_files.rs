//! Large files are written into a worktree straight from the pack that
//! holds them, a chunk at a time. libgit2's checkout reads a whole blob
//! into memory before writing it, so the memory of a sync grew with the
//! largest file (a 100 MB file took 99 MiB of heap to check out, on top of
//! the pack mapped to read it); git itself streams only blobs above
//! `core.bigFileThreshold`, 512 MiB.
//!
//! A blob is streamed when it is at least [`STREAM_FROM`] bytes and stored
//! whole (not as a delta) in one of our packs, as large files mostly are:
//! compressed data does not delta well, and a first fetch at depth 1 has no
//! older version to delta against. Its id is checked as it is written (the
//! SHA-1 of what was inflated). Other blobs, deltas included, are read
//! whole, by the plain tree writer (`worktree/plain.rs`) or by libgit2;
//! those whose attributes may filter them, and all where the repository's
//! config converts line endings, go through libgit2's checkout.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use git2::Oid;

use super::pack_copy::{open_sources, read_stored, Source};
use super::tree_path::{dirs_on_the_way, is_plainly_safe, make_dirs_within};
use super::worktree::index_entry;
use super::{Cancel, GitError};

/// Blobs from this size on are streamed.
pub const STREAM_FROM: u64 = 4 << 20;
/// A pack entry smaller than this cannot hold a blob of `STREAM_FROM`
/// bytes (zlib inflates at most about 1,000 times), so its header is not
/// even read.
const SMALLEST_ENTRY: u64 = STREAM_FROM / 1024;
const CHUNK: usize = 64 * 1024;

/// Where one large blob is stored whole.
struct Whole {
    source: usize,
    size: u64,
    data: u64,
    end: u64,
}

/// The large blobs of our packs that can be streamed.
pub struct BigFiles {
    sources: Vec<Source>,
    blobs: HashMap<Oid, Whole>,
}

/// A file to stream: its path in the tree, blob and mode.
pub struct BigFile {
    pub path: Vec<u8>,
    pub id: Oid,
    pub mode: u32,
}

impl BigFiles {
    /// Find, in the packs of `pack_dir`, every object stored whole with at
    /// least [`STREAM_FROM`] bytes. Costs a read of each pack's index, and
    /// of a few bytes per entry large enough.
    pub fn find(pack_dir: &Path) -> Self {
        let sources = open_sources(&[pack_dir.to_path_buf()]);
        let mut blobs = HashMap::new();
        for (s, src) in sources.iter().enumerate() {
            for (pos, (id, stored_len)) in src.index.sizes().enumerate() {
                if stored_len < SMALLEST_ENTRY {
                    continue;
                }
                let Ok(stored) = read_stored(src, pos) else {
                    continue;
                };
                if stored.base.is_none() && stored.size >= STREAM_FROM {
                    blobs.entry(id).or_insert(Whole {
                        source: s,
                        size: stored.size,
                        data: stored.data,
                        end: stored.end,
                    });
                }
            }
        }
        BigFiles { sources, blobs }
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Of the blobs of `tree` (only those at `only`, when given), the files
    /// to stream.
    pub fn in_tree(&self, tree: &git2::Tree<'_>, only: Option<&[Vec<u8>]>) -> Vec<BigFile> {
        let on_the_way = only.map(dirs_on_the_way);
        let only: Option<HashSet<&[u8]>> = only.map(|o| o.iter().map(Vec::as_slice).collect());
        let mut files = Vec::new();
        if self.blobs.is_empty() {
            return files;
        }
        let _ = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if let Some(dirs) = &on_the_way {
                let is_tree = entry.kind() == Some(git2::ObjectType::Tree);
                if is_tree
                    && !dirs.contains(
                        [dir.as_bytes(), entry.name_bytes(), b"/"]
                            .concat()
                            .as_slice(),
                    )
                {
                    return git2::TreeWalkResult::Skip;
                }
            }
            let mode = entry.filemode() as u32;
            let regular = matches!(mode, 0o100644 | 0o100755);
            if regular && self.blobs.contains_key(&entry.id()) {
                let mut path = dir.as_bytes().to_vec();
                path.extend_from_slice(entry.name_bytes());
                // A path not plainly safe is left to libgit2's checkout,
                // which refuses it as git does.
                let wanted = only.as_ref().map_or(true, |o| o.contains(path.as_slice()));
                if wanted && is_plainly_safe(&path) {
                    files.push(BigFile {
                        path,
                        id: entry.id(),
                        mode,
                    });
                }
            }
            git2::TreeWalkResult::Ok
        });
        files
    }

    /// Write `files` into the worktree at `dir`, and their entries into its
    /// index (as a checkout would, so `git status` finds them clean).
    /// `cancel` stops it between two chunks.
    pub fn write_all(
        &self,
        files: &[BigFile],
        dir: &Path,
        index: &mut git2::Index,
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        for f in files {
            let rel = Path::new(OsStr::from_bytes(&f.path));
            if let Some(parent) = rel.parent() {
                make_dirs_within(dir, parent)?;
            }
            let dest = dir.join(rel);
            self.write(f, &dest, cancel)
                .map_err(|e| match cancel.is_cancelled() {
                    true => GitError::Cancelled,
                    false => GitError::io("write", &dest, e),
                })?;
            let meta = fs::symlink_metadata(&dest).map_err(|e| GitError::io("stat", &dest, e))?;
            index
                .add(&index_entry(&f.path, f.id, f.mode, &meta))
                .map_err(|e| GitError::local(format!("index {}", dest.display()), e))?;
        }
        if !files.is_empty() {
            index
                .write()
                .map_err(|e| GitError::local("write index", e))?;
            tracing::debug!(files = files.len(), "large files streamed from their pack");
        }
        Ok(())
    }

    /// Write `file` to `dest` (which must not exist), as libgit2's checkout
    /// would (mode 0644 or 0755 less the umask), checking its id; stopped
    /// (`Interrupted`) once `cancel` is set.
    pub fn write(&self, file: &BigFile, dest: &Path, cancel: &Cancel) -> io::Result<()> {
        let whole = self.blobs.get(&file.id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {} not in a pack", file.id),
            )
        })?;
        let src = &self.sources[whole.source];
        let stored = Range {
            file: &src.file,
            at: whole.data,
            end: whole.end,
        };
        let compressed = BufReader::with_capacity(CHUNK, stored);
        let mut inflated = flate2::read::ZlibDecoder::new(compressed);
        let mode = if file.mode == 0o100755 { 0o755 } else { 0o644 };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(dest)?;
        let mut sha1 = openssl::sha::Sha1::new();
        sha1.update(format!("blob {}\0", whole.size).as_bytes());
        let (mut buf, mut written) = (vec![0u8; CHUNK], 0u64);
        loop {
            if cancel.is_cancelled() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
            }
            let n = inflated.read(&mut buf)?;
            if n == 0 {
                break;
            }
            sha1.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            written += n as u64;
        }
        let id = Oid::from_bytes(&sha1.finish()).map_err(io::Error::other)?;
        if written != whole.size || id != file.id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} in {} inflates to {written} bytes with id {id}, not {} bytes",
                    file.id, src.name, whole.size
                ),
            ));
        }
        Ok(())
    }
}

/// Bytes `at..end` of a file, read where they are (the pack is shared).
struct Range<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for Range<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.at)).unwrap_or(usize::MAX);
        let n = buf.len().min(left);
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_util::{git, noise, raw_tree};

    #[test]
    fn with_only_some_paths_only_the_trees_on_their_way_are_read() {
        let t = tempfile::TempDir::new().unwrap();
        let repo = t.path().join("repo");
        fs::create_dir_all(repo.join("media")).unwrap();
        git(&repo, &["init", "-q"]);
        fs::write(
            repo.join("media/big.bin"),
            noise(STREAM_FROM as usize + 10, 3),
        )
        .unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "c"]);
        git(&repo, &["repack", "-adq"]);
        let big = BigFiles::find(&repo.join(".git/objects/pack"));
        let r = git2::Repository::open(&repo).unwrap();
        // Beside media/, a directory whose tree the store lacks: a walk
        // that enters it stops there.
        let tree = r.head().unwrap().peel_to_tree().unwrap();
        let missing = Oid::from_str("1111111111111111111111111111111111111111").unwrap();
        let lost = raw_tree(&r, &[("40000", "gone", missing)]);
        let mut builder = r.treebuilder(Some(&tree)).unwrap();
        builder.insert("lost", lost, 0o040000).unwrap();
        let tree = r.find_tree(builder.write().unwrap()).unwrap();
        assert!(big.in_tree(&tree, None).is_empty(), "stopped in lost/");
        let only = [b"media/big.bin".to_vec()];
        let files = big.in_tree(&tree, Some(&only));
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, b"media/big.bin");
    }

    #[test]
    fn a_large_blob_stored_whole_is_streamed_and_its_id_checked() {
        let t = tempfile::TempDir::new().unwrap();
        let repo = t.path().join("repo");
        fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        let content = noise(STREAM_FROM as usize + 1000, 7);
        fs::write(repo.join("big.bin"), &content).unwrap();
        fs::write(repo.join("small.txt"), "small").unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "c"]);
        git(&repo, &["repack", "-adq"]);
        let id = Oid::from_str(git(&repo, &["rev-parse", "HEAD:big.bin"]).trim()).unwrap();

        let packs = repo.join(".git/objects/pack");
        let big = BigFiles::find(&packs);
        let r = git2::Repository::open(&repo).unwrap();
        let tree = r.head().unwrap().peel_to_tree().unwrap();
        let files = big.in_tree(&tree, None);
        assert_eq!(files.len(), 1, "only the large one");
        assert_eq!(
            (files[0].path.as_slice(), files[0].id),
            (&b"big.bin"[..], id)
        );
        assert!(big
            .in_tree(&tree, Some(&[b"small.txt".to_vec()]))
            .is_empty());
        big.write(&files[0], &t.path().join("out"), &Cancel::new())
            .unwrap();
        assert!(fs::read(t.path().join("out")).unwrap() == content);
        // A pass cancelled (SIGTERM, --sync-timeout) stops the stream.
        let cancel = Cancel::new();
        cancel.cancel();
        let err = big
            .write(&files[0], &t.path().join("out3"), &cancel)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted, "{err}");

        // Data that is not the blob it is taken for is refused.
        let mut mixed_up = BigFiles::find(&packs);
        let other = Oid::from_str(git(&repo, &["rev-parse", "HEAD:small.txt"]).trim()).unwrap();
        let whole = &big.blobs[&id];
        let (source, size, data, end) = (whole.source, whole.size, whole.data, whole.end);
        mixed_up.blobs.insert(
            other,
            Whole {
                source,
                size,
                data,
                end,
            },
        );
        let wrong = BigFile {
            path: b"small.txt".to_vec(),
            id: other,
            mode: 0o100644,
        };
        let err = mixed_up
            .write(&wrong, &t.path().join("out1"), &Cancel::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");

        // A byte of the stored data damaged: zlib refuses it.
        let pack = fs::read_dir(&packs)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "pack"))
            .unwrap();
        let mut bytes = fs::read(&pack).unwrap();
        bytes[((whole.data + whole.end) / 2) as usize] ^= 0x55;
        fs::write(&pack, bytes).unwrap();
        let big = BigFiles::find(&packs);
        assert!(big
            .write(&files[0], &t.path().join("out2"), &Cancel::new())
            .is_err());
    }
}
