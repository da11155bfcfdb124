//! Writing a pack by copying objects as other packs store them, as git's
//! `pack-objects` does when it reuses data. libgit2's pack writer cannot:
//! it inflates every object and searches deltas afresh, which for a whole
//! history costs ten times what `git clone` does, and as much memory as
//! the objects. Here each wanted object's entry is copied byte for byte
//! (compressed data and all) from the first pack that holds it:
//!
//! - a delta whose base is also written is kept, pointing at the base's
//!   new place (bases are written first, so it is an offset delta);
//! - a delta whose base is not written (it is garbage, or we already have
//!   it) is written whole: the object is read through libgit2 and deflated
//!   (or, when it looks compressed already, stored in zlib's stored blocks);
//! - an object in no pack (loose, or behind an alternate) likewise.
//!
//! No delta is searched for, so the cost is that of copying bytes; copied
//! entries are checked against the CRC32 their index records. The index is
//! written from what we know (ids, offsets, CRCs), without reading the pack
//! back. Pack and index go to temporary names and are renamed into place,
//! the index last, so a reader never finds a pack half written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid};

use super::pack_index::{self, IndexEntry, PackIndex};
use super::Cancel;

mod loose;

const OFS_DELTA: u8 = 6;
const REF_DELTA: u8 = 7;
/// Longest entry header: type and size (10 bytes for a u64), then an
/// offset (10) or an object id (20).
const MAX_HEADER: usize = 32;
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Git(#[from] git2::Error),
}

impl CopyError {
    /// The packs read could not give what their index says they hold: a
    /// damaged file, not a failure to write.
    pub fn is_damage(&self) -> bool {
        match self {
            CopyError::Git(e) => super::is_store_damage(e),
            CopyError::Io(e) => e.kind() == io::ErrorKind::InvalidData,
            CopyError::Cancelled => false,
        }
    }

    /// Our error for a failed copy: `Cancelled` stays itself, the rest is
    /// described by `describe` from the message.
    pub fn into_git(self, describe: impl FnOnce(String) -> super::GitError) -> super::GitError {
        match self {
            CopyError::Cancelled => super::GitError::Cancelled,
            CopyError::Git(e) => describe(e.message().to_string()),
            e => describe(e.to_string()),
        }
    }
}

/// A pack to copy from.
pub(super) struct Source {
    pub(super) name: String,
    pub(super) index: PackIndex,
    pub(super) file: File,
}

/// Every readable pack in `dirs` (`objects/pack` directories); a pack that
/// cannot be read is left out, its objects then read through libgit2.
pub(super) fn open_sources(dirs: &[PathBuf]) -> Vec<Source> {
    let mut sources = Vec::new();
    for dir in dirs {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        let mut bases: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".idx").map(str::to_string))
            .collect();
        bases.sort();
        for base in bases {
            let opened = File::open(dir.join(format!("{base}.pack"))).and_then(|file| {
                let mut magic = [0u8; 4];
                file.read_exact_at(&mut magic, 0)?;
                if &magic != b"PACK" {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "not a pack"));
                }
                Ok((PackIndex::read(dir, &base)?, file))
            });
            match opened {
                Ok((index, file)) => sources.push(Source {
                    name: base,
                    index,
                    file,
                }),
                Err(e) => tracing::debug!(pack = %base, error = %e, "pack not copied from"),
            }
        }
    }
    sources
}

/// Where a source pack's entry is and how it is stored.
pub(super) struct Stored {
    pub(super) size: u64,
    pub(super) base: Option<Base>,
    start: u64,
    /// Where the compressed data begins.
    pub(super) data: u64,
    pub(super) end: u64,
}

pub(super) enum Base {
    /// The entry starting at this offset of the same pack.
    At(u64),
    Id(Oid),
}

fn corrupt(src: &Source, offset: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: entry at {offset}: {what}", src.name),
    )
}

