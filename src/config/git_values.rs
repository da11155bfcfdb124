//! The values git refuses for the config keys git-sync or libgit2 read:
//! git stops with "bad boolean config value" at `http.sslVerify=maybe`
//! or with "invalid unit" at `pack.windowMemory=12q`, where libgit2 or our
//! own code would quietly take its default. So such a value is refused at
//! start, naming the key, rather than doing something else than asked.
//! Keys nothing here reads are not looked at (the git CLI's own, accepted
//! without effect), nor are strings (URLs, paths, headers).

use super::gitconfig::{same_key, Entries};
use super::values::parse_git_bool;

/// What a key takes, in git's words.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `true`/`false`, `yes`/`no`, `on`/`off`, or an integer.
    Bool,
    /// A boolean, or one of these words.
    BoolOr(&'static str),
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// An integer, with an optional `k`, `m` or `g` unit, in this range.
    Int(i64, i64),
    /// A proxy URL as git's curl reads it, or nothing (no proxy); not
    /// repeated in the message, as it may hold a password.
    Proxy,
}

/// The typed keys read here: `section.name` (any subsection, as for
/// `http.<url>.sslVerify`) and what each takes.
const TYPED: &[(&str, Kind)] = &[
    ("http.proxy", Kind::Proxy),
    ("http.sslverify", Kind::Bool),
    ("http.sslcertpasswordprotected", Kind::Bool),
    ("http.followredirects", Kind::BoolOr("initial")),
    ("protocol.version", Kind::OneOf(&["0", "1", "2"])),
    ("protocol.allow", Kind::OneOf(&["always", "never", "user"])),
    ("credential.usehttppath", Kind::Bool),
    ("core.symlinks", Kind::Bool),
    ("core.filemode", Kind::Bool),
    ("core.ignorecase", Kind::Bool),
    ("core.precomposeunicode", Kind::Bool),
    ("core.protectntfs", Kind::Bool),
    ("core.protecthfs", Kind::Bool),
    ("core.fsyncobjectfiles", Kind::Bool),
    ("core.trustctime", Kind::Bool),
    ("core.sparsecheckout", Kind::Bool),
    ("core.sparsecheckoutcone", Kind::Bool),
    ("core.autocrlf", Kind::BoolOr("input")),
    ("core.safecrlf", Kind::BoolOr("warn")),
    ("core.compression", Kind::Int(-1, 9)),
    ("core.bigfilethreshold", Kind::Int(0, i64::MAX)),
    ("core.packedgitwindowsize", Kind::Int(0, i64::MAX)),
    ("core.packedgitlimit", Kind::Int(0, i64::MAX)),
    ("core.deltabasecachelimit", Kind::Int(0, i64::MAX)),
    ("pack.windowmemory", Kind::Int(0, i64::MAX)),
    ("pack.deltacachesize", Kind::Int(0, i64::MAX)),
    ("pack.deltacachelimit", Kind::Int(0, i64::MAX)),
    // git-lfs's: it would take its default; the range is its to judge.
    ("lfs.skipdownloaderrors", Kind::Bool),
    ("lfs.concurrenttransfers", Kind::Int(i64::MIN, i64::MAX)),
    ("lfs.maxretries", Kind::Int(i64::MIN, i64::MAX)),
    ("lfs.maxretrydelay", Kind::Int(i64::MIN, i64::MAX)),
];

/// The first key of `entries` whose value (its last, the one read) git
/// would refuse: the entry's index and why, as `core.symlinks "maybe" is
/// not a boolean...`.
pub fn first_refused(entries: &Entries) -> Option<(usize, String)> {
    entries.iter().enumerate().find_map(|(i, (key, value))| {
        let last = entries[i + 1..].iter().all(|(k, _)| !same_key(k, key));
        let kind = kind_of(key).filter(|_| last)?;
        let why = refusal(kind, value)?;
        Some((
            i,
            match kind {
                Kind::Proxy => format!("{key} names {why}"),
                _ => format!("{key} {value:?} {why}"),
            },
        ))
    })
}

/// What `key` takes, if it is a typed key read here.
fn kind_of(key: &str) -> Option<Kind> {
    let lower = key.to_ascii_lowercase();
    let (section, rest) = lower.split_once('.')?;
    let name = rest.rsplit_once('.').map_or(rest, |(_, name)| name);
    let plain = format!("{section}.{name}");
    TYPED
        .iter()
        .find(|(k, _)| *k == plain)
        .map(|(_, kind)| *kind)
}

/// Why `value` is not of `kind`, or `None` when it is.
fn refusal(kind: Kind, value: &str) -> Option<String> {
    let word = value.trim().to_ascii_lowercase();
    let fits = match kind {
        Kind::Bool => parse_git_bool(&word).is_some(),
        Kind::BoolOr(other) => word == other || parse_git_bool(&word).is_some(),
        Kind::OneOf(words) => words.contains(&word.as_str()),
        Kind::Int(min, max) => git_int(&word).is_some_and(|n| (min..=max).contains(&n)),
        Kind::Proxy => return crate::git::proxy_refusal(value),
    };
    if fits {
        return None;
    }
    Some(match kind {
        Kind::Bool => "is not a boolean (true or false, yes or no, on or off, 1 or 0)".into(),
        Kind::BoolOr(other) => format!("is not a boolean (true or false) nor {other:?}"),
        Kind::OneOf(words) => format!("is not one of {}", words.join(", ")),
        Kind::Int(min, max) if git_int(&word).is_some() => {
            format!("is out of range ({min} to {max})")
        }
        Kind::Int(..) => "is not a number (an integer, with k, m or g for a size)".into(),
        // (Said above.)
        Kind::Proxy => return None,
    })
}

