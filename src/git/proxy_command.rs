//! Connections that are a command's standard input and output rather
//! than a TCP socket. OpenSSH's `ProxyCommand` and `ProxyJump` for an SSH
//! server: as OpenSSH does, the command runs as `/bin/sh -c 'exec
//! <command>'`, and a `ProxyJump` is the command `ssh -W '[%h]:%p'
//! <jump host>` (which needs an `ssh` program, as it does under OpenSSH:
//! the jump host's keys and configuration are its business; without one,
//! the hops are made in process, see `ssh_jump.rs`). git's
//! `core.gitProxy` (or `GIT_PROXY_COMMAND`) for a `git://` server: as git
//! does, the program runs as `<program> <host> <port>`, no shell.
//!
//! The command gets one end of a socket pair as its standard input and
//! output; the other end is the connection, a socket as libssh2 wants
//! one (it sends and receives on the descriptor itself), so no thread
//! copies bytes between them. What the command says on its standard
//! error is logged, a line at a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The shell OpenSSH runs a `ProxyCommand` with.
const SHELL: &str = "/bin/sh";

/// How an SSH server is reached when not straight over TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshProxy {
    /// `ProxyCommand`, as written (tokens not yet expanded).
    Command(String),
    /// `ProxyJump`: `[user@]host[:port]`, or several, comma-separated
    /// (the last is the one next to the server), or `ssh://` URIs.
    Jump(String),
}

impl SshProxy {
    /// From an OpenSSH option's name (lowercase) and value; `None` for
    /// another option, or `Some(None)` for `none`, which says the host is
    /// reached directly.
    pub fn from_option(name: &str, value: &str) -> Option<Option<SshProxy>> {
        let none = value.trim().eq_ignore_ascii_case("none");
        match name {
            "proxycommand" => Some((!none).then(|| SshProxy::Command(value.trim().to_string()))),
            "proxyjump" => Some((!none).then(|| SshProxy::Jump(value.trim().to_string()))),
            _ => None,
        }
    }

    /// The command to run, its `%` tokens not yet expanded: a
    /// `ProxyJump` made the `ssh -W` command OpenSSH makes of it, with the
    /// configuration file `-F` named (`config_file`) passed on.
    pub fn command(&self, config_file: Option<&std::path::Path>) -> String {
        let jumps = match self {
            SshProxy::Command(command) => return command.clone(),
            SshProxy::Jump(jumps) => jumps,
        };
        // The hop next to the server is reached through the others (-J).
        let (others, last) = match jumps.rsplit_once(',') {
            Some((others, last)) => (Some(others), last),
            None => (None, jumps.as_str()),
        };
        let last = last.strip_prefix("ssh://").unwrap_or(last);
        let (user, host_port) = match last.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, last),
        };
        let (host, port) = split_port(host_port);
        let mut words = vec!["ssh".to_string()];
        if let Some(file) = config_file {
            words.extend(["-F".into(), quoted(&file.to_string_lossy())]);
        }
        if let Some(user) = user {
            words.extend(["-l".into(), quoted(user)]);
        }
        if let Some(port) = port {
            words.extend(["-p".into(), quoted(port)]);
        }
        if let Some(others) = others {
            words.extend(["-J".into(), quoted(others)]);
        }
        words.extend(["-W".into(), "'[%h]:%p'".into(), quoted(host)]);
        words.join(" ")
    }
}

/// The program git connects to `host`'s daemon (`git://`) through:
/// `GIT_PROXY_COMMAND` (`env`) for every host if set, else the first of
/// the `core.gitProxy` values (in the order git reads them) that applies
/// to it: `<program>` for all, `<program> for <domain>` for the host
/// `<domain>` and those ending in `.<domain>`; `none` (or an empty value)
/// says straight there.
pub fn git_proxy<'a>(
    host: &str,
    env: Option<String>,
    values: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    if let Some(program) = env {
        return Some(program).filter(|p| !p.is_empty());
    }
    let chosen = values
        .into_iter()
        .find_map(|value| match value.find(" for ") {
            None => Some(value),
            Some(at) => {
                let domain = &value[at + 5..];
                let applies = host
                    .strip_suffix(domain)
                    .is_some_and(|before| before.is_empty() || before.ends_with('.'));
                applies.then(|| &value[..at])
            }
        })?;
    Some(chosen.to_string()).filter(|p| !p.is_empty() && p != "none")
}

/// `host:port`, `[v6]:port` or a bare host, split.
fn split_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
    }
    match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, Some(port)),
        _ => (text, None),
    }
}

