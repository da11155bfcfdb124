//! The HTTP endpoint: `/` for Kubernetes probes (503 until the first
//! successful sync, 200 after; `/?max-age=10m` also 503 when the last
//! successful sync is older), `/metrics` (Prometheus), `/debug/pprof/`
//! (accepted for compatibility), and `POST /sync`, which starts a sync at
//! once for a caller that proves the shared secret.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::ops::HttpConfig;
use crate::metrics::Metrics;

/// Largest request body read (webhook payloads are small).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What the endpoint serves from.
pub struct HttpState {
    /// Set after the first successful sync.
    pub ready: AtomicBool,
    pub metrics: Arc<Metrics>,
    pub sync_now: Arc<Notify>,
    pub serve_metrics: bool,
    pub serve_pprof: bool,
    pub trigger_secret_file: Option<PathBuf>,
}

impl HttpState {
    pub fn new(cfg: &HttpConfig, metrics: Arc<Metrics>, sync_now: Arc<Notify>) -> Self {
        HttpState {
            ready: AtomicBool::new(false),
            metrics,
            sync_now,
            serve_metrics: cfg.metrics,
            serve_pprof: cfg.pprof,
            trigger_secret_file: cfg.trigger_secret_file.clone(),
        }
    }
}

/// Bind the endpoint (fails at start, not later, on a bad address).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let Some(port) = addr.strip_prefix(':') else {
        return TcpListener::bind(addr).await;
    };
    // Go's ":8080": every interface, IPv6 and IPv4 alike (a probe in an
    // IPv6 cluster comes over IPv6); IPv4 only where the host has no IPv6.
    let port: u16 = port.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid port in {addr:?}"),
        )
    })?;
    match dual_stack(port) {
        Err(e) if ipv6_missing(&e) => TcpListener::bind(("0.0.0.0", port)).await,
        other => other,
    }
}

