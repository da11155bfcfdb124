//! git's credential helpers, run as git runs them: `credential.helper=
//! <name> [args]` is `git-credential-<name> [args] get`, `/path [args]`
//! that program, `!snippet` that shell snippet, each through `sh -c` with
//! git's `key=value` lines on its standard input (`protocol`, `host`, the
//! URL's `username`), answering `username=` and `password=` lines. (The
//! `store` helper for every server is read in process instead, with no
//! program: see `HostLogin::from_store_line`.) A laptop's `libsecret` or
//! `osxkeychain` helper, or a token-minting one such as Google Cloud's
//! `gcloud.sh`, serves git-sync as it serves git. No prompt: the helper
//! gets no terminal, `GIT_TERMINAL_PROMPT=0` and `GCM_INTERACTIVE=never`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::gitconfig::{credential_scope_fits, CredentialHelper, UseHttpPath};
use crate::git::{AskHelpers, Credentials};

/// How long a helper may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a helper's answer is used before it is asked again (git asks
/// at every fetch; a token it mints lasts longer).
const ANSWER_KEPT: Duration = Duration::from_secs(300);

/// What the helpers answered, by request (what they are told), and when.
pub type Answers = Arc<Mutex<HashMap<String, (Credentials, Instant)>>>;

/// The configured helpers of one pass, asked about a URL when its server
/// wants credentials, as git asks them, never before: a public
/// repository's polls run none. An answer is kept across passes for
/// [`ANSWER_KEPT`], unless the server refuses it; "none" for the pass.
pub struct Asker {
    helpers: Vec<CredentialHelper>,
    with_path: UseHttpPath,
    answers: Answers,
    /// The requests no helper answered this pass, and the helpers asked.
    unanswered: Mutex<HashMap<String, Vec<String>>>,
}

impl Asker {
    /// `helpers` (told the paths of the URLs `with_path` names), their
    /// answers kept in `answers`.
    pub fn new(helpers: Vec<CredentialHelper>, with_path: UseHttpPath, answers: Answers) -> Self {
        Asker {
            helpers,
            with_path,
            answers,
            unanswered: Mutex::default(),
        }
    }
}

impl AskHelpers for Asker {
    fn ask(&self, url: &str) -> Result<Credentials, Vec<String>> {
        let http = url.starts_with("https://") || url.starts_with("http://");
        let with_path = self.with_path.for_url(url);
        let Some(key) = request(url, with_path).filter(|_| http) else {
            return Err(Vec::new());
        };
        let answers = || self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((c, _)) = answers()
            .get(&key)
            .filter(|(_, at)| at.elapsed() < ANSWER_KEPT)
        {
            return Ok(c.clone());
        }
        let unanswered = || {
            self.unanswered
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(names) = unanswered().get(&key) {
            return Err(names.clone());
        }
        let mut silent = Vec::new();
        for h in self.helpers.iter().filter(|h| applies(h, url)) {
            match get(h, url, with_path) {
                Ok(Some(c)) => {
                    answers().insert(key, (c.clone(), Instant::now()));
                    return Ok(c);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "credential helper failed"),
            }
            silent.push(name(h).to_string());
        }
        unanswered().insert(key, silent.clone());
        Err(silent)
    }

    fn rejected(&self, url: &str) {
        if let Some(key) = request(url, self.with_path.for_url(url)) {
            let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
            answers.remove(&key);
        }
    }
}

/// Where git keeps its helper programs (`git --exec-path`), searched
/// after `PATH`.
const GIT_EXEC_DIRS: &str = "/usr/lib/git-core:/usr/libexec/git-core";

/// Whether `helper` is one for `url`: every URL without a scope, else the
/// URLs under it (same scheme and host; its path, if any, a prefix).
pub fn applies(helper: &CredentialHelper, url: &str) -> bool {
    helper
        .scope
        .as_ref()
        .map_or(true, |scope| credential_scope_fits(scope, url))
}

/// Ask `helper` for the credentials of `url` (`scheme://[user@]host[:port]
/// /path`; its path too with `credential.useHttpPath`); `None` when it has
/// none.
pub fn get(
    helper: &CredentialHelper,
    url: &str,
    with_path: bool,
) -> Result<Option<Credentials>, String> {
    let input =
        request(url, with_path).ok_or_else(|| format!("no credential request for {url}"))?;
    let command = shell_command(&helper.command);
    let path = match std::env::var("PATH") {
        Ok(path) if !path.is_empty() => format!("{path}:{GIT_EXEC_DIRS}"),
        _ => GIT_EXEC_DIRS.to_string(),
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .env("PATH", path)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("credential helper {:?}: {e}", name(helper)))?;
    // A helper that reads nothing may have exited already: a failed write
    // is not an error of its own.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let mut stdout = child.stdout.take().ok_or("no pipe")?;
    // Read on a thread of its own, sent back as it comes: a process the
    // helper leaves running (a cache daemon) may hold the pipe open long
    // after the helper has answered and exited.
    let (sent, received) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if sent.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "credential helper {:?} gave no answer within {}s",
                    name(helper),
                    TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("credential helper {:?}: {e}", name(helper))),
        }
    };
    // What it wrote: all of it once the pipe closes, else what came
    // within a moment of its exit.
    let mut out = Vec::new();
    while let Ok(chunk) = received.recv_timeout(Duration::from_millis(200)) {
        if out.len() < 64 * 1024 {
            out.extend(chunk);
        }
    }
    let out = String::from_utf8_lossy(&out);
    if !status.success() {
        // As git: a helper that fails is passed over.
        tracing::debug!(helper = %name(helper), %status, "credential helper failed");
        return Ok(None);
    }
    Ok(parse(&out))
}

