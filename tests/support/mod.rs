//! Shared helpers for the integration tests: real git repositories in temp
//! dirs, a real smart-HTTP server (nginx + fcgiwrap + git http-backend) on a
//! free loopback port, the real git-sync binary, and waiting with deadlines.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

/// The git-sync binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_git-sync"))
}

/// Copy an executable that a test then runs. By `cp`, not in this
/// process: a child another test thread forks while the copy is open for
/// writing keeps it so until that child execs, and running the copy then
/// fails with "Text file busy" (ETXTBSY; seen in CI).
pub fn copy_executable(from: &Path, to: &Path) {
    let status = Command::new("cp").arg(from).arg(to).status().unwrap();
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}

/// Wait until `cond` holds, or panic with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run the git CLI (the tests' tool for making repositories; git-sync itself
/// never uses it).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the git CLI succeeds (`cat-file -e`, say).
pub fn git_succeeds(dir: &Path, args: &[&str]) -> bool {
    git_output(dir, args).status.success()
}

fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git")
}

/// A temporary directory whose `srv/` holds a new source repository
/// `name` on `main`: (the directory, `srv` to serve, the repository).
pub fn temp_source(name: &str) -> (TempDir, PathBuf, SourceRepo) {
    let tmp = TempDir::new().unwrap();
    let srv = tmp.path().join("srv");
    let repo = SourceRepo::new(&srv, name);
    (tmp, srv, repo)
}

/// A source repository with a working tree, on branch `main`.
pub struct SourceRepo {
    pub dir: PathBuf,
}

impl SourceRepo {
    pub fn new(parent: &Path, name: &str) -> Self {
        Self::on_branch(parent, name, "main")
    }

