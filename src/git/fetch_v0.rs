//! Protocol v0's fetch (`gitprotocol-pack(5)`) of one commit, on a session
//! of ours whose server answered in version 0 (an SSH server that does
//! not pass `GIT_PROTOCOL` on, as a stock OpenSSH; an old git daemon): the
//! wants of v2's fetch (`fetch_v2.rs`) in v0's words, on the connection
//! that listed the refs. What it adds to libgit2's v0 fetch is a partial
//! clone's filter, and the contents such a clone lacks, fetched by hash.
//! The pack comes in side-band packets, as v2's.

use std::io::{Read, Write};

use super::fetch_v2::{self, FetchError, Packet, Packets, ShallowInfo, Want};
use super::pkt_line;
use super::Cancel;

/// The capabilities of a v0 advertisement (the words after the NUL of its
/// first line).
#[derive(Debug, Default, Clone)]
pub(super) struct Capabilities(Vec<String>);

impl Capabilities {
    /// Those of the advertisement's first line, `line` (without its
    /// newline).
    pub fn of_first_line(line: &[u8]) -> Self {
        let words = line
            .split(|b| *b == 0)
            .nth(1)
            .map(|caps| String::from_utf8_lossy(caps).into_owned())
            .unwrap_or_default();
        Capabilities(words.split_whitespace().map(str::to_string).collect())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|c| c == name)
    }

    /// Whether the server takes a partial clone's filter in a way that
    /// lets its missing contents be fetched later: `filter`, and wants of
    /// objects no ref points at (`uploadpack.allowReachableSHA1InWant` or
    /// `allowAnySHA1InWant`; without, git's own lazy fetch fails there too).
    pub fn filters(&self) -> bool {
        self.has("filter") && self.has("allow-reachable-sha1-in-want")
    }
}

/// The request for `want` to a server that offers `caps`: the pack in
/// side-band packets (which every git since 1.6 offers), thin, without
/// progress; `done` right after the haves, as v2's request.
pub(super) fn request(want: &Want<'_>, caps: &Capabilities) -> Result<Vec<u8>, FetchError> {
    if !caps.has("side-band-64k") {
        return Err(FetchError::Protocol("no side-band-64k"));
    }
    let deepen = fetch_v2::deepen(want);
    if deepen.is_some() && !caps.has("shallow") {
        return Err(FetchError::Protocol("no shallow capability"));
    }
    let filter = want.filter.filter(|_| caps.has("filter"));
    let mut asked = vec!["side-band-64k"];
    for optional in ["ofs-delta", "thin-pack", "no-progress"] {
        if caps.has(optional) {
            asked.push(optional);
        }
    }
    if deepen.is_some() {
        asked.push("shallow");
    }
    if filter.is_some() {
        asked.push("filter");
    }
    let mut body = Vec::new();
    let (first, rest) = want
        .objects
        .split_first()
        .ok_or(FetchError::Protocol("nothing wanted"))?;
    let first = format!("want {first} {}\n", asked.join(" "));
    pkt_line::write(&mut body, first.as_bytes());
    for object in rest {
        pkt_line::write(&mut body, format!("want {object}\n").as_bytes());
    }
    for commit in want.shallow {
        pkt_line::write(&mut body, format!("shallow {commit}\n").as_bytes());
    }
    if let Some(depth) = deepen {
        pkt_line::write(&mut body, format!("deepen {depth}\n").as_bytes());
    }
    if let Some(filter) = filter {
        pkt_line::write(&mut body, format!("filter {filter}\n").as_bytes());
    }
    body.extend_from_slice(b"0000");
    for have in want.haves {
        pkt_line::write(&mut body, format!("have {have}\n").as_bytes());
    }
    pkt_line::write(&mut body, b"done\n");
    Ok(body)
}

/// Read the answer to a request for `want` from `r`: first, if it asked
/// for a depth, the shallow commits (up to a flush), then `ACK` or `NAK`,
/// then the pack, to `pack`, up to its flush.
pub(super) fn read_answer(
    r: &mut dyn Read,
    pack: &mut dyn Write,
    want: &Want<'_>,
    cancel: &Cancel,
) -> Result<ShallowInfo, FetchError> {
    let deepened = fetch_v2::deepen(want).is_some();
    fetch_v2::read_with(r, pack, cancel, |packets, pack| {
        let info = if deepened {
            shallow_update(packets)?
        } else {
            ShallowInfo::default()
        };
        let mut started = false;
        loop {
            match packets.next()? {
                Packet::Data(line) if !started && is_ack_or_nak(line) => {}
                Packet::Data(data) => {
                    if let Some(said) = pkt_line::error_message(data) {
                        return Err(FetchError::Server(said));
                    }
                    fetch_v2::side_band(data, pack)?;
                    started = true;
                }
                Packet::Flush if started => return Ok(info),
                _ => return Err(FetchError::Protocol("no pack")),
            }
        }
    })
}