/// The helper's name, for messages: its first word (never its
/// arguments, which may hold a secret).
pub fn name(helper: &CredentialHelper) -> &str {
    match helper.command.strip_prefix('!') {
        Some(_) => "!...",
        None => helper.command.split_whitespace().next().unwrap_or_default(),
    }
}

/// The shell command git runs for `helper`'s `get`.
fn shell_command(helper: &str) -> String {
    if let Some(snippet) = helper.strip_prefix('!') {
        format!("{snippet} get")
    } else if helper.starts_with('/') {
        format!("{helper} get")
    } else {
        format!("git-credential-{helper} get")
    }
}

/// git's request for `url`: its protocol, host (with a port it names),
/// `with_path` its path, and user, then a blank line.
fn request(url: &str, with_path: bool) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user.split(':').next().unwrap_or(user)), host),
        None => (None, authority),
    };
    let mut lines = format!("protocol={scheme}\nhost={host}\n");
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if with_path && !path.is_empty() {
        lines.push_str(&format!("path={path}\n"));
    }
    if let Some(user) = user {
        lines.push_str(&format!("username={}\n", crate::git::percent_decoded(user)));
    }
    lines.push('\n');
    Some(lines)
}

/// The `username=` and `password=` of a helper's answer (`quit=1` or a
/// lone username: none).
fn parse(answer: &str) -> Option<Credentials> {
    let value = |key: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    if value("quit").is_some_and(|q| q == "1" || q == "true") {
        return None;
    }
    Some(Credentials {
        username: value("username")?,
        password: value("password")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_commands_and_answers_as_git_has_them() {
        assert_eq!(
            request("https://bot%40x@git.example:8443/org/r.git", false).as_deref(),
            Some("protocol=https\nhost=git.example:8443\nusername=bot@x\n\n")
        );
        assert_eq!(
            request("https://git.example/org/r.git?x", true).as_deref(),
            Some("protocol=https\nhost=git.example\npath=org/r.git\n\n")
        );
        assert_eq!(
            shell_command("cache --timeout=60"),
            "git-credential-cache --timeout=60 get"
        );
        assert_eq!(shell_command("/opt/h --x"), "/opt/h --x get");
        assert_eq!(shell_command("!f() { :; }; f"), "f() { :; }; f get");
        let answer = parse("username=u\npassword=p=q\n").unwrap();
        assert_eq!(
            (answer.username.as_str(), answer.password.as_str()),
            ("u", "p=q")
        );
        assert!(parse("username=u\n").is_none());
        assert!(parse("quit=1\nusername=u\npassword=p\n").is_none());
        let scoped = CredentialHelper {
            scope: Some("https://Git.example/org/".into()),
            command: "x".into(),
        };
        assert!(applies(&scoped, "https://git.example/org/r.git"));
        assert!(!applies(&scoped, "https://git.example/orgx/r.git"));
        assert!(!applies(&scoped, "http://git.example/org/r.git"));
    }

    #[test]
    fn helpers_are_asked_once_a_pass_and_an_answer_kept_till_refused() {
        let t = tempfile::TempDir::new().unwrap();
        let (asked, answer) = (t.path().join("asked"), t.path().join("answer"));
        let helper = CredentialHelper {
            scope: None,
            command: format!(
                "!f() {{ echo . >> {}; cat {} 2>/dev/null; }}; f",
                asked.display(),
                answer.display()
            ),
        };
        let answers = Answers::default();
        let pass = || Asker::new(vec![helper.clone()], Default::default(), answers.clone());
        let times = || std::fs::read_to_string(&asked).unwrap_or_default().len() / 2;
        let url = "https://git.example/r.git";
        let first = pass();
        assert_eq!(first.ask(url).err(), Some(vec!["!...".to_string()]));
        assert!(first.ask(url).is_err());
        assert_eq!(times(), 1);
        assert!(first.ask("ssh://git.example/r.git").is_err());
        assert_eq!(times(), 1);
        std::fs::write(&answer, "username=u\npassword=p\n").unwrap();
        let second = pass();
        assert_eq!(second.ask(url).unwrap().password, "p");
        assert_eq!(pass().ask(url).unwrap().password, "p");
        assert_eq!(times(), 2);
        second.rejected(url);
        assert_eq!(pass().ask(url).unwrap().username, "u");
        assert_eq!(times(), 3);
    }

    #[test]
    fn the_path_goes_to_the_helpers_for_the_urls_use_http_path_names() {
        let t = tempfile::TempDir::new().unwrap();
        let told = t.path().join("told");
        let helper = CredentialHelper {
            scope: None,
            command: format!("!f() {{ cat >> {}; }}; f", told.display()),
        };
        let entries = vec![(
            "credential.https://git.example/org.useHttpPath".to_string(),
            "true".to_string(),
        )];
        let with_path = UseHttpPath::read(&entries);
        let asker = Asker::new(vec![helper], with_path, Answers::default());
        assert!(asker.ask("https://git.example/org/r.git").is_err());
        assert!(asker.ask("https://other.example/org/r.git").is_err());
        assert_eq!(
            std::fs::read_to_string(&told).unwrap(),
            "protocol=https\nhost=git.example\npath=org/r.git\n\n\
             protocol=https\nhost=other.example\n\n"
        );
    }
}