    pub fn on_branch(parent: &Path, name: &str, branch: &str) -> Self {
        let dir = parent.join(name);
        fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", branch]);
        // Let a hash be fetched over HTTP even if no ref points at it.
        git(&dir, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
        SourceRepo { dir }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    /// Write files (path, content) and commit them; returns the new hash.
    pub fn commit(&self, files: &[(&str, &str)], msg: &str) -> String {
        for (path, content) in files {
            let p = self.dir.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "--allow-empty", "-m", msg]);
        self.head()
    }

    /// Commit `n` small files `<dir>/<i>.txt` (content: `i`) and `extra`;
    /// returns the new hash.
    pub fn commit_numbered(
        &self,
        dir: &str,
        n: usize,
        extra: &[(&str, &str)],
        msg: &str,
    ) -> String {
        let files: Vec<(String, String)> = (0..n)
            .map(|i| (Path::new(dir).join(format!("{i}.txt")), i.to_string()))
            .map(|(p, c)| (p.to_string_lossy().into_owned(), c))
            .collect();
        let mut all: Vec<(&str, &str)> = files.iter().map(|(p, c)| (&p[..], &c[..])).collect();
        all.extend_from_slice(extra);
        self.commit(&all, msg)
    }

    pub fn head(&self) -> String {
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    /// `count` refs `refs/pull/<n>/head` at HEAD (as GitHub advertises
    /// its pull requests), written as packed-refs.
    pub fn add_pull_refs(&self, count: usize) {
        let head = self.head();
        self.git(&["pack-refs", "--all"]);
        let gitdir = self.dir.join(".git");
        let packed = fs::read_to_string(gitdir.join("packed-refs")).unwrap();
        let mut lines: Vec<String> = packed
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .chain((0..count).map(|i| format!("{head} refs/pull/{i}/head")))
            .collect();
        lines.sort_by(|a, b| a.split(' ').nth(1).cmp(&b.split(' ').nth(1)));
        let text = format!(
            "# pack-refs with: peeled fully-peeled sorted\n{}\n",
            lines.join("\n")
        );
        fs::write(gitdir.join("packed-refs"), text).unwrap();
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
    /// Set when stderr reached its end: all the log has been read.
    stderr_done: Arc<std::sync::atomic::AtomicBool>,
    /// Leads its own process group, killed as a whole (its forked workers).
    group: bool,
}

impl Proc {
    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait for exit (with a deadline); returns the exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The log is read by another thread: let it reach the end
                // (a hook's child may hold the pipe open: not for long).
                let read = Instant::now() + Duration::from_secs(5);
                while !self.stderr_done.load(std::sync::atomic::Ordering::SeqCst)
                    && Instant::now() < read
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                panic!(
                    "process did not exit within {limit:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until `cond` holds while the process keeps running; panics with
    /// its log if it exits or the deadline passes.
    pub fn wait_for(&mut self, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if cond() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "process exited ({status}) while waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {limit:?} waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Like [`Proc::wait_for`], with a condition on the log so far.
    pub fn wait_log(&mut self, limit: Duration, what: &str, cond: impl Fn(&str) -> bool) {
        let stderr = self.stderr.clone();
        self.wait_for(limit, what, || cond(&stderr.lock().unwrap()))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.group {
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Log = (Arc<Mutex<String>>, Arc<std::sync::atomic::AtomicBool>);

fn capture_stderr(child: &mut Child) -> Log {
    let buf = Arc::new(Mutex::new(String::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(stderr) = child.stderr.take() {
        let (b, d) = (buf.clone(), done.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = b.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
            d.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    } else {
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    (buf, done)
}

/// A git-sync command with JSON logs, ready for more args.
pub fn git_sync(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg("--log-format=json")
        .env_remove("GITSYNC_REPO")
        .env_remove("GITSYNC_ROOT")
        // Tests run from a systemd unit: git-sync is not that unit.
        .env_remove("NOTIFY_SOCKET")
        // Nothing of the user running the tests (~/.gitconfig, ~/.netrc,
        // ~/.ssh): an empty home, which tests about HOME replace.
        .env("HOME", empty_home())
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Loopback servers only: a proxy of the machine running the tests
    // must not see their requests. Tests about proxies set their own.
    for var in ["http_proxy", "https_proxy", "all_proxy", "no_proxy"] {
        cmd.env_remove(var).env_remove(var.to_ascii_uppercase());
    }
    // Nor may git, OpenSSL or Azure settings of that machine's environment
    // (some set GIT_SSL_CAINFO, which overrides http.sslCAInfo as in git;
    // a container sets no SSL_CERT_FILE, and the system's CA bundle must
    // be found without it).
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_SSL_NO_VERIFY",
        "GIT_SSL_CERT",
        "GIT_SSL_KEY",
        "GIT_CONFIG_COUNT",
        // git-lfs's switch to publish LFS pointers as they are.
        "GIT_LFS_SKIP_SMUDGE",
        // A developer's ssh-agent or .netrc must not authenticate the
        // tests (a test about a .netrc sets HOME).
        "SSH_AUTH_SOCK",
        "NETRC",
        "GIT_SSH_COMMAND",
        "GIT_SSH",
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// An empty directory, the same for every test of this build, that no
/// test writes into.
pub fn empty_home() -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-home");
    fs::create_dir_all(&home).unwrap();
    home
}

/// Run git-sync to completion (with a deadline).
/// Run git-sync to its end (a `--one-time` run), which must succeed; its
/// log.
pub fn git_sync_ok(args: &[&str]) -> String {
    let out = run_git_sync(args);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    log
}

pub fn run_git_sync(args: &[&str]) -> Output {
    let mut p = spawn(git_sync(args));
    let code = p.wait_exit(Duration::from_secs(120));
    let stderr = p.log();
    let mut stdout = String::new();
    if let Some(mut out) = p.child.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut stdout);
    }
    Output {
        status: std::os::unix::process::ExitStatusExt::from_raw((code & 0xff) << 8),
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

/// Start a command, capturing stderr.
pub fn spawn(mut cmd: Command) -> Proc {
    // A binary copied by a test (to run as another user, say) may still be
    // open for writing in a child that another test's thread forked at
    // that moment: exec says ETXTBSY until that child execs in turn.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            r => break r.expect("spawn"),
        }
    };
    let (stderr, stderr_done) = capture_stderr(&mut child);
    Proc {
        child,
        stderr,
        stderr_done,
        group: false,
    }
}

/// Like [`spawn`], for a server that forks workers: it leads a new process
/// group, and dropping it kills the whole group.
pub fn spawn_group(mut cmd: Command) -> Proc {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let mut p = spawn(cmd);
    p.group = true;
    p
}

/// The hash the link points at (basename of its target), if any.
pub fn published(link: &Path) -> Option<String> {
    let t = fs::read_link(link).ok()?;
    Some(t.file_name()?.to_string_lossy().into_owned())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// An nginx on a free loopback port, stopped when dropped; with fcgiwrap
/// when it serves git.
pub struct Nginx {
    pub port: u16,
    _nginx: Proc,
    _fcgiwrap: Option<Proc>,
    _dir: TempDir,
}

/// Smart HTTP for every repository under `project_root` (git http-backend).
pub fn git_location(project_root: &Path, sock: &Path) -> String {
    format!(
        r#"location / {{
            client_max_body_size 0;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT {root};
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_param REMOTE_USER $remote_user;
            # Protocol v2 for clients that ask, as GitHub and GitLab do.
            fastcgi_param GIT_PROTOCOL $http_git_protocol;
            fastcgi_pass unix:{sock};
        }}"#,
        root = project_root.display(),
        sock = sock.display(),
    )
}

impl Nginx {
    /// Start nginx with `server_body` (use `{sock}` for the fcgiwrap socket,
    /// which is started when present). `user` is the worker user when root.
    pub fn start(server_body: &str, user: &str) -> Self {
        Self::start_tls(server_body, user, None)
    }

    /// Like [`Nginx::start`], with TLS when `tls` is (certificate, key).
    pub fn start_tls(server_body: &str, user: &str, tls: Option<(&Path, &Path)>) -> Self {
        Self::start_at(server_body, user, tls, None)
    }

    /// Like [`Nginx::start_tls`], on `port` when given (a free one if not).
    pub fn start_at(
        server_body: &str,
        user: &str,
        tls: Option<(&Path, &Path)>,
        port: Option<u16>,
    ) -> Self {
        let dir = TempDir::new().unwrap();
        let (listen_opts, tls_conf) = match tls {
            Some((cert, key)) => (
                " ssl",
                format!(
                    "ssl_certificate {};\n        ssl_certificate_key {};",
                    cert.display(),
                    key.display()
                ),
            ),
            None => ("", String::new()),
        };
        let sock = dir.path().join("fcgiwrap.sock");
        let fcgiwrap = server_body.contains("{sock}").then(|| {
            // `-c 4` forks four workers: kill them with it.
            let p = spawn_group({
                let mut c = Command::new("/usr/sbin/fcgiwrap");
                c.arg("-c")
                    .arg("4")
                    .arg("-s")
                    .arg(format!("unix:{}", sock.display()));
                c.stdout(Stdio::null()).stderr(Stdio::piped());
                c
            });
            wait_until(Duration::from_secs(10), "fcgiwrap socket", || sock.exists());
            p
        });
        let body = server_body.replace("{sock}", &sock.display().to_string());
        let user = if is_root() {
            format!("user {user};")
        } else {
            String::new()
        };
        let d = dir.path().display();
        for t in ["body", "fastcgi", "proxy", "uwsgi", "scgi"] {
            fs::create_dir_all(dir.path().join(t)).unwrap();
        }
        let mut last_err = String::new();
        let mut last_log;
        for _attempt in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let conf = format!(
                r#"{user}
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    include /etc/nginx/mime.types;
    client_body_temp_path {d}/body;
    fastcgi_temp_path {d}/fastcgi;
    proxy_temp_path {d}/proxy;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port}{listen_opts};
        {tls_conf}
        {body}
    }}
}}
"#
            );
            let conf_path = dir.path().join("nginx.conf");
            fs::write(&conf_path, conf).unwrap();
            let nginx = spawn_listening(
                {
                    let mut c = Command::new("/usr/sbin/nginx");
                    c.arg("-c").arg(&conf_path).arg("-p").arg(dir.path());
                    c.stdout(Stdio::null()).stderr(Stdio::piped());
                    c
                },
                port,
            );
            match nginx {
                Ok(nginx) => {
                    return Nginx {
                        port,
                        _nginx: nginx,
                        _fcgiwrap: fcgiwrap,
                        _dir: dir,
                    }
                }
                Err(failed) => last_log = failed.log(),
            }
            last_err = format!(
                "{last_log}\n{}",
                fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
        }
        panic!("nginx did not start: {last_err}");
    }
}

/// A smart-HTTP git server: nginx + fcgiwrap + git http-backend, serving
/// every repository under `project_root` at `http://127.0.0.1:PORT/<name>`.
pub struct HttpServer {
    pub port: u16,
    _nginx: Nginx,
}

impl HttpServer {
    pub fn start(project_root: &Path) -> Self {
        Self::start_with(project_root, "")
    }

    /// `extra` is inserted into the server block (auth, locations...).
    pub fn start_with(project_root: &Path, extra: &str) -> Self {
        Self::start_tls(project_root, extra, None)
    }

    /// Over HTTPS when `tls` is (certificate, key).
    pub fn start_tls(project_root: &Path, extra: &str, tls: Option<(&Path, &Path)>) -> Self {
        Self::start_at(project_root, extra, tls, None)
    }

    /// Like [`HttpServer::start_tls`], on `port` when given.
    pub fn start_at(
        project_root: &Path,
        extra: &str,
        tls: Option<(&Path, &Path)>,
        port: Option<u16>,
    ) -> Self {
        let body = format!(
            "{extra}\n{}",
            git_location(project_root, Path::new("{sock}"))
        );
        let nginx = Nginx::start_at(&body, "root root", tls, port);
        HttpServer {
            port: nginx.port,
            _nginx: nginx,
        }
    }

    /// URL of the repository directory `name` under the project root.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

/// nginx serving `docroot` as static files, as the nginx container of a Pod
/// does, with its own unprivileged worker user.
pub fn static_server(docroot: &Path) -> Nginx {
    let body = format!(
        "root {};\n        location / {{ try_files $uri $uri/ =404; }}",
        docroot.display()
    );
    Nginx::start(&body, "www-data www-data")
}

/// One HTTP/1.0 GET on 127.0.0.1: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, Vec<u8>) {
    http_get_from("127.0.0.1", port, path)
}

/// One HTTP/1.0 GET on `ip` (a loopback address): (status, body).
pub fn http_get_from(ip: &str, port: u16, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect((ip, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response without header end");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("HTTP status");
    (status, buf[split + 4..].to_vec())
}

/// Let other users (nginx's worker) traverse `dir` and its parents up to /.
pub fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut p = Some(dir);
    while let Some(d) = p {
        if d == Path::new("/") {
            break;
        }
        let mut perm = fs::metadata(d).unwrap().permissions();
        if perm.mode() & 0o005 != 0o005 {
            perm.set_mode(perm.mode() | 0o755);
            fs::set_permissions(d, perm).unwrap();
        }
        p = d.parent();
    }
}

/// Count files (not directories) under `dir`, skipping `.git`.
pub fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_name() == ".git" {
            continue;
        }
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            n += count_files(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// Total size in bytes of the files under `dir`.
pub fn disk_usage(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                n += disk_usage(&e.path());
            } else if ft.is_file() {
                n += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    n
}

/// The files under `dir` (symlinks not followed) whose bytes hold `text`.
pub fn files_holding(dir: &Path, text: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            found.extend(files_holding(&e.path(), text));
        } else if ft.is_file()
            && String::from_utf8_lossy(&fs::read(e.path()).unwrap()).contains(text)
        {
            found.push(e.path());
        }
    }
    found
}

/// Lines of a JSON log whose message is `msg`.
pub fn log_lines_with(log: &str, msg: &str) -> usize {
    let needle = format!("\"msg\":\"{msg}\"");
    log.lines().filter(|l| l.contains(&needle)).count()
}

/// Whether a JSON log line reports a failed pass: retried, or one that
/// ends the process (upstream's messages, and ours for a fatal one).
pub fn is_failed_pass(line: &str) -> bool {
    [
        "\"msg\":\"error syncing repo, will retry\"",
        "\"msg\":\"too many failures, aborting\"",
        "\"msg\":\"error syncing repo, aborting\"",
    ]
    .iter()
    .any(|m| line.contains(m))
}

/// The error lines of a JSON log: upstream's shape gives them no `level`.
pub fn error_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["msg"].is_string() && v.get("level").is_none())
        })
        .collect()
}

