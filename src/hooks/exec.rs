//! The exec hook: a program (no arguments, no shell, as upstream) run in the
//! worktree of the published hash, with `GITSYNC_HASH` set and the rest of
//! the environment inherited.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
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
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.command))?;
        // Drain output on threads so a chatty hook cannot block on a full pipe.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_string(&mut text);
                }
                text
            })
        };
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
                    let _ = child.kill();
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
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
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

impl Hook for ExecHook {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&self, hash: &str) -> Result<(), String> {
        self.run_in(hash, hash)
    }
}
