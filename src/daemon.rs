//! The loop: run a pass, apply the failure policy, wait, repeat.
//! libgit2 work runs on blocking threads; this side only coordinates.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::time::{sleep_until, timeout};

use crate::config::Config;
use crate::git::{self, Cancel};
use crate::redact::redact;
use crate::status_files;
use crate::sync::{Outcome, SyncError, Syncer};

/// A random fraction in [0, 1), from std's randomly keyed hasher.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn log_config(cfg: &Config) {
    let keys: Vec<&str> = cfg.git_config.iter().map(|(k, _)| k.as_str()).collect();
    tracing::info!(
        repo = %redact(&cfg.repo),
        git_ref = %cfg.git_ref,
        root = %cfg.root.display(),
        link = %cfg.link.display(),
        period = ?cfg.period,
        sync_timeout = ?cfg.sync_timeout,
        depth = cfg.depth,
        one_time = cfg.one_time,
        max_failures = cfg.max_failures,
        git_gc = ?cfg.git_gc,
        git_config_keys = ?keys,
        "starting git-sync {}",
        env!("CARGO_PKG_VERSION")
    );
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
}

/// Run until `--one-time` is satisfied or failures exceed the limit.
/// Returns the process exit status.
pub async fn run(cfg: Config) -> i32 {
    log_config(&cfg);
    let timeout_ms = i32::try_from(cfg.sync_timeout.as_millis()).unwrap_or(i32::MAX);
    git::init_globals(timeout_ms);

    let setup_cfg = cfg.clone();
    let syncer = match tokio::task::spawn_blocking(move || Syncer::new(setup_cfg)).await {
        Ok(Ok(s)) => Arc::new(Mutex::new(s)),
        Ok(Err(e)) => {
            report_failure(&cfg, &e.to_string(), 1);
            return 1;
        }
        Err(e) => {
            report_failure(&cfg, &format!("setup panicked: {e}"), 1);
            return 1;
        }
    };

    let mut failures: i64 = 0;
    let mut ever_succeeded = false;
    let mut clean_due: Option<Instant> = Some(Instant::now());
    loop {
        let started = Instant::now();
        match run_pass(&syncer, cfg.sync_timeout).await {
            Ok(outcome) => {
                failures = 0;
                ever_succeeded = true;
                match outcome {
                    Outcome::Updated {
                        hash,
                        previous,
                        fetched,
                    } => {
                        tracing::info!(
                            %hash,
                            git_ref = %cfg.git_ref,
                            previous = %previous.map(|p| p.to_string()).unwrap_or_default(),
                            fetched,
                            duration_ms = started.elapsed().as_millis() as u64,
                            "updated"
                        );
                        clean_due = Some(Instant::now());
                    }
                    Outcome::Unchanged { hash } => {
                        tracing::debug!(%hash, duration_ms = started.elapsed().as_millis() as u64, "no change");
                    }
                }
                if let Some(p) = &cfg.error_file {
                    if let Err(e) = status_files::clear_error(p) {
                        tracing::warn!(path = %p.display(), error = %e, "cannot remove error file");
                    }
                }
            }
            Err(e) => {
                failures += 1;
                report_failure(&cfg, &e.to_string(), failures);
                let limit = if ever_succeeded {
                    cfg.max_failures
                } else {
                    cfg.init_max_failures
                };
                if limit >= 0 && failures > limit {
                    tracing::error!(failures, limit, "too many consecutive failures, exiting");
                    return 1;
                }
            }
        }
        if clean_due.is_some_and(|t| t <= Instant::now()) {
            clean_due = run_clean(&syncer).await;
        }
        if cfg.one_time && ever_succeeded {
            return 0;
        }

        let base = if ever_succeeded {
            cfg.period
        } else {
            cfg.init_period
        };
        let next_pass = Instant::now() + base + cfg.period_jitter.mul_f64(random_fraction());
        while let Some(due) = clean_due.filter(|t| *t < next_pass) {
            sleep_until(due.into()).await;
            clean_due = run_clean(&syncer).await;
        }
        sleep_until(next_pass.into()).await;
    }
}

/// Run one pass on a blocking thread, bounded by `limit`: past it the pass
/// is cancelled through libgit2's callbacks and awaited, so it never
/// publishes after we gave up on it.
async fn run_pass(syncer: &Arc<Mutex<Syncer>>, limit: Duration) -> Result<Outcome, String> {
    let cancel = Cancel::new();
    let (s, c) = (syncer.clone(), cancel.clone());
    let mut task = tokio::task::spawn_blocking(move || {
        let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
        s.pass(&c)
    });
    let joined = match timeout(limit, &mut task).await {
        Ok(j) => j,
        Err(_) => {
            cancel.cancel();
            let _ = task.await;
            return Err(format!("sync timed out after {limit:?}"));
        }
    };
    match joined {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(SyncError::Git(git::GitError::Cancelled))) | Ok(Err(SyncError::Cancelled)) => {
            Err("sync cancelled".into())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("sync panicked: {e}")),
    }
}

/// Clean up on a blocking thread; returns when to clean again, if needed.
async fn run_clean(syncer: &Arc<Mutex<Syncer>>) -> Option<Instant> {
    let s = syncer.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
        s.clean()
    })
    .await;
    match result {
        Ok(Ok(next)) => next.map(|d| Instant::now() + d + Duration::from_millis(10)),
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

fn report_failure(cfg: &Config, err: &str, failures: i64) {
    let err = redact(err);
    tracing::error!(error = %err, failures, "sync failed");
    if let Some(p) = &cfg.error_file {
        let args = [
            ("repo", redact(&cfg.repo)),
            ("ref", cfg.git_ref.clone()),
            ("failCount", failures.to_string()),
        ];
        if let Err(e) = status_files::write_error(p, "error syncing repo, will retry", &err, &args)
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot write error file");
        }
    }
}
