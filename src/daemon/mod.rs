//! The loop: run a pass, apply the failure policy, feed hooks and metrics,
//! wait for the timer or a trigger, repeat; stop cleanly on SIGTERM/SIGINT.
//! libgit2 work runs on blocking threads; this side only coordinates.
//! Starting up is in `startup`, a pass and a cleanup in `pass`.

mod pass;
mod startup;

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::time::sleep_until;

use crate::config::Config;
use crate::credentials::Resolver;
use crate::git;
use crate::hooks::credential_helper::HelperSocket;
use crate::hooks::HookRunner;
use crate::http::HttpState;
use crate::local_watch::LocalWatch;
use crate::lock;
use crate::metrics::{Metrics, SyncStatus};
use crate::redact::redact;
use crate::status_files;
use crate::sync::{Outcome, Syncer};
use crate::systemd;
use crate::triggers;
use pass::{run_clean, run_pass, stop_requested};
use startup::HookCredentials;

/// Whether the loop goes on, or ends with this exit status.
type Step = ControlFlow<i32>;

/// A random fraction in [0, 1), from std's randomly keyed hasher.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Log the configuration and set libgit2 up. Call it before any other
/// thread starts: the git2 crate sets environment variables as it
/// initialises (SSL_CERT_FILE, for the OpenSSL it links), which is only
/// sound while no other thread may read the environment.
pub fn prepare(cfg: &Config) {
    startup::log_config(cfg);
    let timeout_ms = i32::try_from(cfg.sync_timeout.as_millis()).unwrap_or(i32::MAX);
    git::init_globals(timeout_ms, &cfg.tls);
}

/// Run until `--one-time` is satisfied, failures exceed the limit, or a stop
/// signal arrives. Returns the process exit status. [`prepare`] comes first.
pub async fn run(cfg: Config) -> i32 {
    match Daemon::start(cfg).await {
        Ok(daemon) => daemon.run().await,
        Err(code) => code,
    }
}

/// The loop's parts, and what it remembers from one pass to the next.
struct Daemon {
    cfg: Config,
    metrics: Arc<Metrics>,
    sync_now: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    http: Option<Arc<HttpState>>,
    /// Kept up to date by each pass only when a socket serves them.
    hook_credentials: Option<HookCredentials>,
    /// Serves them to the exec hooks' git for as long as it lives.
    _credential_socket: Option<HelperSocket>,
    syncer: Arc<Mutex<Syncer>>,
    watch: Option<LocalWatch>,
    hooks: Vec<HookRunner>,
    resolver: Arc<Mutex<Resolver>>,
    /// The tree an earlier run published, found at start.
    served_before: Option<git::Hash>,
    /// Failed passes in a row.
    failures: i64,
    ever_succeeded: bool,
    /// Commits published by this process (upstream's syncCount).
    updates: u64,
    /// When to clean up next, if anything is left to clean.
    clean_due: Option<Instant>,
}

