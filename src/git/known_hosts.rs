//! Checking an SSH server's host key against an OpenSSH known_hosts file
//! (plain, wildcard and hashed host names, `[host]:port` for other ports).

use std::path::Path;

use openssl::base64::decode_block;

/// Why a host key was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum HostKeyError {
    /// The file has the host, with other keys: possibly an attack.
    Mismatch(String),
    /// The host is not in the file.
    Unknown(String),
    Unreadable(String),
}

impl std::fmt::Display for HostKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKeyError::Mismatch(m) | HostKeyError::Unknown(m) | HostKeyError::Unreadable(m) => {
                f.write_str(m)
            }
        }
    }
}

fn hashed_match(pattern: &str, name: &str) -> bool {
    // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
    let mut parts = pattern.trim_start_matches("|1|").splitn(2, '|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (decode_block(salt), decode_block(hash)) else {
        return false;
    };
    let Ok(key) = openssl::pkey::PKey::hmac(&salt) else {
        return false;
    };
    let Ok(mut signer) = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &key)
    else {
        return false;
    };
    if signer.update(name.as_bytes()).is_err() {
        return false;
    }
    signer
        .sign_to_vec()
        .is_ok_and(|mac| mac.len() == hash.len() && openssl::memcmp::eq(&mac, &hash))
}

/// Whether the comma-separated `patterns` of a known_hosts line name
/// `name`, as OpenSSH reads them: a hashed name, or a name whose `*` and
/// `?` are wildcards (`*.example.com`, `[git.example.com]:*`), case aside;
/// a matching `!pattern` excludes the host whatever else matches.
pub(super) fn host_matches(patterns: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for p in patterns.split(',') {
        let (negated, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let hit = if p.starts_with("|1|") {
            hashed_match(p, &name)
        } else {
            glob(p.to_ascii_lowercase().as_bytes(), name.as_bytes())
        };
        if hit && negated {
            return false;
        }
        matched |= hit;
    }
    matched
}

/// OpenSSH's wildcards: `*` any run of characters, `?` any one.
pub(super) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// One line of a known_hosts file.
struct Entry<'a> {
    /// `@revoked` or `@cert-authority`, if marked.
    marker: Option<&'a str>,
    /// The comma-separated host patterns.
    hosts: &'a str,
    kind: Option<&'a str>,
    /// The key, in base64.
    key: Option<&'a str>,
}

/// The entries of a known_hosts text, comments and blank lines left out.
fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut fields = line.split_whitespace();
            let first = fields.next().unwrap_or("");
            let marker = first.starts_with('@').then_some(first);
            let hosts = match marker {
                Some(_) => fields.next().unwrap_or(""),
                None => first,
            };
            Entry {
                marker,
                hosts,
                kind: fields.next(),
                key: fields.next(),
            }
        })
}

/// The key types libssh2 reads in a known_hosts file.
const LIBSSH2_KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "ssh-dss",
];

/// The lines of a known_hosts `text` libssh2 can read: unmarked entries
/// of a key type it knows, whose key is such a key, in base64, and whose
/// hashed name (if hashed) is base64 too. libssh2 refuses a whole file for
/// one line it cannot parse, where OpenSSH passes over it.
pub fn readable_by_libssh2(text: &str) -> String {
    let mut kept = String::new();
    for line in text.lines() {
        let Some(e) = entries(line).next() else {
            continue;
        };
        let (Some(kind), Some(key)) = (e.kind, e.key) else {
            continue;
        };
        let hashed_ok = match e.hosts.strip_prefix("|1|") {
            Some(rest) => rest.split('|').all(|part| decode_block(part).is_ok()),
            None => true,
        };
        if e.marker.is_none()
            && LIBSSH2_KEY_TYPES.contains(&kind)
            && is_key_of_type(key, kind)
            && hashed_ok
        {
            kept.push_str(line.trim());
            kept.push('\n');
        }
    }
    kept
}

/// The entries of `text` (libssh2-readable ones, see
/// [`readable_by_libssh2`]) listed under `alias` (a `HostKeyAlias`),
/// listed again under `host:port`: libssh2 looks a host's key types up by
/// the host it connects to, and would otherwise ask for another type than
/// the ones listed. (The key itself is checked under the alias.)
pub fn listed_again_for(text: &str, alias: &str, host: &str, port: u16) -> String {
    let name = host_port_name(host, port);
    let mut out = String::new();
    for e in entries(text).filter(|e| e.marker.is_none() && host_matches(e.hosts, alias)) {
        if let (Some(kind), Some(key)) = (e.kind, e.key) {
            out.push_str(&format!("{name} {kind} {key}\n"));
        }
    }
    out
}

