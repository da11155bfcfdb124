//! The loop: run a pass, apply the failure policy, feed hooks and metrics,
//! wait for the timer or a trigger, repeat; stop cleanly on SIGTERM/SIGINT.
//! libgit2 work runs on blocking threads; this side only coordinates.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, timeout};

use crate::config::{gitconfig, Config};
use crate::credentials::Resolver;
use crate::git::{self, Cancel};
use crate::hooks::{credential_helper, ExecHook, HookRunner, Webhook};
use crate::http::{self, HttpState};
use crate::layout::{Layout, LayoutError};
use crate::local_watch::LocalWatch;
use crate::lock;
use crate::metrics::{Metrics, SyncStatus};
use crate::redact::redact;
use crate::status_files;
use crate::sync::{Outcome, SyncError, Syncer};
use crate::systemd;
use crate::triggers;

/// A random fraction in [0, 1), from std's randomly keyed hasher.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A list as one comma-separated log value ("" when empty).
fn joined<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let items: Vec<S> = items.into_iter().collect();
    let parts: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    parts.join(",")
}

/// Where credentials and SSH settings come from besides the flags (as git
/// and OpenSSH would find them), when anything does: the paths and the
/// choices, never a secret.
fn log_environment_credentials(cfg: &Config) {
    let netrc = cfg.auth.netrc.as_ref().filter(|p| p.exists());
    let ssh = &cfg.auth.ssh;
    let stores = &cfg.auth.credential_stores;
    if netrc.is_none() && stores.is_empty() && ssh.command.is_none() && !ssh.offers_agent_keys() {
        return;
    }
    let paths = |files: &mut dyn Iterator<Item = &std::path::PathBuf>| {
        joined(files.map(|p| p.display().to_string()))
    };
    let command = ssh.command.as_ref();
    tracing::info!(
        netrc = %paths(&mut netrc.into_iter()),
        credential_store = %paths(&mut stores.iter()),
        ssh_command_keys = %paths(&mut command.into_iter().flat_map(|c| c.key_files.iter())),
        ssh_host_checking = ?ssh.host_checking(),
        ssh_known_hosts = %ssh.effective_known_hosts_file().display(),
        ssh_agent = ssh.offers_agent_keys(),
        "credentials and SSH settings from the environment, read as git and OpenSSH read them"
    );
}

