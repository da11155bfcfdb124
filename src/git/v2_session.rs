//! A protocol v2 session with `git-upload-pack` over a stream of our own
//! (an SSH channel, a git:// connection: `ssh_ls_refs.rs`,
//! `daemon_ls_refs.rs`): one `ls-refs` of the names `--ref` may mean, then,
//! when that shows a commit to fetch, v2's `fetch` of it on the same
//! session (`fetch_v2.rs`). libgit2 speaks only version 0 on those
//! transports, where the server first sends every ref it has: on a
//! repository with 100,000 pull-request refs, megabytes every poll, and
//! again for every fetch. A server that answers with version 0 (one that
//! does not pass `GIT_PROTOCOL` on) is listed and fetched from in version
//! 0 on the session (`fetch_v0.rs`), which unlike libgit2 takes a partial
//! clone's filter. `remote/over_session.rs` uses it for a server that
//! advertised many refs to libgit2 (or any, with `--filter`); any failure
//! here before the store changed leaves the pass to libgit2, which reports
//! it as before.

use std::io::{Read, Write};

use super::fetch_v0;
use super::fetch_v2::{self, FetchError, ShallowInfo, Want};
use super::ls_refs::{ls_refs_request, v0_refs, v2_refs};
use super::pkt_line::{self, Pkt, PktLines};
use super::{Cancel, Hash};

pub(super) mod saved;

/// Refs libgit2 must have listed for an SSH or git:// server before its
/// refs are listed here: a version 0 advertisement of this many is 60 KB a
/// poll. With fewer, v0's listing is about as small as v2's, and libgit2
/// lists them (a server that does not speak v2, a stock OpenSSH, which
/// drops `GIT_PROTOCOL`, answers a session of ours with version 0 anyway).
pub(super) const MANY_REFS: usize = 1000;

/// What an SSH or git:// server was found to be, for the next polls.
#[derive(Debug, Default, Clone)]
pub(super) struct Known {
    /// It showed libgit2 [`MANY_REFS`] refs or more.
    pub many_refs: bool,
    /// When a listing here failed: libgit2 lists its refs for
    /// `ls_refs::ASK_AGAIN_AFTER`.
    pub left_at: Option<std::time::Instant>,
}

impl Known {
    /// Whether its refs are to be listed here this time.
    pub fn worth_listing(&self) -> bool {
        self.many_refs && !self.left()
    }

    /// Whether libgit2 lists its refs for now (a listing here failed).
    pub fn left(&self) -> bool {
        self.left_at.is_some_and(super::ls_refs::still_left)
    }
}

/// A listing's refs and the session, open for a fetch; or why there is none.
pub(super) type Listed = Result<(Vec<(String, Hash)>, Session), NoListing>;

/// Why the listing was left to libgit2.
#[derive(Debug)]
pub(super) enum NoListing {
    Failed(String),
}

impl NoListing {
    /// Why, in words (no `Display`: the blanket `From` below forbids it).
    pub fn reason(self) -> String {
        match self {
            NoListing::Failed(why) => why,
        }
    }
}

impl<E: std::fmt::Display> From<E> for NoListing {
    fn from(e: E) -> Self {
        NoListing::Failed(e.to_string())
    }
}

/// A stream to `git-upload-pack`: what a session speaks over.
pub(super) trait Stream: Read + Write {}

impl<T: Read + Write> Stream for T {}

/// A stream whose reads are buffered; writes go straight through.
struct Buffered(std::io::BufReader<Box<dyn Stream>>);

impl Read for Buffered {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.get_mut().flush()
    }
}

/// A session after its listing, still open for a fetch; ended when
/// dropped.
pub(super) struct Session {
    stream: Box<dyn Stream>,
    protocol: Protocol,
}

/// What the server of a session answered with.
enum Protocol {
    /// Version 2; whether it offers the `fetch` command, and whether that
    /// takes a `filter`.
    V2 { fetches: bool, filters: bool },
    /// Version 0 (or 1), with the capabilities it advertised.
    V0(fetch_v0::Capabilities),
}