pub(super) fn read_stored(src: &Source, pos: usize) -> io::Result<Stored> {
    let start = src.index.offset(pos);
    let end = src.index.entry_end(pos);
    let len = usize::try_from(end.saturating_sub(start)).map_or(MAX_HEADER, |n| n.min(MAX_HEADER));
    let mut head = [0u8; MAX_HEADER];
    src.file.read_exact_at(&mut head[..len], start)?;
    let head = &head[..len];
    let byte = |i: usize| {
        head.get(i)
            .copied()
            .ok_or_else(|| corrupt(src, start, "truncated header"))
    };
    let mut b = byte(0)?;
    let kind = (b >> 4) & 7;
    let mut size = u64::from(b & 15);
    let (mut i, mut shift) = (1, 4);
    while b & 0x80 != 0 {
        b = byte(i)?;
        i += 1;
        if shift > 57 {
            return Err(corrupt(src, start, "size too large"));
        }
        size |= u64::from(b & 0x7f) << shift;
        shift += 7;
    }
    let base = match kind {
        OFS_DELTA => {
            let mut c = byte(i)?;
            i += 1;
            let mut back = u64::from(c & 0x7f);
            while c & 0x80 != 0 {
                c = byte(i)?;
                i += 1;
                back = back
                    .checked_add(1)
                    .and_then(|v| v.checked_mul(128))
                    .ok_or_else(|| corrupt(src, start, "delta offset too large"))?
                    | u64::from(c & 0x7f);
            }
            let at = start
                .checked_sub(back)
                .filter(|_| back > 0)
                .ok_or_else(|| corrupt(src, start, "delta base outside the pack"))?;
            Some(Base::At(at))
        }
        REF_DELTA => {
            let id = head
                .get(i..i + 20)
                .and_then(|b| Oid::from_bytes(b).ok())
                .ok_or_else(|| corrupt(src, start, "truncated delta base"))?;
            i += 20;
            Some(Base::Id(id))
        }
        1..=4 => None,
        _ => return Err(corrupt(src, start, "unknown object type")),
    };
    Ok(Stored {
        size,
        base,
        start,
        data: start + i as u64,
        end,
    })
}

/// An entry header: type and inflated size.
/// Whether `data` is already compressed (an image, an archive, a font),
/// judged from the byte entropy of a sample from its middle: deflating
/// such data at the default level costs 25 ms per MB and saves nothing
/// (50 files of 1 MB: 1.2 of the 1.5 s of a first sync from a local
/// path), so it is stored as is, in zlib's stored blocks.
fn looks_compressed(data: &[u8]) -> bool {
    const SMALLEST: usize = 32 * 1024;
    const SAMPLE: usize = 8 * 1024;
    if data.len() < SMALLEST {
        return false;
    }
    let start = data.len() / 2 - SAMPLE / 2;
    let mut counts = [0u32; 256];
    for &b in &data[start..start + SAMPLE] {
        counts[usize::from(b)] += 1;
    }
    let n = SAMPLE as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    // Text is 4-6 bits a byte; deflated or encrypted data near 8.
    bits > 7.5
}

/// Write `data` zlib-compressed to `out`, `buf` at a time.
fn deflate(
    zlib: &mut flate2::Compress,
    data: &[u8],
    buf: &mut [u8],
    out: &mut impl Write,
) -> io::Result<()> {
    zlib.reset();
    deflate_part(zlib, data, buf, out, flate2::FlushCompress::Finish)
}