fn log_config(cfg: &Config) {
    // Keys may hold URLs (`http.<url>.proxy`), and URLs credentials.
    let keys = joined(cfg.git_config.iter().map(|(k, _)| redact(k)));
    let or_empty = |v: Option<String>| v.unwrap_or_default();
    let (uid, gid) = crate::user::effective_ids();
    // Upstream's first line ("starting up", pid, uid, gid, home), which log
    // alerts on restarts match, then the configuration in effect.
    tracing::info!(
        version = crate::VERSION,
        pid = std::process::id(),
        uid,
        gid,
        home = %or_empty(std::env::var("HOME").ok()),
        repo = %redact(&cfg.repo),
        git_ref = %cfg.git_ref,
        root = %cfg.root.display(),
        link = %cfg.link.display(),
        period = ?cfg.period,
        sync_timeout = ?cfg.sync_timeout,
        depth = cfg.depth,
        one_time = cfg.one_time,
        max_failures = cfg.max_failures,
        git_gc = %cfg.git_gc.as_str(),
        git_config_keys = %keys,
        ca_file = %or_empty(cfg.tls.ca_file.clone()),
        username = %or_empty(cfg.auth.basic.as_ref().map(|a| a.username.clone())),
        askpass_url = %or_empty(cfg.auth.askpass_url.as_deref().map(redact)),
        credentials_for = %joined(cfg.auth.credentials.iter().map(|c| redact(&c.url))),
        github_app = %or_empty(cfg.auth.github_app.as_ref().map(|a| a.installation_id.to_string())),
        exechook = %or_empty(cfg.ops.exechook.as_ref().map(|h| h.command.clone())),
        webhook = %or_empty(cfg.ops.webhook.as_ref().map(|w| redact(&w.url))),
        http_bind = %or_empty(cfg.ops.http.as_ref().map(|h| h.bind.clone())),
        "starting up"
    );
    log_environment_credentials(cfg);
    for won in &cfg.names_overridden {
        tracing::warn!("{won}");
    }
    let env_names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let unknown = crate::config::env_names::unknown(&env_names);
    if !unknown.is_empty() {
        tracing::warn!(
            names = %unknown.join(", "),
            "environment variables named like git-sync's that no flag reads: ignored (a typo?)"
        );
    }
    if !cfg.deprecated_names.is_empty() {
        tracing::info!(
            names = %cfg.deprecated_names.join("; "),
            "deprecated names in use: they keep working; the newer names are given"
        );
    }
    let idle = gitconfig::without_effect(&cfg.git_config);
    if !idle.is_empty() {
        tracing::info!(
            keys = %joined(idle.iter().map(|k| redact(k))),
            "git config that only the git CLI reads: recorded, without effect here"
        );
    }
    if !cfg.user_git_config.is_empty() {
        tracing::info!(
            keys = %joined(cfg.user_git_config.iter().map(|(k, _)| redact(k))),
            "git config from the system's and the user's files (/etc/gitconfig, ~/.gitconfig...), read as git reads them"
        );
    }
    let env = |name: &str| std::env::var(name).ok();
    for consequence in gitconfig::unsupported_consequences(&cfg.git_config_read, &env) {
        tracing::warn!("not supported here: {consequence}");
    }
    let configured_ca = cfg
        .git_config_read
        .iter()
        .rev()
        .find(|(k, _)| gitconfig::same_key(k, "http.sslCAInfo"));
    if let Some((_, file)) = configured_ca.filter(|(_, f)| cfg.tls.ca_file.as_ref() != Some(f)) {
        tracing::warn!(
            ignored = %file,
            used = %or_empty(cfg.tls.ca_file.clone()),
            "GIT_SSL_CAINFO overrides http.sslCAInfo, as in git"
        );
    }
    if let Some(dest) = &cfg.dest {
        tracing::info!(
            dest = %dest.display(),
            state_dir = %cfg.root.display(),
            "dest mode: the served directory is updated file by file (each file atomically, \
             the tree as a whole not). For whole-tree atomic updates switch to link mode with \
             two lines: replace GIT_SYNC_DEST={d} by GITSYNC_ROOT={d} and GITSYNC_LINK=html, \
             and mount the volume in nginx one level up (e.g. /usr/share/nginx, serving \
             /usr/share/nginx/html)",
            d = dest.display()
        );
    }
    if let Some(g) = &cfg.git_binary_ignored {
        tracing::info!(git = %g, "--git is ignored: all git work is done in process, no git binary is used");
    }
    if let Some(filter) = &cfg.checkout.filter {
        let sparse = cfg.checkout.sparse_checkout_file.is_some();
        if !sparse {
            tracing::info!(%filter, "--filter without --sparse-checkout-file: every file's content is checked out, so whole objects are fetched, in one request");
        } else if crate::git::filter_applies(filter) {
            tracing::info!(%filter, "--filter: the commit and its trees are fetched with the filter, then the contents the sparse checkout writes; from a local repository, the commit, its trees and the contents the checkout writes are copied; whole objects from servers without uploadpack.allowFilter, through an HTTP proxy to a plain http:// server or an HTTPS proxy, with protocol.version=0, from HTTP servers without protocol v2, and from SSH servers that answer with version 0 unless they allow any wants (uploadpack.allowReachableSHA1InWant)");
        } else {
            tracing::info!(%filter, "--filter: only blob:none and blob:limit=<n> are applied; fetching whole objects, limited by --depth only");
        }
    }
    if let Some(file) = &cfg.auth.cookie_file {
        tracing::info!(file = %file.display(), "cookies from this file go with matching HTTP requests");
    }
    if cfg.ops.http.as_ref().is_some_and(|h| h.pprof) {
        tracing::info!("--http-pprof: /debug/pprof/ answers 200 with a pointer to perf; Go's pprof has no Rust equivalent here");
    }
}

/// The credentials of the last pass, for the exec hooks' git.
type HookCredentials = Arc<Mutex<Option<git::CredentialSet>>>;

