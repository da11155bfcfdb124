//! git's pkt-line framing (`gitprotocol-common(5)`): each packet its
//! length in four hex digits, the length counted in; `0000` flush, `0001`
//! delimiter, `0002` response end.

/// Append `data` as one packet to `out`.
pub(super) fn write(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:04x}", data.len() + 4).as_bytes());
    out.extend_from_slice(data);
}

/// The length a packet starting `bytes` declares (its first four hex
/// digits, themselves counted in), if they are that.
pub(super) fn length(bytes: &[u8]) -> Option<usize> {
    let digits = std::str::from_utf8(bytes.get(..4)?).ok()?;
    usize::from_str_radix(digits, 16).ok()
}

/// What a server says in an `ERR <message>` packet, whose data is `line`.
pub(super) fn error_message(line: &[u8]) -> Option<String> {
    let message = line.strip_prefix(b"ERR ")?;
    let message = message.strip_suffix(b"\n").unwrap_or(message);
    Some(String::from_utf8_lossy(message).into_owned())
}

/// One pkt-line: data (its newline taken off), or a special packet.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum Pkt<'a> {
    Data(&'a [u8]),
    Flush,
    Delim,
    End,
    Malformed,
}

impl<'a> Pkt<'a> {
    pub(super) fn data(self) -> Option<&'a [u8]> {
        match self {
            Pkt::Data(d) => Some(d),
            _ => None,
        }
    }
}

pub(super) struct PktLines<'a> {
    rest: &'a [u8],
}

impl<'a> PktLines<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        PktLines { rest: bytes }
    }
}

impl<'a> Iterator for PktLines<'a> {
    type Item = Pkt<'a>;

    fn next(&mut self) -> Option<Pkt<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let pkt = match length(self.rest) {
            Some(0) => Pkt::Flush,
            Some(1) => Pkt::Delim,
            Some(2) => Pkt::End,
            Some(n) if n > 4 && n <= self.rest.len() => {
                let data = &self.rest[4..n];
                self.rest = &self.rest[n..];
                return Some(Pkt::Data(data.strip_suffix(b"\n").unwrap_or(data)));
            }
            _ => {
                self.rest = &[];
                return Some(Pkt::Malformed);
            }
        };
        self.rest = &self.rest[4..];
        Some(pkt)
    }
}
