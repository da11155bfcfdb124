//! Large loose objects are copied into the pack as they are read: inflated
//! a chunk at a time from their file, checked against their id, deflated
//! again (or stored, when they look compressed) into the pack. Read through
//! libgit2 they were held whole in memory: a file of 100 MB committed to a
//! local repository (where `git add` leaves it loose until a `git gc`)
//! took 100 MB of heap to sync.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use git2::Oid;

use super::{deflate_part, entry_header, looks_compressed, CHUNK};

/// Loose files from this size on are streamed; smaller ones are read whole.
const STREAM_FROM: u64 = 64 * 1024;
/// `<type> <size>` and its NUL: the longest a loose object's header can be.
const MAX_HEADER: usize = 32;

/// The file of `id` in one of `objects_dirs`, when it is stored loose
/// there and large enough to stream.
pub(super) fn large(objects_dirs: &[&Path], id: Oid) -> Option<PathBuf> {
    let hex = id.to_string();
    objects_dirs
        .iter()
        .map(|dir| dir.join(&hex[..2]).join(&hex[2..]))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.len() >= STREAM_FROM))
}

fn invalid(id: Oid, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("object {id}: {what}"))
}

/// Read until `buf` is full or the stream ends; how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Write the loose object `id` at `path` into `out` as a pack entry, its
/// data deflated by `zlib`, or by `store` when it looks compressed.
pub(super) fn copy(
    path: &Path,
    id: Oid,
    (zlib, store): (&mut flate2::Compress, &mut flate2::Compress),
    buf: &mut [u8],
    out: &mut impl Write,
) -> io::Result<()> {
    let mut inflated = flate2::read::ZlibDecoder::new(BufReader::new(File::open(path)?));
    let mut header = Vec::with_capacity(MAX_HEADER);
    let mut byte = [0u8; 1];
    while byte[0] != 0 || header.is_empty() {
        if header.len() == MAX_HEADER || inflated.read(&mut byte)? == 0 {
            return Err(invalid(id, "no loose object header"));
        }
        header.push(byte[0]);
    }
    let text = std::str::from_utf8(&header[..header.len() - 1]).unwrap_or_default();
    let (kind, size) = text
        .split_once(' ')
        .and_then(|(kind, size)| Some((kind, size.parse::<u64>().ok()?)))
        .ok_or_else(|| invalid(id, "bad loose object header"))?;
    let kind = match kind {
        "commit" => 1,
        "tree" => 2,
        "blob" => 3,
        "tag" => 4,
        _ => return Err(invalid(id, "no packable type")),
    };
    let mut sha1 = openssl::sha::Sha1::new();
    sha1.update(&header);
    out.write_all(&entry_header(kind, size))?;

    let mut chunk = vec![0u8; CHUNK];
    let mut n = read_full(&mut inflated, &mut chunk)?;
    let z = if looks_compressed(&chunk[..n]) {
        store
    } else {
        zlib
    };
    z.reset();
    let mut total = 0u64;
    while n > 0 {
        sha1.update(&chunk[..n]);
        total += n as u64;
        deflate_part(z, &chunk[..n], buf, out, flate2::FlushCompress::None)?;
        n = read_full(&mut inflated, &mut chunk)?;
    }
    deflate_part(z, &[], buf, out, flate2::FlushCompress::Finish)?;
    if total != size || Oid::from_bytes(&sha1.finish()).ok() != Some(id) {
        return Err(invalid(id, "its content does not match its id"));
    }
    Ok(())
}