/// Feed `data` to `zlib`, writing what it makes to `out`, `buf` at a time:
/// all of it (`Finish`: until the stream ends) or what it can make so far.
fn deflate_part(
    zlib: &mut flate2::Compress,
    mut data: &[u8],
    buf: &mut [u8],
    out: &mut impl Write,
    flush: flate2::FlushCompress,
) -> io::Result<()> {
    let finish = flush == flate2::FlushCompress::Finish;
    loop {
        let (read, written) = (zlib.total_in(), zlib.total_out());
        let status = zlib.compress(data, buf, flush).map_err(io::Error::other)?;
        // Both totals grew by at most the slice lengths (usize).
        let (took, made) = (
            (zlib.total_in() - read) as usize,
            (zlib.total_out() - written) as usize,
        );
        data = &data[took..];
        out.write_all(&buf[..made])?;
        if status == flate2::Status::StreamEnd || (!finish && data.is_empty() && made < buf.len()) {
            return Ok(());
        }
        if took == 0 && made == 0 {
            return Err(io::Error::other("zlib made no progress"));
        }
    }
}

fn entry_header(kind: u8, mut size: u64) -> Vec<u8> {
    let mut out = vec![(kind << 4) | (size & 15) as u8];
    size >>= 4;
    while size != 0 {
        if let Some(last) = out.last_mut() {
            *last |= 0x80;
        }
        out.push((size & 0x7f) as u8);
        size >>= 7;
    }
    out
}

/// How far back an offset delta's base is, as packs write it.
fn back_offset(mut back: u64) -> Vec<u8> {
    let mut out = vec![(back & 0x7f) as u8];
    back >>= 7;
    while back != 0 {
        back -= 1;
        out.push(0x80 | (back & 0x7f) as u8);
        back >>= 7;
    }
    out.reverse();
    out
}

fn type_number(kind: ObjectType) -> Option<u8> {
    match kind {
        ObjectType::Commit => Some(1),
        ObjectType::Tree => Some(2),
        ObjectType::Blob => Some(3),
        ObjectType::Tag => Some(4),
        _ => None,
    }
}

