//! The exec hook: a program (no arguments, no shell, as upstream) run in the
//! worktree of the published hash, with `GITSYNC_HASH` set and the rest of
//! the environment inherited, and what upstream's hooks inherit for a git
//! binary: `GIT_SSH_COMMAND` (see [`git_ssh_command`]) and
//! `safe.directory=*`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{credential_helper, Hook};
use crate::config::auth::SshConfig;

/// Runs `command` with a time limit.
pub struct ExecHook {
    name: &'static str,
    command: String,
    timeout: Duration,
    /// Where to run it for a given hash.
    workdir: Box<dyn Fn(&str) -> PathBuf + Send + Sync>,
    /// Variables set for it, beyond those it inherits.
    env: Vec<(String, String)>,
}

/// The `GIT_SSH_COMMAND` a git binary in a hook is given, as upstream sets
/// it in its own environment, which its hooks inherit: the command already
/// set (or `ssh`), with `ssh`'s own options for the keys and host checks of
/// git-sync's SSH (`--ssh-key-file`, `--ssh-known-hosts`,
/// `--ssh-known-hosts-file`). A `git fetch` or `git push` over SSH in a
/// hook then goes as git-sync's own fetches do.
pub fn git_ssh_command(ssh: &SshConfig, inherited: Option<&str>) -> String {
    let mut cmd = inherited
        .filter(|c| !c.trim().is_empty())
        .unwrap_or("ssh")
        .to_string();
    for key in &ssh.key_files {
        cmd.push_str(&format!(" -i {}", shell_quoted(&key.to_string_lossy())));
    }
    if ssh.known_hosts {
        // ssh splits this option's value at blanks (it takes a list):
        // a path with one goes in double quotes, which ssh reads.
        let file = ssh.known_hosts_file.to_string_lossy();
        let file = match file.contains(char::is_whitespace) {
            true => format!("\"{file}\""),
            false => file.into_owned(),
        };
        let option = shell_quoted(&format!("UserKnownHostsFile={file}"));
        cmd.push_str(&format!(" -o StrictHostKeyChecking=yes -o {option}"));
    } else {
        cmd.push_str(" -o StrictHostKeyChecking=no");
    }
    cmd
}

