//! Protocol v2's `fetch` command (`gitprotocol-v2(5)`) for one commit: the
//! request, and the answer read as it arrives, its pack handed on.
//!
//! libgit2 1.9 fetches with protocol v0 only, whose first answer lists
//! every ref the server has: on a repository with many pull requests,
//! megabytes for each update (3.3 MB for 50,000 refs), where the refs
//! were already listed with v2 (`ls_refs.rs`). With the commit known, a v2
//! `fetch` is one request that asks for it alone.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use super::pkt_line;
use super::{Cancel, Hash};

/// git's depth for "all history", sent to make a shallow store whole
/// (`fetch --unshallow`).
const ALL_HISTORY: u32 = 0x7fff_ffff;

/// The largest packet of the protocol (`LARGE_PACKET_MAX`).
const MAX_PACKET: usize = 65520;

/// What one fetch asks for.
pub(super) struct Want<'a> {
    /// The commit (or, to fill a partial store, the blobs) wanted.
    pub objects: &'a [Hash],
    /// Commits deep (0: all history).
    pub depth: u32,
    /// The store's shallow commits (`.git/shallow`), whose parents it lacks.
    pub shallow: &'a BTreeSet<Hash>,
    /// Commits the store holds: what they reach is not sent again.
    pub haves: &'a [Hash],
    /// A partial clone's filter (`blob:none`): the objects it leaves out
    /// are not sent.
    pub filter: Option<&'a str>,
}

/// The request's body. The pack may be thin (deltas on objects we have:
/// libgit2's indexer completes it from the store) and is asked without
/// progress messages; `done` at once, since the haves are the few commits
/// the store holds, not a history to negotiate.
pub(super) fn request(want: &Want<'_>) -> Vec<u8> {
    let mut body = Vec::new();
    pkt_line::write(&mut body, b"command=fetch\n");
    body.extend_from_slice(b"0001");
    for arg in ["thin-pack", "ofs-delta", "no-progress"] {
        pkt_line::write(&mut body, format!("{arg}\n").as_bytes());
    }
    for object in want.objects {
        pkt_line::write(&mut body, format!("want {object}\n").as_bytes());
    }
    for commit in want.shallow {
        pkt_line::write(&mut body, format!("shallow {commit}\n").as_bytes());
    }
    if let Some(depth) = deepen(want) {
        pkt_line::write(&mut body, format!("deepen {depth}\n").as_bytes());
    }
    if let Some(filter) = want.filter {
        pkt_line::write(&mut body, format!("filter {filter}\n").as_bytes());
    }
    for have in want.haves {
        pkt_line::write(&mut body, format!("have {have}\n").as_bytes());
    }
    pkt_line::write(&mut body, b"done\n");
    body.extend_from_slice(b"0000");
    body
}

/// The depth to ask for (`deepen`), if any: `depth`, or all history to
/// make a shallow store whole.
pub(super) fn deepen(want: &Want<'_>) -> Option<u32> {
    match want.depth {
        0 if want.shallow.is_empty() => None,
        0 => Some(ALL_HISTORY),
        depth => Some(depth),
    }
}

/// No shallow commits.
static NO_SHALLOW: BTreeSet<Hash> = BTreeSet::new();

/// What fetches `objects` alone (a partial clone's missing blobs): no
/// history, no haves, no filter.
pub(super) fn objects_want(objects: &[Hash]) -> Want<'_> {
    Want {
        objects,
        depth: 0,
        shallow: &NO_SHALLOW,
        haves: &[],
        filter: None,
    }
}

/// Whether `capability`, one line of a v2 server's capability
/// advertisement, says its `fetch` takes a `filter` (`fetch=shallow
/// filter`: the server has `uploadpack.allowFilter`).
pub(super) fn offers_filter(capability: &[u8]) -> bool {
    capability
        .strip_prefix(b"fetch=")
        .is_some_and(|features| features.split(|b| *b == b' ').any(|f| f == b"filter"))
}

/// How the store's shallow commits change with the pack.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ShallowInfo {
    /// Commits sent without their parents.
    pub shallow: Vec<Hash>,
    /// Shallow commits of ours whose parents were sent.
    pub unshallow: Vec<Hash>,
}