/// `text` as one shell word.
fn quoted(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,:@/=+%".contains(&b))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A running proxy command and our end of its connection. Dropped, it
/// closes the connection and ends the command.
#[derive(Debug)]
pub struct CommandStream {
    socket: UnixStream,
    child: Child,
    /// Ends (disconnected) when all the command said is logged.
    said: Option<std::sync::mpsc::Receiver<()>>,
}

/// How long an ended command's last words are waited for.
const LAST_WORDS: Duration = Duration::from_millis(500);

impl CommandStream {
    /// Run `command` (an SSH `ProxyCommand`, tokens expanded) for a
    /// connection; reads and writes wait at most `timeout`.
    pub fn spawn(command: &str, timeout: Option<Duration>) -> Result<CommandStream, String> {
        let mut shell = Command::new(SHELL);
        shell.arg("-c").arg(format!("exec {command}"));
        Self::start(shell, command, SHELL, timeout)
    }

    /// Run `program host port` (git's `core.gitProxy`) for a connection to
    /// `host:port`.
    pub fn spawn_git_proxy(
        program: &str,
        host: &str,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<CommandStream, String> {
        let mut run = Command::new(program);
        run.arg(host).arg(port.to_string());
        Self::start(run, &format!("{program} {host} {port}"), program, timeout)
    }

    /// Start `run` (`named` so in messages and logs, `runs` its program)
    /// with one end of a new socket pair as its input and output.
    fn start(
        mut run: Command,
        named: &str,
        runs: &str,
        timeout: Option<Duration>,
    ) -> Result<CommandStream, String> {
        let failed = |e: std::io::Error| format!("proxy command {named}: {e}");
        let (ours, theirs) = UnixStream::pair().map_err(failed)?;
        let theirs_out = theirs.try_clone().map_err(failed)?;
        let mut child = run
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("proxy command {named}: cannot run {runs}: {e}"))?;
        let mut said = None;
        if let Some(stderr) = child.stderr.take() {
            let command = named.to_string();
            let (done, all_said) = std::sync::mpsc::channel::<()>();
            let logged = std::thread::Builder::new()
                .name("proxy-command".into())
                .spawn(move || {
                    let _done = done;
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        tracing::warn!(command = %command, said = %crate::redact::redact(&line), "proxy command");
                    }
                });
            match logged {
                Ok(_) => said = Some(all_said),
                Err(e) => {
                    tracing::debug!(error = %e, "the proxy command's standard error is not read")
                }
            }
        }
        ours.set_read_timeout(timeout).map_err(failed)?;
        ours.set_write_timeout(timeout).map_err(failed)?;
        Ok(CommandStream {
            socket: ours,
            child,
            said,
        })
    }
}

impl Read for CommandStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for CommandStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.socket.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.socket.flush()
    }
}

impl AsRawFd for CommandStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for CommandStream {
    fn drop(&mut self) {
        // End of input first, which ends most commands (nc, ssh -W) by
        // themselves; then for sure.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        let _ = self.child.kill();
        let _ = self.child.wait();
        // What it said last (why it failed) is logged before this
        // returns, so before a `--one-time` run exits on the error its
        // end made; unless something it started keeps its standard error
        // open.
        if let Some(said) = self.said.take() {
            let _ = said.recv_timeout(LAST_WORDS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_jump_is_the_ssh_command_openssh_makes_of_it() {
        let jump = |spec: &str| SshProxy::Jump(spec.into()).command(None);
        assert_eq!(jump("bastion"), "ssh -W '[%h]:%p' bastion");
        assert_eq!(
            jump("me@bastion:2222"),
            "ssh -l me -p 2222 -W '[%h]:%p' bastion"
        );
        assert_eq!(
            jump("outer,me@inner"),
            "ssh -l me -J outer -W '[%h]:%p' inner"
        );
        assert_eq!(
            jump("ssh://me@[::1]:2222"),
            "ssh -l me -p 2222 -W '[%h]:%p' ::1"
        );
        assert_eq!(
            SshProxy::Jump("b".into()).command(Some(std::path::Path::new("/my config"))),
            "ssh -F '/my config' -W '[%h]:%p' b"
        );
        assert_eq!(
            SshProxy::Command("nc %h %p".into()).command(None),
            "nc %h %p"
        );
        assert_eq!(
            SshProxy::from_option("proxyjump", "none"),
            Some(None),
            "none: straight there"
        );
        assert_eq!(SshProxy::from_option("port", "22"), None);
    }

    #[test]
    fn git_proxy_is_chosen_as_git_chooses_it() {
        let values = [
            "none for intranet.example",
            "tunnel-a for example",
            "tunnel-b",
        ];
        let proxy = |host: &str| git_proxy(host, None, values);
        assert_eq!(proxy("git.intranet.example"), None, "none");
        assert_eq!(proxy("git.example").as_deref(), Some("tunnel-a"));
        assert_eq!(proxy("example").as_deref(), Some("tunnel-a"));
        assert_eq!(
            proxy("notexample").as_deref(),
            Some("tunnel-b"),
            "a whole domain only"
        );
        assert_eq!(proxy("elsewhere.org").as_deref(), Some("tunnel-b"));
        // The environment's applies to every host; empty, to none.
        let env = |v: &str| git_proxy("git.intranet.example", Some(v.into()), values);
        assert_eq!(env("mine").as_deref(), Some("mine"));
        assert_eq!(env(""), None);
        assert_eq!(git_proxy("h", None, []), None);
    }

    #[test]
    fn a_git_proxy_is_given_the_host_and_port() {
        let mut stream = CommandStream::spawn_git_proxy("echo", "h.example", 9418, None).unwrap();
        let mut said = String::new();
        stream.read_to_string(&mut said).unwrap();
        assert_eq!(said, "h.example 9418\n");
    }

    #[test]
    fn the_connection_is_the_commands_input_and_output() {
        let mut stream = CommandStream::spawn("tr a-z A-Z", Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"hello\n").unwrap();
        stream.socket.shutdown(std::net::Shutdown::Write).unwrap();
        let mut said = String::new();
        stream.read_to_string(&mut said).unwrap();
        assert_eq!(said, "HELLO\n");
    }

    #[test]
    fn a_command_that_ends_ends_the_connection() {
        let mut stream =
            CommandStream::spawn("/nonexistent/nc", Some(Duration::from_secs(10))).unwrap();
        let mut said = Vec::new();
        // The shell fails to exec it and exits: the connection ends.
        assert_eq!(stream.read_to_end(&mut said).unwrap(), 0);
    }
}
