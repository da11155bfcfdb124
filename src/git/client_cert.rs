//! The client certificate libgit2's OpenSSL presents to HTTPS servers that
//! ask for one (`http.sslCert`, `http.sslKey`, as git's).
//!
//! libgit2 has no option for it, but makes every TLS connection from one
//! process-wide `SSL_CTX`, `git__ssl_ctx` (a global of its OpenSSL stream,
//! `src/libgit2/streams/openssl.c`), with the OpenSSL built into this very
//! binary; a certificate and key set on that context are offered by each
//! connection made after. The symbol is libgit2's internal, like the
//! struct layout `stream.rs` mirrors: both are tied to the libgit2 that
//! libgit2-sys vendors, which is why Cargo.toml pins it exactly.

use std::mem::ManuallyDrop;
use std::path::Path;

use openssl::pkey::PKey;
use openssl::ssl::SslContextBuilder;
use openssl_sys::SSL_CTX;

extern "C" {
    /// Created by libgit2's initialisation, never replaced afterwards.
    static git__ssl_ctx: *mut SSL_CTX;
}

/// Present the certificate chain of `cert` with the key of `key` from now
/// on. Errors name the setting and the file, never the key's contents.
pub(super) fn present(cert: &Path, key: &Path) -> Result<(), String> {
    // SAFETY: a plain read of libgit2's pointer, set once as libgit2
    // initialised (before any connection, so before this is called).
    let ctx = unsafe { git__ssl_ctx };
    if ctx.is_null() {
        return Err("libgit2 has no TLS context: client certificates cannot be used".into());
    }
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
    // SAFETY: `ctx` is libgit2's live context; connections are made after
    // `tls::before_connecting`, whose lock this runs under, so none uses
    // it meanwhile. The builder only borrows it: never dropped (which
    // would free libgit2's context).
    let mut context = ManuallyDrop::new(unsafe { SslContextBuilder::from_ptr(ctx) });
    context.set_certificate_chain_file(cert).map_err(|e| {
        format!(
            "http.sslCert {}: no certificate OpenSSL can use in it ({e})",
            cert.display()
        )
    })?;
    // OpenSSL checks the key against the certificate as it takes it.
    let mismatch = || {
        format!(
            "http.sslKey {} does not match the certificate of http.sslCert {}",
            key.display(),
            cert.display()
        )
    };
    context.set_private_key(&pkey).map_err(|_| mismatch())?;
    context.check_private_key().map_err(|_| mismatch())?;
    tracing::debug!(cert = %cert.display(), "presenting the client certificate of");
    Ok(())
}
