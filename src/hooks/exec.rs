//! The exec hook: a program (no arguments, no shell, as upstream) run in the
//! worktree of the published hash, with `GITSYNC_HASH` set and the rest of
//! the environment inherited.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Hook;

/// Runs `command` with a time limit.
pub struct ExecHook {
    name: &'static str,
    command: String,
    timeout: Duration,
    /// Where to run it for a given hash.
    workdir: Box<dyn Fn(&str) -> PathBuf + Send + Sync>,
}

impl ExecHook {
    pub fn new(
        name: &'static str,
        command: &str,
        timeout: Duration,
        workdir: impl Fn(&str) -> PathBuf + Send + Sync + 'static,
    ) -> Self {
        ExecHook {
            name,
            command: command.to_string(),
            timeout,
            workdir: Box::new(workdir),
        }
    }

    /// Run for the worktree of `worktree_hash`, telling it `env_hash`.
    pub fn run_in(&self, worktree_hash: &str, env_hash: &str) -> Result<(), String> {
        let dir = (self.workdir)(worktree_hash);
        let mut child = Command::new(&self.command)
            .current_dir(&dir)
            .env("GITSYNC_HASH", env_hash)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout stops what it started too.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.command))?;
        let running = Running::register(&child);
        let out = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    running.signal(libc::SIGKILL);
                    let _ = child.wait();
                    break Err(format!(
                        "{} timed out after {:?}",
                        self.command, self.timeout
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => break Err(format!("waiting for {}: {e}", self.command)),
            }
        };
        // The hook is done when it exits, even if a process it left behind
        // still holds its output open: what came by then is what it said.
        let grace = Instant::now() + OUTPUT_GRACE;
        let stdout = collected(&out, grace);
        let stderr = collected(&err, grace);
        tracing::debug!(hook = self.name, stdout = %stdout.trim_end(), stderr = %stderr.trim_end(), "hook output");
        let status = status?;
        if status.success() {
            Ok(())
        } else {
            let tail: String = stderr
                .trim_end()
                .chars()
                .rev()
                .take(500)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(format!("{} exited with {status}: {tail}", self.command))
        }
    }
}

/// The process groups of the exec hooks running now.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// A hook's process group (it leads one: `process_group(0)` at spawn),
/// listed in [`RUNNING`] while it runs.
struct Running(Option<i32>);

impl Running {
    fn register(child: &Child) -> Self {
        let pgid = i32::try_from(child.id()).ok();
        if let (Some(p), Ok(mut list)) = (pgid, RUNNING.lock()) {
            list.push(p);
        }
        Running(pgid)
    }

    /// Send `sig` to the hook and everything it started.
    fn signal(&self, sig: libc::c_int) {
        match self.0 {
            Some(pgid) => signal_group(pgid, sig),
            None => tracing::warn!("hook pid out of range, not signalled"),
        }
    }
}

fn signal_group(pgid: i32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let (Some(p), Ok(mut list)) = (self.0, RUNNING.lock()) {
            list.retain(|q| *q != p);
        }
    }
}

/// SIGTERM the exec hooks running now, with what they started: git-sync
/// is ending, and its hooks (in process groups of their own, so a timeout
/// can stop them whole) must not outlive it.
pub fn stop_running() {
    let Ok(list) = RUNNING.lock() else {
        return;
    };
    for pgid in list.iter() {
        tracing::info!(pgid, "stopping a running exec hook");
        signal_group(*pgid, libc::SIGTERM);
    }
}

/// How long output is waited for once the hook has exited.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// How much of each output stream is kept: its end, where errors are.
const OUTPUT_KEPT: usize = 16 * 1024;

type Collected = Arc<Mutex<(String, bool)>>;

/// Read `pipe` to its end on a thread, so a chatty hook cannot block on a
/// full pipe, keeping the last [`OUTPUT_KEPT`] bytes; the flag says the
/// end was reached.
fn drain(pipe: Option<Box<dyn Read + Send>>) -> Collected {
    let text: Collected = Arc::default();
    let shared = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        if let Some(mut p) = pipe {
            while let Ok(n @ 1..) = p.read(&mut buf) {
                if let Ok(mut t) = shared.lock() {
                    t.0.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.0.len() > 2 * OUTPUT_KEPT {
                        let mut cut = t.0.len() - OUTPUT_KEPT;
                        while !t.0.is_char_boundary(cut) {
                            cut += 1;
                        }
                        t.0.drain(..cut);
                    }
                }
            }
        }
        if let Ok(mut t) = shared.lock() {
            t.1 = true;
        }
    });
    text
}

/// What `text` holds once its stream ended, or at `deadline`.
fn collected(text: &Collected, deadline: Instant) -> String {
    loop {
        let (done, snapshot) = match text.lock() {
            Ok(t) => (t.1, t.0.clone()),
            Err(_) => (true, String::new()),
        };
        if done || Instant::now() >= deadline {
            return snapshot;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Hook for ExecHook {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, hash: &str) -> Result<(), String> {
        self.run_in(hash, hash)
    }

    fn works_in_tree(&self) -> bool {
        true
    }
}