/// The pack being written: every byte goes through the pack's SHA-1 and
/// the current entry's CRC32.
struct Out {
    file: BufWriter<File>,
    sha: openssl::sha::Sha1,
    crc: flate2::Crc,
    at: u64,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.at += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Temporary files removed unless kept.
struct Temps(Vec<PathBuf>);

impl Drop for Temps {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Todo,
    /// Waiting for its base to be written.
    Waiting,
    Written(u64),
}

/// One object to write, and where it is copied from.
struct Wanted {
    id: Oid,
    /// Its place among the wanted ids, sorted (fewer than `u32::MAX`).
    rank: u32,
    from: Option<(usize, usize)>,
}

/// Write into `out_dir` a pack of exactly `wanted` (duplicates allowed),
/// copying from the packs in `pack_dirs` and reading through `odb` what
/// they lack. Returns the new pack's base name (`pack-<sha1>`), or `None`
/// when nothing is wanted.
pub fn write_pack(
    odb: &git2::Odb<'_>,
    pack_dirs: &[PathBuf],
    wanted: &[Oid],
    out_dir: &Path,
    cancel: &Cancel,
) -> Result<Option<String>, CopyError> {
    let mut ids = wanted.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(None);
    }
    let count = u32::try_from(ids.len()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "too many objects for one pack")
    })?;
    let sources = open_sources(pack_dirs);
    // Where loose objects are: the directories that hold the packs'.
    let objects_dirs: Vec<&Path> = pack_dirs.iter().filter_map(|d| d.parent()).collect();
    let mut todo: Vec<Wanted> = ids
        .iter()
        .zip(0..count)
        .map(|(&id, rank)| Wanted {
            id,
            rank,
            from: sources
                .iter()
                .enumerate()
                .find_map(|(s, src)| src.index.find(id).map(|pos| (s, pos))),
        })
        .collect();
    // In the sources' order, so that bases mostly come before their deltas
    // already, and reads go forward through each file.
    todo.sort_unstable_by_key(|w| {
        w.from.map_or((usize::MAX, 0), |(s, pos)| {
            (s, sources[s].index.offset(pos))
        })
    });
    // Where each object of `ids` (sorted) went in `todo`: a base is found
    // by a binary search of `ids`, where a map of ids would take 70 bytes
    // an object (3.5 MB of a first sync's 20 MB peak, 50,000 files).
    let mut number = vec![0u32; ids.len()];
    for (w, n) in todo.iter().zip(0..count) {
        number[w.rank as usize] = n;
    }
    let number_of = |id: &Oid| ids.binary_search(id).ok().map(|i| number[i] as usize);

    let stamp = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let tmp_pack = out_dir.join(format!("tmp_pack_{stamp}"));
    let tmp_idx = out_dir.join(format!("tmp_idx_{stamp}"));
    let mut temps = Temps(vec![tmp_pack.clone(), tmp_idx.clone()]);
    let mut out = Out {
        file: BufWriter::with_capacity(CHUNK, File::create(&tmp_pack)?),
        sha: openssl::sha::Sha1::new(),
        crc: flate2::Crc::new(),
        at: 0,
    };
    out.write_all(b"PACK")?;
    out.write_all(&2u32.to_be_bytes())?;
    out.write_all(&count.to_be_bytes())?;

    let mut state = vec![State::Todo; todo.len()];
    let mut index: Vec<IndexEntry> = Vec::with_capacity(todo.len());
    let mut buf = vec![0u8; CHUNK];
    // One deflate state for all: making one costs a quarter of a MB,
    // zeroed (per object, that was a third of the CPU of a first sync of
    // 5,000 small loose objects from a local path).
    let mut zlib = flate2::Compress::new(flate2::Compression::default(), true);
    let mut store_only = flate2::Compress::new(flate2::Compression::none(), true);
    for first in 0..todo.len() {
        let mut stack = vec![first];
        while let Some(&n) = stack.last() {
            if matches!(state[n], State::Written(_)) {
                stack.pop();
                continue;
            }
            if cancel.is_cancelled() {
                return Err(CopyError::Cancelled);
            }
            let stored = match todo[n].from {
                Some((s, pos)) => Some((&sources[s], pos, read_stored(&sources[s], pos)?)),
                None => None,
            };
            let base = stored.as_ref().and_then(|(src, _, st)| {
                let id = match st.base.as_ref()? {
                    Base::At(at) => src.index.id(src.index.at_offset(*at)?),
                    Base::Id(id) => *id,
                };
                number_of(&id)
            });
            if let Some(b) = base {
                if state[b] == State::Todo && state[n] == State::Todo {
                    state[n] = State::Waiting;
                    stack.push(b);
                    continue;
                }
            }
            let start = out.at;
            out.crc.reset();
            match (stored, base.map(|b| state[b])) {
                (Some((src, pos, st)), based)
                    if st.base.is_none() || matches!(based, Some(State::Written(_))) =>
                {
                    let base_at = match based {
                        Some(State::Written(at)) => Some(at),
                        _ => None,
                    };
                    copy_stored((src, pos, &st), base_at, &mut out, &mut buf)?;
                }
                _ => {
                    let (id, zlibs) = (todo[n].id, (&mut zlib, &mut store_only));
                    match loose::large(&objects_dirs, id) {
                        Some(path) => loose::copy(&path, id, zlibs, &mut buf, &mut out)?,
                        None => write_read(odb, id, zlibs, &mut buf, &mut out)?,
                    }
                }
            }
            index.push(IndexEntry {
                id: todo[n].id,
                offset: start,
                crc: out.crc.sum(),
            });
            state[n] = State::Written(start);
            stack.pop();
        }
    }

    let name = finish(out, &mut index, (&tmp_pack, &tmp_idx), out_dir)?;
    temps.0.clear();
    Ok(Some(name))
}

