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

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::ops::HttpConfig;
use crate::metrics::Metrics;

mod trigger;

/// What the endpoint serves from.
pub struct HttpState {
    /// Set after the first successful sync.
    pub ready: AtomicBool,
    pub metrics: Arc<Metrics>,
    pub sync_now: Arc<Notify>,
    pub serve_metrics: bool,
    pub serve_pprof: bool,
    pub trigger_secret_file: Option<PathBuf>,
    /// Triggers refused for want of a proof, and for want of a secret to
    /// check it against: a flood of them must not flood the log.
    unproven: Mutex<Hush>,
    no_secret: Mutex<Hush>,
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
            unproven: Mutex::default(),
            no_secret: Mutex::default(),
        }
    }
}

/// At most one warning a minute about one thing: the first says it, the
/// next a minute later says it again with how many went unsaid between.
#[derive(Default)]
struct Hush {
    said: Option<Instant>,
    unsaid: u64,
}

impl Hush {
    const QUIET: Duration = Duration::from_secs(60);

    /// Whether to say it now: if so, how many times it went unsaid since
    /// it was last said.
    fn speak(&mut self) -> Option<u64> {
        self.speak_at(Instant::now())
    }

    /// [`Hush::speak`], for one shared between requests.
    fn speak_shared(hush: &Mutex<Hush>) -> Option<u64> {
        hush.lock().unwrap_or_else(PoisonError::into_inner).speak()
    }

    fn speak_at(&mut self, now: Instant) -> Option<u64> {
        if self
            .said
            .is_some_and(|said| now.saturating_duration_since(said) < Self::QUIET)
        {
            self.unsaid += 1;
            return None;
        }
        self.said = Some(now);
        Some(std::mem::take(&mut self.unsaid))
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
    if let Some(path) = &state.trigger_secret_file {
        // Said at start, not at the first webhook, which may be days away.
        if let Err(e) = trigger::read_secret(path).await {
            tracing::warn!(error = %e, "the sync trigger's secret: POST /sync is refused until it is mended");
        }
    }
    let mut failing = Hush::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors (EMFILE), say: the error comes
                // back at once, and retrying at once would spin a core.
                if let Some(unsaid) = failing.speak() {
                    tracing::warn!(error = %e, unlogged = unsaid, "the HTTP endpoint cannot accept connections");
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
            Some(_) => trigger::trigger(req, &state).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hush_says_a_thing_once_a_minute_and_counts_the_rest() {
        let mut hush = Hush::default();
        let t0 = Instant::now();
        assert_eq!(hush.speak_at(t0), Some(0));
        assert_eq!(hush.speak_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(hush.speak_at(t0 + Duration::from_secs(59)), None);
        assert_eq!(hush.speak_at(t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(hush.speak_at(t0 + Duration::from_secs(61)), None);
        assert_eq!(hush.speak_at(t0 + Duration::from_secs(200)), Some(1));
        assert_eq!(hush.speak_at(t0 + Duration::from_secs(300)), Some(0));
    }
}