impl ShallowInfo {
    /// Note `line`, a `shallow <hash>` or `unshallow <hash>` line of the
    /// answer (v2's `shallow-info`, v0's shallow update).
    pub fn note(&mut self, line: &[u8]) -> Result<(), FetchError> {
        let (list, hex) = if let Some(hex) = line.strip_prefix(b"shallow ") {
            (&mut self.shallow, hex)
        } else if let Some(hex) = line.strip_prefix(b"unshallow ") {
            (&mut self.unshallow, hex)
        } else {
            return Err(FetchError::Protocol("an unknown shallow-info line"));
        };
        list.push(hash(hex)?);
        Ok(())
    }

    /// The store's shallow commits after the pack, from `before`.
    pub fn apply(&self, before: &BTreeSet<Hash>) -> BTreeSet<Hash> {
        let mut after = before.clone();
        after.extend(self.shallow.iter().copied());
        for commit in &self.unshallow {
            after.remove(commit);
        }
        after
    }
}

/// Why a fetch brought nothing.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the server said: {0}")]
    Server(String),
    #[error("{0} in the fetch's answer")]
    Protocol(&'static str),
    /// The request or its answer failed on the way (HTTP status, TLS, a
    /// pack that could not be stored).
    #[error("{0}")]
    Transport(String),
}

/// Read the answer from `r`: its pack goes to `pack`, what it says of
/// shallow commits is returned. `cancel` is looked at before every read
/// from `r` (a slow server's packet may take many).
pub(super) fn read_answer(
    r: &mut dyn Read,
    pack: &mut dyn Write,
    cancel: &Cancel,
) -> Result<ShallowInfo, FetchError> {
    read_with(r, pack, cancel, |packets, pack| {
        read_sections(packets, pack)
    })
}

/// Read an answer from `r` with `read`, given its packets as they come
/// (buffered; failing once `cancel` is set) and `pack`.
pub(super) fn read_with(
    r: &mut dyn Read,
    pack: &mut dyn Write,
    cancel: &Cancel,
    read: impl FnOnce(
        &mut Packets<'_, &mut dyn Read>,
        &mut dyn Write,
    ) -> Result<ShallowInfo, FetchError>,
) -> Result<ShallowInfo, FetchError> {
    let mut r = std::io::BufReader::with_capacity(64 << 10, Cancellable { r, cancel });
    let mut r: &mut dyn Read = &mut r;
    let mut packets = Packets {
        r: &mut r,
        buf: Vec::with_capacity(MAX_PACKET),
    };
    read(&mut packets, pack).map_err(|e| match e {
        FetchError::Io(_) if cancel.is_cancelled() => FetchError::Cancelled,
        e => e,
    })
}

/// A reader that fails once `cancel` is set.
struct Cancellable<'a, R: ?Sized> {
    r: &'a mut R,
    cancel: &'a Cancel,
}

impl<R: Read + ?Sized> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(std::io::Error::other("cancelled"));
        }
        self.r.read(buf)
    }
}

/// The answer's sections, up to and with the pack.
fn read_sections(
    packets: &mut Packets<'_, impl Read>,
    pack: &mut dyn Write,
) -> Result<ShallowInfo, FetchError> {
    let mut info = ShallowInfo::default();
    loop {
        let section = match packets.next()? {
            Packet::Data(line) => trim(line).to_vec(),
            _ => return Err(FetchError::Protocol("no pack")),
        };
        match &section[..] {
            b"packfile" => {
                read_pack(packets, pack)?;
                return Ok(info);
            }
            b"shallow-info" => {
                let end = packets.lines(|line| info.note(trim(line)))?;
                if end == End::Flush {
                    return Err(FetchError::Protocol("no pack"));
                }
            }
            // Sections of features not asked for, or of a negotiation
            // (not held: `done` was sent): passed over.
            b"acknowledgments" | b"wanted-refs" | b"packfile-uris" => {
                if packets.lines(|_| Ok(()))? == End::Flush {
                    return Err(FetchError::Protocol("no pack"));
                }
            }
            line => {
                return Err(match pkt_line::error_message(line) {
                    Some(message) => FetchError::Server(message),
                    None => FetchError::Protocol("an unknown section"),
                });
            }
        }
    }
}

/// The `packfile` section: side-band packets, up to the flush. (A
/// cancelled pass fails the next read, see [`Cancellable`].)
fn read_pack(packets: &mut Packets<'_, impl Read>, pack: &mut dyn Write) -> Result<(), FetchError> {
    loop {
        let data = match packets.next()? {
            Packet::Data(data) => data,
            Packet::Flush => return Ok(()),
            Packet::Delim => return Err(FetchError::Protocol("a section after the pack")),
        };
        side_band(data, pack)?;
    }
}

