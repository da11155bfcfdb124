//! One pass on a thread of its own, bounded by --sync-timeout and
//! cancelled by a stop; the cleanup after it, on another.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::timeout;

use super::startup::HookCredentials;
use crate::credentials::Resolver;
use crate::git::{self, Cancel};
use crate::hooks::HookRunner;
use crate::lock;
use crate::metrics::Metrics;
use crate::sync::{Outcome, SyncError, Syncer};

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
pub(super) async fn run_pass(
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
pub(super) fn stop_requested(shutdown: &watch::Receiver<bool>) -> bool {
    let stop = *shutdown.borrow();
    if stop {
        tracing::info!("stopped");
    }
    stop
}

/// Clean up on a blocking thread; returns when to clean again, if needed.
/// A stop signal cancels a repack in flight (the store stays as it was);
/// the caller sees the signal in `shutdown`.
pub(super) async fn run_clean(
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