/// How many passes failed in `log`.
pub fn failed_passes(log: &str) -> usize {
    log.lines().filter(|l| is_failed_pass(l)).count()
}

/// One HTTP/1.0 request with headers and a body: (status, body).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A call the webhook receiver got.
#[derive(Debug, Clone)]
pub struct WebhookCall {
    pub method: String,
    pub hash: String,
    pub status: u16,
}

/// A local HTTP server that records webhook calls and answers `status`.
pub struct WebhookReceiver {
    pub port: u16,
    pub calls: Arc<Mutex<Vec<WebhookCall>>>,
    pub status: Arc<std::sync::atomic::AtomicU16>,
}

impl WebhookReceiver {
    pub fn start() -> Self {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let (c, st) = (calls.clone(), status.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let buf = read_head(&mut conn);
                let head = String::from_utf8_lossy(&buf).into_owned();
                let method = head.split_whitespace().next().unwrap_or("").to_string();
                let hash = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("gitsync-hash")
                            .then(|| v.trim().to_string())
                    })
                    .unwrap_or_default();
                let code = st.load(std::sync::atomic::Ordering::SeqCst);
                c.lock().unwrap().push(WebhookCall {
                    method,
                    hash,
                    status: code,
                });
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        WebhookReceiver {
            port,
            calls,
            status,
        }
    }

    pub fn calls(&self) -> Vec<WebhookCall> {
        self.calls.lock().unwrap().clone()
    }
}