/// Whether `base64` is an SSH public key blob of type `kind` (it starts
/// with the type's name, length first).
fn is_key_of_type(base64: &str, kind: &str) -> bool {
    let Ok(blob) = decode_block(base64) else {
        return false;
    };
    let Some((len, rest)) = blob.split_first_chunk::<4>() else {
        return false;
    };
    let len = u32::from_be_bytes(*len) as usize;
    rest.get(..len) == Some(kind.as_bytes())
}

/// The key types (`ssh-ed25519`, `ssh-rsa`...) `file` lists for
/// `host:port`, in order; none when it cannot be read.
pub fn key_types(file: &Path, host: &str, port: u16) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let name = host_port_name(host, port);
    let mut types: Vec<String> = Vec::new();
    for e in entries(&text).filter(|e| e.marker.is_none() && host_matches(e.hosts, &name)) {
        if let Some(kind) = e.kind.filter(|k| !types.iter().any(|t| t == k)) {
            types.push(kind.to_string());
        }
    }
    types
}

/// How known_hosts names `host:port`.
fn host_port_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Check `key` (the raw SSH public key blob) of `host:port` against `file`.
pub fn verify(file: &Path, host: &str, port: u16, key: &[u8]) -> Result<(), HostKeyError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (give the server's keys with --ssh-known-hosts-file, or skip the check with \
             --ssh-known-hosts=false)"
        } else {
            ""
        };
        HostKeyError::Unreadable(format!(
            "cannot read known_hosts file {}: {e}{hint}",
            file.display()
        ))
    })?;
    let name = host_port_name(host, port);
    // As OpenSSH: a key revoked anywhere in the file is refused, whatever
    // line lists it as the host's.
    let (mut seen_host, mut listed) = (false, false);
    let mut ca_names_it = false;
    for e in entries(&text) {
        if e.marker == Some("@cert-authority") {
            // A CA for host certificates, which libssh2 cannot check: the
            // host's own key must be listed to be trusted.
            ca_names_it |= host_matches(e.hosts, &name);
            continue;
        }
        if !host_matches(e.hosts, &name) {
            continue;
        }
        let Some(Ok(blob)) = e.key.map(decode_block) else {
            continue;
        };
        let revoked = e.marker == Some("@revoked");
        if blob == key && revoked {
            return Err(HostKeyError::Mismatch(format!(
                "the host key of {name} is revoked in {}",
                file.display()
            )));
        }
        listed |= blob == key;
        seen_host = true;
    }
    if listed {
        Ok(())
    } else if seen_host {
        Err(HostKeyError::Mismatch(format!(
            "the host key of {name} does not match {}: refusing to connect (the server may be an impostor)",
            file.display()
        )))
    } else {
        let ca = if ca_names_it {
            "; a @cert-authority line names it, but host certificates cannot be checked here"
        } else {
            ""
        };
        Err(HostKeyError::Unknown(format!(
            "host {name} is not in the known_hosts file {}{ca} (add the keys `ssh-keyscan{}` \
             prints, once their fingerprints are checked)",
            file.display(),
            if port == 22 {
                format!(" {host}")
            } else {
                format!(" -p {port} {host}")
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blob of an Ed25519 public key, as the server sends it.
    const KEY: &[u8] =
        b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20abcdefghijklmnopqrstuvwxyz012345";

    #[test]
    fn only_lines_libssh2_can_parse_are_given_to_it() {
        let key = openssl::base64::encode_block(KEY);
        let text = format!(
            "# comment\n\
             h1 ssh-ed25519 {key}\n\
             @cert-authority *.example ssh-ed25519 {key}\n\
             h2 ssh-ed25519 AAAA\n\
             not a line at all\n\
             h3 sk-ssh-ed25519@openssh.com {key}\n\
             |1|c2FsdA==|aGFzaA== ssh-ed25519 {key} a comment\n\
             |1|not*base64|aGFzaA== ssh-ed25519 {key}\n\
             h5 ssh-rsa {key}\n\
             h4\n"
        );
        assert_eq!(
            readable_by_libssh2(&text),
            format!("h1 ssh-ed25519 {key}\n|1|c2FsdA==|aGFzaA== ssh-ed25519 {key} a comment\n")
        );
    }

    #[test]
    fn an_aliass_keys_are_listed_again_for_the_host_connected_to() {
        let text = "mirror-key ssh-rsa AAAA1\nother ssh-ed25519 AAAA2\nm* ssh-ed25519 AAAA3\n";
        assert_eq!(
            super::listed_again_for(text, "mirror-key", "git.example", 2222),
            "[git.example]:2222 ssh-rsa AAAA1\n[git.example]:2222 ssh-ed25519 AAAA3\n"
        );
    }

    #[test]
    fn the_key_types_listed_for_a_host_in_order() {
        let t = tempfile::TempDir::new().unwrap();
        let f = t.path().join("known_hosts");
        std::fs::write(
            &f,
            "# comment\n\
             [git.example]:2222 ssh-rsa AAAA\n\
             other ecdsa-sha2-nistp256 AAAA\n\
             @cert-authority [git.example]:2222 ssh-ed25519 AAAA\n\
             [git.example]:* ecdsa-sha2-nistp256 AAAA\n\
             [git.example]:2222 ssh-rsa BBBB\n",
        )
        .unwrap();
        assert_eq!(
            key_types(&f, "git.example", 2222),
            ["ssh-rsa", "ecdsa-sha2-nistp256"]
        );
        assert!(key_types(&f, "git.example", 22).is_empty());
        assert!(key_types(&t.path().join("none"), "git.example", 2222).is_empty());
    }

    #[test]
    fn plain_hashed_and_ported_names() {
        let t = tempfile::TempDir::new().unwrap();
        let f = t.path().join("known_hosts");
        let key = KEY;
        let b64 = openssl::base64::encode_block(key);
        // Hashed entry for "example.org", salt "0123456789abcdefghij".
        let salt = b"0123456789abcdefghij";
        let pkey = openssl::pkey::PKey::hmac(salt).unwrap();
        let mut s =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &pkey).unwrap();
        s.update(b"example.org").unwrap();
        let mac = s.sign_to_vec().unwrap();
        let hashed = format!(
            "|1|{}|{}",
            openssl::base64::encode_block(salt),
            openssl::base64::encode_block(&mac)
        );
        std::fs::write(
            &f,
            format!("# comment\n[127.0.0.1]:2222 ssh-ed25519 {b64}\n{hashed} ssh-ed25519 {b64}\nother ssh-ed25519 {b64}\n"),
        )
        .unwrap();
        assert_eq!(verify(&f, "127.0.0.1", 2222, key), Ok(()));
        assert_eq!(verify(&f, "example.org", 22, key), Ok(()));
        assert!(matches!(
            verify(&f, "127.0.0.1", 22, key),
            Err(HostKeyError::Unknown(_))
        ));
        assert!(matches!(
            verify(&f, "127.0.0.1", 2222, b"other key"),
            Err(HostKeyError::Mismatch(_))
        ));

        // Revoked on a later line than the one listing it: refused.
        std::fs::write(
            &f,
            format!("example.org ssh-ed25519 {b64}\n@revoked * ssh-ed25519 {b64}\n"),
        )
        .unwrap();
        assert!(matches!(
            verify(&f, "example.org", 22, key),
            Err(HostKeyError::Mismatch(m)) if m.contains("revoked")
        ));
    }

    #[test]
    fn wildcards_negations_and_certificate_authorities_as_openssh_reads_them() {
        let t = tempfile::TempDir::new().unwrap();
        let f = t.path().join("known_hosts");
        let key = KEY;
        let b64 = openssl::base64::encode_block(key);
        let ca = openssl::base64::encode_block(b"a CA key");
        std::fs::write(
            &f,
            format!(
                "@cert-authority *.example.org ssh-ed25519 {ca}\n\
                 *.Example.org,!bad.example.org ssh-ed25519 {b64}\n\
                 [git?.corp]:* ssh-ed25519 {b64}\n"
            ),
        )
        .unwrap();
        assert_eq!(verify(&f, "git.EXAMPLE.org", 22, key), Ok(()));
        assert!(matches!(
            verify(&f, "git.example.org", 22, b"other key"),
            Err(HostKeyError::Mismatch(_))
        ));
        assert!(matches!(
            verify(&f, "bad.example.org", 22, key),
            Err(HostKeyError::Unknown(_))
        ));
        assert!(matches!(
            verify(&f, "example.org", 22, key),
            Err(HostKeyError::Unknown(m)) if !m.contains("@cert-authority")
        ));
        assert_eq!(verify(&f, "git1.corp", 2222, key), Ok(()));
        assert!(matches!(
            verify(&f, "git12.corp", 2222, key),
            Err(HostKeyError::Unknown(_))
        ));
        // The CA's hosts are named, not trusted, and the error says why.
        std::fs::write(
            &f,
            format!("@cert-authority *.example.org ssh-ed25519 {ca}\n"),
        )
        .unwrap();
        assert!(matches!(
            verify(&f, "git.example.org", 22, key),
            Err(HostKeyError::Unknown(m)) if m.contains("host certificates cannot be checked")
        ));
    }
}