/// Copy the entry `st` of the pack `src` (at `pos` in its index) into
/// `out` as stored, checking its CRC32 on the way; a delta whose base
/// was written at `base_at` is pointed at it there.
fn copy_stored(
    (src, pos, st): (&Source, usize, &Stored),
    base_at: Option<u64>,
    out: &mut Out,
    buf: &mut [u8],
) -> Result<(), CopyError> {
    let start = out.at;
    let mut check = flate2::Crc::new();
    let mut head = vec![0u8; (st.data - st.start) as usize];
    src.file.read_exact_at(&mut head, st.start)?;
    check.update(&head);
    if let Some(base_at) = base_at {
        let mut h = entry_header(OFS_DELTA, st.size);
        h.extend(back_offset(start - base_at));
        out.write_all(&h)?;
    } else {
        out.write_all(&head)?;
    }
    let mut at = st.data;
    while at < st.end {
        let len = usize::try_from(st.end - at).map_or(CHUNK, |n| n.min(CHUNK));
        src.file.read_exact_at(&mut buf[..len], at)?;
        check.update(&buf[..len]);
        out.write_all(&buf[..len])?;
        at += len as u64;
    }
    if check.sum() != src.index.crc(pos) {
        return Err(corrupt(src, st.start, "CRC32 does not match the index").into());
    }
    Ok(())
}

/// End the pack written to `out` with its checksum, write its index
/// (`index`'s entries), both synced to disk, and give them their names
/// in `out_dir`, from the temporary ones (`tmp_pack`, `tmp_idx`).
/// Returns the pack's base name.
fn finish(
    out: Out,
    index: &mut [IndexEntry],
    (tmp_pack, tmp_idx): (&Path, &Path),
    out_dir: &Path,
) -> Result<String, CopyError> {
    let Out { mut file, sha, .. } = out;
    let sum = sha.finish();
    file.write_all(&sum)?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    let mut idx = BufWriter::new(File::create(tmp_idx)?);
    pack_index::write(&mut idx, index, &sum)?;
    let idx = idx.into_inner().map_err(|e| e.into_error())?;
    idx.sync_all()?;
    drop(idx);

    let name = format!("pack-{}", Oid::from_bytes(&sum)?);
    fs::rename(tmp_pack, out_dir.join(format!("{name}.pack")))?;
    fs::rename(tmp_idx, out_dir.join(format!("{name}.idx")))?;
    Ok(name)
}