/// A TCP proxy to `upstream` that sends responses slowly (`delay` per KiB).
pub fn slow_proxy(upstream: u16, delay: Duration) -> u16 {
    proxy(upstream, delay, |_, _| {})
}

/// A TCP proxy to `upstream` that shows `before` what a client sends (the
/// connection's number, from 0, and the bytes) before it passes it on,
/// and sends responses `delay` per KiB.
pub fn proxy(
    upstream: u16,
    delay: Duration,
    before: impl FnMut(usize, &[u8]) + Send + 'static,
) -> u16 {
    proxy_counting(upstream, delay, before, Arc::default())
}

/// A TCP proxy to `upstream` that shows `before` what a client sends (as
/// [`proxy`]), and the count of the bytes it has sent back so far.
pub fn counting_proxy(
    upstream: u16,
    before: impl FnMut(usize, &[u8]) + Send + 'static,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let received = Arc::<std::sync::atomic::AtomicUsize>::default();
    let port = proxy_counting(upstream, Duration::ZERO, before, received.clone());
    (port, received)
}

/// [`proxy`], adding what it sends back to `received`.
fn proxy_counting(
    upstream: u16,
    delay: Duration,
    before: impl FnMut(usize, &[u8]) + Send + 'static,
    received: Arc<std::sync::atomic::AtomicUsize>,
) -> u16 {
    use std::io::{Read, Write};
    let before = Arc::new(Mutex::new(before));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let before = before.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(len) = c_read.read(&mut buf) {
                    if len == 0 {
                        break;
                    }
                    (before.lock().unwrap())(n, &buf[..len]);
                    if s_write.write_all(&buf[..len]).is_err() {
                        break;
                    }
                }
            });
            let (mut s_read, mut c_write) = (server, client);
            let received = received.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    received.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(delay);
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

/// Write an executable shell script.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Send a signal to a process.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Run a command, asserting success.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test CA and a server certificate for 127.0.0.1 signed by it:
/// (ca.crt, server.crt, server.key).
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    test_certificates_of(dir, "git-sync test CA")
}

/// Like [`test_certificates`], the CA named `ca_name`.
pub fn test_certificates_of(dir: &Path, ca_name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            ])
            .arg(format!("/CN={ca_name}"))
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.crt")),
    );
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")),
    );
    sign_with_test_ca(
        dir,
        &p("server.csr"),
        &p("server.crt"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
    (p("ca.crt"), p("server.crt"), p("server.key"))
}

/// Sign the request `csr` with the CA in `dir` (ca.crt, ca.key) into
/// `crt`, with the X.509 extensions `ext`.
fn sign_with_test_ca(dir: &Path, csr: &Path, crt: &Path, ext: &str) {
    let ext_file = crt.with_extension("ext");
    fs::write(&ext_file, ext).unwrap();
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(csr)
            .arg("-CA")
            .arg(dir.join("ca.crt"))
            .arg("-CAkey")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(crt)
            .arg("-extfile")
            .arg(&ext_file),
    );
}