/// Where an exec hook is configured: serve its git the HTTP credentials
/// git-sync would send a URL (see `credential_helper`), those in `--repo`
/// first, then those of the last pass (`credentials`). The socket lives
/// as long as what is returned.
fn serve_hook_credentials(
    cfg: &Config,
    credentials: &HookCredentials,
) -> Option<credential_helper::HelperSocket> {
    cfg.ops
        .exechook
        .as_ref()
        .or(cfg.ops.pre_publish_hook.as_ref())?;
    let in_url = git::credentials_in_url(&cfg.repo).map(|(bare, c)| git::CredentialSet {
        default: Some(c),
        default_for: Some(bare),
        ..Default::default()
    });
    let last_pass = credentials.clone();
    let lookup = move |url: &str| {
        let in_url = in_url.as_ref().and_then(|set| set.for_url(url)).cloned();
        // (Out of the lock: a credential helper may be asked.)
        let last_pass = || lock(&last_pass).clone()?.for_url_or_helpers(url).ok();
        let c = in_url.or_else(last_pass)?;
        Some((c.username, c.password))
    };
    match credential_helper::HelperSocket::serve(Arc::new(lookup)) {
        Ok(socket) => Some(socket),
        Err(e) => {
            // (A read-only /tmp, say: hooks that run no git lose nothing.)
            let dir = std::env::temp_dir();
            tracing::info!(error = %e, dir = %dir.display(), "a git in the exec hooks gets no HTTP credentials from git-sync: cannot serve them from this directory");
            None
        }
    }
}

/// The post-publish hooks.
fn start_hooks(cfg: &Config) -> Vec<HookRunner> {
    let mut hooks = Vec::new();
    if let Some(h) = &cfg.ops.exechook {
        // (Only for where worktrees are.)
        let layout = Layout::new(&cfg.root, "--root");
        let hook = ExecHook::new("exechook", &h.command, h.timeout, move |hash| {
            layout.worktree_named(hash)
        })
        .with_git_env(&cfg.auth.ssh);
        hooks.push(HookRunner::start(Arc::new(hook), h.backoff, cfg.one_time));
    }
    if let Some(w) = &cfg.ops.webhook {
        hooks.push(HookRunner::start(
            Arc::new(Webhook::new(w.clone(), &cfg.tls)),
            w.backoff,
            cfg.one_time,
        ));
    }
    hooks
}

/// Log the configuration and set libgit2 up. Call it before any other
/// thread starts: the git2 crate sets environment variables as it
/// initialises (SSL_CERT_FILE, for the OpenSSL it links), which is only
/// sound while no other thread may read the environment.
pub fn prepare(cfg: &Config) {
    log_config(cfg);
    let timeout_ms = i32::try_from(cfg.sync_timeout.as_millis()).unwrap_or(i32::MAX);
    git::init_globals(timeout_ms, &cfg.tls);
}

