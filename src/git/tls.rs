//! Which certificates libgit2's OpenSSL trusts for HTTPS.
//!
//! Our OpenSSL is built into the binary, configured at build time to look
//! in `/usr/local/ssl`, where no distribution keeps its certificates. As
//! libgit2 initialises, it reads `SSL_CERT_FILE` and `SSL_CERT_DIR`, once:
//! what a developer's shell often sets and a container never does. So the
//! system's CA bundle is looked for where distributions and distroless
//! images keep it (`/etc/ssl/certs/ca-certificates.crt`, ...), and added
//! when the environment did not already provide one.
//!
//! The CAs and the client certificate of a server's own settings
//! (`http.<url>.sslCAInfo`, `.sslCert`...) are handed to libgit2's
//! connections to it through `tls_context.rs`; [`for_url`] says which.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openssl::ssl::SslFiletype;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::X509PurposeId;

use super::client_cert::{self, Identity};
use super::tls_context::{self, ForServer};
use super::urlmatch;
use crate::config::gitconfig::Tls;
use crate::file_stamp::FileStamp;

static VERIFY: AtomicBool = AtomicBool::new(true);

/// Counts the changes of a CA file or the client certificate seen since
/// they were first loaded: an HTTP client of our own (`ls_refs`) made for
/// an older count is made again.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// See [`GENERATION`].
pub(super) fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Whether TLS certificates are verified (`http.sslVerify`).
pub(crate) fn verify() -> bool {
    VERIFY.load(Ordering::Relaxed)
}

/// An existing path from an environment variable.
fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// Where CA certificates are, seen before libgit2 initialises (the git2
/// crate then copies what it finds into the environment, too late for
/// libgit2 when, as here, libgit2 was initialised first).
pub(super) struct Found {
    /// Loaded by libgit2 itself as it initialised.
    env_file: Option<PathBuf>,
    env_dir: Option<PathBuf>,
    system: openssl_probe::ProbeResult,
}

pub(super) fn look_around() -> Found {
    Found {
        env_file: from_env("SSL_CERT_FILE"),
        env_dir: from_env("SSL_CERT_DIR"),
        system: openssl_probe::probe(),
    }
}

/// Apply the TLS settings (the CA locations at the first connection that
/// needs them, see `before_connecting`). Called once, after libgit2 has
/// initialised and before any transfer.
pub(super) fn configure(found: Found, tls: &Tls) {
    let Found {
        env_file,
        env_dir,
        system,
    } = found;
    // The bundle libgit2 loaded from SSL_CERT_FILE as it initialised (then
    // only watched for changes), else the system's; then the configured one.
    let loaded = env_file.map(|path| Watched {
        stamp: FileStamp::of(&path),
        path,
    });
    let system_file = if loaded.is_none() {
        system.cert_file
    } else {
        None
    };
    let to_load = system_file
        .into_iter()
        .chain(tls.ca_file.as_deref().map(PathBuf::from))
        .map(|path| Watched { path, stamp: None });
    let mut watched: Vec<Watched> = Vec::new();
    for file in loaded.into_iter().chain(to_load) {
        // Never the same file twice (as when GIT_SSL_CAINFO and
        // SSL_CERT_FILE both name the system's).
        if !watched
            .iter()
            .any(|w| canonical(&w.path) == canonical(&file.path))
        {
            watched.push(file);
        }
    }
    let mut dirs = if env_dir.is_none() {
        system.cert_dir
    } else {
        Vec::new()
    };
    dirs.extend(tls.ca_dir.as_deref().map(PathBuf::from));
    let none_found = watched.is_empty() && dirs.is_empty() && env_dir.is_none();
    if let Err(e) = tls_context::install() {
        tracing::warn!(
            error = %e,
            "client certificates and CAs for some servers only cannot be used"
        );
    }
    *lock_cas() = Cas {
        first: true,
        files: watched,
        dirs,
        none_found,
        settings: tls.clone(),
        scoped: Vec::new(),
        identities: Vec::new(),
    };
    if !tls.verify {
        tracing::warn!(
            "TLS certificates are not verified (http.sslVerify=false or GIT_SSL_NO_VERIFY)"
        );
        VERIFY.store(false, Ordering::Relaxed);
    }
}