/// A client certificate for `name` (an ECDSA key, PKCS#8), signed by the
/// CA that [`test_certificates`] made in `dir`: (name.crt, name.key).
pub fn client_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let (crt, key, csr) = (
        p(&format!("{name}.crt")),
        p(&format!("{name}.key")),
        p(&format!("{name}.csr")),
    );
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-subj"])
            .arg(format!("/CN={name}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    sign_with_test_ca(
        dir,
        &csr,
        &crt,
        "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
    );
    (crt, key)
}

/// An OpenSSH server on a loopback port, key-only, for the current user.
/// A SOCKS5 proxy (Debian's microsocks) on 127.0.0.1, a free port,
/// asking for `login` (user name, password) when given.
pub struct SocksProxy {
    pub port: u16,
    _proc: Proc,
}

impl SocksProxy {
    pub fn start(login: Option<(&str, &str)>) -> Self {
        for _attempt in 0..5 {
            let port = free_port();
            let mut c = Command::new("microsocks");
            c.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
            if let Some((user, password)) = login {
                c.args(["-u", user, "-P", password]);
            }
            c.stdout(Stdio::null()).stderr(Stdio::piped());
            if let Ok(proc) = spawn_listening_at(c, "127.0.0.1", port) {
                return SocksProxy { port, _proc: proc };
            }
        }
        panic!("microsocks did not start");
    }
}

pub struct Sshd {
    pub addr: String,
    pub port: u16,
    pub client_key: PathBuf,
    /// A known_hosts line for this server (its ed25519 key).
    pub known_hosts_line: String,
    /// One known_hosts line per host key: ed25519, ECDSA, RSA, as a
    /// stock OpenSSH server has.
    pub known_hosts_by_type: Vec<String>,
    pub user: String,
    _proc: Proc,
    _dir: TempDir,
}

impl Sshd {
    /// On 127.0.0.1, a free port; passing `GIT_PROTOCOL` on to git, as
    /// GitHub's and GitLab's servers do.
    pub fn start() -> Self {
        Self::start_at(
            || Some(("127.0.0.1".to_string(), free_port())),
            "AcceptEnv GIT_PROTOCOL\n",
        )
        .expect("sshd did not start")
    }

    /// As [`Sshd::start`], with `extra` lines of sshd_config.
    pub fn start_with(extra: &str) -> Self {
        Self::start_at(
            || Some(("127.0.0.1".to_string(), free_port())),
            &format!("AcceptEnv GIT_PROTOCOL\n{extra}"),
        )
        .expect("sshd did not start")
    }

    /// The same with a stock OpenSSH configuration, which passes no
    /// environment variable on (git then speaks protocol version 0).
    pub fn start_passing_no_env() -> Self {
        Self::start_at(|| Some(("127.0.0.1".to_string(), free_port())), "")
            .expect("sshd did not start")
    }

    /// On the standard port 22 of some 127.x.y.z address (scp-like URLs
    /// have no port). `None` when port 22 cannot be bound (not root).
    pub fn start_on_port_22() -> Option<Self> {
        let mut n = std::process::id();
        let choose = move || {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let addr = format!(
                "127.{}.{}.{}",
                (n >> 8) % 250 + 2,
                (n >> 16) % 250 + 1,
                (n >> 24) % 250 + 1
            );
            TcpListener::bind((addr.as_str(), 22))
                .ok()
                .map(|_| (addr, 22))
        };
        Self::start_at(choose, "AcceptEnv GIT_PROTOCOL\n")
    }

