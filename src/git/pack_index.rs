//! How many bytes each object takes in a pack, read from the pack's index
//! (`.idx`, version 2: the format every git since 1.5.2 writes, and libgit2
//! too). libgit2 can list a pack's objects but not their sizes on disk,
//! which is what deciding "is a repack worth it" needs.
//!
//! Layout of a version 2 index: magic `\xfftOc`, version 2, a fan-out
//! table of 256 big-endian u32 (the last one is the object count `n`), `n`
//! object ids, `n` CRC32s, `n` u32 offsets (the high bit set means "index
//! into the 64-bit offset table that follows"), then the 64-bit offsets.
//! An object's entry in the pack runs from its offset to the next one; the
//! last ends where the pack's 20-byte trailer begins.

use std::fs;
use std::io;
use std::path::Path;

use git2::Oid;

const MAGIC: [u8; 4] = [0xff, b't', b'O', b'c'];
const HEADER: usize = 8;
const FANOUT: usize = 256 * 4;
const TRAILER: u64 = 20;

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

/// The objects of `pack_dir/<base>.pack` with the bytes each takes there.
pub fn entry_sizes(pack_dir: &Path, base: &str) -> io::Result<Vec<(Oid, u64)>> {
    let idx = fs::read(pack_dir.join(format!("{base}.idx")))?;
    let pack_len = fs::metadata(pack_dir.join(format!("{base}.pack")))?.len();
    if idx.get(..4) != Some(&MAGIC[..]) || u32_at(&idx, 4)? != 2 {
        return Err(bad("not a version 2 index"));
    }
    let n = u32_at(&idx, HEADER + FANOUT - 4)? as usize;
    let ids_at = HEADER + FANOUT;
    let offsets_at = ids_at + n * 20 + n * 4;
    let large_at = offsets_at + n * 4;
    let mut entries: Vec<(u64, Oid)> = Vec::with_capacity(n);
    for i in 0..n {
        let id = idx
            .get(ids_at + i * 20..ids_at + (i + 1) * 20)
            .ok_or_else(|| bad("truncated"))?;
        let id = Oid::from_bytes(id).map_err(|_| bad("object id"))?;
        let small = u32_at(&idx, offsets_at + i * 4)?;
        let offset = if small & 0x8000_0000 == 0 {
            u64::from(small)
        } else {
            u64_at(&idx, large_at + (small & 0x7fff_ffff) as usize * 8)?
        };
        entries.push((offset, id));
    }
    entries.sort_unstable_by_key(|(offset, _)| *offset);
    let ends = entries
        .iter()
        .skip(1)
        .map(|(next, _)| *next)
        .chain([pack_len.saturating_sub(TRAILER)]);
    Ok(entries
        .iter()
        .zip(ends)
        .map(|((offset, id), end)| (*id, end.saturating_sub(*offset)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_a_pack_written_by_libgit2_add_up_to_the_pack() {
        let t = tempfile::TempDir::new().unwrap();
        let repo = git2::Repository::init(t.path()).unwrap();
        let mut pb = repo.packbuilder().unwrap();
        let mut ids = Vec::new();
        for i in 0..50u32 {
            let body = format!("object {i} {}", "x".repeat(i as usize * 100));
            let id = repo.blob(body.as_bytes()).unwrap();
            pb.insert_object(id, None).unwrap();
            ids.push(id);
        }
        let dir = t.path().join("packs");
        fs::create_dir(&dir).unwrap();
        pb.write(&dir, 0).unwrap();
        let base = format!("pack-{}", pb.name().unwrap().unwrap());
        let sizes = entry_sizes(&dir, &base).unwrap();
        let mut got: Vec<Oid> = sizes.iter().map(|(id, _)| *id).collect();
        got.sort();
        ids.sort();
        assert_eq!(got, ids);
        assert!(sizes.iter().all(|(_, n)| *n > 0));
        let pack_len = fs::metadata(dir.join(format!("{base}.pack")))
            .unwrap()
            .len();
        let total: u64 = sizes.iter().map(|(_, n)| n).sum();
        assert_eq!(total, pack_len - 12 - 20, "header and trailer aside");
    }

    #[test]
    fn garbage_is_refused() {
        let t = tempfile::TempDir::new().unwrap();
        fs::write(t.path().join("p.idx"), b"not an index at all").unwrap();
        fs::write(t.path().join("p.pack"), b"PACK").unwrap();
        assert!(entry_sizes(t.path(), "p").is_err());
        fs::write(t.path().join("p.idx"), [0xff, b't', b'O', b'c', 0, 0, 0, 2]).unwrap();
        assert!(entry_sizes(t.path(), "p").is_err());
    }
}
