//! Pack indexes (`.idx`, version 2: the format every git since 1.5.2
//! writes, and libgit2 too), read and written. libgit2 can list a pack's
//! objects but neither tell where each is nor how many bytes it takes,
//! which deciding "is a repack worth it" and copying stored objects as
//! they are (see `pack_copy`) both need.
//!
//! Layout of a version 2 index: magic `\xfftOc`, version 2, a fan-out
//! table of 256 big-endian u32 (entry `b` counts the ids whose first byte
//! is at most `b`; the last one is the object count `n`), `n` object ids in
//! ascending order, `n` CRC32s of the objects' entries in the pack, `n` u32
//! offsets (the high bit set means "index into the 64-bit offset table that
//! follows"), the 64-bit offsets, the pack's SHA-1 trailer and the index's
//! own SHA-1. An object's entry in the pack runs from its offset to the
//! next one; the last ends where the pack's 20-byte trailer begins.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use git2::Oid;

const MAGIC: [u8; 4] = [0xff, b't', b'O', b'c'];
const HEADER: usize = 8;
const FANOUT: usize = 256 * 4;
/// A pack ends with the SHA-1 of what precedes it.
pub const TRAILER: u64 = 20;
const LARGE: u32 = 0x8000_0000;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("pack index: {what}"))
}

fn u32_at(b: &[u8], at: usize) -> io::Result<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| bad("truncated"))
}

fn u64_at(b: &[u8], at: usize) -> io::Result<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| bad("truncated"))
}

/// One pack's index, read whole.
pub struct PackIndex {
    /// Object ids, ascending (the index's order).
    ids: Vec<Oid>,
    offsets: Vec<u64>,
    crcs: Vec<u32>,
    /// Positions in `ids`, by ascending offset.
    by_offset: Vec<u32>,
    /// Where the last entry ends: the pack's length less its trailer.
    data_end: u64,
}

impl PackIndex {
    /// Read the index of `pack_dir/<base>.pack`.
    pub fn read(pack_dir: &Path, base: &str) -> io::Result<Self> {
        let idx = fs::read(pack_dir.join(format!("{base}.idx")))?;
        let pack_len = fs::metadata(pack_dir.join(format!("{base}.pack")))?.len();
        if idx.get(..4) != Some(&MAGIC[..]) || u32_at(&idx, 4)? != 2 {
            return Err(bad("not a version 2 index"));
        }
        let n = u32_at(&idx, HEADER + FANOUT - 4)? as usize;
        let ids_at = HEADER + FANOUT;
        let crcs_at = ids_at + n * 20;
        let offsets_at = crcs_at + n * 4;
        let large_at = offsets_at + n * 4;
        // Before room is made for `n` entries: a damaged count (a source
        // repository's index, say) must not ask for gigabytes.
        if idx.len() < large_at + 2 * 20 {
            return Err(bad("truncated"));
        }
        let mut ids = Vec::with_capacity(n);
        let mut crcs = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(n);
        for i in 0..n {
            let id = idx
                .get(ids_at + i * 20..ids_at + (i + 1) * 20)
                .ok_or_else(|| bad("truncated"))?;
            ids.push(Oid::from_bytes(id).map_err(|_| bad("object id"))?);
            crcs.push(u32_at(&idx, crcs_at + i * 4)?);
            let small = u32_at(&idx, offsets_at + i * 4)?;
            offsets.push(if small & LARGE == 0 {
                u64::from(small)
            } else {
                u64_at(&idx, large_at + (small & !LARGE) as usize * 8)?
            });
        }
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("object ids out of order"));
        }
        let mut by_offset: Vec<u32> = (0..n as u32).collect();
        by_offset.sort_unstable_by_key(|&i| offsets[i as usize]);
        Ok(PackIndex {
            ids,
            offsets,
            crcs,
            by_offset,
            data_end: pack_len.saturating_sub(TRAILER),
        })
    }

    /// The position of `id`, if the pack holds it.
    pub fn find(&self, id: Oid) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    pub fn id(&self, pos: usize) -> Oid {
        self.ids[pos]
    }

    pub fn offset(&self, pos: usize) -> u64 {
        self.offsets[pos]
    }

    pub fn crc(&self, pos: usize) -> u32 {
        self.crcs[pos]
    }

    /// The position of the entry that starts at `offset`.
    pub fn at_offset(&self, offset: u64) -> Option<usize> {
        let k = self
            .by_offset
            .binary_search_by_key(&offset, |&i| self.offsets[i as usize])
            .ok()?;
        Some(self.by_offset[k] as usize)
    }

    /// Where the entry at `pos` ends: where the next one starts.
    pub fn entry_end(&self, pos: usize) -> u64 {
        let start = self.offsets[pos];
        let k = self
            .by_offset
            .partition_point(|&i| self.offsets[i as usize] <= start);
        self.by_offset
            .get(k)
            .map_or(self.data_end, |&i| self.offsets[i as usize])
    }

    /// Every object with the bytes its entry takes.
    pub fn sizes(&self) -> impl Iterator<Item = (Oid, u64)> + '_ {
        (0..self.ids.len()).map(|i| {
            let size = self.entry_end(i).saturating_sub(self.offsets[i]);
            (self.ids[i], size)
        })
    }
}