    fn start_at(mut choose: impl FnMut() -> Option<(String, u16)>, extra: &str) -> Option<Self> {
        let dir = TempDir::new().unwrap();
        let d = dir.path();
        const HOST_KEY_TYPES: [&str; 3] = ["ed25519", "ecdsa", "rsa"];
        let keys = HOST_KEY_TYPES.map(|t| format!("host_{t}")).into_iter();
        for (key, kind) in keys
            .zip(HOST_KEY_TYPES)
            .chain([("client_key".into(), "ed25519")])
        {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
                    .arg(d.join(key))
                    // Quick to make; the size does not matter here.
                    .args(if kind == "rsa" {
                        &["-b", "2048"][..]
                    } else {
                        &[]
                    }),
            );
        }
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        if is_root() {
            fs::create_dir_all("/run/sshd").unwrap();
        }
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| run_ok(Command::new("id").arg("-un")).trim().to_string());
        // "type base64" of each host key.
        let host_keys: Vec<String> = HOST_KEY_TYPES
            .iter()
            .map(|t| {
                let public = fs::read_to_string(d.join(format!("host_{t}.pub"))).unwrap();
                public
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let host_key_lines: String = HOST_KEY_TYPES
            .iter()
            .map(|t| format!("HostKey {}/host_{t}\n", d.display()))
            .collect();
        for _attempt in 0..5 {
            let Some((addr, port)) = choose() else {
                continue;
            };
            let conf = format!(
                "Port {port}\nListenAddress {addr}\n{host_key_lines}AuthorizedKeysFile {d}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\nLogLevel ERROR\n{extra}",
                d = d.display()
            );
            fs::write(d.join("sshd_config"), conf).unwrap();
            let proc = spawn_listening_at(
                {
                    let mut c = Command::new("/usr/sbin/sshd");
                    c.args(["-D", "-e", "-f"]).arg(d.join("sshd_config"));
                    c.stdout(Stdio::null()).stderr(Stdio::piped());
                    c
                },
                &addr,
                port,
            );
            if let Ok(proc) = proc {
                let host = if port == 22 {
                    addr.clone()
                } else {
                    format!("[{addr}]:{port}")
                };
                let by_type: Vec<String> =
                    host_keys.iter().map(|k| format!("{host} {k}")).collect();
                return Some(Sshd {
                    known_hosts_line: by_type[0].clone(),
                    known_hosts_by_type: by_type,
                    addr,
                    port,
                    client_key: d.join("client_key"),
                    user,
                    _proc: proc,
                    _dir: dir,
                });
            }
        }
        None
    }

    pub fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@{}:{}{}",
            self.user,
            self.addr,
            self.port,
            path.display()
        )
    }

    /// The scp-like `user@host:path` form (port 22 only).
    pub fn scp_url(&self, path: &Path) -> String {
        assert_eq!(self.port, 22, "scp-like URLs have no port");
        format!("{}@{}:{}", self.user, self.addr, path.display())
    }
}

/// An HTTP server answering every request with `status` and `body`,
/// counting requests; `check` (given the head and the body) may veto a
/// request (answering 401).
pub fn fixed_server(
    status: u16,
    body: String,
    check: impl Fn(&str) -> bool + Send + 'static,
) -> (u16, Arc<Mutex<usize>>) {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let buf = read_request(&mut conn);
            *c.lock().unwrap() += 1;
            let head = String::from_utf8_lossy(&buf).into_owned();
            let (code, text) = if check(&head) {
                (status, body.as_str())
            } else {
                (401, "")
            };
            let _ = write!(conn, "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
        }
    });
    (port, count)
}

/// An HTTP forward proxy (CONNECT and absolute-form requests), recording
/// the `host:port` of each connection it carried.
pub fn forward_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    forward_proxy_with_auth(None)
}

/// [`forward_proxy`] that answers 407 unless the request carries
/// `Proxy-Authorization: Basic <base64(user:password)>` for `login`.
pub fn forward_proxy_with_auth(login: Option<(&str, &str)>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let expected = login.map(|(u, p)| {
        let b64 = openssl::base64::encode_block(format!("{u}:{p}").as_bytes());
        format!("proxy-authorization: basic {b64}").to_ascii_lowercase()
    });
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let carried = Arc::new(Mutex::new(Vec::new()));
    let c = carried.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let buf = read_head(&mut client);
            let head = String::from_utf8_lossy(&buf).into_owned();
            if let Some(want) = &expected {
                let lower = head.to_ascii_lowercase();
                if !lower.lines().any(|l| l.trim() == want) {
                    let _ = client.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                          Proxy-Authenticate: Basic realm=\"proxy\"\r\n\
                          Content-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
            }
            let mut words = head.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let authority = if method == "CONNECT" {
                target.to_string()
            } else {
                target
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            let Ok(mut server) = reach(&authority) else {
                continue;
            };
            c.lock().unwrap().push(authority);
            if method == "CONNECT" {
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            } else {
                let _ = server.write_all(&buf);
            }
            relay(client, server);
        }
    });
    (port, carried)
}

/// A connection to `host:port` for the test proxies, which take names
/// under the reserved `.test` domain (RFC 2606) to 127.0.0.1, as a
/// company's proxy reaches hosts by names its clients cannot resolve.
fn reach(authority: &str) -> std::io::Result<TcpStream> {
    match authority.rsplit_once(':') {
        Some((host, port)) if host.ends_with(".test") => {
            TcpStream::connect(format!("127.0.0.1:{port}"))
        }
        _ => TcpStream::connect(authority),
    }
}

/// Copy bytes both ways between `client` and `server`, on two threads.
fn relay(mut client: TcpStream, mut server: TcpStream) {
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut server, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Both);
    });
}

/// A SOCKS4 and SOCKS4a proxy (the 1992 protocol and its extension by
/// name), recording for each connection it carried `user@host:port` as it
/// was asked: an IPv4 address (SOCKS4) or a name it looked up (SOCKS4a).
/// Debian packages no SOCKS4 server that runs unprivileged on a port of
/// the test's choosing without a config file; the protocol is 9 bytes.
pub fn socks4_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    fn nul_terminated(conn: &mut TcpStream) -> Option<String> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        loop {
            conn.read_exact(&mut b).ok()?;
            match b[0] {
                0 => return String::from_utf8(out).ok(),
                c => out.push(c),
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let record = asked.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let mut head = [0u8; 8];
            if client.read_exact(&mut head).is_err() || head[..2] != [4, 1] {
                continue;
            }
            let port = u16::from_be_bytes([head[2], head[3]]);
            let Some(user) = nul_terminated(&mut client) else {
                continue;
            };
            let host = match [head[4], head[5], head[6], head[7]] {
                [0, 0, 0, x] if x != 0 => match nul_terminated(&mut client) {
                    Some(name) => name,
                    None => continue,
                },
                ip => std::net::Ipv4Addr::from(ip).to_string(),
            };
            let target = format!("{host}:{port}");
            record.lock().unwrap().push(format!("{user}@{target}"));
            let Ok(server) = reach(&target) else {
                let _ = client.write_all(&[0, 91, 0, 0, 0, 0, 0, 0]);
                continue;
            };
            if client.write_all(&[0, 90, 0, 0, 0, 0, 0, 0]).is_ok() {
                relay(client, server);
            }
        }
    });
    (port, asked)
}

