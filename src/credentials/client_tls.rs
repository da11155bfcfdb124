//! What git-sync's own HTTP client (webhooks, askpass URLs, token endpoints
//! such as a GitHub Enterprise API) trusts: what libgit2 trusts for git,
//! i.e. the system's CAs, plus a private CA given with `http.sslCAInfo` or
//! `http.sslCAPath` (or `GIT_SSL_CAINFO`/`GIT_SSL_CAPATH`), and nothing at
//! all checked with `http.sslVerify=false`; and the client certificate of
//! `http.sslCert`/`http.sslKey`, for servers that ask for one (a GitHub
//! Enterprise behind mutual TLS). The files are read when the client is
//! made, and it is made again once one of them changed (see
//! [`RenewingAgent`]). The clients of git servers (`git::ls_refs`, LFS)
//! are made from each server's own settings (`git::tls::for_url`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::config::gitconfig::Tls;
use crate::file_stamp::FileStamp;

/// The HTTP clients of `credentials::http_agent`'s (webhooks, askpass
/// URLs, token endpoints): one for the TLS settings of each URL asked for
/// (`http.<url>.sslCAInfo` and the like, as for git remotes), made again
/// before a request once a file of those settings changed: a CA bundle or
/// a client certificate renewed in its Secret (cert-manager renews them
/// long before they expire) is used from the next request on, where a
/// client made at start went on presenting the old certificate until it
/// expired, and failed from then on.
pub struct RenewingAgent {
    timeout: Duration,
    tls: Tls,
    made: Mutex<Vec<Made>>,
}

/// A client made, with its settings and the versions of the files it
/// was made from.
type Made = (Tls, Vec<Option<FileStamp>>, ureq::Agent);

impl RenewingAgent {
    pub fn new(timeout: Duration, tls: &Tls) -> Self {
        RenewingAgent {
            timeout,
            tls: tls.clone(),
            made: Mutex::new(Vec::new()),
        }
    }

    /// The client for requests to `url`, made again first if a file of
    /// its settings changed (a `stat` each).
    pub fn get(&self, url: &str) -> ureq::Agent {
        let tls = crate::git::tls_for_url(&self.tls, url);
        let now = stamps(&tls);
        let mut made = crate::lock(&self.made);
        match made.iter_mut().find(|(t, _, _)| *t == tls) {
            Some((_, then, agent)) => {
                if *then != now {
                    tracing::info!(
                        "a CA or client certificate file changed: git-sync's own HTTP requests use it now"
                    );
                    (*then, *agent) = (now, super::http_agent(self.timeout, &tls));
                }
                agent.clone()
            }
            None => {
                let agent = super::http_agent(self.timeout, &tls);
                made.push((tls, now, agent.clone()));
                agent
            }
        }
    }
}

/// The versions of the files a client of `tls` is made from.
fn stamps(tls: &Tls) -> Vec<Option<FileStamp>> {
    let system = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    [
        system.as_deref(),
        tls.ca_file.as_deref().map(Path::new),
        tls.ca_dir.as_deref().map(Path::new),
        tls.client_cert.as_deref().map(Path::new),
        tls.client_key.as_deref().map(Path::new),
    ]
    .into_iter()
    .map(|path| path.and_then(FileStamp::of))
    .collect()
}

pub fn client_tls(tls: &Tls) -> TlsConfig {
    let builder = TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .client_cert(client_cert(tls));
    if !tls.verify {
        return builder.disable_verification(true).build();
    }
    if tls.ca_file.is_none() && tls.ca_dir.is_none() {
        // The system's, as native-tls finds them (SSL_CERT_FILE, or where
        // distributions keep them). ureq's default, its own WebPki roots,
        // is not built in: every HTTPS request panicked.
        return builder.root_certs(RootCerts::PlatformVerifier).build();
    }
    // Given roots replace the system's in native-tls: list both.
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| openssl_probe::probe().cert_file);
    let mut files: Vec<PathBuf> = system.into_iter().collect();
    files.extend(tls.ca_file.as_deref().map(PathBuf::from));
    if let Some(dir) = tls.ca_dir.as_deref() {
        match std::fs::read_dir(dir) {
            Ok(entries) => files.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                    .map(|e| e.path()),
            ),
            Err(e) => tracing::warn!(dir, error = %e, "cannot read the CA directory"),
        }
    }
    let mut ders: Vec<Vec<u8>> = files.iter().flat_map(|f| certificates_in(f)).collect();
    // A CA file may be the system's bundle again.
    ders.sort_unstable();
    ders.dedup();
    let roots: Vec<Certificate<'static>> = ders
        .iter()
        .map(|der| Certificate::from_der(der).to_owned())
        .collect();
    builder
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build()
}

/// The DER of each PEM certificate in `file`; none if it cannot be read.
fn certificates_in(file: &Path) -> Vec<Vec<u8>> {
    match crate::git::certificates_in_pem(file) {
        Ok(certs) => certs.iter().filter_map(|c| c.to_der().ok()).collect(),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read CA certificates from");
            Vec::new()
        }
    }
}

/// The client certificate chain and key git presents, if configured and
/// usable (else said, and none is presented).
fn client_cert(tls: &Tls) -> Option<ClientCert> {
    let (cert, key) = (tls.client_cert.as_deref()?, tls.client_key.as_deref()?);
    let chain: Vec<Certificate<'static>> = certificates_in(Path::new(cert))
        .iter()
        .map(|der| Certificate::from_der(der).to_owned())
        .collect();
    // PKCS#8 whatever the file held (native-tls wants that form); no
    // passphrase, never a prompt.
    let key_pem = std::fs::read(key)
        .ok()
        .and_then(|pem| openssl::pkey::PKey::private_key_from_pem_passphrase(&pem, b"").ok())
        .and_then(|k| k.private_key_to_pem_pkcs8().ok())
        .and_then(|pem| PrivateKey::from_pem(&pem).ok());
    match (chain.is_empty(), key_pem) {
        (false, Some(key)) => Some(ClientCert::new_with_certs(&chain, key)),
        _ => {
            tracing::warn!(
                cert,
                key,
                "the client certificate cannot be read: webhooks and token requests go without it"
            );
            None
        }
    }
}
