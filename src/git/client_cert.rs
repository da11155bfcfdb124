//! The client certificate presented to HTTPS servers that ask for one
//! (`http.sslCert`, `http.sslKey`, as git's, or their `http.<url>.` forms
//! for some servers only): read and checked here, presented by
//! `tls_context.rs` (libgit2's connections) or `client_tls.rs` (ours).

use std::path::Path;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// A certificate chain (the certificate first) and its private key.
pub(super) struct Identity {
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
}

/// The PEM certificates in `file`, in order (other PEM blocks, such as
/// a key, passed over), or why it cannot be read.
pub(crate) fn certificates(file: &Path) -> Result<Vec<X509>, String> {
    let pem = std::fs::read(file).map_err(|e| e.to_string())?;
    X509::stack_from_pem(&pem).map_err(|e| e.to_string())
}

/// The chain of `cert` with the key of `key`. Errors name the setting and
/// the file, never the key's contents.
pub(super) fn load(cert: &Path, key: &Path) -> Result<Identity, String> {
    // The key is read here, not by OpenSSL from its file: with a
    // passphrase OpenSSL would ask for it on the terminal; here it fails.
    let pem = std::fs::read(key)
        .map_err(|e| format!("http.sslKey {}: cannot read it: {e}", key.display()))?;
    let pkey = PKey::private_key_from_pem_passphrase(&pem, b"").map_err(|_| {
        format!(
            "http.sslKey {}: no private key without a passphrase in it (PEM, PKCS#1, PKCS#8 or SEC1)",
            key.display()
        )
    })?;
    let unusable = |why: String| {
        format!(
            "http.sslCert {}: no certificate OpenSSL can use in it ({why})",
            cert.display()
        )
    };
    let chain = certificates(cert).map_err(unusable)?;
    let first = chain
        .first()
        .ok_or_else(|| unusable("no certificate in it".into()))?;
    let matches = first
        .public_key()
        .is_ok_and(|public| public.public_eq(&pkey));
    if !matches {
        return Err(format!(
            "http.sslKey {} does not match the certificate of http.sslCert {}",
            key.display(),
            cert.display()
        ));
    }
    tracing::debug!(cert = %cert.display(), "presenting the client certificate of");
    Ok(Identity { chain, key: pkey })
}