/// One packet of a side-band pack: its data to `pack`.
pub(super) fn side_band(data: &[u8], pack: &mut dyn Write) -> Result<(), FetchError> {
    match data.split_first() {
        Some((1, bytes)) => Ok(pack.write_all(bytes)?),
        Some((2, _)) => Ok(()), // progress
        Some((3, message)) => {
            let message = String::from_utf8_lossy(trim(message)).into_owned();
            Err(FetchError::Server(message))
        }
        _ => Err(FetchError::Protocol("an unknown side band")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Delim,
    Flush,
}

pub(super) enum Packet<'b> {
    Data(&'b [u8]),
    Flush,
    Delim,
}

/// pkt-lines read one at a time from a stream.
pub(super) struct Packets<'r, R> {
    r: &'r mut R,
    buf: Vec<u8>,
}

impl<R: Read> Packets<'_, R> {
    pub(super) fn next(&mut self) -> Result<Packet<'_>, FetchError> {
        let mut len = [0u8; 4];
        self.r.read_exact(&mut len)?;
        match pkt_line::length(&len) {
            Some(0) => Ok(Packet::Flush),
            Some(1) => Ok(Packet::Delim),
            Some(n) if n > 4 && n <= MAX_PACKET => {
                self.buf.resize(n - 4, 0);
                self.r.read_exact(&mut self.buf)?;
                Ok(Packet::Data(&self.buf))
            }
            _ => Err(FetchError::Protocol("a malformed packet")),
        }
    }

    /// The data lines of a section, each to `each`, and how it ended.
    pub(super) fn lines(
        &mut self,
        mut each: impl FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<End, FetchError> {
        loop {
            match self.next()? {
                Packet::Data(line) => each(line)?,
                Packet::Delim => return Ok(End::Delim),
                Packet::Flush => return Ok(End::Flush),
            }
        }
    }
}