/// A CA file, and the version of it OpenSSL holds (`None`: not loaded).
struct Watched {
    path: PathBuf,
    stamp: Option<FileStamp>,
}

/// The CA locations. Parsing a bundle of 140 certificates is most of the
/// work of a one-time sync of a small local repository (51 of 72 million
/// instructions), so it waits for the first connection that may use TLS;
/// a daemon syncing from a local path or over SSH never pays. A file that
/// changes is loaded again before the next connection, so a rotated CA is
/// trusted without a restart (as git, which reads it for every fetch);
/// certificates removed from it stay trusted until one.
struct Cas {
    /// No connection has needed them yet.
    first: bool,
    files: Vec<Watched>,
    dirs: Vec<PathBuf>,
    /// Not even the environment names any: said when it matters.
    none_found: bool,
    /// The settings, for every server and for some (see [`for_url`]).
    settings: Tls,
    /// The CAs trusted for some servers only, as last read.
    scoped: Vec<ScopedCas>,
    /// The client certificates read, with their keys.
    identities: Vec<Presented>,
}

/// A store of the CAs of `http.<url>.sslCAInfo` and `.sslCAPath`.
struct ScopedCas {
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
    /// The version of the file in the store.
    stamp: Option<FileStamp>,
    store: Option<Arc<X509Store>>,
}

/// A client certificate and key, and the versions of their files read.
struct Presented {
    cert: Watched,
    key: Watched,
    identity: Arc<Identity>,
}

static CAS: Mutex<Cas> = Mutex::new(Cas {
    first: true,
    files: Vec::new(),
    dirs: Vec::new(),
    none_found: false,
    settings: Tls {
        ca_file: None,
        ca_dir: None,
        verify: true,
        client_cert: None,
        client_key: None,
        scoped: Vec::new(),
    },
    scoped: Vec::new(),
    identities: Vec::new(),
});

fn lock_cas() -> std::sync::MutexGuard<'static, Cas> {
    // Plain lists, whole whatever a panicking holder did.
    crate::lock(&CAS)
}

/// Load the CA locations and the client certificate before connecting to
/// `url` (through `proxy`), if that may speak TLS: HTTPS, or HTTP, which
/// may redirect to HTTPS; then only files that changed since. Every
/// connection libgit2 makes passes here first (see
/// `remote::fetch_options`), on the thread that makes it, and the lock
/// makes a concurrent one wait. A client certificate that cannot be used
/// fails the connection here, with why, rather than in the TLS handshake.
pub(super) fn before_connecting(url: &str, proxy: Option<&str>) -> Result<(), String> {
    let may_use_tls = |u: &str| u.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("http"));
    if !may_use_tls(url) && !proxy.is_some_and(may_use_tls) {
        return Ok(());
    }
    let mut cas = lock_cas();
    if cas.first {
        cas.first = false;
        if cas.none_found {
            tracing::warn!(
                "no CA certificates found (not in /etc/ssl/certs nor the like, nor SSL_CERT_FILE \
                 or SSL_CERT_DIR): HTTPS servers cannot be verified; name a bundle with \
                 --git-config=http.sslCAInfo:<file>"
            );
        }
        for dir in &cas.dirs {
            // SAFETY: libgit2 is initialised (configure ran), and the only
            // libgit2 use of what this changes, a TLS handshake, comes
            // after this function in every thread (the lock orders them).
            if let Err(e) = unsafe { git2::opts::set_ssl_cert_dir(dir) } {
                tracing::warn!(dir = %dir.display(), error = %e.message(), "cannot use the CA directory");
            }
        }
    }
    for file in &mut cas.files {
        let now = FileStamp::of(&file.path);
        if now.is_none() || now == file.stamp {
            continue;
        }
        if file.stamp.is_some() {
            GENERATION.fetch_add(1, Ordering::SeqCst);
            tracing::info!(file = %file.path.display(), "the CA file changed: trusting what it holds now too");
        } else {
            tracing::debug!(file = %file.path.display(), "trusting the CA certificates of");
        }
        // Said once per version of the file, not at every poll.
        file.stamp = now;
        // SAFETY: as above.
        if let Err(e) = unsafe { git2::opts::set_ssl_cert_file(&file.path) } {
            tracing::warn!(file = %file.path.display(), error = %e.message(), "cannot use the CA file");
        }
    }
    // What this server is given beyond what every server is: the
    // connections libgit2 makes next on this thread are its.
    tls_context::set_for_this_thread(ForServer::default());
    let tls = for_url(&cas.settings, url);
    let own_cas = (&tls.ca_file, &tls.ca_dir) != (&cas.settings.ca_file, &cas.settings.ca_dir);
    let also_trusted = own_cas.then(|| cas.scoped_store(&tls)).flatten();
    let identity = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => Some(cas.identity(Path::new(cert), Path::new(key))?),
        _ => None,
    };
    tls_context::set_for_this_thread(ForServer {
        also_trusted,
        identity,
    });
    Ok(())
}

