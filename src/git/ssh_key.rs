//! A look at an SSH private key file before libssh2 is handed it, so that
//! the usual mistakes (a Secret the running UID may not read, the public
//! half mounted instead of the private one, a key with a passphrase) get an
//! error that names the file and the fix, where libssh2 only says "Unable
//! to extract public key from private key". Nothing of the key is ever
//! quoted.

use std::fmt;
use std::io;
use std::path::Path;

/// Why a key file cannot be used.
#[derive(Debug)]
pub enum KeyProblem {
    Unreadable(io::Error),
    Empty,
    PublicKey,
    Passphrase,
    PuttyFormat,
    NotAKey,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Unreadable(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let (uid, _) = crate::user::effective_ids();
                write!(
                    f,
                    "cannot be read by uid {uid} ({e}); in Kubernetes, mount the Secret with \
                     defaultMode 0440 and set the Pod's securityContext.fsGroup"
                )
            }
            KeyProblem::Unreadable(e) => write!(f, "cannot be read ({e})"),
            KeyProblem::Empty => f.write_str("is empty"),
            KeyProblem::PublicKey => {
                f.write_str("holds a public key; --ssh-key-file takes the private key")
            }
            KeyProblem::Passphrase => f.write_str(
                "is protected by a passphrase, which git-sync cannot enter; give a key \
                 without one (ssh-keygen -p -N '' -f <a copy of the key>)",
            ),
            KeyProblem::PuttyFormat => f.write_str(
                "is a PuTTY key; convert it with puttygen <file> -O private-openssh -o <new file>",
            ),
            KeyProblem::NotAKey => {
                f.write_str("does not hold a private key in OpenSSH or PEM format")
            }
        }
    }
}

/// Whether the file at `path` holds a private key libssh2 can use without
/// a passphrase.
pub fn check(path: &Path) -> Result<(), KeyProblem> {
    let bytes = std::fs::read(path).map_err(KeyProblem::Unreadable)?;
    classify(&String::from_utf8_lossy(&bytes))
}

fn classify(text: &str) -> Result<(), KeyProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyProblem::Empty);
    }
    const PUBLIC_PREFIXES: [&str; 4] = ["ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"];
    if PUBLIC_PREFIXES.iter().any(|p| text.starts_with(p)) {
        return Err(KeyProblem::PublicKey);
    }
    if text.starts_with("PuTTY-User-Key-File") {
        return Err(KeyProblem::PuttyFormat);
    }
    if let Some(body) = pem_body(text, "OPENSSH PRIVATE KEY") {
        return match openssh_cipher(&body) {
            Some(cipher) if cipher == b"none" => Ok(()),
            Some(_) => Err(KeyProblem::Passphrase),
            None => Err(KeyProblem::NotAKey),
        };
    }
    if pem_body(text, "ENCRYPTED PRIVATE KEY").is_some() {
        return Err(KeyProblem::Passphrase);
    }
    // PKCS#1 (RSA PRIVATE KEY), SEC1 (EC PRIVATE KEY), PKCS#8 (PRIVATE KEY):
    // the legacy PEM encryption is a header inside the block.
    if text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----") {
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(KeyProblem::Passphrase);
        }
        return Ok(());
    }
    Err(KeyProblem::NotAKey)
}

/// The decoded body of the `-----BEGIN <label>-----` block of `text`.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    openssl::base64::decode_block(&b64).ok()
}

/// The cipher name of an `openssh-key-v1` key ("none" when it has no
/// passphrase): the magic, then a length-prefixed string.
fn openssh_cipher(body: &[u8]) -> Option<&[u8]> {
    let rest = body.strip_prefix(b"openssh-key-v1\0")?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    rest.get(4..4 + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssh_key(cipher: &str) -> String {
        let mut body = b"openssh-key-v1\0".to_vec();
        body.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
        body.extend_from_slice(cipher.as_bytes());
        body.extend_from_slice(&[0; 40]);
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            openssl::base64::encode_block(&body)
        )
    }

    #[test]
    fn usable_keys_pass() {
        assert!(classify(&openssh_key("none")).is_ok());
        assert!(
            classify("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----")
                .is_ok()
        );
        assert!(
            classify("-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----").is_ok()
        );
    }

    #[test]
    fn each_mistake_is_named() {
        let is = |text: &str, want: fn(&KeyProblem) -> bool| {
            let got = classify(text).expect_err(text);
            assert!(want(&got), "{text}: {got:?}");
        };
        is(" \n", |p| matches!(p, KeyProblem::Empty));
        is("ssh-ed25519 AAAAC3Nz test", |p| {
            matches!(p, KeyProblem::PublicKey)
        });
        is("ecdsa-sha2-nistp256 AAAA test", |p| {
            matches!(p, KeyProblem::PublicKey)
        });
        is(&openssh_key("aes256-ctr"), |p| {
            matches!(p, KeyProblem::Passphrase)
        });
        is(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----",
            |p| matches!(p, KeyProblem::Passphrase),
        );
        is(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----",
            |p| matches!(p, KeyProblem::Passphrase),
        );
        is("PuTTY-User-Key-File-3: ssh-ed25519\n", |p| {
            matches!(p, KeyProblem::PuttyFormat)
        });
        is(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----",
            |p| matches!(p, KeyProblem::NotAKey),
        );
        is("hello", |p| matches!(p, KeyProblem::NotAKey));
    }
}