pub(super) fn trim(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

fn hash(hex: &[u8]) -> Result<Hash, FetchError> {
    std::str::from_utf8(hex)
        .ok()
        .filter(|h| h.len() == 40)
        .and_then(|h| h.parse().ok())
        .ok_or(FetchError::Protocol("a malformed hash"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const A: &str = "1111111111111111111111111111111111111111";
    pub const B: &str = "2222222222222222222222222222222222222222";

    pub fn h(hex: &str) -> Hash {
        hex.parse().unwrap()
    }

    fn pkt(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        pkt_line::write(&mut out, data);
        out
    }

    /// A body's packets, as text (a flush as `0000`).
    pub fn lines(body: &[u8]) -> Vec<String> {
        pkt_line::PktLines::new(body)
            .map(|p| match p {
                pkt_line::Pkt::Data(d) => String::from_utf8(d.to_vec()).unwrap(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_request_wants_the_commit_at_the_depth_with_the_store_shallow_and_its_haves() {
        let shallow = BTreeSet::from([h(B)]);
        let body = request(&Want {
            objects: &[h(A)],
            depth: 1,
            shallow: &shallow,
            haves: &[h(B)],
            filter: None,
        });
        let expected = [
            "command=fetch",
            "Delim",
            "thin-pack",
            "ofs-delta",
            "no-progress",
            &format!("want {A}"),
            &format!("shallow {B}"),
            "deepen 1",
            &format!("have {B}"),
            "done",
            "Flush",
        ];
        assert_eq!(lines(&body), expected);
    }

    #[test]
    fn all_history_deepens_a_shallow_store_only() {
        let none = BTreeSet::new();
        let wanted = [h(A)];
        let want = |shallow| Want {
            objects: &wanted,
            depth: 0,
            shallow,
            haves: &[],
            filter: None,
        };
        assert!(!lines(&request(&want(&none)))
            .iter()
            .any(|l| l.starts_with("deepen")));
        let shallow = BTreeSet::from([h(B)]);
        assert!(lines(&request(&want(&shallow))).contains(&"deepen 2147483647".to_string()));
    }

    #[test]
    fn a_filtered_fetch_says_its_filter_and_blobs_are_wanted_alone() {
        let none = BTreeSet::new();
        let filtered = lines(&request(&Want {
            objects: &[h(A)],
            depth: 1,
            shallow: &none,
            haves: &[],
            filter: Some("blob:none"),
        }));
        assert!(filtered.contains(&"filter blob:none".to_string()));
        let blobs = lines(&request(&Want {
            objects: &[h(A), h(B)],
            depth: 0,
            shallow: &none,
            haves: &[],
            filter: None,
        }));
        let asked: Vec<_> = blobs.iter().filter(|l| !l.starts_with("want")).collect();
        assert_eq!(
            asked,
            [
                "command=fetch",
                "Delim",
                "thin-pack",
                "ofs-delta",
                "no-progress",
                "done",
                "Flush"
            ]
        );
        assert!(blobs.contains(&format!("want {A}")) && blobs.contains(&format!("want {B}")));
    }

    #[test]
    fn a_server_offers_filters_in_its_fetch_capability() {
        assert!(offers_filter(b"fetch=shallow wait-for-done filter"));
        assert!(offers_filter(b"fetch=filter"));
        assert!(!offers_filter(b"fetch=shallow wait-for-done"));
        assert!(!offers_filter(b"ls-refs=filter"));
        assert!(!offers_filter(b"fetch=shallow filters"));
    }

    fn answer(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn the_pack_is_taken_from_its_band_and_the_shallow_info_read() {
        let body = answer(&[
            &pkt(b"shallow-info\n"),
            &pkt(format!("shallow {A}\n").as_bytes()),
            &pkt(format!("unshallow {B}").as_bytes()),
            b"0001",
            &pkt(b"packfile\n"),
            &pkt(b"\x01PACK"),
            &pkt(b"\x02counting objects\n"),
            &pkt(b"\x01data"),
            b"0000",
        ]);
        let mut pack = Vec::new();
        let info = read_answer(&mut &body[..], &mut pack, &Cancel::new()).unwrap();
        assert_eq!(pack, b"PACKdata");
        assert_eq!(
            info,
            ShallowInfo {
                shallow: vec![h(A)],
                unshallow: vec![h(B)]
            }
        );
        let before = BTreeSet::from([h(B)]);
        assert_eq!(info.apply(&before), BTreeSet::from([h(A)]));
    }

    #[test]
    fn errors_of_the_server_and_cut_answers_are_failures() {
        let cases: [(&[u8], &str); 5] = [
            (&pkt(b"ERR upload-pack: not our ref"), "not our ref"),
            (
                &answer(&[&pkt(b"packfile\n"), &pkt(b"\x03access denied\n")]),
                "access denied",
            ),
            (
                &answer(&[&pkt(b"packfile\n"), &pkt(b"\x01PA")]),
                "fill whole buffer",
            ),
            (&answer(&[&pkt(b"shallow-info\n"), b"0000"]), "no pack"),
            (b"00zz", "malformed packet"),
        ];
        for (body, expected) in cases {
            let err = read_answer(&mut &body[..], &mut Vec::new(), &Cancel::new()).unwrap_err();
            assert!(err.to_string().contains(expected), "{err} for {body:?}");
        }
    }

    /// A slow server: one byte a read; `cancel` set at the 20th.
    struct Trickle<'a> {
        data: &'a [u8],
        reads: usize,
        cancel: &'a Cancel,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            if self.reads == 20 {
                self.cancel.cancel();
            }
            let n = buf.len().min(self.data.len()).min(1);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_fetch_cancelled_within_a_packet_stops_there() {
        let mut big = b"\x01".to_vec();
        big.resize(1000, b'x');
        let body = answer(&[&pkt(b"packfile\n"), &pkt(&big), b"0000"]);
        let cancel = Cancel::new();
        let mut slow = Trickle {
            data: &body,
            reads: 0,
            cancel: &cancel,
        };
        let err = read_answer(&mut slow, &mut Vec::new(), &cancel).unwrap_err();
        assert!(matches!(err, FetchError::Cancelled), "{err}");
        assert_eq!(slow.reads, 20);
    }

    #[test]
    fn a_cancelled_fetch_stops_reading_the_pack() {
        let body = answer(&[&pkt(b"packfile\n"), &pkt(b"\x01PACK"), b"0000"]);
        let cancel = Cancel::new();
        cancel.cancel();
        let err = read_answer(&mut &body[..], &mut Vec::new(), &cancel).unwrap_err();
        assert!(matches!(err, FetchError::Cancelled));
    }
}