/// Read an HTTP request head (through the blank line).
/// The head and, after it, the body its Content-Length announces.
pub fn read_request(conn: &mut TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut buf = read_head(conn);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return buf;
    };
    let length = String::from_utf8_lossy(&buf[..end])
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut chunk = [0u8; 4096];
    while buf.len() < end + 4 + length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf
}

pub fn read_head(conn: &mut TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf
}

/// Start `cmd` and wait until it listens on `port`; the process back if it
/// exits first (port taken meanwhile, bad config), for its log.
pub fn spawn_listening(cmd: Command, port: u16) -> Result<Proc, Proc> {
    spawn_listening_at(cmd, "127.0.0.1", port)
}

/// [`spawn_listening`] on another loopback address.
pub fn spawn_listening_at(cmd: Command, addr: &str, port: u16) -> Result<Proc, Proc> {
    let mut proc = spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect((addr, port)).is_ok() {
            return Ok(proc);
        }
        if let Ok(Some(_)) = proc.child.try_wait() {
            return Err(proc);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(proc)
}

/// `git daemon` serving every repository under `base` over git:// on a
/// free loopback port; stopped (with its forked children) when dropped.
pub struct GitDaemon {
    pub port: u16,
    /// The loopback address it listens on, as a URL names it.
    host: String,
    _proc: Proc,
}

impl GitDaemon {
    pub fn start(base: &Path) -> Self {
        Self::start_at(base, "127.0.0.1")
    }

    /// On the loopback address `addr` (`127.0.0.1`, `::1`).
    pub fn start_at(base: &Path, addr: &str) -> Self {
        use std::os::unix::process::CommandExt;
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("git");
            cmd.arg("daemon")
                .arg(format!("--listen={addr}"))
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .args(["--export-all", "--reuseaddr", "--informative-errors"])
                .arg(base)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.process_group(0);
            match spawn_listening_at(cmd, addr, port) {
                Ok(mut p) => {
                    p.group = true;
                    let host = if addr.contains(':') {
                        format!("[{addr}]")
                    } else {
                        addr.to_string()
                    };
                    return GitDaemon {
                        port,
                        host,
                        _proc: p,
                    };
                }
                Err(p) => last = p.log(),
            }
        }
        panic!("git daemon did not start: {last}");
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://{}:{}/{name}", self.host, self.port)
    }
}

/// Incompressible-ish text that changes with `seed`.
pub fn noise(seed: u64, len: usize) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

/// The batch API and the downloads of an LFS server, as a CGI script:
/// objects are files named by their id in `LFS_STORE`; each request is
/// noted in `LFS_LOG` (`<seconds since 1970> <method> <path> auth=...`). A download must carry the header the batch answer
/// gave for it. While the store holds a file `SLOW`, downloads trickle
/// (16 KiB every 50 ms). A file `FLAKY` holding `<how> <count> <which>`
/// makes the next `count` requests (`which`: `batch`, `download` or
/// `any`) fail: `how` is an HTTP status (429 says `Retry-After: 1`), or
/// `CUT` (a download sends half the object, then ends).
const LFS_CGI: &str = r#"#!/usr/bin/env python3
import fcntl, json, os, sys, time
store, uri = os.environ["LFS_STORE"], os.environ.get("REQUEST_URI", "")
with open(os.environ["LFS_LOG"], "a") as log:
    log.write("%.3f %s %s auth=%s\n" % (time.time(), os.environ.get("REQUEST_METHOD"), uri, "HTTP_AUTHORIZATION" in os.environ))
out = sys.stdout.buffer
token = os.environ.get("LFS_TOKEN")
def flaky(which):
    try:
        f = open(os.path.join(store, "FLAKY"), "r+")
    except OSError:
        return None
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        how, count, where = f.read().split()
        if where not in (which, "any") or int(count) <= 0:
            return None
        f.seek(0)
        f.truncate()
        f.write("%s %d %s" % (how, int(count) - 1, where))
        return how
how = flaky("batch" if uri.endswith("/objects/batch") else "download")
if how and how != "CUT":
    retry = "Retry-After: 1\r\n" if how == "429" else ""
    out.write(("Status: %s\r\n%sContent-Type: text/plain\r\n\r\nnot now\n" % (how, retry)).encode())
elif token and os.environ.get("HTTP_AUTHORIZATION") != "Bearer " + token:
    out.write(b"Status: 401\r\nContent-Type: application/vnd.git-lfs+json\r\n\r\n")
    out.write(b'{"message": "no valid token"}')
