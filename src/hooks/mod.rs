//! Post-publish hooks (exec and webhook), each run by its own worker:
//! asynchronous (never blocking the next sync), retried with backoff until
//! it succeeds, and the newest hash replaces a pending older one. In
//! `--one-time` mode each hook runs exactly once and its result decides the
//! exit status.

pub mod credential_helper;
mod exec;
mod webhook;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::lock;

pub use exec::{stop_running, ExecHook};
pub use webhook::Webhook;

/// Something to run for a published hash. Blocking; run on a blocking thread.
pub trait Hook: Send + Sync + 'static {
    /// A short name for logs ("exechook", "webhook").
    fn name(&self) -> &'static str;
    /// Run once for `hash`.
    fn run(&self, hash: &str) -> Result<(), String>;
    /// Whether it works in the hash's tree (which must then stay while it
    /// runs, even once a newer commit retired it).
    fn works_in_tree(&self) -> bool {
        false
    }
}

/// The outcome of the last run of a hook, for `--one-time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub hash: String,
    pub result: Result<(), String>,
}

/// Feeds one hook its hashes and reports outcomes.
pub struct HookRunner {
    name: &'static str,
    send: watch::Sender<Option<String>>,
    outcomes: watch::Receiver<Option<Outcome>>,
    /// The hash whose tree a run is at work in, if any.
    in_tree: Arc<Mutex<Option<String>>>,
}

impl HookRunner {
    /// Start a worker for `hook`. With `once`, a failure is not retried.
    pub fn start(hook: Arc<dyn Hook>, backoff: Duration, once: bool) -> Self {
        let (send, mut wanted) = watch::channel::<Option<String>>(None);
        let (report, outcomes) = watch::channel::<Option<Outcome>>(None);
        let name = hook.name();
        let in_tree = Arc::new(Mutex::new(None));
        let busy = in_tree.clone();
        tokio::spawn(async move {
            while wanted.changed().await.is_ok() {
                loop {
                    let Some(hash) = wanted.borrow_and_update().clone() else {
                        break;
                    };
                    let h = hook.clone();
                    let hh = hash.clone();
                    if hook.works_in_tree() {
                        *lock(&busy) = Some(hash.clone());
                    }
                    let result = tokio::task::spawn_blocking(move || h.run(&hh))
                        .await
                        .unwrap_or_else(|e| Err(format!("hook panicked: {e}")));
                    *lock(&busy) = None;
                    match &result {
                        Ok(()) => tracing::info!(hook = name, %hash, "hook succeeded"),
                        Err(e) => tracing::error!(hook = name, %hash, error = %e, "hook failed"),
                    }
                    let failed = result.is_err();
                    let _ = report.send(Some(Outcome { hash, result }));
                    if !failed || once {
                        break;
                    }
                    // Retry after the backoff, with whatever hash is newest by then.
                    tokio::time::sleep(backoff).await;
                }
            }
        });
        HookRunner {
            name,
            send,
            outcomes,
            in_tree,
        }
    }

    /// The hash whose tree a run of this hook is at work in, if any.
    pub fn at_work_in(&self) -> Option<String> {
        lock(&self.in_tree).clone()
    }

    /// Ask for a run for `hash` (replacing any pending one).
    pub fn trigger(&self, hash: &str) {
        let _ = self.send.send(Some(hash.to_string()));
    }

    /// Wait for the first outcome for `hash`.
    pub async fn outcome_for(&self, hash: &str) -> Outcome {
        let mut rx = self.outcomes.clone();
        loop {
            if let Some(o) = rx.borrow_and_update().clone().filter(|o| o.hash == hash) {
                return o;
            }
            if rx.changed().await.is_err() {
                return Outcome {
                    hash: hash.to_string(),
                    result: Err(format!("{} worker stopped", self.name)),
                };
            }
        }
    }
}
