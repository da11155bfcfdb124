//! HTTP credentials for a git binary in an exec hook, as upstream's hooks
//! get them: upstream stores the repository's credentials in git's
//! credential cache, which its hooks' git asks. Here git-sync answers
//! itself, on a Unix socket in a directory of its own (mode 0700) for as
//! long as it runs; the hook's git is given a credential helper that is
//! this very binary (`git-sync --credential-helper get`), which relays the
//! question. The answer is what git-sync would send that URL itself (the
//! repository's credentials to its own server only; a `--credential` to
//! the URLs it names), as of the last pass, so rotated passwords and
//! refreshed tokens follow. Nothing is written to disk, and the secret is
//! in no environment variable a hook could print.

use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The flag that makes the binary a credential helper (not in the flag
/// table: git gives it the action after it).
pub const FLAG: &str = "--credential-helper";
/// The variable naming the socket, in the hook's environment.
pub const SOCKET_ENV: &str = "GITSYNC_CREDENTIAL_SOCKET";

/// How long either side waits for the other.
const PATIENCE: Duration = Duration::from_secs(5);
/// The most a question or an answer may hold.
const MAX_MESSAGE: u64 = 64 * 1024;

/// The socket this process serves, once it serves one.
static SOCKET: OnceLock<PathBuf> = OnceLock::new();

/// The socket this process serves (see [`HelperSocket::serve`]), for the
/// environment of its exec hooks.
pub fn socket_path() -> Option<&'static Path> {
    SOCKET.get().map(PathBuf::as_path)
}

/// The credentials (username, password) for a URL, if git-sync would send
/// that URL any.
pub type Lookup = dyn Fn(&str) -> Option<(String, String)> + Send + Sync;

/// The socket, served on a thread of its own; its directory is removed
/// when this is dropped.
pub struct HelperSocket {
    dir: PathBuf,
    path: PathBuf,
}

impl HelperSocket {
    /// Serve `lookup` on a new socket under the system's temporary
    /// directory.
    pub fn serve(lookup: Arc<Lookup>) -> io::Result<Self> {
        let dir = private_dir(&std::env::temp_dir())?;
        let path = dir.join("socket");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        std::thread::Builder::new()
            .name("credential-helper".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if let Err(e) = answer(stream, lookup.as_ref()) {
                        tracing::debug!(error = %e, "credential helper: question not answered");
                    }
                }
            })?;
        let _ = SOCKET.set(path.clone());
        Ok(HelperSocket { dir, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HelperSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove what processes killed before they could (`kill -9`) left under
/// `parent`: directories of ours whose process is gone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("git-sync-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok());
        let Some(pid) = pid.filter(|p| *p > 0) else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && entry.path().join("socket").exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A new directory under `parent` that only we may enter.
fn private_dir(parent: &Path) -> io::Result<PathBuf> {
    remove_stale(parent);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = io::Error::other("no attempt");
    for attempt in 0..8u32 {
        let name = format!("git-sync-{}-{nanos:x}{attempt}", std::process::id());
        let dir = parent.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Read git's question (`key=value` lines) from `stream` and write the
/// answer: the username and password for its URL, or nothing.
fn answer(stream: UnixStream, lookup: &Lookup) -> io::Result<()> {
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    let mut question = String::new();
    (&stream).take(MAX_MESSAGE).read_to_string(&mut question)?;
    let field = |name: &str| {
        question
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(protocol), Some(host)) = (field("protocol"), field("host")) else {
        return Ok(());
    };
    // git sends the path only with credential.useHttpPath.
    let url = format!("{protocol}://{host}/{}", field("path").unwrap_or_default());
    let Some((username, password)) = lookup(&url) else {
        return Ok(());
    };
    // A URL naming another user wants that user's password; and git's
    // protocol has no room for a line break in a value.
    let unsayable = |v: &str| v.contains(['\n', '\0']);
    if field("username").is_some_and(|u| u != username)
        || unsayable(&username)
        || unsayable(&password)
    {
        return Ok(());
    }
    let mut out = &stream;
    write!(out, "username={username}\npassword={password}\n")
}

/// The helper's side, run by git as `git-sync --credential-helper
/// <action>`: relay a `get` to the socket and print the answer. Anything
/// else (`store`, `erase`), and any failure, says nothing: git then goes
/// on as without this helper.
pub fn run_helper(action: Option<&str>) -> u8 {
    if action != Some("get") {
        return 0;
    }
    let mut question = Vec::new();
    if io::stdin()
        .take(MAX_MESSAGE)
        .read_to_end(&mut question)
        .is_err()
    {
        return 0;
    }
    let Some(path) = std::env::var_os(SOCKET_ENV) else {
        return 0;
    };
    let relayed = (|| -> io::Result<Vec<u8>> {
        let mut stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.set_write_timeout(Some(PATIENCE))?;
        stream.write_all(&question)?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut answer = Vec::new();
        stream.take(MAX_MESSAGE).read_to_end(&mut answer)?;
        Ok(answer)
    })();
    if let Ok(answer) = relayed {
        let _ = io::stdout().write_all(&answer);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(socket: &Path, question: &str) -> String {
        let mut s = UnixStream::connect(socket).unwrap();
        s.write_all(question.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn the_socket_answers_for_the_urls_the_lookup_knows_only() {
        let lookup: Arc<Lookup> = Arc::new(|url: &str| match url {
            u if u.starts_with("https://git.example.com/") => {
                Some(("bot".to_string(), "s3cret".to_string()))
            }
            u if u.starts_with("https://broken/") => {
                Some(("bot".to_string(), "s3cret\nusername=eve".to_string()))
            }
            _ => None,
        });
        let socket = HelperSocket::serve(lookup).unwrap();
        let mode = std::fs::metadata(socket.dir.clone()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o700);
        let ours = "protocol=https\nhost=git.example.com\n";
        assert_eq!(ask(socket.path(), ours), "username=bot\npassword=s3cret\n");
        let with_path = "protocol=https\nhost=git.example.com\npath=org/site.git\n";
        assert_eq!(
            ask(socket.path(), with_path),
            "username=bot\npassword=s3cret\n"
        );
        assert_eq!(ask(socket.path(), "protocol=https\nhost=elsewhere\n"), "");
        let other_user = "protocol=https\nhost=git.example.com\nusername=eve\n";
        assert_eq!(ask(socket.path(), other_user), "");
        assert_eq!(ask(socket.path(), "nonsense"), "");
        assert_eq!(ask(socket.path(), "protocol=https\nhost=broken\n"), "");
        let dir = socket.dir.clone();
        drop(socket);
        assert!(!dir.exists());
    }

    #[test]
    fn what_a_killed_process_left_is_removed_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        // No process has pid 2^22 + 1 (above Linux's pid_max limit).
        let stale = tmp.path().join("git-sync-4194305-ab0");
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("socket"), "").unwrap();
        let alive = tmp
            .path()
            .join(format!("git-sync-{}-cd0", std::process::id()));
        std::fs::create_dir(&alive).unwrap();
        std::fs::write(alive.join("socket"), "").unwrap();
        let demo = tmp.path().join("git-sync-demo");
        std::fs::create_dir(&demo).unwrap();
        let made = private_dir(tmp.path()).unwrap();
        assert!(!stale.exists());
        assert!(alive.exists() && demo.exists() && made.exists());
    }
}
