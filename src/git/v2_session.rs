//! A protocol v2 session with `git-upload-pack` over a stream of our own
//! (an SSH channel, a git:// connection: `ssh_ls_refs.rs`,
//! `daemon_ls_refs.rs`), for one `ls-refs` of the names `--ref` may mean.
//! libgit2 speaks only version 0 on those transports, where the server
//! first sends every ref it has: on a repository with 100,000 pull-request
//! refs, megabytes every poll. Our own connection costs one of its own when
//! the listing shows a commit to fetch (libgit2 then connects again), so
//! `remote.rs` uses it only for a server that advertised many refs to
//! libgit2; any failure here leaves the pass to libgit2, which reports it
//! as before.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::ls_refs::{ls_refs_request, v2_refs};
use super::pkt_line::{self, Pkt, PktLines};
use super::Hash;

/// Refs libgit2 must have listed for an SSH or git:// server before its
/// refs are listed here: a version 0 advertisement of this many is 60 KB a poll,
/// where the handshake this listing adds to an update costs a few ms.
pub(super) const MANY_REFS: usize = 1000;

/// What an SSH or git:// server was found to be, for the next polls.
#[derive(Debug, Default, Clone)]
pub(super) struct Known {
    /// It showed libgit2 [`MANY_REFS`] refs or more.
    pub many_refs: bool,
    /// When a listing here failed or met version 0: libgit2 lists its
    /// refs for `ls_refs::ASK_AGAIN_AFTER`.
    pub left_at: Option<std::time::Instant>,
}

impl Known {
    /// Whether its refs are to be listed here this time.
    pub fn worth_listing(&self) -> bool {
        self.many_refs && !self.left_at.is_some_and(super::ls_refs::still_left)
    }
}

/// Why the listing was left to libgit2.
#[derive(Debug)]
pub(super) enum NoListing {
    /// The server answered with version 0: libgit2 lists as well.
    Version0,
    Failed(String),
}

impl<E: std::fmt::Display> From<E> for NoListing {
    fn from(e: E) -> Self {
        NoListing::Failed(e.to_string())
    }
}

/// A TCP connection to `host` (a name or an address) and `port`, within
/// `timeout`.
pub(super) fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, NoListing> {
    let addr = (host, port).to_socket_addrs()?.next().ok_or("no address")?;
    Ok(TcpStream::connect_timeout(&addr, timeout)?)
}

/// Speak protocol v2 on `stream`, whose server was just asked for it: the
/// refs whose names start with one of `prefixes`. The session is ended.
pub(super) fn ls_refs(
    stream: &mut (impl Read + Write),
    prefixes: &[String],
) -> Result<Vec<(String, Hash)>, NoListing> {
    // A version 0 server starts with every ref it has: not read further.
    let first = read_packet(stream, 0)?;
    if PktLines::new(&first).next() != Some(Pkt::Data(b"version 2")) {
        return Err(NoListing::Version0);
    }
    let capabilities = read_until_flush(stream)?;
    let mut lines = PktLines::new(&capabilities);
    if !lines.any(|l| {
        l.data()
            .is_some_and(|d| d == b"ls-refs" || d.starts_with(b"ls-refs="))
    }) {
        return Err(NoListing::Failed("the server has no ls-refs".into()));
    }
    stream.write_all(&ls_refs_request(prefixes))?;
    stream.flush()?;
    let answer = read_until_flush(stream)?;
    // A flush after a command ends the session.
    let _ = stream.write_all(b"0000");
    let _ = stream.flush();
    v2_refs(&answer).map_err(|e| NoListing::Failed(format!("{e:?}")))
}

/// The largest answer read: refs asked for by name are a few lines.
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