impl Cas {
    /// The store of `tls`'s CAs (those of a server's own settings), read
    /// again when its file changed: unlike the CAs of every server's, a
    /// certificate removed from it is no longer trusted.
    fn scoped_store(&mut self, tls: &Tls) -> Option<Arc<X509Store>> {
        let file = tls.ca_file.as_ref().map(PathBuf::from);
        let dir = tls.ca_dir.as_ref().map(PathBuf::from);
        let stamp = file.as_deref().and_then(FileStamp::of);
        let kept = self
            .scoped
            .iter()
            .position(|s| s.file == file && s.dir == dir);
        if let Some(kept) = kept.map(|i| &self.scoped[i]) {
            if kept.stamp == stamp {
                return kept.store.clone();
            }
            GENERATION.fetch_add(1, Ordering::SeqCst);
            if let Some(file) = &file {
                tracing::info!(file = %file.display(), "the CA file changed: trusting what it holds now");
            }
        }
        let store = store_of(file.as_deref(), dir.as_deref()).map(Arc::new);
        let entry = ScopedCas {
            file,
            dir,
            stamp,
            store: store.clone(),
        };
        match kept {
            Some(i) => self.scoped[i] = entry,
            None => self.scoped.push(entry),
        }
        store
    }

    /// The client certificate of `cert` and `key`, read again when either
    /// file changed. One that cannot be used fails the connection here,
    /// with why, rather than in the TLS handshake.
    fn identity(&mut self, cert: &Path, key: &Path) -> Result<Arc<Identity>, String> {
        let (cert_now, key_now) = (FileStamp::of(cert), FileStamp::of(key));
        let kept = self
            .identities
            .iter()
            .position(|p| p.cert.path == cert && p.key.path == key);
        if let Some(kept) = kept.map(|i| &self.identities[i]) {
            if cert_now.is_some() && (cert_now, key_now) == (kept.cert.stamp, kept.key.stamp) {
                return Ok(kept.identity.clone());
            }
            GENERATION.fetch_add(1, Ordering::SeqCst);
            tracing::info!(cert = %cert.display(), "the client certificate changed: presenting the new one");
        }
        let identity = Arc::new(client_cert::load(cert, key)?);
        // Only once it is in use: a failed load is tried again.
        let entry = Presented {
            cert: Watched {
                path: cert.to_path_buf(),
                stamp: cert_now,
            },
            key: Watched {
                path: key.to_path_buf(),
                stamp: key_now,
            },
            identity: identity.clone(),
        };
        match kept {
            Some(i) => self.identities[i] = entry,
            None => self.identities.push(entry),
        }
        Ok(identity)
    }
}

/// A store of the certificates of `file` and those `dir` holds, for a
/// TLS server's chain; what cannot be read is said and left out.
fn store_of(file: Option<&Path>, dir: Option<&Path>) -> Option<X509Store> {
    let built = || -> Result<X509Store, openssl::error::ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        builder.set_purpose(X509PurposeId::SSL_SERVER)?;
        if let Some(file) = file {
            match client_cert::certificates(file) {
                Ok(certs) => {
                    for cert in certs {
                        builder.add_cert(cert)?;
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "cannot use the CA file")
                }
            }
        }
        if let Some(dir) = dir {
            let lookup = builder.add_lookup(X509Lookup::hash_dir())?;
            if let Some(name) = dir.to_str() {
                lookup.add_dir(name, SslFiletype::PEM)?;
            }
        }
        Ok(builder.build())
    };
    built()
        .map_err(
            |e| tracing::warn!(error = %e, "cannot make a store of the CAs of some servers only"),
        )
        .ok()
}