impl Session {
    /// Whether its fetch takes a partial clone's filter (see
    /// [`fetch_v0::Capabilities::filters`] for version 0).
    pub fn filters(&self) -> bool {
        match &self.protocol {
            Protocol::V2 { filters, .. } => *filters,
            Protocol::V0(caps) => caps.filters(),
        }
    }

    /// The protocol version the server speaks: 2, or 0.
    pub fn version(&self) -> u8 {
        match self.protocol {
            Protocol::V2 { .. } => 2,
            Protocol::V0(_) => 0,
        }
    }

    /// Fetch what `want` asks for, in the session's protocol: the pack the
    /// server answers with goes to `pack`.
    pub fn fetch(
        mut self,
        want: &Want<'_>,
        pack: &mut dyn Write,
        cancel: &Cancel,
    ) -> Result<ShallowInfo, FetchError> {
        match &self.protocol {
            Protocol::V2 { fetches: false, .. } => Err(FetchError::Protocol("no fetch command")),
            Protocol::V2 { fetches: true, .. } => {
                self.stream.write_all(&fetch_v2::request(want))?;
                self.stream.flush()?;
                fetch_v2::read_answer(&mut self.stream, pack, cancel)
            }
            Protocol::V0(caps) => {
                let request = fetch_v0::request(want, caps)?;
                self.stream.write_all(&request)?;
                self.stream.flush()?;
                fetch_v0::read_answer(&mut self.stream, pack, want, cancel)
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A flush where a command would start ends the session.
        let _ = self.stream.write_all(b"0000");
        let _ = self.stream.flush();
    }
}

/// Speak protocol v2 on `stream`, whose server was just asked for it: the
/// refs whose names start with one of `prefixes`, and the session, open
/// for a fetch. A server that answers with version 0 lists every ref it
/// has: all of them, and the session, open for a v0 fetch.
pub(super) fn ls_refs(stream: Box<dyn Stream>, prefixes: &[String]) -> Listed {
    // Read through a buffer: a packet is two reads, and a read of an SSH
    // channel costs a call into libssh2 under its lock (a v0 listing of
    // 50,000 refs took twice libgit2's CPU without it). The server sends
    // nothing past what is read (it waits for us), so nothing is lost.
    let mut stream: Box<dyn Stream> = Box::new(Buffered(std::io::BufReader::with_capacity(
        64 << 10,
        stream,
    )));
    let mut first = read_packet(&mut stream, 0)?;
    if PktLines::new(&first).next() == Some(Pkt::Data(b"version 1")) {
        first = read_packet(&mut stream, 0)?;
    }
    match PktLines::new(&first).next() {
        Some(Pkt::Data(b"version 2")) => {}
        // (git's daemon, for a repository it does not serve.)
        Some(Pkt::Data(line)) if line.starts_with(b"ERR ") => {
            let said = pkt_line::error_message(line).unwrap_or_default();
            return Err(NoListing::Failed(format!("the server says: {said}")));
        }
        _ => return version_0(stream, first),
    }
    let capabilities = read_until_flush(&mut stream)?;
    let offers = |command: &[u8]| {
        PktLines::new(&capabilities).any(|l| {
            l.data().is_some_and(|d| {
                d.strip_prefix(command)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"="))
            })
        })
    };
    if !offers(b"ls-refs") {
        return Err(NoListing::Failed("the server has no ls-refs".into()));
    }
    let fetches = offers(b"fetch");
    let filters =
        PktLines::new(&capabilities).any(|l| l.data().is_some_and(fetch_v2::offers_filter));
    let mut session = Session {
        stream,
        protocol: Protocol::V2 { fetches, filters },
    };
    session.stream.write_all(&ls_refs_request(prefixes))?;
    session.stream.flush()?;
    let answer = read_until_flush(&mut session.stream)?;
    let heads = v2_refs(&answer).map_err(|e| NoListing::Failed(format!("{e:?}")))?;
    Ok((heads, session))
}