/// A listener on `[::]:port` that takes IPv4 connections too, whatever
/// the system's `bindv6only` default.
fn dual_stack(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    let any = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    socket.bind(&any.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Whether `e` says the host has no IPv6 (a kernel without it, or one
/// booted with it disabled), rather than that the port is taken.
fn ipv6_missing(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

/// At most this many connections at once: probes and scrapes need a few,
/// and a flood of idle ones must not take the file descriptors syncs need.
/// Beyond it, a new connection closes the one quiet longest, so that a
/// probe is answered at once even then (a kubelet gives it a second).
const MAX_CONNECTIONS: usize = 64;

/// The open connections: when each was accepted or last began a request,
/// and what closes it.
#[derive(Default)]
struct Connections {
    next: u64,
    open: std::collections::HashMap<u64, (Instant, Arc<Notify>)>,
}

impl Connections {
    /// Take a new connection in, closing the one quiet longest when
    /// [`MAX_CONNECTIONS`] are open: its number, and what closes it.
    fn admit(&mut self) -> (u64, Arc<Notify>) {
        if self.open.len() >= MAX_CONNECTIONS {
            let quietest = self.open.iter().min_by_key(|(_, (at, _))| *at);
            if let Some(id) = quietest.map(|(id, _)| *id) {
                if let Some((_, close)) = self.open.remove(&id) {
                    close.notify_one();
                }
            }
        }
        let id = self.next;
        self.next += 1;
        let close = Arc::new(Notify::new());
        self.open.insert(id, (Instant::now(), close.clone()));
        (id, close)
    }

    /// Connection `id` began a request.
    fn active(&mut self, id: u64) {
        if let Some((at, _)) = self.open.get_mut(&id) {
            *at = Instant::now();
        }
    }

    fn closed(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

fn lock(connections: &Mutex<Connections>) -> MutexGuard<'_, Connections> {
    connections.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a client has to send a request's headers (also after an idle
/// keep-alive) or its body, before its connection is closed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve until the process ends.
pub async fn serve(listener: TcpListener, state: Arc<HttpState>) {
    let connections = Arc::new(Mutex::new(Connections::default()));
    let mut warned: Option<Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors (EMFILE), say: the error comes
                // back at once, and retrying at once would spin a core.
                if warned.map_or(true, |t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "the HTTP endpoint cannot accept connections");
                    warned = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (state, connections) = (state.clone(), connections.clone());
        let (id, close) = lock(&connections).admit();
        tokio::spawn(async move {
            let during = connections.clone();
            let service = hyper::service::service_fn(move |req| {
                lock(&during).active(id);
                handle(req, state.clone())
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .serve_connection(io, service);
            tokio::select! {
                _ = served => {}
                _ = close.notified() => {}
            }
            lock(&connections).closed(id);
        });
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<HttpState>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    Ok(match (method, path.as_str()) {
        (_, "/metrics") if state.serve_metrics => {
            let mut r = reply(StatusCode::OK, state.metrics.render());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (_, p) if state.serve_pprof && p.starts_with("/debug/pprof") => reply(
            StatusCode::OK,
            "git-sync is not a Go program: there is no pprof here.\n\
             Profile it with Linux tools instead, e.g. perf record -p <pid>.\n",
        ),
        (Method::POST, "/sync") => match state.trigger_secret_file {
            Some(_) => trigger(req, &state).await,
            // A forge's webhook sent here would otherwise get the probe's
            // 200 and sync nothing: say what is missing.
            None => reply(
                StatusCode::NOT_FOUND,
                "no sync trigger here: start git-sync with --sync-trigger-secret-file\n",
            ),
        },
        // Upstream registers its probe on Go's "/" pattern, which matches
        // every path and method no other route takes: a probe set up on
        // /healthz (or /metrics without --http-metrics) works there, so here.
        _ => health(req.uri().query(), &state),
    })
}

/// `/`: 503 until the first successful sync, 200 after (upstream's probe).
/// With `?max-age=<duration>`, also 503 once the last successful pass (one
/// that found the tree current or published a commit) is older than that:
/// a readiness probe that takes a replica whose git server has been out of
/// reach that long out of service. Not for a liveness probe: a restart
/// mends neither a bad URL nor revoked credentials.
fn health(query: Option<&str>, state: &HttpState) -> Response<Full<Bytes>> {
    if !state.ready.load(Ordering::SeqCst) {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "repo is not ready\n");
    }
    let asked = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("max-age="));
    let Some(asked) = asked else {
        return reply(StatusCode::OK, "ok\n");
    };
    let max_age = match crate::config::values::parse_duration(asked) {
        Ok(d) => d,
        Err(e) => return reply(StatusCode::BAD_REQUEST, format!("max-age: {e}\n")),
    };
    match state.metrics.since_last_success() {
        Some(age) if age <= max_age => reply(StatusCode::OK, "ok\n"),
        age => {
            let age = age.map_or("never".into(), |a| format!("{}s ago", a.as_secs()));
            let why = format!("last successful sync: {age}, longer ago than max-age={asked}\n");
            reply(StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }
}

async fn trigger(req: Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let Some(secret_file) = &state.trigger_secret_file else {
        return reply(StatusCode::NOT_FOUND, "not found\n");
    };
    // Read per request: a rotated secret needs no restart.
    let secret = match tokio::fs::read(secret_file).await {
        Ok(s) => trim_newline(s),
        Err(e) => {
            tracing::error!(path = %secret_file.display(), error = %e, "cannot read the sync trigger secret");
            return reply(StatusCode::INTERNAL_SERVER_ERROR, "secret unavailable\n");
        }
    };
    let headers = req.headers().clone();
    let body = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(REQUEST_TIMEOUT, body).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
        Err(_) => return reply(StatusCode::REQUEST_TIMEOUT, "body too slow\n"),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // An empty secret proves nothing.
    let signed = |name: &str, prefix: &str| {
        header(name)
            .and_then(|sig| sig.strip_prefix(prefix))
            .is_some_and(|hex| hmac_hex_ok(&secret, &body, hex))
    };
    let proven = !secret.is_empty()
        && (signed("x-hub-signature-256", "sha256=")
            // Bitbucket Cloud and Data Center: GitHub's old header name,
            // with SHA-256 (GitHub's own is SHA-1 there: not accepted).
            || signed("x-hub-signature", "sha256=")
            || signed("x-gitea-signature", "")
            || signed("x-forgejo-signature", "")
            || header("x-gitlab-token").is_some_and(|t| constant_eq(t.as_bytes(), &secret))
            || header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .is_some_and(|t| constant_eq(t.trim().as_bytes(), &secret)));
    if !proven {
        tracing::warn!("sync trigger refused: no valid secret");
        return reply(StatusCode::UNAUTHORIZED, "unauthorized\n");
    }
    tracing::info!("sync triggered over HTTP");
    state.sync_now.notify_one();
    reply(StatusCode::ACCEPTED, "sync triggered\n")
}

fn trim_newline(mut s: Vec<u8>) -> Vec<u8> {
    while s.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        s.pop();
    }
    s
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// Whether `hex` is the HMAC-SHA256 of `body` under `secret`, as GitHub,
/// Bitbucket, Gitea and Forgejo sign a webhook (after their prefix).
fn hmac_hex_ok(secret: &[u8], body: &[u8], hex: &str) -> bool {
    let Some(mac) = hmac_sha256(secret, body) else {
        return false;
    };
    let expected: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    constant_eq(
        hex.trim().to_ascii_lowercase().as_bytes(),
        expected.as_bytes(),
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let key = openssl::pkey::PKey::hmac(key).ok()?;
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).ok()?;
    signer.update(data).ok()?;
    signer.sign_to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_signatures() {
        // HMAC-SHA256("It's a Secret to Everybody", "Hello, World!"), from
        // GitHub's documentation of webhook signatures.
        let hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let secret = b"It's a Secret to Everybody";
        assert!(hmac_hex_ok(secret, b"Hello, World!", hex));
        assert!(hmac_hex_ok(secret, b"Hello, World!", &hex.to_uppercase()));
        assert!(!hmac_hex_ok(b"wrong", b"Hello, World!", hex));
        assert!(!hmac_hex_ok(secret, b"Hello, World?", hex));
        assert!(!hmac_hex_ok(secret, b"Hello, World!", &hex[..40]));
        assert!(!hmac_hex_ok(secret, b"Hello, World!", ""));
    }
}