fn is_ack_or_nak(line: &[u8]) -> bool {
    line.starts_with(b"ACK ") || fetch_v2::trim(line) == b"NAK"
}

/// The `shallow`/`unshallow` lines a depth request is answered with first.
fn shallow_update(packets: &mut Packets<'_, impl Read>) -> Result<ShallowInfo, FetchError> {
    let mut info = ShallowInfo::default();
    loop {
        match packets.next()? {
            Packet::Flush => return Ok(info),
            Packet::Data(line) => match pkt_line::error_message(line) {
                Some(said) => return Err(FetchError::Server(said)),
                None => info.note(fetch_v2::trim(line))?,
            },
            Packet::Delim => return Err(FetchError::Protocol("a malformed shallow update")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::fetch_v2::tests::{h, lines, A, B};
    use std::collections::BTreeSet;

    fn caps(words: &str) -> Capabilities {
        Capabilities::of_first_line(format!("{A} HEAD\0{words}").as_bytes())
    }

    #[test]
    fn the_request_asks_only_for_what_the_server_offers() {
        let shallow = BTreeSet::from([h(B)]);
        let want = Want {
            objects: &[h(A)],
            depth: 1,
            shallow: &shallow,
            haves: &[h(B)],
            filter: Some("blob:none"),
        };
        let offered = caps("multi_ack side-band-64k ofs-delta shallow filter agent=git/2.47");
        let body = request(&want, &offered).unwrap();
        assert_eq!(
            lines(&body),
            [
                format!("want {A} side-band-64k ofs-delta shallow filter"),
                format!("shallow {B}"),
                "deepen 1".into(),
                "filter blob:none".into(),
                "Flush".into(),
                format!("have {B}"),
                "done".into(),
            ]
        );
        // No filter where none is offered; no depth without `shallow`.
        let plain = request(&want, &caps("side-band-64k")).unwrap_err();
        assert!(matches!(
            plain,
            FetchError::Protocol("no shallow capability")
        ));
        let whole = Want {
            depth: 0,
            shallow: &BTreeSet::new(),
            ..want
        };
        let body = request(&whole, &caps("side-band-64k thin-pack")).unwrap();
        assert_eq!(lines(&body)[0], format!("want {A} side-band-64k thin-pack"));
        assert!(!lines(&body).iter().any(|l| l.starts_with("filter")));
        assert!(request(&whole, &caps("ofs-delta")).is_err());
    }

    #[test]
    fn filters_need_wants_of_objects_no_ref_points_at() {
        assert!(!caps("filter side-band-64k").filters());
        assert!(caps("filter allow-reachable-sha1-in-want").filters());
        assert!(!caps("allow-reachable-sha1-in-want").filters());
    }

    fn packet(out: &mut Vec<u8>, data: &[u8]) {
        pkt_line::write(out, data);
    }

    #[test]
    fn the_answer_gives_the_shallow_commits_and_the_pack() {
        let objects = [h(A)];
        let want = Want {
            depth: 1,
            ..fetch_v2::objects_want(&objects)
        };
        let mut answer = Vec::new();
        packet(&mut answer, format!("shallow {A}\n").as_bytes());
        answer.extend_from_slice(b"0000");
        packet(&mut answer, b"NAK\n");
        packet(&mut answer, b"\x02counting\n");
        packet(&mut answer, b"\x01PACK");
        packet(&mut answer, b"\x01rest");
        answer.extend_from_slice(b"0000");
        let mut pack = Vec::new();
        let info = read_answer(&mut &answer[..], &mut pack, &want, &Cancel::new()).unwrap();
        assert_eq!(info.shallow, [h(A)]);
        assert_eq!(pack, b"PACKrest");

        // Without a depth: an ACK, then the pack.
        let whole = Want { depth: 0, ..want };
        let mut answer = Vec::new();
        packet(&mut answer, format!("ACK {B}\n").as_bytes());
        packet(&mut answer, b"\x01PACK");
        answer.extend_from_slice(b"0000");
        let mut pack = Vec::new();
        read_answer(&mut &answer[..], &mut pack, &whole, &Cancel::new()).unwrap();
        assert_eq!(pack, b"PACK");
    }

    #[test]
    fn a_refusal_is_the_servers_error() {
        let objects = [h(A)];
        let want = fetch_v2::objects_want(&objects);
        let mut answer = Vec::new();
        packet(
            &mut answer,
            format!("ERR upload-pack: not our ref {A}").as_bytes(),
        );
        let mut pack = Vec::new();
        let e = read_answer(&mut &answer[..], &mut pack, &want, &Cancel::new()).unwrap_err();
        assert!(
            matches!(&e, FetchError::Server(m) if m.contains("not our ref")),
            "{e}"
        );
        // A flush with no pack before it.
        let e = read_answer(&mut &b"0008NAK\n0000"[..], &mut pack, &want, &Cancel::new());
        assert!(matches!(e, Err(FetchError::Protocol("no pack"))));
    }
}
