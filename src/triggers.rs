//! Signals: SIGTERM/SIGINT stop git-sync, `--sync-on-signal` starts a
//! sync. Triggers coalesce: a burst starts one sync. (The other triggers:
//! the watcher on a local source in `local_watch`, `POST /sync` in `http`.)

use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use tokio::sync::{watch, Notify};

/// Listen for signals on a thread. Returns the shutdown flag: it turns true
/// at the first SIGTERM or SIGINT; a second one exits at once.
pub fn install_signals(
    sync_signal: Option<i32>,
    sync_now: Arc<Notify>,
) -> std::io::Result<watch::Receiver<bool>> {
    let mut wanted = vec![SIGTERM, SIGINT];
    wanted.extend(sync_signal);
    let mut signals = signal_hook::iterator::Signals::new(&wanted)?;
    let (tx, rx) = watch::channel(false);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGTERM || sig == SIGINT {
                    if *tx.borrow() {
                        tracing::warn!(signal = sig, "second stop signal: exiting now");
                        std::process::exit(1);
                    }
                    tracing::info!(signal = sig, "stop signal: finishing");
                    crate::systemd::stopping();
                    let _ = tx.send(true);
                } else {
                    tracing::info!(signal = sig, "sync signal received");
                    sync_now.notify_one();
                }
            }
        })?;
    Ok(rx)
}