/// `word` as a POSIX shell reads it back (git runs `GIT_SSH_COMMAND`
/// through the shell): as is when plain, else in single quotes.
fn shell_quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:@,%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
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
            env: Vec::new(),
        }
    }

    /// Give a git binary in the hook what upstream's hooks inherit from
    /// its environment and global git config: `GIT_SSH_COMMAND` from
    /// git-sync's SSH settings (see `git_ssh_command`), and
    /// `safe.directory=*`, without which git refuses a tree another UID
    /// made (a container restarted as another user of the volume's group
    /// runs the hook again in the tree the first one published). The
    /// latter goes as git's `GIT_CONFIG_COUNT` entries, after any already
    /// set: git reads that key from no repository's config.
    ///
    /// Where this process serves HTTP credentials to its hooks (see
    /// `credential_helper`), git is also given this binary as a
    /// credential helper, and the socket it asks.
    pub fn with_git_env(mut self, ssh: &SshConfig) -> Self {
        let inherited = std::env::var("GIT_SSH_COMMAND").ok();
        let cmd = git_ssh_command(ssh, inherited.as_deref());
        self.env.push(("GIT_SSH_COMMAND".into(), cmd));
        let mut config = vec![("safe.directory".to_string(), "*".to_string())];
        let helper = credential_helper::socket_path().zip(std::env::current_exe().ok());
        if let Some((socket, exe)) = helper {
            let exe = shell_quoted(&exe.to_string_lossy());
            let helper = format!("!{exe} {}", credential_helper::FLAG);
            config.push(("credential.helper".into(), helper));
            let socket = socket.to_string_lossy().into_owned();
            self.env
                .push((credential_helper::SOCKET_ENV.into(), socket));
        }
        let first = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let count = first + config.len();
        for (n, (key, value)) in (first..).zip(config) {
            self.env.push((format!("GIT_CONFIG_KEY_{n}"), key));
            self.env.push((format!("GIT_CONFIG_VALUE_{n}"), value));
        }
        self.env
            .push(("GIT_CONFIG_COUNT".into(), count.to_string()));
        self
    }

    /// Run for the worktree of `worktree_hash`, telling it `env_hash`.
    pub fn run_in(&self, worktree_hash: &str, env_hash: &str) -> Result<(), String> {
        let dir = (self.workdir)(worktree_hash);
        let mut child = Command::new(&self.command)
            .current_dir(&dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("GITSYNC_HASH", env_hash)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout stops what it started too.
            .process_group(0)
            .spawn()
            .map_err(|e| spawn_failure(&self.command, &dir, &e))?;
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

/// Why `command` did not start, with what a user most often got wrong:
/// a command line where one program is run (upstream's hooks take no
/// arguments and no shell), a script in the repository named without
/// `./`, a script not executable (in git: its mode) or without a `#!`
/// line (exec runs no shell for it, as Go's does not), or whose `#!` line
/// names an interpreter the image lacks (the default image has no shell).
fn spawn_failure(command: &str, dir: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let missing = match command.contains('/') {
        true => missing_interpreter(&dir.join(command)),
        false => None,
    };
    let hint = match (e.kind(), missing) {
        (ErrorKind::NotFound, Some(interpreter)) => format!(
            " (the file is there; {interpreter} is not, the interpreter its \
             #! line names: the default image has no shell)"
        ),
        (ErrorKind::NotFound, None) if command.trim().contains(char::is_whitespace) => {
            " (a hook is one program, run without arguments or a shell: \
             put the command line in a script)"
                .into()
        }
        (ErrorKind::NotFound, None) if !command.contains('/') => {
            " (a name without a / is looked up in PATH; a program in the \
             repository is named from the worktree's top, as ./path)"
                .into()
        }
        (ErrorKind::PermissionDenied, _) => {
            " (is it an executable file? a script in the repository needs \
             its executable bit in git: git update-index --chmod=+x)"
                .into()
        }
        _ if e.raw_os_error() == Some(libc::ENOEXEC) => {
            " (a script needs a #! line naming its interpreter)".into()
        }
        _ => String::new(),
    };
    format!("cannot run {command}: {e}{hint}")
}

/// The interpreter the `#!` line of `script` names, when it is not there.
fn missing_interpreter(script: &Path) -> Option<String> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).ok()?.read(&mut head).ok()?;
    let line = head[..n]
        .strip_prefix(b"#!")?
        .split(|b| *b == b'\n')
        .next()?;
    let interpreter = String::from_utf8_lossy(line)
        .split_whitespace()
        .next()?
        .to_string();
    (!Path::new(&interpreter).exists()).then_some(interpreter)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_that_does_not_start_says_what_is_usually_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        script("no-shebang.sh", "echo hi\n", 0o755);
        script("not-executable.sh", "#!/bin/sh\necho hi\n", 0o644);
        script("no-shell.sh", "#!/nonexistent/sh -e\necho hi\n", 0o755);
        let top = dir.path().to_path_buf();
        let run = |command: &str| {
            let top = top.clone();
            let hook = ExecHook::new("exechook", command, Duration::from_secs(5), move |_| {
                top.clone()
            });
            hook.run("0123").unwrap_err()
        };
        for (command, says) in [
            ("sh -c 'make deploy'", "put the command line in a script"),
            ("deploy.sh", "named from the worktree's top, as ./path"),
            ("./not-executable.sh", "git update-index --chmod=+x"),
            ("./no-shebang.sh", "a #! line naming its interpreter"),
            (
                "./no-shell.sh",
                "/nonexistent/sh is not, the interpreter its #! line names: \
                 the default image has no shell",
            ),
        ] {
            let e = run(command);
            assert!(e.starts_with(&format!("cannot run {command}: ")), "{e}");
            assert!(e.ends_with(&format!("{says})")), "{command}: {e}");
        }
        // A program that starts and fails is told as before, without a hint.
        let e = run("false");
        assert!(e.starts_with("false exited with "), "{e}");
    }

    #[test]
    fn hooks_get_upstreams_ssh_command_quoted_for_the_shell() {
        let mut ssh = SshConfig {
            key_files: vec!["/etc/git-secret/ssh".into(), "/keys/it's mine".into()],
            known_hosts: true,
            known_hosts_file: "/etc/git-secret/known_hosts".into(),
            agent: false,
            command: None,
            home: None,
        };
        assert_eq!(
            git_ssh_command(&ssh, None),
            "ssh -i /etc/git-secret/ssh -i '/keys/it'\\''s mine' \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/git-secret/known_hosts"
        );
        ssh.known_hosts_file = "/etc/known hosts".into();
        assert!(git_ssh_command(&ssh, None).ends_with(
            " -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=\"/etc/known hosts\"'"
        ));
        ssh.known_hosts = false;
        ssh.key_files.truncate(1);
        assert_eq!(
            git_ssh_command(&ssh, Some("ssh -4")),
            "ssh -4 -i /etc/git-secret/ssh -o StrictHostKeyChecking=no"
        );
        // What the shell reads back is the path.
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("printf %s {}", shell_quoted("/a b/it's $HOME")),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/a b/it's $HOME");
    }
}