/// Write object `id`, read whole through libgit2, as a pack entry, its data
/// deflated by `zlib`, or by `store` when it looks compressed.
fn write_read(
    odb: &git2::Odb<'_>,
    id: Oid,
    (zlib, store): (&mut flate2::Compress, &mut flate2::Compress),
    buf: &mut [u8],
    out: &mut impl Write,
) -> Result<(), CopyError> {
    let object = odb.read(id)?;
    // libgit2 no longer checks what it reads (see init_globals); what we
    // write under an id must be it.
    if Oid::hash_object(object.kind(), object.data())? != id {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("object {id}: its content does not match its id"),
        )
        .into());
    }
    let kind = type_number(object.kind()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("object {id} has no packable type"),
        )
    })?;
    out.write_all(&entry_header(kind, object.len() as u64))?;
    let data = object.data();
    let z = if looks_compressed(data) { store } else { zlib };
    deflate(z, data, buf, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_util::{git, noise};
    use std::process::Command;

    /// A repository whose 30 commits of similar files git packed with
    /// deltas (offset deltas, or reference deltas with `ref_deltas`).
    fn source(dir: &Path, ref_deltas: bool) -> git2::Repository {
        git(dir, &["init", "-q", "-b", "main"]);
        for i in 0..30 {
            let body: String = (0..200)
                .map(|l| format!("line {l} of a page, edit {}\n", i * (l % 3)))
                .collect();
            fs::write(dir.join("page.txt"), body).unwrap();
            fs::write(dir.join(format!("f{}", i % 4)), format!("{i}\n")).unwrap();
            git(dir, &["add", "-A"]);
            git(dir, &["commit", "-qm", &format!("c{i}")]);
        }
        git(dir, &["repack", "-adq"]);
        if ref_deltas {
            let packs = dir.join(".git/objects/pack");
            let all = git(dir, &["rev-list", "--objects", "--all"]);
            let ids: String = all.lines().map(|l| format!("{}\n", &l[..40])).collect();
            let mut child = Command::new("git")
                .args([
                    "pack-objects",
                    "-q",
                    "--no-reuse-delta",
                    "--no-delta-base-offset",
                    "tmp",
                ])
                .current_dir(dir)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(ids.as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success());
            for e in fs::read_dir(&packs).unwrap().flatten() {
                fs::remove_file(e.path()).unwrap();
            }
            for e in fs::read_dir(dir).unwrap().flatten() {
                let name = e.file_name().into_string().unwrap();
                if name.starts_with("tmp-") {
                    fs::rename(e.path(), packs.join(name.replacen("tmp-", "pack-", 1))).unwrap();
                }
            }
        }
        git2::Repository::open(dir).unwrap()
    }

    /// A temporary directory with the source repository in `src`.
    fn fixture(ref_deltas: bool) -> (tempfile::TempDir, PathBuf, git2::Repository) {
        let t = tempfile::TempDir::new().unwrap();
        let dir = t.path().join("src");
        fs::create_dir(&dir).unwrap();
        let src = source(&dir, ref_deltas);
        (t, dir, src)
    }

    /// The one pack of `repo`.
    fn the_pack(repo: &git2::Repository) -> PathBuf {
        fs::read_dir(repo.path().join("objects/pack"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "pack"))
            .unwrap()
    }

    fn count_kinds(pack: &Path) -> (usize, usize) {
        let dir = pack.parent().unwrap();
        let out = git(dir, &["verify-pack", "-v", &pack.to_string_lossy()]);
        let deltas = out
            .lines()
            .filter(|l| l.split_whitespace().count() >= 7 && l.len() > 40)
            .count();
        let objects = out
            .lines()
            .filter(|l| l.len() > 40 && l.as_bytes()[40] == b' ')
            .count();
        (objects, deltas)
    }

    /// Copy `wanted` from `src` into a fresh repository's store; check every
    /// object reads back as in the source; the new pack's path.
    fn copy_and_check(src: &git2::Repository, wanted: &[Oid], t: &Path) -> PathBuf {
        let dst = git2::Repository::init_bare(t.join("dst")).unwrap();
        let out = dst.path().join("objects/pack");
        let name = write_pack(
            &src.odb().unwrap(),
            &[src.path().join("objects/pack")],
            wanted,
            &out,
            &Cancel::new(),
        )
        .unwrap()
        .unwrap();
        let dst = git2::Repository::open_bare(dst.path()).unwrap();
        let (sodb, dodb) = (src.odb().unwrap(), dst.odb().unwrap());
        for id in wanted {
            let (a, b) = (sodb.read(*id).unwrap(), dodb.read(*id).unwrap());
            assert_eq!((a.kind(), a.data()), (b.kind(), b.data()), "{id}");
        }
        let mut ours: Vec<Oid> = Vec::new();
        dodb.foreach(|id| {
            ours.push(*id);
            true
        })
        .unwrap();
        let mut want = wanted.to_vec();
        want.sort();
        want.dedup();
        ours.sort();
        assert_eq!(ours, want, "exactly the wanted objects");
        let pack = out.join(format!("{name}.pack"));
        // git checks the pack's checksum, and each entry against the index.
        git(&out, &["verify-pack", &pack.to_string_lossy()]);
        pack
    }

    fn all_objects(repo: &git2::Repository) -> Vec<Oid> {
        let mut ids = Vec::new();
        repo.odb()
            .unwrap()
            .foreach(|id| {
                ids.push(*id);
                true
            })
            .unwrap();
        ids
    }

    /// Copy `wanted` from `src`'s store into a fresh directory, expecting
    /// an error; asserts nothing is left in that directory.
    fn copy_fails(src: &git2::Repository, wanted: &[Oid], t: &Path, cancel: &Cancel) -> CopyError {
        let out = t.join("out");
        fs::create_dir_all(&out).unwrap();
        let packs = src.path().join("objects/pack");
        let err = write_pack(&src.odb().unwrap(), &[packs], wanted, &out, cancel).unwrap_err();
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            0,
            "left behind after {err}"
        );
        err
    }

    #[test]
    fn a_whole_store_is_copied_with_its_deltas() {
        let (t, _, src) = fixture(false);
        let (_, source_deltas) = count_kinds(&the_pack(&src));
        assert!(source_deltas > 20, "the source has deltas to copy");
        let ids = all_objects(&src);
        let pack = copy_and_check(&src, &ids, t.path());
        let (objects, deltas) = count_kinds(&pack);
        assert_eq!(objects, ids.len());
        assert_eq!(deltas, source_deltas, "every delta kept");
    }

    #[test]
    fn loose_objects_of_any_size_are_deflated_into_the_pack() {
        // One deflate state serves every object written whole: each must
        // still be a complete stream of its own, however many buffers it
        // takes (incompressible data larger than CHUNK) or how few (empty).
        let t = tempfile::TempDir::new().unwrap();
        let src = git2::Repository::init_bare(t.path().join("src")).unwrap();
        let blobs: Vec<Vec<u8>> = vec![
            noise(3 * CHUNK + 17, 7),
            Vec::new(),
            b"small".to_vec(),
            vec![b'a'; 5 * CHUNK],
            noise(CHUNK, 8),
            noise(1, 9),
        ];
        let ids: Vec<Oid> = blobs.iter().map(|b| src.blob(b).unwrap()).collect();
        let pack = copy_and_check(&src, &ids, t.path());
        // The noise is stored as it is, the repeated byte deflated.
        let noise_bytes = (3 * CHUNK + 17 + CHUNK + 1) as u64;
        let size = fs::metadata(&pack).unwrap().len();
        assert!(
            size > noise_bytes && size < noise_bytes + 2048,
            "{size} bytes"
        );
    }

    #[test]
    fn a_loose_object_whose_content_is_not_its_id_fails_the_copy() {
        // As the daemon runs: libgit2 does not check what it reads.
        git2::opts::strict_hash_verification(false);
        let t = tempfile::TempDir::new().unwrap();
        let src = git2::Repository::init_bare(t.path().join("src")).unwrap();
        let good = src.blob(b"the right content").unwrap();
        // Valid zlib, another content, at the first blob's path.
        let hex = good.to_string();
        let path = src.path().join("objects").join(&hex[..2]).join(&hex[2..]);
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"blob 17\0the wrong content").unwrap();
        fs::write(&path, z.finish().unwrap()).unwrap();
        let err = copy_fails(&src, &[good], t.path(), &Cancel::new());
        assert!(err.to_string().contains("does not match its id"), "{err}");
    }

    #[test]
    fn a_large_loose_object_is_streamed_and_checked_against_its_id() {
        git2::opts::strict_hash_verification(false);
        let t = tempfile::TempDir::new().unwrap();
        let src = git2::Repository::init_bare(t.path().join("src")).unwrap();
        let good = src.blob(&noise(200_000, 1)).unwrap();
        let hex = good.to_string();
        let path = src.path().join("objects").join(&hex[..2]).join(&hex[2..]);
        assert!(loose::large(&[&src.path().join("objects")], good) == Some(path.clone()));
        copy_and_check(&src, &[good], t.path());
        // As long, valid zlib, another content.
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"blob 200000\0").unwrap();
        z.write_all(&noise(200_000, 2)).unwrap();
        fs::write(&path, z.finish().unwrap()).unwrap();
        let err = copy_fails(&src, &[good], t.path(), &Cancel::new());
        assert!(err.to_string().contains("does not match its id"), "{err}");
    }

    #[test]
    fn compressed_data_is_told_from_text() {
        let mut x: u64 = 1;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        assert!(looks_compressed(&noise));
        assert!(!looks_compressed(&noise[..20_000]), "too small to matter");
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| format!("{{\"id\": {i}, \"name\": \"item {i}\"}},\n").into_bytes())
            .collect();
        assert!(text.len() > 100_000);
        assert!(!looks_compressed(&text));
        assert!(!looks_compressed(&vec![0u8; 100_000]));
    }

    #[test]
    fn reference_deltas_are_kept_as_offset_deltas() {
        let (t, _, src) = fixture(true);
        let ids = all_objects(&src);
        let pack = copy_and_check(&src, &ids, t.path());
        let (_, deltas) = count_kinds(&pack);
        assert!(deltas > 20, "{deltas} deltas");
    }

    #[test]
    fn deltas_on_objects_left_out_are_written_whole() {
        let (t, dir, src) = fixture(false);
        // The objects of the first commit only: most are deltas on later
        // versions, which git stores whole.
        let first = git(&dir, &["rev-list", "--max-parents=0", "HEAD"]);
        let ids: Vec<Oid> = git(&dir, &["ls-tree", "-r", "-t", first.trim()])
            .lines()
            .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
            .chain([first.trim().parse().unwrap()])
            .collect();
        let tree = src
            .find_commit(first.trim().parse().unwrap())
            .unwrap()
            .tree_id();
        let mut ids = ids;
        ids.push(tree);
        ids.push(tree); // duplicates are fine
        copy_and_check(&src, &ids, t.path());
    }

    #[test]
    fn any_subset_of_a_store_with_long_delta_chains_reads_back() {
        let (t, dir, src) = fixture(false);
        // Deltas 50 deep, searched widely: chains cross the subsets below.
        git(&dir, &["repack", "-adfq", "--depth=50", "--window=50"]);
        let ids = all_objects(&src);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..6 {
            let subset: Vec<Oid> = ids
                .iter()
                .copied()
                .filter(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % 3 == 0
                })
                .collect();
            let out = t.path().join(format!("round{round}"));
            fs::create_dir(&out).unwrap();
            copy_and_check(&src, &subset, &out);
        }
    }

    #[test]
    fn loose_objects_are_read_through_libgit2() {
        let (t, _, src) = fixture(false);
        let loose = src.blob(b"written after the repack").unwrap();
        let mut ids = all_objects(&src);
        assert!(ids.contains(&loose));
        ids.retain(|id| id.as_bytes()[0] < 0x80 || *id == loose);
        copy_and_check(&src, &ids, t.path());
    }

    #[test]
    fn a_damaged_entry_fails_the_copy_and_leaves_nothing() {
        let (t, _, src) = fixture(false);
        let pack = the_pack(&src);
        let mut bytes = fs::read(&pack).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        fs::set_permissions(&pack, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        fs::write(&pack, bytes).unwrap();
        let err = copy_fails(&src, &all_objects(&src), t.path(), &Cancel::new());
        assert!(err.to_string().contains("CRC32"), "{err}");
    }

    #[test]
    fn a_cancelled_copy_leaves_nothing() {
        let (t, _, src) = fixture(false);
        let cancel = Cancel::new();
        cancel.cancel();
        let err = copy_fails(&src, &all_objects(&src), t.path(), &cancel);
        assert!(matches!(err, CopyError::Cancelled), "{err}");
    }

    #[test]
    fn offsets_round_trip_through_the_encodings() {
        for back in [1u64, 127, 128, 129, 16_511, 16_512, 1 << 35, u64::MAX >> 8] {
            let enc = back_offset(back);
            let mut c = enc[0];
            let mut v = u64::from(c & 0x7f);
            let mut i = 1;
            while c & 0x80 != 0 {
                c = enc[i];
                i += 1;
                v = ((v + 1) << 7) | u64::from(c & 0x7f);
            }
            assert_eq!((v, i), (back, enc.len()), "{back}");
        }
        assert_eq!(entry_header(3, 5), vec![0x35]);
        assert_eq!(entry_header(1, 100), vec![0x94, 0x06]);
    }
}
