//! Which certificates libgit2's OpenSSL trusts for HTTPS.
//!
//! Our OpenSSL is built into the binary, configured at build time to look
//! in `/usr/local/ssl`, where no distribution keeps its certificates. As
//! libgit2 initialises, it reads `SSL_CERT_FILE` and `SSL_CERT_DIR`, once:
//! what a developer's shell often sets and a container never does. So the
//! system's CA bundle is looked for where distributions and distroless
//! images keep it (`/etc/ssl/certs/ca-certificates.crt`, ...), and added
//! when the environment did not already provide one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::config::gitconfig::Tls;

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
        stamp: Stamp::of(&path),
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
    let client = tls.client_cert.as_ref().map(|cert| {
        let key = tls.client_key.as_ref().unwrap_or(cert);
        let unloaded = |p: &String| Watched {
            path: PathBuf::from(p),
            stamp: None,
        };
        (unloaded(cert), unloaded(key))
    });
    *lock_cas() = Cas {
        first: true,
        files: watched,
        dirs,
        none_found,
        client,
    };
    if !tls.verify {
        tracing::warn!(
            "TLS certificates are not verified (http.sslVerify=false or GIT_SSL_NO_VERIFY)"
        );
        VERIFY.store(false, Ordering::Relaxed);
    }
}

/// Which version of a file was loaded: a file rewritten, or swapped
/// through a symlink as the kubelet updates a mounted Secret or ConfigMap,
/// has another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
    len: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            len: m.len(),
        })
    }
}

/// A CA file, and the version of it OpenSSL holds (`None`: not loaded).
struct Watched {
    path: PathBuf,
    stamp: Option<Stamp>,
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
    /// The client certificate and key files (`http.sslCert`, `http.sslKey`).
    client: Option<(Watched, Watched)>,
}

static CAS: Mutex<Cas> = Mutex::new(Cas {
    first: true,
    files: Vec::new(),
    dirs: Vec::new(),
    none_found: false,
    client: None,
});

fn lock_cas() -> std::sync::MutexGuard<'static, Cas> {
    // Plain lists, whole whatever a panicking holder did.
    crate::lock(&CAS)
}

/// Load the CA locations and the client certificate before connecting to
/// `url` (through `proxy`), if that may speak TLS: HTTPS, or HTTP, which
/// may redirect to HTTPS; then only files that changed since. Every
/// connection libgit2 makes passes here first (see
/// `remote::fetch_options`), and the lock makes a concurrent one wait. A
/// client certificate that cannot be used fails the connection here, with
/// why, rather than in the TLS handshake.
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
        let now = Stamp::of(&file.path);
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
    if let Some((cert, key)) = &mut cas.client {
        let (cert_now, key_now) = (Stamp::of(&cert.path), Stamp::of(&key.path));
        if cert_now != cert.stamp || key_now != key.stamp || cert_now.is_none() {
            if cert.stamp.is_some() {
                GENERATION.fetch_add(1, Ordering::SeqCst);
                tracing::info!(cert = %cert.path.display(), "the client certificate changed: presenting the new one");
            }
            super::client_cert::present(&cert.path, &key.path)?;
            // Only once it is in use: a failed load is tried again.
            (cert.stamp, key.stamp) = (cert_now, key_now);
        }
    }
    Ok(())
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