/// Run until `--one-time` is satisfied, failures exceed the limit, or a stop
/// signal arrives. Returns the process exit status. [`prepare`] comes first.
pub async fn run(cfg: Config) -> i32 {
    let metrics = Arc::new(Metrics::new());
    let sync_now = Arc::new(Notify::new());
    let mut shutdown = match triggers::install_signals(cfg.ops.sync_on_signal, sync_now.clone()) {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return 1;
        }
    };
    let http_state = match &cfg.ops.http {
        None => None,
        Some(h) => match http::bind(&h.bind).await {
            Ok(listener) => {
                let state = Arc::new(HttpState::new(h, metrics.clone(), sync_now.clone()));
                // Where it listens: the port the system chose for a ":0".
                let address = listener
                    .local_addr()
                    .map_or_else(|_| h.bind.clone(), |a| a.to_string());
                tracing::info!(bind = %h.bind, %address, metrics = h.metrics, trigger = h.trigger_secret_file.is_some(), "serving HTTP");
                tokio::spawn(http::serve(listener, state.clone()));
                Some(state)
            }
            Err(e) => {
                tracing::error!(bind = %h.bind, error = %e, "cannot bind the HTTP endpoint");
                return 1;
            }
        },
    };
    // Before the syncer, whose pre-publish hook is told of the socket.
    let hook_credentials: HookCredentials = Arc::default();
    let credential_socket = serve_hook_credentials(&cfg, &hook_credentials);
    // Kept up to date by each pass only when a socket serves them.
    let hook_credentials = credential_socket.as_ref().map(|_| hook_credentials);
    let mut failures: i64 = 0;
    let syncer = match set_up(&cfg, &metrics, &mut shutdown, &sync_now, &mut failures).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    // A one-time run ends after one pass: nothing would use the watcher.
    // The source is known once our config (and its insteadOf) is in place,
    // and looked at again after every pass (it may have been replaced).
    let watch = (cfg.ops.watch_local && !cfg.one_time)
        .then(|| lock(&syncer).local_source())
        .flatten()
        .and_then(|url| LocalWatch::start(url, sync_now.clone()));
    let hooks = start_hooks(&cfg);
    let resolver = Arc::new(Mutex::new(Resolver::new(cfg.auth.clone(), &cfg.tls)));

    // For systemd, ready is having a tree to serve: the one an earlier run
    // published will do (a machine that boots offline is not held up).
    let served_before = lock(&syncer).served_from_before();
    if let Some(hash) = served_before {
        systemd::ready(&format!("serving {hash}, published before this start"));
    }
    let mut ever_succeeded = false;
    // Commits published by this process (upstream's syncCount).
    let mut updates: u64 = 0;
    let mut clean_due: Option<Instant> = Some(Instant::now());
    loop {
        if *shutdown.borrow() {
            return 0;
        }
        let started = Instant::now();
        let result = match run_pass(
            &syncer,
            &resolver,
            &hook_credentials,
            &metrics,
            cfg.sync_timeout,
            &mut shutdown,
        )
        .await
        {
            Some(r) => r,
            None => {
                tracing::info!("stopped");
                return 0;
            }
        };
        let took = started.elapsed();
        match result {
            Ok(outcome) => {
                let recovered = failures > 0;
                failures = 0;
                let first = !ever_succeeded;
                ever_succeeded = true;
                if let Some(s) = &http_state {
                    s.ready.store(true, Ordering::SeqCst);
                }
                let (hash, updated, pre_publish_error) = match outcome {
                    Outcome::Updated {
                        hash,
                        previous,
                        fetched,
                        pre_publish_error,
                    } => {
                        metrics.sync(SyncStatus::Success, took);
                        if fetched {
                            metrics.fetch();
                        }
                        updates += 1;
                        // Upstream's message and field names (log-based
                        // alerts and dashboards match them), and ours.
                        tracing::info!(
                            r#ref = %cfg.git_ref,
                            remote = %hash,
                            syncCount = updates,
                            previous = %previous.map(|p| p.to_string()).unwrap_or_default(),
                            fetched,
                            duration_ms = took.as_millis() as u64,
                            "updated successfully"
                        );
                        clean_due = Some(Instant::now());
                        (hash, true, pre_publish_error)
                    }
                    Outcome::Unchanged { hash } => {
                        metrics.sync(SyncStatus::Noop, took);
                        tracing::debug!(%hash, duration_ms = took.as_millis() as u64, "no change");
                        (hash, false, None)
                    }
                };
                let shown = format!("published {hash} ({})", cfg.git_ref);
                if first && served_before.is_none() {
                    systemd::ready(&shown);
                } else if updated || recovered || first {
                    systemd::status(&shown);
                }
                if first && !cfg.one_time && git::parse_full_hash(&cfg.git_ref).is_some() {
                    // Upstream's words; polls go on, asking the remote nothing.
                    tracing::info!(r#ref = %cfg.git_ref, "ref appears to be a git hash, no further sync needed");
                }
                if let Some(p) = &cfg.error_file {
                    if let Err(e) = status_files::clear_error(p) {
                        tracing::warn!(path = %p.display(), error = %e, "cannot remove error file");
                    }
                }
                // The touch file and hooks: for every new hash, and once
                // after a (re)start even when nothing changed, as upstream
                // (hooks must be idempotent): what a process killed between
                // the swap and them left undone is done.
                let hash = hash.to_string();
                metrics.published(&hash);
                if updated || first {
                    if let Some(p) = &cfg.touch_file {
                        // As upstream, logged: the tree is published already.
                        if let Err(e) = status_files::touch(p) {
                            tracing::error!(path = %p.display(), error = %e, "failed to touch touch-file");
                        }
                    }
                    for h in &hooks {
                        h.trigger(&hash);
                    }
                }
                if cfg.one_time {
                    if clean_due.is_some() {
                        run_clean(&syncer, &hooks, &mut shutdown).await;
                    }
                    let mut ok = pre_publish_error.is_none();
                    for h in &hooks {
                        ok &= h.outcome_for(&hash).await.result.is_ok();
                    }
                    let status = if ok { 0 } else { 1 };
                    tracing::info!(status, "exiting after one sync");
                    return status;
                }
            }
            Err(e) => {
                metrics.sync(SyncStatus::Error, took);
                failures += 1;
                let limit = if ever_succeeded {
                    cfg.max_failures
                } else {
                    cfg.init_max_failures
                };
                let last = exceeds(failures, limit);
                let end = if last {
                    Ending::Limit(limit)
                } else {
                    Ending::Retry
                };
                report_failure(&cfg, &e, failures, true, end);
                systemd::status(&format!(
                    "sync failing ({failures} in a row): {}",
                    redact(&e)
                ));
                if last {
                    return 1;
                }
            }
        }
        if let Some(w) = &watch {
            w.follow();
        }
        if clean_due.is_some_and(|t| t <= Instant::now()) {
            clean_due = run_clean(&syncer, &hooks, &mut shutdown).await;
            if stop_requested(&shutdown) {
                return 0;
            }
        }

        let base = if ever_succeeded {
            cfg.period
        } else {
            cfg.init_period
        };
        let next_pass = Instant::now() + base + cfg.period_jitter.mul_f64(random_fraction());
        loop {
            let wake = clean_due.filter(|c| *c < next_pass).unwrap_or(next_pass);
            tokio::select! {
                _ = sleep_until(wake.into()) => {
                    if wake >= next_pass {
                        break;
                    }
                    clean_due = run_clean(&syncer, &hooks, &mut shutdown).await;
                    if stop_requested(&shutdown) {
                        return 0;
                    }
                }
                _ = sync_now.notified() => {
                    tracing::debug!("sync triggered");
                    break;
                }
                _ = shutdown.changed() => {
                    tracing::info!("stopped");
                    return 0;
                }
            }
        }
    }
}