/// The settings for connections to `url`: of each of `http.sslCAInfo`,
/// `sslCAPath`, `sslCert` and `sslKey`, the most specific `http.<url>.`
/// form that matches it (see `urlmatch`; the last of equals), else the
/// one for every server. As in git, a key not given is the certificate's
/// file.
pub(crate) fn for_url(tls: &Tls, url: &str) -> Tls {
    if tls.scoped.is_empty() {
        return tls.clone();
    }
    let best = |name: &str| {
        let mut best: Option<(urlmatch::Rank, &String)> = None;
        for (key, value) in &tls.scoped {
            match urlmatch::rank(key, name, url) {
                Some(rank) if best.map_or(true, |(b, _)| rank >= b) => best = Some((rank, value)),
                _ => {}
            }
        }
        best.map(|(_, value)| value.clone())
    };
    let client_cert = best("sslcert").or_else(|| tls.client_cert.clone());
    // (A key for every server, given as such: not the certificate's file.)
    let given_key = tls
        .client_key
        .clone()
        .filter(|key| Some(key) != tls.client_cert.as_ref());
    let client_key = client_cert
        .as_ref()
        .map(|cert| best("sslkey").or(given_key).unwrap_or_else(|| cert.clone()));
    Tls {
        ca_file: best("sslcainfo").or_else(|| tls.ca_file.clone()),
        ca_dir: best("sslcapath").or_else(|| tls.ca_dir.clone()),
        verify: tls.verify,
        client_cert,
        client_key,
        scoped: Vec::new(),
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(global: &[(&str, &str)], scoped: &[(&str, &str)]) -> Tls {
        let value = |name: &str| {
            global
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Tls {
            ca_file: value("ca"),
            ca_dir: None,
            verify: true,
            client_key: value("key").or_else(|| value("cert")),
            client_cert: value("cert"),
            scoped: scoped
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_servers_own_settings_are_the_most_specific_that_match_its_url() {
        let url = "https://git.example/org/repo.git";
        let t = tls(
            &[("ca", "/all.pem"), ("cert", "/all.crt")],
            &[
                ("http.https://git.example/org.sslcainfo", "/org.pem"),
                ("http.https://git.example.sslcainfo", "/host.pem"),
                ("http.https://git.example/org/.sslcert", "/org.crt"),
                ("http.https://other.example.sslcapath", "/other"),
                ("http.https://git.example/organisation.sslkey", "/no.key"),
            ],
        );
        let got = for_url(&t, url);
        assert_eq!(got.ca_file.as_deref(), Some("/org.pem"));
        assert_eq!(got.ca_dir, None);
        assert_eq!(got.client_cert.as_deref(), Some("/org.crt"));
        // No key given: the certificate's file, not the one for every
        // server's certificate.
        assert_eq!(got.client_key.as_deref(), Some("/org.crt"));
        // Another server: the settings for every server.
        let elsewhere = for_url(&t, "https://git.example:8443/org/repo.git");
        assert_eq!(elsewhere.ca_file.as_deref(), Some("/all.pem"));
        assert_eq!(elsewhere.client_key.as_deref(), Some("/all.crt"));
        // A key given for every server goes with a server's certificate
        // (as in git); of equally specific keys, the last.
        let t = tls(
            &[("key", "/all.key")],
            &[
                ("http.https://git.example.sslcert", "/first.crt"),
                ("http.https://git.example.sslcert", "/last.crt"),
            ],
        );
        let got = for_url(&t, url);
        assert_eq!(got.client_cert.as_deref(), Some("/last.crt"));
        assert_eq!(got.client_key.as_deref(), Some("/all.key"));
        // Nothing scoped: as given.
        let plain = tls(&[("ca", "/all.pem")], &[]);
        assert_eq!(for_url(&plain, url), plain);
    }
}
