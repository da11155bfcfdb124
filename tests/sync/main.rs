//! The sync contract, scenario by scenario, with the real binary against
//! real repositories over file:// and smart HTTP.

#[path = "../support/mod.rs"]
mod support;

mod config_errors;
mod crash_and_disk;
mod depth;
mod failures;
mod lfs;
mod no_git;
mod root;
mod sparse;
mod submodules;
mod targets;
mod uid;
mod updates;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(60);

/// The two transports every target test runs over.
#[derive(Debug, Clone, Copy)]
enum Transport {
    File,
    Http,
}

struct Fixture {
    tmp: TempDir,
    repo: SourceRepo,
    server: Option<HttpServer>,
}

impl Fixture {
    fn new(t: Transport) -> Self {
        let (tmp, srv, repo) = temp_source("site");
        let server = match t {
            Transport::File => None,
            Transport::Http => Some(HttpServer::start(&srv)),
        };
        Fixture { tmp, repo, server }
    }

    fn url(&self) -> String {
        match &self.server {
            Some(s) => s.url("site"),
            None => self.repo.url(),
        }
    }

    fn root(&self) -> std::path::PathBuf {
        self.tmp.path().join("root")
    }

    fn link(&self) -> std::path::PathBuf {
        self.root().join("site")
    }

    /// The pack files of the store, sorted.
    fn packs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root().join(".git/objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".pack"))
            .collect();
        names.sort();
        names
    }

    /// Write `patterns` to a sparse-checkout file: the flag naming it.
    fn sparse_flag(&self, patterns: &str) -> String {
        let file = self.tmp.path().join("sparse");
        fs::write(&file, patterns).unwrap();
        format!("--sparse-checkout-file={}", file.display())
    }

    /// `--one-time` sync with extra args; asserts exit status 0.
    fn sync_once(&self, extra: &[&str]) -> String {
        let (code, log) = self.run_once(extra);
        assert_eq!(code, Some(0), "git-sync failed:\n{log}");
        log
    }

    /// A one-time run that must fail (exit 1); its log.
    fn fail_once(&self, extra: &[&str]) -> String {
        let (code, log) = self.run_once(extra);
        assert_eq!(code, Some(1), "{log}");
        log
    }

    fn run_once(&self, extra: &[&str]) -> (Option<i32>, String) {
        let url = self.url();
        let root = self.root();
        let mut args = vec![
            format!("--repo={url}"),
            format!("--root={}", root.display()),
            "--one-time".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_git_sync(&args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A long-running git-sync with a short period.
    fn daemon(&self, extra: &[&str]) -> Proc {
        let mut cmd = git_sync(&[
            &format!("--repo={}", self.url()),
            &format!("--root={}", self.root().display()),
            "--period=50ms",
            "--max-failures=-1",
        ]);
        cmd.args(extra);
        spawn(cmd)
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.link().join(file)).unwrap()
    }

    /// Dest mode's served directory.
    fn dest(&self) -> std::path::PathBuf {
        self.tmp.path().join("dest")
    }

    /// The args of git-sync in dest mode on our repository (its private
    /// state beside DEST), polling every 100ms, with `extra`.
    fn dest_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            format!("--repo={}", self.url()),
            format!("--dest={}", self.dest().display()),
            format!("--state-dir={}", self.tmp.path().join("state").display()),
            "--period=100ms".to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    fn dest_daemon(&self, extra: &[&str]) -> Proc {
        let args = self.dest_args(extra);
        spawn(git_sync(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
    }

    /// git-sync syncing our repository with `args`, as another user where
    /// the test can (uid 65534 when run as root): from a copy of the
    /// binary anyone may run, the test's directory opened up for it.
    fn as_nobody(&self, args: &[String]) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        open_up(self.tmp.path());
        let bin_copy = self.tmp.path().join("git-sync");
        if !bin_copy.exists() {
            copy_executable(&bin(), &bin_copy);
        }
        let mut c = std::process::Command::new(&bin_copy);
        c.arg(format!("--repo={}", self.url()))
            .args(args)
            .stderr(std::process::Stdio::piped());
        if is_root() {
            c.uid(65534).gid(65534);
        }
        c
    }
}

/// Give `dir` to the user of [`Fixture::as_nobody`].
fn give_to_nobody(dir: &Path) {
    if is_root() {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    }
}

/// The one line of a run refused at start (exit 1), asserted to be one.
fn one_line_error(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

fn assert_published(f: &Fixture, hash: &str) {
    assert_eq!(published(&f.link()).as_deref(), Some(hash));
    let target = fs::read_link(f.link()).unwrap();
    assert!(target.is_relative(), "link must be relative: {target:?}");
    assert_eq!(target, Path::new(".worktrees").join(hash));
}

/// Add `url` as a submodule of `repo` at `path`, and commit.
fn add_submodule(repo: &SourceRepo, url: &str, path: &str) {
    let allow = ["-c", "protocol.file.allow=always"];
    repo.git(&[&allow[..], &["submodule", "add", "-q", url, path]].concat());
    repo.git(&["commit", "-q", "-m", &format!("add {path}")]);
}

/// What `dir` holds, as git writes a tree (not following links, `.git`
/// left out): per path, its kind, whether executable, and its content or
/// a link's target.
fn as_checked_out(dir: &Path) -> std::collections::BTreeMap<Vec<u8>, (char, bool, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    fn walk(
        top: &Path,
        dir: &Path,
        out: &mut std::collections::BTreeMap<Vec<u8>, (char, bool, Vec<u8>)>,
    ) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if dir == top && p.file_name().unwrap() == ".git" {
                continue;
            }
            let rel = p.strip_prefix(top).unwrap().as_os_str().as_bytes().to_vec();
            let m = fs::symlink_metadata(&p).unwrap();
            let exec = m.permissions().mode() & 0o111 != 0;
            if m.file_type().is_symlink() {
                let target = fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec();
                out.insert(rel, ('l', false, target));
            } else if m.is_dir() {
                out.insert(rel, ('d', exec, Vec::new()));
                walk(top, &p, out);
            } else {
                out.insert(rel, ('f', exec, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A proxy to the HTTP server on `port`: its port, the bytes it has sent
/// back, and the request lines (`GET /site/info/refs?... HTTP/1.1`) it has
/// passed on.
#[allow(clippy::type_complexity)]
fn recording_proxy(
    port: u16,
) -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    let (proxied, received) = counting_proxy(port, move |_, bytes| {
        if bytes.starts_with(b"GET ") || bytes.starts_with(b"POST ") {
            let line = String::from_utf8_lossy(bytes);
            seen.lock()
                .unwrap()
                .push(line.lines().next().unwrap_or_default().into());
        }
    });
    (proxied, received, requests)
}

/// Commit `n` files all holding `version`, plus `version.txt`.
fn commit_version(repo: &SourceRepo, n: usize, version: usize) -> String {
    let content = format!("version {version}\n");
    let files: Vec<(String, String)> = (0..n)
        .map(|i| (format!("d{}/f{i}.txt", i % 20), content.clone()))
        .chain([("version.txt".to_string(), content.clone())])
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    repo.commit(&refs, &format!("version {version}"))
}