/// Prepare the root and our repository. A failure counts like a failed
/// pass before the first success and is retried every --init-period (a
/// volume may not be writable yet); `Err` holds the exit status.
async fn set_up(
    cfg: &Config,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
    sync_now: &Notify,
    failures: &mut i64,
) -> Result<Arc<Mutex<Syncer>>, i32> {
    loop {
        let started = Instant::now();
        let setup_cfg = cfg.clone();
        let (err, in_use, permanent) =
            match tokio::task::spawn_blocking(move || Syncer::new(setup_cfg)).await {
                Ok(Ok(s)) => return Ok(Arc::new(Mutex::new(s))),
                Ok(Err(e)) => {
                    let in_use = matches!(e, SyncError::Layout(LayoutError::InUse { .. }));
                    (e.to_string(), in_use, e.is_permanent())
                }
                Err(e) => (format!("setup panicked: {e}"), false, false),
            };
        metrics.sync(SyncStatus::Error, started.elapsed());
        *failures += 1;
        // A root in use holds the error file of the process using it.
        let limit = cfg.init_max_failures;
        let end = match () {
            _ if permanent => Ending::Fatal,
            _ if exceeds(*failures, limit) => Ending::Limit(limit),
            _ => Ending::Retry,
        };
        report_failure(cfg, &err, *failures, !in_use, end);
        if end != Ending::Retry {
            return Err(1);
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.init_period) => {}
            _ = sync_now.notified() => {}
            _ = shutdown.changed() => {
                tracing::info!("stopped");
                return Err(0);
            }
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

/// How long a stop waits for the pass it cancelled before leaving it
/// behind: time for a transfer or a checkout to see the flag. A read from
/// a server that sends nothing would only end at --sync-timeout (two
/// minutes by default, and Kubernetes kills after 30 s).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Run one pass on a thread of its own, bounded by `limit`. Past the
/// limit, the pass is cancelled through libgit2's callbacks and awaited,
/// so it never publishes after we gave up on it. On a stop signal, it is
/// cancelled and awaited for [`STOP_GRACE`], then left behind unless it
/// is publishing (see [`wind_down`]). `None` means stopped by a signal.
async fn run_pass(
    syncer: &Arc<Mutex<Syncer>>,
    resolver: &Arc<Mutex<Resolver>>,
    hook_credentials: &Option<HookCredentials>,
    metrics: &Arc<Metrics>,
    limit: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Result<Outcome, String>> {
    // The task sees the deadline itself: a wait it ends (a hung server's)
    // is not followed by another before the timer below raises the flag.
    let deadline = Instant::now() + limit;
    let cancel = Cancel::until(deadline);
    let (s, c, r, m, h) = (
        syncer.clone(),
        cancel.clone(),
        resolver.clone(),
        metrics.clone(),
        hook_credentials.clone(),
    );
    // Not the runtime's blocking pool, which the runtime's end waits for:
    // a pass left behind ends with the process.
    let (done, mut task) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("sync-pass".into())
        .spawn(move || {
            let result = (|| {
                let creds = lock(&r).resolve(&m);
                let mut s = lock(&s);
                s.set_credentials(creds.map_err(PassError::Credentials)?);
                if let Some(h) = &h {
                    *lock(h) = Some(s.credentials().clone());
                }
                s.pass(&c).map_err(PassError::Sync)
            })();
            let _ = done.send(result);
        });
    if let Err(e) = spawned {
        return Some(Err(format!("cannot start a thread for the pass: {e}")));
    }
    let joined = tokio::select! {
        j = timeout(limit, &mut task) => match j {
            Ok(j) => j,
            Err(_) => {
                cancel.cancel();
                let _ = task.await;
                return Some(Err(format!("sync timed out after {limit:?}")));
            }
        },
        _ = shutdown.changed() => {
            cancel.cancel();
            wind_down(&mut task, &cancel).await;
            return None;
        }
    };
    Some(match joined {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(PassError::Sync(SyncError::Git(git::GitError::Cancelled))))
        | Ok(Err(PassError::Sync(SyncError::Cancelled))) => Err(match Instant::now() >= deadline {
            true => format!("sync timed out after {limit:?}"),
            false => "sync cancelled".into(),
        }),
        Ok(Err(PassError::Sync(e))) => Err(e.to_string()),
        Ok(Err(PassError::Credentials(e))) => Err(format!("credentials: {e}")),
        Err(_) => Err("sync panicked".into()),
    })
}

/// After a stop cancelled the pass: wait for it to end, but past
/// [`STOP_GRACE`] only while it publishes. Left behind, it waits on a
/// server or a pre-publish hook (a transfer or a checkout sees the flag at
/// once), publishes nothing more and ends with the process: as after a
/// `kill -9`, which the next start recovers from, the published tree is
/// whole.
async fn wind_down<T>(task: &mut tokio::sync::oneshot::Receiver<T>, cancel: &Cancel) {
    if timeout(STOP_GRACE, &mut *task).await.is_ok() {
        return;
    }
    while !cancel.leave_behind() {
        if timeout(Duration::from_millis(50), &mut *task).await.is_ok() {
            return;
        }
    }
    tracing::info!(
        waited = ?STOP_GRACE,
        "the pass in flight has not ended (it waits on a server, or a hook): stopping without it; the published tree is as it was"
    );
}

/// Why a pass failed: before it started, or in it.
enum PassError {
    Credentials(String),
    Sync(SyncError),
}

/// Whether a stop signal came (while a cleanup ran, say); logs it.
fn stop_requested(shutdown: &watch::Receiver<bool>) -> bool {
    let stop = *shutdown.borrow();
    if stop {
        tracing::info!("stopped");
    }
    stop
}

/// Clean up on a blocking thread; returns when to clean again, if needed.
/// A stop signal cancels a repack in flight (the store stays as it was);
/// the caller sees the signal in `shutdown`.
async fn run_clean(
    syncer: &Arc<Mutex<Syncer>>,
    hooks: &[HookRunner],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Instant> {
    let cancel = Cancel::new();
    let (s, c) = (syncer.clone(), cancel.clone());
    // Trees a hook is at work in stay until it is done.
    let in_use: Vec<git::Hash> = hooks
        .iter()
        .filter_map(|h| h.at_work_in()?.parse().ok())
        .collect();
    let mut task = tokio::task::spawn_blocking(move || {
        let result = lock(&s).clean(&c, &in_use);
        crate::memory::release_freed();
        result
    });
    let result = tokio::select! {
        r = &mut task => r,
        _ = shutdown.changed() => {
            cancel.cancel();
            task.await
        }
    };
    match result {
        Ok(Ok(next)) => next.map(|d| Instant::now() + d + Duration::from_millis(10)),
        Ok(Err(SyncError::Git(git::GitError::Cancelled))) => {
            tracing::info!("cleanup cancelled");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cleanup failed; will retry after the next update");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "cleanup panicked");
            None
        }
    }
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
