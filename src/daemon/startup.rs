//! Starting up: the configuration logged, the HTTP endpoint, the hooks
//! and their credentials, the root and our repository prepared.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{watch, Notify};

use super::{exceeds, report_failure, Ending};
use crate::config::{gitconfig, Config};
use crate::git;
use crate::hooks::{credential_helper, ExecHook, HookRunner, Webhook};
use crate::http::{self, HttpState};
use crate::layout::{Layout, LayoutError};
use crate::lock;
use crate::metrics::{Metrics, SyncStatus};
use crate::redact::redact;
use crate::sync::{SyncError, Syncer};

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

/// Log the configuration in effect at start ("starting up", upstream's
/// first line), then what else the user should know of it.
pub(super) fn log_config(cfg: &Config) {
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
    log_names(cfg);
    log_git_config(cfg);
    log_mode_notes(cfg);
}

/// Names that lost to others, look like ours but are no flag's, or are
/// deprecated.
fn log_names(cfg: &Config) {
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
}

/// The git config that has no effect here, that came from the system's
/// and the user's files, that is not supported, and a CA file that
/// another one overrides.
fn log_git_config(cfg: &Config) {
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
            used = %cfg.tls.ca_file.clone().unwrap_or_default(),
            "GIT_SSL_CAINFO overrides http.sslCAInfo, as in git"
        );
    }
}

/// What the mode and the options chosen mean here: dest mode's updates,
/// --git, --filter, cookies, --http-pprof.
fn log_mode_notes(cfg: &Config) {
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
pub(super) type HookCredentials = Arc<Mutex<Option<git::CredentialSet>>>;

/// Where an exec hook is configured: serve its git the HTTP credentials
/// git-sync would send a URL (see `credential_helper`), those in `--repo`
/// first, then those of the last pass (`credentials`). The socket lives
/// as long as what is returned.
pub(super) fn serve_hook_credentials(
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
pub(super) fn start_hooks(cfg: &Config) -> Vec<HookRunner> {
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

/// Prepare the root and our repository. A failure counts like a failed
/// pass before the first success and is retried every --init-period (a
/// volume may not be writable yet); `Err` holds the exit status.
pub(super) async fn set_up(
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

/// Bind and serve the HTTP endpoint, if one is asked for; `Err` holds the
/// exit status.
pub(super) async fn start_http(
    cfg: &Config,
    metrics: &Arc<Metrics>,
    sync_now: &Arc<Notify>,
) -> Result<Option<Arc<HttpState>>, i32> {
    let Some(h) = &cfg.ops.http else {
        return Ok(None);
    };
    match http::bind(&h.bind).await {
        Ok(listener) => {
            let state = Arc::new(HttpState::new(h, metrics.clone(), sync_now.clone()));
            // Where it listens: the port the system chose for a ":0".
            let address = listener
                .local_addr()
                .map_or_else(|_| h.bind.clone(), |a| a.to_string());
            tracing::info!(bind = %h.bind, %address, metrics = h.metrics, trigger = h.trigger_secret_file.is_some(), "serving HTTP");
            tokio::spawn(http::serve(listener, state.clone()));
            Ok(Some(state))
        }
        Err(e) => {
            tracing::error!(bind = %h.bind, error = %e, "cannot bind the HTTP endpoint");
            Err(1)
        }
    }
}