/// The rest of a version 0 advertisement that began with `advertised`:
/// every ref, and the session, open for a v0 fetch.
fn version_0(mut stream: Box<dyn Stream>, mut advertised: Vec<u8>) -> Listed {
    if advertised != b"0000" {
        advertised.extend(read_until_flush(&mut stream)?);
    }
    let mut lines = PktLines::new(&advertised);
    let (heads, caps) = match lines.next() {
        // (An empty repository, to an old server.)
        Some(Pkt::Flush) | None => (Vec::new(), fetch_v0::Capabilities::default()),
        Some(first) => {
            let caps = first.data().map(fetch_v0::Capabilities::of_first_line);
            let heads = v0_refs(first, lines).map_err(|e| NoListing::Failed(format!("{e:?}")))?;
            (heads, caps.unwrap_or_default())
        }
    };
    let protocol = Protocol::V0(caps);
    Ok((heads, Session { stream, protocol }))
}

/// The largest answer read: refs asked for by name are a few lines; a v0
/// advertisement of every ref, some 3 MB for 50,000.
const MAX_ANSWER: usize = 16 << 20;

/// Packets up to and with the first flush, as received.
fn read_until_flush(r: &mut impl Read) -> Result<Vec<u8>, NoListing> {
    let mut out = Vec::new();
    loop {
        let packet = read_packet(r, out.len())?;
        out.extend_from_slice(&packet);
        if packet == b"0000" {
            return Ok(out);
        }
    }
}

/// One packet, as received, after `so_far` bytes of an answer.
fn read_packet(r: &mut impl Read, so_far: usize) -> Result<Vec<u8>, NoListing> {
    let mut packet = vec![0u8; 4];
    r.read_exact(&mut packet)?;
    match pkt_line::length(&packet).ok_or("malformed packet")? {
        0..=2 => Ok(packet),
        3 => Err("malformed packet".into()),
        n if so_far + n > MAX_ANSWER => Err("answer too large".into()),
        n => {
            packet.resize(n, 0);
            r.read_exact(&mut packet[4..])?;
            Ok(packet)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_error_is_told_as_the_server_words_it() {
        let mut answer = Vec::new();
        pkt_line::write(
            &mut answer,
            b"ERR access denied or repository not exported: /x\n",
        );
        let listed = ls_refs(Box::new(std::io::Cursor::new(answer)), &[]);
        let Err(why) = listed else { panic!("listed") };
        assert_eq!(
            why.reason(),
            "the server says: access denied or repository not exported: /x"
        );
    }

    #[test]
    fn a_version_0_server_lists_every_ref_and_fetches_in_version_0() {
        let a = "1111111111111111111111111111111111111111";
        let b = "2222222222222222222222222222222222222222";
        let mut answer = Vec::new();
        let first = format!("{a} HEAD\0side-band-64k filter allow-reachable-sha1-in-want\n");
        pkt_line::write(&mut answer, first.as_bytes());
        pkt_line::write(&mut answer, format!("{a} refs/heads/main\n").as_bytes());
        pkt_line::write(&mut answer, format!("{b} refs/pull/1/head\n").as_bytes());
        answer.extend_from_slice(b"0000");
        let Ok((heads, session)) = ls_refs(Box::new(std::io::Cursor::new(answer)), &[]) else {
            panic!("not listed")
        };
        let names: Vec<&str> = heads.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["HEAD", "refs/heads/main", "refs/pull/1/head"]);
        assert_eq!(session.version(), 0);
        assert!(session.filters());
        // An old server's empty repository: nothing listed.
        let empty = ls_refs(Box::new(std::io::Cursor::new(b"0000".to_vec())), &[]);
        assert!(matches!(empty, Ok((heads, _)) if heads.is_empty()));
    }

    #[test]
    fn packets_are_read_up_to_the_flush() {
        let mut input: &[u8] = b"000eversion 2\n0000rest";
        let got = read_until_flush(&mut input).unwrap();
        assert_eq!(got, b"000eversion 2\n0000");
        assert_eq!(input, b"rest");
        let mut bad: &[u8] = b"00zz";
        assert!(read_until_flush(&mut bad).is_err());
        let mut delimited: &[u8] = b"0001000aabcdef0000";
        assert_eq!(
            read_until_flush(&mut delimited).unwrap(),
            b"0001000aabcdef0000"
        );
    }
}