impl Daemon {
    /// Everything before the first pass; `Err` holds the exit status.
    async fn start(cfg: Config) -> Result<Self, i32> {
        let metrics = Arc::new(Metrics::new());
        let sync_now = Arc::new(Notify::new());
        let mut shutdown = triggers::install_signals(cfg.ops.sync_on_signal, sync_now.clone())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot install signal handlers");
                1
            })?;
        let http = startup::start_http(&cfg, &metrics, &sync_now).await?;
        // Before the syncer, whose pre-publish hook is told of the socket.
        let hook_credentials: HookCredentials = Arc::default();
        let credential_socket = startup::serve_hook_credentials(&cfg, &hook_credentials);
        let hook_credentials = credential_socket.as_ref().map(|_| hook_credentials);
        let mut failures = 0;
        let syncer =
            startup::set_up(&cfg, &metrics, &mut shutdown, &sync_now, &mut failures).await?;
        // A one-time run ends after one pass: nothing would use the watcher.
        // The source is known once our config (and its insteadOf) is in place,
        // and looked at again after every pass (it may have been replaced).
        let watch = (cfg.ops.watch_local && !cfg.one_time)
            .then(|| lock(&syncer).local_source())
            .flatten()
            .and_then(|url| LocalWatch::start(url, sync_now.clone()));
        let hooks = startup::start_hooks(&cfg);
        let resolver = Arc::new(Mutex::new(Resolver::new(cfg.auth.clone(), &cfg.tls)));
        // For systemd, ready is having a tree to serve: the one an earlier run
        // published will do (a machine that boots offline is not held up).
        let served_before = lock(&syncer).served_from_before();
        if let Some(hash) = served_before {
            systemd::ready(&format!("serving {hash}, published before this start"));
        }
        Ok(Self {
            cfg,
            metrics,
            sync_now,
            shutdown,
            http,
            hook_credentials,
            _credential_socket: credential_socket,
            syncer,
            watch,
            hooks,
            resolver,
            served_before,
            failures,
            ever_succeeded: false,
            updates: 0,
            clean_due: Some(Instant::now()),
        })
    }

    /// Pass, then wait, until the loop ends; returns the exit status.
    async fn run(mut self) -> i32 {
        loop {
            if *self.shutdown.borrow() {
                return 0;
            }
            let started = Instant::now();
            let Some(result) = run_pass(
                &self.syncer,
                &self.resolver,
                &self.hook_credentials,
                &self.metrics,
                self.cfg.sync_timeout,
                &mut self.shutdown,
            )
            .await
            else {
                tracing::info!("stopped");
                return 0;
            };
            let took = started.elapsed();
            let step = match result {
                Ok(outcome) => self.succeeded(outcome, took).await,
                Err(e) => self.failed(&e, took),
            };
            if let ControlFlow::Break(code) = step {
                return code;
            }
            if let Some(w) = &self.watch {
                w.follow();
            }
            if let ControlFlow::Break(code) = self.idle().await {
                return code;
            }
        }
    }

    /// After a pass that succeeded: readiness, systemd, the error file,
    /// the touch file and the hooks. A one-time run ends here.
    async fn succeeded(&mut self, outcome: Outcome, took: Duration) -> Step {
        let recovered = self.failures > 0;
        self.failures = 0;
        let first = !self.ever_succeeded;
        self.ever_succeeded = true;
        if let Some(s) = &self.http {
            s.ready.store(true, Ordering::SeqCst);
        }
        let (hash, updated, pre_publish_error) = self.record(outcome, took);
        let shown = format!("published {hash} ({})", self.cfg.git_ref);
        if first && self.served_before.is_none() {
            systemd::ready(&shown);
        } else if updated || recovered || first {
            systemd::status(&shown);
        }
        let git_ref = &self.cfg.git_ref;
        if first && !self.cfg.one_time && git::parse_full_hash(git_ref).is_some() {
            // Upstream's words; polls go on, asking the remote nothing.
            tracing::info!(r#ref = %git_ref, "ref appears to be a git hash, no further sync needed");
        }
        if let Some(p) = &self.cfg.error_file {
            if let Err(e) = status_files::clear_error(p) {
                tracing::warn!(path = %p.display(), error = %e, "cannot remove error file");
            }
        }
        // The touch file and hooks: for every new hash, and once after a
        // (re)start even when nothing changed, as upstream (hooks must be
        // idempotent): what a process killed between the swap and them
        // left undone is done.
        let hash = hash.to_string();
        self.metrics.published(&hash);
        if updated || first {
            if let Some(p) = &self.cfg.touch_file {
                // As upstream, logged: the tree is published already.
                if let Err(e) = status_files::touch(p) {
                    tracing::error!(path = %p.display(), error = %e, "failed to touch touch-file");
                }
            }
            for h in &self.hooks {
                h.trigger(&hash);
            }
        }
        if !self.cfg.one_time {
            return ControlFlow::Continue(());
        }
        if self.clean_due.is_some() {
            run_clean(&self.syncer, &self.hooks, &mut self.shutdown).await;
        }
        let mut ok = pre_publish_error.is_none();
        for h in &self.hooks {
            ok &= h.outcome_for(&hash).await.result.is_ok();
        }
        let status = if ok { 0 } else { 1 };
        tracing::info!(status, "exiting after one sync");
        ControlFlow::Break(status)
    }

    /// Count and log a pass that succeeded; returns its commit, whether
    /// it was published now, and the pre-publish hook's failure.
    fn record(&mut self, outcome: Outcome, took: Duration) -> (git::Hash, bool, Option<String>) {
        match outcome {
            Outcome::Updated {
                hash,
                previous,
                fetched,
                pre_publish_error,
            } => {
                self.metrics.sync(SyncStatus::Success, took);
                if fetched {
                    self.metrics.fetch();
                }
                self.updates += 1;
                // Upstream's message and field names (log-based alerts and
                // dashboards match them), and ours.
                tracing::info!(
                    r#ref = %self.cfg.git_ref,
                    remote = %hash,
                    syncCount = self.updates,
                    previous = %previous.map(|p| p.to_string()).unwrap_or_default(),
                    fetched,
                    duration_ms = took.as_millis() as u64,
                    "updated successfully"
                );
                self.clean_due = Some(Instant::now());
                (hash, true, pre_publish_error)
            }
            Outcome::Unchanged { hash } => {
                self.metrics.sync(SyncStatus::Noop, took);
                tracing::debug!(%hash, duration_ms = took.as_millis() as u64, "no change");
                (hash, false, None)
            }
        }
    }

    /// After a failed pass: count and report it; past the limit, the end.
    fn failed(&mut self, err: &str, took: Duration) -> Step {
        self.metrics.sync(SyncStatus::Error, took);
        self.failures += 1;
        let limit = if self.ever_succeeded {
            self.cfg.max_failures
        } else {
            self.cfg.init_max_failures
        };
        let last = exceeds(self.failures, limit);
        let end = if last {
            Ending::Limit(limit)
        } else {
            Ending::Retry
        };
        report_failure(&self.cfg, err, self.failures, true, end);
        systemd::status(&format!(
            "sync failing ({} in a row): {}",
            self.failures,
            redact(err)
        ));
        if last {
            ControlFlow::Break(1)
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Between passes: clean up when due, and wait for the period (with
    /// its jitter), a trigger or a stop.
    async fn idle(&mut self) -> Step {
        if self.clean_due.is_some_and(|t| t <= Instant::now()) {
            self.clean().await?;
        }
        let base = if self.ever_succeeded {
            self.cfg.period
        } else {
            self.cfg.init_period
        };
        let jitter = self.cfg.period_jitter.mul_f64(random_fraction());
        let next_pass = Instant::now() + base + jitter;
        loop {
            let wake = self
                .clean_due
                .filter(|c| *c < next_pass)
                .unwrap_or(next_pass);
            tokio::select! {
                _ = sleep_until(wake.into()) => {
                    if wake >= next_pass {
                        return ControlFlow::Continue(());
                    }
                    self.clean().await?;
                }
                _ = self.sync_now.notified() => {
                    tracing::debug!("sync triggered");
                    return ControlFlow::Continue(());
                }
                _ = self.shutdown.changed() => {
                    tracing::info!("stopped");
                    return ControlFlow::Break(0);
                }
            }
        }
    }

    /// Clean up now; `Break` if a stop came meanwhile.
    async fn clean(&mut self) -> Step {
        self.clean_due = run_clean(&self.syncer, &self.hooks, &mut self.shutdown).await;
        if stop_requested(&self.shutdown) {
            ControlFlow::Break(0)
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// The failure policy: more consecutive failures than `limit` (negative:
/// no limit) end the process. `limit` failures are allowed, as upstream's
/// manual says (and v3 did; v4's code exits at the `limit`-th already, 0
/// and 1 alike).
fn exceeds(failures: i64, limit: i64) -> bool {
    limit >= 0 && failures > limit
}

/// What follows a failed pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Another pass, after the period.
    Retry,
    /// The process exits: one failure more than this limit.
    Limit(i64),
    /// The process exits: no pass can succeed with this configuration.
    Fatal,
}

/// Log a failed pass and, if `to_error_file`, write it to `--error-file`,
/// with upstream's messages and names, which log-based alerts match
/// (`failCount` a number in the file, `maxFailures` when one too many).
fn report_failure(cfg: &Config, err: &str, failures: i64, to_error_file: bool, end: Ending) {
    let err = redact(err);
    let msg = match end {
        Ending::Retry => "error syncing repo, will retry",
        Ending::Limit(_) => "too many failures, aborting",
        Ending::Fatal => "error syncing repo, aborting",
    };
    match end {
        Ending::Limit(limit) => {
            tracing::error!(error = %err, failCount = failures, maxFailures = limit, "{msg}")
        }
        _ => tracing::error!(error = %err, failCount = failures, "{msg}"),
    }
    if let Some(p) = cfg.error_file.as_ref().filter(|_| to_error_file) {
        let mut args = vec![
            ("repo", redact(&cfg.repo).into()),
            ("ref", cfg.git_ref.clone().into()),
            ("failCount", failures.into()),
        ];
        if let Ending::Limit(limit) = end {
            args.push(("maxFailures", limit.into()));
        }
        if let Err(e) = status_files::write_error(p, msg, &err, &args) {
            tracing::warn!(path = %p.display(), error = %e, "cannot write error file");
        }
    }
}