/// The objects of `pack_dir/<base>.pack` with the bytes each takes there.
pub fn entry_sizes(pack_dir: &Path, base: &str) -> io::Result<Vec<(Oid, u64)>> {
    Ok(PackIndex::read(pack_dir, base)?.sizes().collect())
}

/// One object of a pack being indexed.
pub struct IndexEntry {
    pub id: Oid,
    pub offset: u64,
    pub crc: u32,
}

/// Write the version 2 index of a pack whose trailer is `pack_sum`.
pub fn write(
    out: &mut impl Write,
    entries: &mut [IndexEntry],
    pack_sum: &[u8; 20],
) -> io::Result<()> {
    entries.sort_unstable_by_key(|e| e.id);
    let mut bytes = Vec::with_capacity(HEADER + FANOUT + entries.len() * 28 + 40);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&2u32.to_be_bytes());
    let mut count = 0u32;
    for first in 0..=255u8 {
        while (count as usize) < entries.len() && entries[count as usize].id.as_bytes()[0] <= first
        {
            count += 1;
        }
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    for e in entries.iter() {
        bytes.extend_from_slice(e.id.as_bytes());
    }
    for e in entries.iter() {
        bytes.extend_from_slice(&e.crc.to_be_bytes());
    }
    let mut large: Vec<u64> = Vec::new();
    for e in entries.iter() {
        let small = match u32::try_from(e.offset) {
            Ok(o) if o & LARGE == 0 => o,
            _ => {
                let at = u32::try_from(large.len()).map_err(|_| bad("too many objects"))?;
                large.push(e.offset);
                LARGE | at
            }
        };
        bytes.extend_from_slice(&small.to_be_bytes());
    }
    for o in large {
        bytes.extend_from_slice(&o.to_be_bytes());
    }
    bytes.extend_from_slice(pack_sum);
    let own_sum = openssl::sha::sha1(&bytes);
    bytes.extend_from_slice(&own_sum);
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack of 50 blobs written by libgit2, and their ids.
    fn libgit2_pack(t: &Path) -> (std::path::PathBuf, String, Vec<Oid>) {
        let repo = git2::Repository::init(t).unwrap();
        let mut pb = repo.packbuilder().unwrap();
        let mut ids = Vec::new();
        for i in 0..50u32 {
            let body = format!("object {i} {}", "x".repeat(i as usize * 100));
            let id = repo.blob(body.as_bytes()).unwrap();
            pb.insert_object(id, None).unwrap();
            ids.push(id);
        }
        let dir = t.join("packs");
        fs::create_dir(&dir).unwrap();
        pb.write(&dir, 0).unwrap();
        let base = format!("pack-{}", pb.name().unwrap().unwrap());
        ids.sort();
        (dir, base, ids)
    }

    #[test]
    fn sizes_of_a_pack_written_by_libgit2_add_up_to_the_pack() {
        let t = tempfile::TempDir::new().unwrap();
        let (dir, base, ids) = libgit2_pack(t.path());
        let sizes = entry_sizes(&dir, &base).unwrap();
        let mut got: Vec<Oid> = sizes.iter().map(|(id, _)| *id).collect();
        got.sort();
        assert_eq!(got, ids);
        assert!(sizes.iter().all(|(_, n)| *n > 0));
        let pack_len = fs::metadata(dir.join(format!("{base}.pack")))
            .unwrap()
            .len();
        let total: u64 = sizes.iter().map(|(_, n)| n).sum();
        assert_eq!(total, pack_len - 12 - 20, "header and trailer aside");
    }

    #[test]
    fn an_index_written_again_is_the_same_bytes() {
        let t = tempfile::TempDir::new().unwrap();
        let (dir, base, _) = libgit2_pack(t.path());
        let original = fs::read(dir.join(format!("{base}.idx"))).unwrap();
        let index = PackIndex::read(&dir, &base).unwrap();
        let mut entries: Vec<IndexEntry> = (0..index.ids.len())
            .rev()
            .map(|i| IndexEntry {
                id: index.id(i),
                offset: index.offset(i),
                crc: index.crc(i),
            })
            .collect();
        let pack = fs::read(dir.join(format!("{base}.pack"))).unwrap();
        let sum: [u8; 20] = pack[pack.len() - 20..].try_into().unwrap();
        let mut again = Vec::new();
        write(&mut again, &mut entries, &sum).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn large_offsets_go_to_the_64_bit_table() {
        let id = |b: u8| Oid::from_bytes(&[b; 20]).unwrap();
        let mut entries = vec![
            IndexEntry {
                id: id(2),
                offset: 5 << 32,
                crc: 7,
            },
            IndexEntry {
                id: id(1),
                offset: 12,
                crc: 8,
            },
        ];
        let mut bytes = Vec::new();
        write(&mut bytes, &mut entries, &[0; 20]).unwrap();
        let t = tempfile::TempDir::new().unwrap();
        fs::write(t.path().join("p.idx"), &bytes).unwrap();
        let pack = fs::File::create(t.path().join("p.pack")).unwrap();
        pack.set_len((5 << 32) + 100).unwrap();
        let index = PackIndex::read(t.path(), "p").unwrap();
        assert_eq!(index.find(id(2)), Some(1));
        assert_eq!(index.offset(1), 5 << 32);
        assert_eq!(index.crc(0), 8);
        assert_eq!(index.at_offset(12), Some(0));
        assert_eq!(index.entry_end(0), 5 << 32);
        assert_eq!(index.entry_end(1), (5 << 32) + 80);
    }

    #[test]
    fn garbage_is_refused() {
        let t = tempfile::TempDir::new().unwrap();
        fs::write(t.path().join("p.idx"), b"not an index at all").unwrap();
        fs::write(t.path().join("p.pack"), b"PACK").unwrap();
        assert!(entry_sizes(t.path(), "p").is_err());
        fs::write(t.path().join("p.idx"), [0xff, b't', b'O', b'c', 0, 0, 0, 2]).unwrap();
        assert!(entry_sizes(t.path(), "p").is_err());
        // A count of 2^32 - 1 objects in an index of a few bytes.
        let mut idx = vec![0xff, b't', b'O', b'c', 0, 0, 0, 2];
        idx.extend([0xff; FANOUT]);
        fs::write(t.path().join("p.idx"), idx).unwrap();
        let e = entry_sizes(t.path(), "p").unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