elif uri.endswith("/info/lfs/objects/batch"):
    asked = json.loads(sys.stdin.buffer.read(int(os.environ.get("CONTENT_LENGTH") or 0)))
    host, objects = "%s:%s" % (os.environ["SERVER_ADDR"], os.environ["SERVER_PORT"]), []
    for o in asked["objects"]:
        if os.path.exists(os.path.join(store, o["oid"])):
            href = "http://%s/lfs-objects/%s" % (host, o["oid"])
            o["actions"] = {"download": {"href": href, "header": {"X-Lfs-Ticket": "t-" + o["oid"][:8]}}}
        else:
            o["error"] = {"code": 404, "message": "Object does not exist"}
        objects.append(o)
    out.write(b"Content-Type: application/vnd.git-lfs+json\r\n\r\n")
    out.write(json.dumps({"transfer": "basic", "objects": objects}).encode())
else:
    oid = uri.rsplit("/", 1)[1]
    if os.environ.get("HTTP_X_LFS_TICKET") != "t-" + oid[:8]:
        out.write(b"Status: 403\r\nContent-Type: text/plain\r\n\r\nno ticket\n")
    else:
        with open(os.path.join(store, oid), "rb") as f:
            data = f.read()
        out.write(b"Content-Type: application/octet-stream\r\n\r\n")
        if how == "CUT":
            data = data[:len(data) // 2]
        slow = os.path.exists(os.path.join(store, "SLOW"))
        for i in range(0, len(data), 16384):
            out.write(data[i:i + 16384])
            if slow:
                out.flush()
                time.sleep(0.05)
"#;

/// How an LFS server of [`lfs_server`] checks its clients.
pub enum LfsAuth<'a> {
    /// None: anyone may download.
    Open,
    /// Basic auth for it and the git server (user `bot`).
    Password(&'a str),
    /// `Authorization: Bearer <token>` for it alone.
    Token(&'a str),
}

/// A smart-HTTP server of `srv` with an LFS server beside it: (server,
/// its object store, its request log).
pub fn lfs_server(tmp: &Path, srv: &Path, auth: LfsAuth<'_>) -> (HttpServer, PathBuf, PathBuf) {
    let (store, log, cgi) = (
        tmp.join("lfs-store"),
        tmp.join("lfs.log"),
        tmp.join("lfs.cgi"),
    );
    fs::create_dir_all(&store).unwrap();
    fs::write(&cgi, LFS_CGI).unwrap();
    fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (basic, token) = match auth {
        LfsAuth::Password(password) => {
            let htpasswd = tmp.join("htpasswd");
            fs::write(&htpasswd, format!("bot:{{PLAIN}}{password}\n")).unwrap();
            let basic = format!(
                "auth_basic \"git\";\n        auth_basic_user_file {};",
                htpasswd.display()
            );
            (basic, String::new())
        }
        LfsAuth::Token(token) => (String::new(), token.to_string()),
        LfsAuth::Open => (String::new(), String::new()),
    };
    let lfs = |pattern: &str| {
        format!(
            r#"location ~ {pattern} {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {cgi};
            fastcgi_param LFS_STORE {store};
            fastcgi_param LFS_LOG {log};
            fastcgi_param LFS_TOKEN "{token}";
            fastcgi_pass unix:{{sock}};
        }}"#,
            cgi = cgi.display(),
            store = store.display(),
            log = log.display(),
        )
    };
    let extra = format!(
        "{basic}\n        {}\n        {}",
        lfs("/info/lfs/objects/batch$"),
        lfs("^/lfs-objects/"),
    );
    (HttpServer::start_with(srv, &extra), store, log)
}

/// A proxy command for the tests (`python3 bridge.py <host> <port>
/// <file>`): writes the host and port it was
/// asked for to a file, then carries bytes between its standard input and
/// output and the server, which is on 127.0.0.1 whatever the host.
const BRIDGE: &str = r#"
import os, select, socket, sys
host, port, asked = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(asked, "a") as f:
    f.write(f"{host} {port}\n")
server = socket.create_connection(("127.0.0.1", port))
while True:
    ready, _, _ = select.select([0, server], [], [])
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            break
        server.sendall(data)
    if server in ready:
        data = server.recv(65536)
        if not data:
            break
        while data:
            data = data[os.write(1, data):]
"#;

/// [`BRIDGE`] written to `dir`; its path.
pub fn write_bridge(dir: &Path) -> PathBuf {
    let path = dir.join("bridge.py");
    fs::write(&path, BRIDGE).unwrap();
    path
}

/// The descriptors, threads and zombie children of process `pid`.
pub fn held(pid: u32) -> (usize, usize, usize) {
    let count = |dir: String| fs::read_dir(dir).map_or(0, |d| d.count());
    let zombies = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) state ppid ...": comm may hold blanks.
            let after = stat.rsplit_once(") ").map_or("", |(_, a)| a);
            let mut fields = after.split_whitespace();
            let (state, ppid) = (fields.next(), fields.next());
            state == Some("Z") && ppid == Some(&pid.to_string())
        })
        .count();
    (
        count(format!("/proc/{pid}/fd")),
        count(format!("/proc/{pid}/task")),
        zombies,
    )
}