/// An integer as git reads one: decimal, `0x` hexadecimal or `0` octal,
/// then an optional unit `k`, `m` or `g` (1024 times each).
fn git_int(word: &str) -> Option<i64> {
    let (digits, factor) = match word.char_indices().last()? {
        (at, 'k') => (&word[..at], 1i64 << 10),
        (at, 'm') => (&word[..at], 1 << 20),
        (at, 'g') => (&word[..at], 1 << 30),
        _ => (word, 1),
    };
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits.strip_prefix('+').unwrap_or(digits)),
    };
    let (radix, digits) = match digits.strip_prefix("0x") {
        Some(hex) => (16, hex),
        None if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        None => (10, digits),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i64::from_str_radix(digits, radix)
        .ok()?
        .checked_mul(factor)?;
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, &str)]) -> Entries {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn refused(list: &[(&str, &str)]) -> Option<String> {
        first_refused(&entries(list)).map(|(_, why)| why)
    }

    #[test]
    fn values_git_takes_pass() {
        let fine = [
            ("http.sslVerify", "false"),
            ("http.https://h/.sslVerify", "No"),
            ("http.followRedirects", "initial"),
            ("core.symlinks", "1"),
            ("core.autocrlf", "input"),
            ("core.compression", "-1"),
            ("pack.windowMemory", "2m"),
            ("core.bigFileThreshold", "0x10k"),
            ("lfs.concurrenttransfers", "0"),
            ("lfs.transfer.maxretries", "-3"),
            ("protocol.version", " 2"),
            ("protocol.file.allow", "always"),
            ("http.proxy", "proxy.corp"),
            ("http.https://h/.proxy", "socks5h://u:p@p:1"),
            ("http.proxy", ""),
            ("gc.auto", "not read here"),
        ];
        for pair in fine {
            assert_eq!(refused(&[pair]), None, "{pair:?}");
        }
    }

    #[test]
    fn values_git_refuses_are_named_with_their_key() {
        let bad = [
            (("http.sslVerify", "maybe"), "not a boolean"),
            (("http.https://h/.sslVerify", "ture"), "not a boolean"),
            (("Core.Symlinks", "2x"), "not a boolean"),
            (("http.followRedirects", "sometimes"), "nor \"initial\""),
            (("core.compression", "10"), "out of range (-1 to 9)"),
            (("core.compression", "abc"), "not a number"),
            (("pack.windowMemory", "12q"), "not a number"),
            (("pack.windowMemory", "-1m"), "out of range"),
            (("lfs.concurrenttransfers", "x"), "not a number"),
            (("lfs.skipdownloaderrors", "perhaps"), "not a boolean"),
            (("protocol.version", "3"), "not one of 0, 1, 2"),
            (("protocol.file.allow", "sometimes"), "not one of always"),
        ];
        for ((key, value), why) in bad {
            let said = refused(&[(key, value)]).unwrap_or_default();
            assert!(
                said.starts_with(&format!("{key} {value:?} ")) && said.contains(why),
                "{key}={value}: {said}"
            );
        }
    }

    #[test]
    fn a_proxy_git_would_not_take_is_said_without_its_url() {
        let said = refused(&[("http.proxy", "ftp://u:pw-S3CRET@p")]).unwrap_or_default();
        assert!(
            said.starts_with("http.proxy names a proxy of scheme \"ftp\""),
            "{said}"
        );
        assert!(!said.contains("S3CRET"), "{said}");
        assert!(refused(&[("http.proxy", "http://p:port")]).is_some());
    }

    #[test]
    fn only_the_value_read_counts_the_last() {
        let list = [
            ("protocol.version", "v2"),
            ("http.sslVerify", "true"),
            ("Protocol.Version", "2"),
        ];
        assert_eq!(refused(&list), None);
        let list = [("http.sslVerify", "true"), ("http.sslverify", "maybe")];
        assert_eq!(first_refused(&entries(&list)).map(|(i, _)| i), Some(1));
        // Another subsection is another key.
        let list = [
            ("http.https://a/.sslVerify", "maybe"),
            ("http.sslVerify", "1"),
        ];
        assert!(refused(&list).is_some());
    }

    #[test]
    fn integers_read_as_git_reads_them() {
        assert_eq!(git_int("10"), Some(10));
        assert_eq!(git_int("010"), Some(8));
        assert_eq!(git_int("0x1f"), Some(31));
        assert_eq!(git_int("2k"), Some(2048));
        assert_eq!(git_int("-1g"), Some(-(1 << 30)));
        assert_eq!(git_int("0"), Some(0));
        for bad in ["", "k", "0x", "1.5", "1kb", "09", "99999999999g"] {
            assert_eq!(git_int(bad), None, "{bad:?}");
        }
    }
}
