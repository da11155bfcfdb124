//! The sync contract, scenario by scenario, with the real binary against
//! real repositories over file:// and smart HTTP.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(60);

/// The two transports every target test runs over.
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

fn assert_published(f: &Fixture, hash: &str) {
    assert_eq!(published(&f.link()).as_deref(), Some(hash));
    let target = fs::read_link(f.link()).unwrap();
    assert!(target.is_relative(), "link must be relative: {target:?}");
    assert_eq!(target, Path::new(".worktrees").join(hash));
}

// ---- first sync, targets -------------------------------------------------

#[test]
fn git_protocol_first_sync_and_update() {
    let f = Fixture::new(Transport::File);
    let daemon = GitDaemon::start(&f.tmp.path().join("srv"));
    let args = [
        format!("--repo={}", daemon.url("site")),
        format!("--root={}", f.root().display()),
        "--one-time".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for text in ["over git:// 1", "over git:// 2"] {
        let h = f.repo.commit(&[("index.html", text)], text);
        let out = run_git_sync(&args);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{log}");
        assert_published(&f, &h);
        assert_eq!(f.read("index.html"), text);
    }
}

#[test]
fn git_protocol_to_an_ipv6_literal() {
    // libgit2 names the host in git://'s request as the URL up to its
    // first colon, "[" here, which git daemon refuses.
    let f = Fixture::new(Transport::File);
    let daemon = GitDaemon::start_at(&f.tmp.path().join("srv"), "::1");
    let h = f.repo.commit(&[("index.html", "over IPv6")], "v6");
    let out = run_git_sync(&[
        &format!("--repo={}", daemon.url("site")),
        &format!("--root={}", f.root().display()),
        "--one-time",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_published(&f, &h);
    assert_eq!(f.read("index.html"), "over IPv6");
}

#[test]
fn a_git_protocol_poll_or_update_of_a_repository_with_many_refs_asks_for_what_it_needs() {
    // libgit2 sends git's daemon no protocol version: every poll, and
    // every fetch, would receive all 3,000 refs (about 200 KB). Once it
    // saw them, a poll asks with protocol v2 for the ref it needs, and an
    // update fetches the commit on that same connection.
    use std::sync::atomic::Ordering::SeqCst;
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "one")], "one");
    f.repo.add_pull_refs(3_000);
    let daemon = GitDaemon::start(&f.tmp.path().join("srv"));
    let connections = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let seen = connections.clone();
    let (port, received) = counting_proxy(daemon.port, move |n, _| {
        seen.lock().unwrap().insert(n);
    });
    let mut p = spawn(git_sync(&[
        &format!("--repo=git://127.0.0.1:{port}/site"),
        &format!("--root={}", f.root().display()),
        "--period=1h",
        "--sync-on-signal=SIGHUP",
        "-v=5",
    ]));
    p.wait_for(LONG, "the first sync", || published(&f.link()).is_some());
    // One pass, started by the signal: the bytes and connections it took.
    let pass = |p: &mut Proc, done: &dyn Fn(&str) -> bool| {
        let (bytes, conns) = (received.load(SeqCst), connections.lock().unwrap().len());
        signal(&p.child, libc::SIGHUP);
        p.wait_log(LONG, "the pass", done);
        // (The proxy counts what it has passed on, right after.)
        std::thread::sleep(Duration::from_millis(100));
        let conns_now = connections.lock().unwrap().len();
        (received.load(SeqCst) - bytes, conns_now - conns)
    };
    let polls = |log: &str| log_lines_with(log, "no change");
    pass(&mut p, &|l| polls(l) >= 1);
    let (poll_bytes, poll_connections) = pass(&mut p, &|l| polls(l) >= 2);
    let head = f.repo.commit(&[("index.html", "two")], "two");
    let published_head = format!("\"remote\":\"{head}\"");
    let (update_bytes, update_connections) = pass(&mut p, &|l| l.contains(&published_head));
    assert_eq!(published(&f.link()).as_deref(), Some(head.as_str()));
    assert_eq!(f.read("index.html"), "two");
    let log = p.log();
    let v2 = log
        .lines()
        .any(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2"));
    assert!(v2, "{log}");
    assert!(poll_bytes < 4_000, "{poll_bytes} bytes for a poll");
    assert_eq!(poll_connections, 1);
    assert!(update_bytes < 8_000, "{update_bytes} bytes for an update");
    assert_eq!(update_connections, 1, "{log}");
}

fn first_sync(t: Transport) {
    let f = Fixture::new(t);
    let h = f
        .repo
        .commit(&[("index.html", "hello 1"), ("a/b/c.txt", "deep")], "one");
    f.sync_once(&[]);
    assert_published(&f, &h);
    assert_eq!(f.read("index.html"), "hello 1");
    assert_eq!(f.read("a/b/c.txt"), "deep");
    // A real linked worktree: git works in it.
    assert_eq!(git(&f.link(), &["rev-parse", "HEAD"]), h);
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
    assert_eq!(
        git(&f.root(), &["rev-parse", "--abbrev-ref", "HEAD"]),
        "git-sync"
    );
}

#[test]
fn first_sync_file() {
    first_sync(Transport::File);
}

#[test]
fn first_sync_http() {
    first_sync(Transport::Http);
}

fn targets(t: Transport) {
    let f = Fixture::new(t);
    let c1 = f.repo.commit(&[("f", "1")], "c1");
    f.repo.git(&["tag", "light"]);
    f.repo
        .git(&["tag", "-a", "annotated", "-m", "an annotated tag"]);
    let c2 = f.repo.commit(&[("f", "2")], "c2");
    f.repo.git(&["checkout", "-q", "-b", "other"]);
    let c3 = f.repo.commit(&[("f", "3")], "c3");
    f.repo.git(&["checkout", "-q", "main"]);
    let c4 = f.repo.commit(&[("f", "4")], "c4");

    f.sync_once(&["--ref=light"]);
    assert_published(&f, &c1);
    f.sync_once(&["--ref=annotated"]);
    assert_published(&f, &c1);
    f.sync_once(&["--ref=other"]);
    assert_published(&f, &c3);
    assert_eq!(f.read("f"), "3");
    f.sync_once(&["--ref=HEAD"]);
    assert_published(&f, &c4);
    f.sync_once(&["--ref=refs/heads/main"]);
    assert_published(&f, &c4);
    f.sync_once(&[&format!("--ref={c2}")]);
    assert_published(&f, &c2);
    assert_eq!(f.read("f"), "2");
    // Other refs by the end of their name, as `git ls-remote` matches
    // them: GitHub's pull request heads, `heads/...`, `tags/...`.
    f.repo.git(&["update-ref", "refs/pull/5/head", &c3]);
    f.sync_once(&["--ref=pull/5/head"]);
    assert_published(&f, &c3);
    f.sync_once(&["--ref=heads/main"]);
    assert_published(&f, &c4);
    f.sync_once(&["--ref=tags/annotated"]);
    assert_published(&f, &c1);
    // The default ref is HEAD (the remote's default branch).
    f.sync_once(&[]);
    assert_published(&f, &c4);
    // A tag may name a tree: refused, saying so, the published tree kept.
    f.repo
        .git(&["tag", "-a", "a-tree", "-m", "a tree", "HEAD^{tree}"]);
    let log = f.fail_once(&["--ref=a-tree"]);
    assert!(
        log.contains("refs/tags/a-tree") && log.contains("is a tree, not a commit"),
        "{log}"
    );
    assert_published(&f, &c4);
}

#[test]
fn targets_file() {
    targets(Transport::File);
}

#[test]
fn targets_http() {
    targets(Transport::Http);
}

#[test]
fn a_url_rewritten_by_insteadof_is_synced_from_where_it_points() {
    // A local repository behind a network URL: read in process like any
    // local one (libgit2's local transport cannot fetch shallow).
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    let out = run_git_sync(&[
        "--repo=https://git.example.invalid/site",
        &format!("--root={}", f.root().display()),
        "--link=site",
        "--one-time",
        &format!(
            r#"--git-config="url.{}.insteadOf":https://git.example.invalid/site"#,
            f.url()
        ),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        published(&f.root().join("site")).as_deref(),
        Some(h.as_str())
    );
}

#[test]
fn the_store_bounds_the_delta_window_unless_told_otherwise() {
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("f", "1")], "c1");
    f.sync_once(&[]);
    assert_eq!(
        git(&f.root(), &["config", "pack.windowMemory"]).trim(),
        "2m"
    );
    let log = f.sync_once(&["--git-config=pack.windowMemory:0"]);
    assert_eq!(git(&f.root(), &["config", "pack.windowMemory"]).trim(), "0");
    assert!(!log.contains("without effect"), "{log}");
}

#[test]
fn git_config_for_the_git_cli_is_recorded_and_said_to_have_no_effect() {
    // upstream's e2e passes these; a git binary in a hook reads them.
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("f", "1")], "c1");
    let log = f.sync_once(&[
        r#"--git-config=http.postBuffer:10485760,sect.k1:"a val",sect.k2:another val"#,
        // One that changes how a remote is reached is warned about too.
        r#"--git-config-add="http.https://git.example.com/.sslCert":/etc/git-secret/client.pem"#,
    ]);
    let warned = log
        .lines()
        .find(|l| l.contains("not supported here"))
        .unwrap_or_else(|| panic!("no warning about http.<url>.sslCert: {log}"));
    assert!(warned.contains("for some servers only is not"), "{warned}");
    let said = log
        .lines()
        .find(|l| l.contains("without effect here"))
        .unwrap_or_else(|| panic!("no line about keys without effect: {log}"));
    for key in ["http.postBuffer", "sect.k1", "sect.k2"] {
        assert!(said.contains(key), "{said}");
    }
    let root = f.root();
    assert_eq!(git(&root, &["config", "sect.k1"]).trim(), "a val");
    assert_eq!(git(&root, &["config", "sect.k2"]).trim(), "another val");
    // A later start without them: gone (the file is written whole).
    f.sync_once(&[]);
    let all = git(&root, &["config", "--list"]);
    assert!(!all.contains("sect.k1"), "{all}");
}

#[test]
fn an_empty_repository_is_said_to_have_no_commits() {
    for t in [Transport::File, Transport::Http] {
        let f = Fixture::new(t);
        let log = f.fail_once(&[]);
        assert!(log.contains("no commits yet"), "{log}");
        assert!(!f.link().exists());
        // Its first commit is published by the next run.
        let h = f.repo.commit(&[("f", "1")], "c1");
        f.sync_once(&[]);
        assert_published(&f, &h);
    }
}

#[test]
fn unknown_ref_fails_and_says_so() {
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    let fails_saying = |git_ref: &str, what: &str| {
        let log = f.fail_once(&[&format!("--ref={git_ref}")]);
        assert!(log.contains(git_ref) && log.contains(what), "{log}");
        assert!(!f.link().exists());
    };
    fails_saying("nope", "not found");
    // A name that ends several refs is not guessed at.
    f.repo.git(&["update-ref", "refs/pull/1/head", &h]);
    f.repo.git(&["update-ref", "refs/pull/2/head", &h]);
    fails_saying(
        "head",
        "refs/pull/1/head, refs/pull/2/head; give the full name",
    );
    // An abbreviated hash: say what to give instead.
    fails_saying(&h[..8], "give all 40 characters");
    // A clone's remote-tracking name: likewise.
    fails_saying("origin/main", "give the remote's own name");
}

#[test]
fn http_servers_that_are_not_git_servers_are_told_apart() {
    // One nginx: a bare repository served as plain files (git's "dumb"
    // protocol, which libgit2 does not speak), a login page, nothing.
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.commit(&[("f", "1")], "one");
    let docroot = tmp.path().join("docroot");
    fs::create_dir(&docroot).unwrap();
    git(
        tmp.path(),
        &["clone", "-q", "--bare", &repo.url(), "docroot/site.git"],
    );
    git(&docroot.join("site.git"), &["update-server-info"]);
    open_up(&docroot);
    run_ok(
        std::process::Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&docroot),
    );
    let nginx = Nginx::start(
        &format!(
            "root {};\n        location /login/ {{ default_type text/html; return 200 \"<html>sign in</html>\"; }}\n        \
             location / {{ try_files $uri =404; }}",
            docroot.display()
        ),
        "www-data www-data",
    );
    let cases = [
        (
            "site.git",
            "is not supported; serve the repository with git http-backend",
        ),
        ("login/site.git", "answered with a web page, not git"),
        ("absent.git", "no repository at this URL"),
    ];
    for (i, (path, why)) in cases.iter().enumerate() {
        let root = tmp.path().join(format!("root{i}"));
        let out = run_git_sync(&[
            &format!("--repo=http://127.0.0.1:{}/{path}", nginx.port),
            &format!("--root={}", root.display()),
            "--one-time",
        ]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{log}");
        assert!(log.contains(why), "{path}: {log}");
        assert!(!root.join("site.git").exists(), "{path}");
    }
}

// ---- updates, no-ops, history rewrites ---------------------------------

fn update_and_noop(t: Transport) {
    let f = Fixture::new(t);
    let h1 = f
        .repo
        .commit(&[("index.html", "v1"), ("gone.txt", "x")], "one");
    let touch = f.tmp.path().join("touched");
    let mut d = f.daemon(&["-v=1", &format!("--touch-file={}", touch.display())]);
    d.wait_for(LONG, "first publish and touch", || {
        published(&f.link()).as_deref() == Some(&h1) && touch.exists()
    });
    let touched_at = fs::metadata(&touch).unwrap().modified().unwrap();

    // No-op polls: nothing is fetched or touched.
    wait_until(LONG, "several no-op polls", || {
        log_lines_with(&d.log(), "no change") >= 5
    });
    assert_eq!(
        fs::metadata(&touch).unwrap().modified().unwrap(),
        touched_at
    );
    assert_eq!(log_lines_with(&d.log(), "updated successfully"), 1);

    fs::remove_file(f.repo.dir.join("gone.txt")).unwrap();
    let h2 = f.repo.commit(&[("index.html", "v2")], "two");
    d.wait_for(LONG, "update", || {
        published(&f.link()).as_deref() == Some(&h2)
    });
    assert_eq!(f.read("index.html"), "v2");
    assert!(!f.link().join("gone.txt").exists());
    assert!(fs::metadata(&touch).unwrap().modified().unwrap() >= touched_at);
    d.wait_log(LONG, "the update's log line", |l| {
        log_lines_with(l, "updated successfully") == 2
    });
    let noops = log_lines_with(&d.log(), "no change");
    d.wait_log(LONG, "more no-op polls", |l| {
        log_lines_with(l, "no change") >= noops + 3
    });
    assert_eq!(
        log_lines_with(&d.log(), "updated successfully"),
        2,
        "{}",
        d.log()
    );
    d.kill9();

    // A restart with nothing new touches it once, as upstream: a process
    // killed between the swap and the touch leaves no update unannounced.
    fs::remove_file(&touch).unwrap();
    let mut d = f.daemon(&["-v=1", &format!("--touch-file={}", touch.display())]);
    d.wait_for(LONG, "the touch after the restart", || touch.exists());
    d.wait_log(LONG, "no-op polls", |l| log_lines_with(l, "no change") >= 3);
    let touched_at = fs::metadata(&touch).unwrap().modified().unwrap();
    d.wait_log(LONG, "more no-op polls", |l| {
        log_lines_with(l, "no change") >= 6
    });
    assert_eq!(
        fs::metadata(&touch).unwrap().modified().unwrap(),
        touched_at,
        "no-op polls touch nothing"
    );
    assert_eq!(log_lines_with(&d.log(), "updated successfully"), 0);
    d.kill9();
}

#[test]
fn a_touch_file_that_cannot_be_made_is_logged_and_the_sync_goes_on() {
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("index.html", "v1")], "one");
    let blocker = f.tmp.path().join("a-file");
    fs::write(&blocker, "").unwrap();
    let touch = blocker.join("touched");
    let mut d = f.daemon(&[&format!("--touch-file={}", touch.display())]);
    d.wait_log(LONG, "the failed touch", |l| {
        log_lines_with(l, "failed to touch touch-file") == 1
    });
    assert_eq!(published(&f.link()).as_deref(), Some(h1.as_str()));
    let h2 = f.repo.commit(&[("index.html", "v2")], "two");
    d.wait_for(LONG, "the next commit", || {
        published(&f.link()).as_deref() == Some(&h2)
    });
    assert_eq!(failed_passes(&d.log()), 0, "{}", d.log());
    d.wait_log(LONG, "the second failed touch", |l| {
        log_lines_with(l, "failed to touch touch-file") == 2
    });
    d.kill9();
}

#[test]
fn update_and_noop_file() {
    update_and_noop(Transport::File);
}

#[test]
fn update_and_noop_http() {
    update_and_noop(Transport::Http);
}

#[test]
fn an_update_writes_only_what_changed_and_is_still_the_commit() {
    // Unchanged files are shared with the previous tree (hard links, the
    // same inode) instead of written again; the new tree must still be
    // exactly its commit, as git sees it, whatever changed: content, mode,
    // a symlink's target, a file becoming a directory and the reverse, and
    // a file edited in place in the published tree (as a hook might).
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    let f = Fixture::new(Transport::File);
    let src = &f.repo.dir;
    let files = [
        ("a.txt", "a1"),
        ("dir/b.txt", "b"),
        ("exec.sh", "#!/bin/sh\n"),
        ("keep/same.txt", "same"),
        ("keep/edited.txt", "committed"),
        ("was_file", "f"),
        ("was_dir/x", "x"),
    ];
    for (path, content) in files {
        fs::create_dir_all(src.join(path).parent().unwrap()).unwrap();
        fs::write(src.join(path), content).unwrap();
    }
    // Most files stay as they are, as in most updates.
    for n in 0..20 {
        fs::write(src.join(format!("keep/{n}.txt")), n.to_string()).unwrap();
    }
    fs::set_permissions(src.join("exec.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("a.txt", src.join("link")).unwrap();
    f.repo.commit(&[], "c1");
    f.sync_once(&[]);
    let ino = |p: &str| fs::symlink_metadata(f.link().join(p)).unwrap().ino();
    let same = ino("keep/same.txt");
    let mut edit = fs::OpenOptions::new()
        .append(true)
        .open(f.link().join("keep/edited.txt"))
        .unwrap();
    std::io::Write::write_all(&mut edit, b" and edited").unwrap();
    let edited = ino("keep/edited.txt");

    fs::remove_file(src.join("dir/b.txt")).unwrap();
    fs::set_permissions(src.join("exec.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(src.join("link")).unwrap();
    symlink("keep/same.txt", src.join("link")).unwrap();
    fs::remove_file(src.join("was_file")).unwrap();
    fs::remove_dir_all(src.join("was_dir")).unwrap();
    let h2 = f.repo.commit(
        &[
            ("a.txt", "a2"),
            ("was_file/inner", "i"),
            ("was_dir", "now a file"),
            ("new/c.txt", "c"),
        ],
        "c2",
    );
    f.sync_once(&[]);
    assert_published(&f, &h2);
    let status = ["status", "--porcelain", "--untracked-files=all"];
    assert_eq!(git(&f.link(), &status), "");
    assert_eq!(ino("keep/same.txt"), same, "an unchanged file is shared");
    assert_eq!(f.read("keep/edited.txt"), "committed");
    assert_ne!(ino("keep/edited.txt"), edited);
    assert_eq!(f.read("link"), "same");

    // A tree made by sharing vouches for its files in turn.
    let h3 = f.repo.commit(&[("a.txt", "a3")], "c3");
    f.sync_once(&[]);
    assert_published(&f, &h3);
    assert_eq!(git(&f.link(), &status), "");
    assert_eq!(ino("keep/same.txt"), same);
    assert_eq!(f.read("a.txt"), "a3");
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

#[test]
fn a_checkout_is_what_git_checks_out() {
    // git-sync writes plain trees itself rather than through libgit2's
    // checkout: every kind of entry must come out as git writes it, with
    // an index that finds the tree clean.
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, PermissionsExt};
    let f = Fixture::new(Transport::File);
    let src = &f.repo.dir;
    let files: [(&[u8], &[u8]); 9] = [
        (b"index.html", b"<p>hi</p>\n"),
        (b"empty", b""),
        (b"bin/run.sh", b"#!/bin/sh\necho run\n"),
        (b"deep/a/b/c/d/e.txt", b"deep"),
        (b"with space.txt", b"s"),
        ("\u{fc}n\u{ef}c\u{f6}d\u{e9}.txt".as_bytes(), b"u"),
        (b"latin\xe9.txt", b"not UTF-8"),
        (b".github/workflow.yml", b"on: push"),
        (b"crlf.txt", b"a\r\nb\r\n"),
    ];
    for (path, content) in files {
        let p = src.join(std::ffi::OsStr::from_bytes(path));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
    }
    fs::set_permissions(src.join("bin/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("index.html", src.join("link")).unwrap();
    symlink("nowhere", src.join("dangling")).unwrap();
    symlink("deep/a", src.join("dirlink")).unwrap();
    symlink("../../index.html", src.join("deep/a/up")).unwrap();
    let h1 = f.repo.commit(&[], "all kinds");
    f.sync_once(&[]);
    assert_published(&f, &h1);

    let theirs = f.tmp.path().join("git-clone");
    git(
        f.tmp.path(),
        &["clone", "-q", &f.repo.url(), theirs.to_str().unwrap()],
    );
    let (ours, theirs) = (as_checked_out(&f.link()), as_checked_out(&theirs));
    assert_eq!(ours.len(), 20, "7 directories, 9 files, 4 links");
    assert_eq!(ours, theirs);
    let status = ["status", "--porcelain", "--untracked-files=all"];
    assert_eq!(git(&f.link(), &status), "");
}

#[test]
fn a_tree_kept_for_a_commit_is_published_again_as_it_is_only_if_intact() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(Transport::File);
    let keep = ["--stale-worktree-grace=60s"];
    let h1 = f.repo.commit_numbered("", 5, &[], "c1");
    f.sync_once(&keep);
    let ino = |p: &str| fs::metadata(f.link().join(p)).unwrap().ino();
    let first = ino("0.txt");
    let h2 = f.repo.commit(&[("0.txt", "changed")], "c2");
    f.sync_once(&keep);

    // The ref moves back while c1's tree is still kept: that very tree.
    f.repo.git(&["reset", "-q", "--hard", &h1]);
    f.sync_once(&keep);
    assert_published(&f, &h1);
    assert_eq!(ino("0.txt"), first);
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");

    // And forward again, to a kept tree changed meanwhile: made anew.
    let kept = f.root().join(".worktrees").join(&h2);
    fs::write(kept.join("0.txt"), "damaged").unwrap();
    f.repo.git(&["reset", "-q", "--hard", &h2]);
    f.sync_once(&keep);
    assert_published(&f, &h2);
    assert_eq!(f.read("0.txt"), "changed");
    // An extra file is a change too.
    f.repo.git(&["reset", "-q", "--hard", &h1]);
    fs::write(f.root().join(".worktrees").join(&h1).join("extra"), "x").unwrap();
    f.sync_once(&keep);
    assert_published(&f, &h1);
    assert!(!f.link().join("extra").exists());
}

#[test]
fn dest_mode_after_a_restart_publishes_the_tree_it_made_before() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(Transport::File);
    f.repo.commit_numbered("", 5, &[], "c1");
    let (dest, state) = (f.dest(), f.tmp.path().join("state"));
    // The tree published before stays, for what it shares.
    let args = f.dest_args(&["--one-time", "--stale-worktree-timeout=1h"]);
    let run = || {
        let out = run_git_sync(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    };
    let private_ino = || {
        let trees = state.join(".worktrees");
        let tree = fs::read_dir(&trees)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        fs::metadata(tree.join("0.txt")).unwrap().ino()
    };
    run();
    let made = private_ino();
    fs::remove_file(dest.join("1.txt")).unwrap();
    run();
    assert_eq!(private_ino(), made, "not checked out again");
    assert_eq!(
        fs::read_to_string(dest.join("1.txt")).unwrap(),
        "1",
        "repaired"
    );
    // The next commit's tree, made by the next start, shares the files it
    // did not change with that one, as in link mode.
    let h2 = f.repo.commit(&[("1.txt", "changed")], "c2");
    run();
    let shared = fs::metadata(state.join(".worktrees").join(h2).join("0.txt")).unwrap();
    assert_eq!(shared.nlink(), 2, "0.txt written again");
    assert_eq!(fs::read_to_string(dest.join("1.txt")).unwrap(), "changed");
}

/// Wait until `p` has logged `n` published updates (the log line comes
/// once the publish is whole, as a file of it would not say).
fn wait_updates(p: &mut Proc, n: usize) {
    p.wait_log(Duration::from_secs(30), &format!("{n} updates"), |log| {
        log_lines_with(log, "updated successfully") >= n
    });
}

#[test]
fn dest_mode_updates_copy_only_what_each_commit_changed() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(Transport::File);
    let src = &f.repo.dir;
    let h1 = f.repo.commit(
        &[
            ("site/a.txt", "a1"),
            ("site/b.txt", "b"),
            ("gone/deep/x.txt", "x"),
            ("was_file", "f"),
            ("was_dir/inner.txt", "i"),
            ("run.sh", "echo"),
        ],
        "c1",
    );
    std::os::unix::fs::symlink("site/a.txt", src.join("link")).unwrap();
    f.repo.git(&["add", "link"]);
    f.repo.git(&["commit", "-q", "-m", "link"]);
    let dest = f.dest();
    let mut p = f.dest_daemon(&[]);
    wait_updates(&mut p, 1);
    assert_eq!(as_checked_out(&dest), as_checked_out(src), "{h1}");

    // A file the next commit leaves alone is not even read: an edit made
    // behind our back stays until a restart compares every file.
    fs::write(dest.join("site/b.txt"), "edited in the volume").unwrap();
    fs::write(src.join("site/a.txt"), "a2").unwrap();
    fs::remove_dir_all(src.join("gone")).unwrap();
    fs::remove_file(src.join("was_file")).unwrap();
    fs::remove_dir_all(src.join("was_dir")).unwrap();
    fs::remove_file(src.join("link")).unwrap();
    std::os::unix::fs::symlink("site/b.txt", src.join("link")).unwrap();
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    f.repo.commit(
        &[
            ("was_file/now_dir.txt", "d"),
            ("was_dir", "now a file"),
            ("new/deep/n.txt", "n"),
        ],
        "c2",
    );
    wait_updates(&mut p, 2);
    let mut expected = as_checked_out(src);
    expected.insert(
        b"site/b.txt".to_vec(),
        ('f', false, b"edited in the volume".to_vec()),
    );
    let after = as_checked_out(&dest);
    assert_eq!(after, expected);
    drop(p);

    let one_time = f.dest_args(&["--one-time"]);
    let out = run_git_sync(&one_time.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(as_checked_out(&dest), as_checked_out(src), "repaired");
}

/// The names in dest mode's private `.worktrees`.
fn private_trees(f: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(f.tmp.path().join("state/.worktrees"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn dest_mode_moves_its_private_tree_forward_rather_than_making_another() {
    // Readers are served a copy: the tree the copy is made from is the
    // previous one advanced in place, its unchanged files left as they
    // are (a one-file commit to a large site writes one file, not a link
    // per file, and removes nothing but that file).
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(Transport::File);
    let src = &f.repo.dir;
    let h1 = f.repo.commit(
        &[
            ("keep/k.txt", "k"),
            ("site/a.txt", "a1"),
            ("gone/deep/x.txt", "x"),
            ("was_file", "f"),
        ],
        "c1",
    );
    let dest = f.dest();
    let mut p = f.dest_daemon(&[]);
    wait_updates(&mut p, 1);
    assert_eq!(private_trees(&f), std::slice::from_ref(&h1));
    let private = |h: &str| f.tmp.path().join("state/.worktrees").join(h);
    let kept = fs::metadata(private(&h1).join("keep/k.txt")).unwrap().ino();
    let tree_dir = fs::metadata(private(&h1)).unwrap().ino();

    let mut head = h1;
    let edits: [&dyn Fn(); 3] = [
        &|| {
            fs::write(src.join("site/a.txt"), "a2").unwrap();
            fs::remove_dir_all(src.join("gone")).unwrap();
        },
        &|| {
            fs::remove_file(src.join("was_file")).unwrap();
            fs::create_dir(src.join("was_file")).unwrap();
            fs::write(src.join("was_file/now.txt"), "d").unwrap();
            fs::write(src.join("site/new.txt"), "n").unwrap();
        },
        &|| fs::remove_file(src.join("site/a.txt")).unwrap(),
    ];
    for (i, edit) in edits.iter().enumerate() {
        edit();
        f.repo.git(&["add", "-A"]);
        f.repo.git(&["commit", "-q", "-m", &format!("edit {i}")]);
        let h = f.repo.head();
        wait_updates(&mut p, i + 2);
        assert_eq!(private_trees(&f), std::slice::from_ref(&h), "{}", p.log());
        // The same directory, renamed; its unchanged file left as it was.
        let dir = fs::metadata(private(&h)).unwrap().ino();
        let meta = fs::metadata(private(&h).join("keep/k.txt")).unwrap();
        assert_eq!((dir, meta.ino(), meta.nlink()), (tree_dir, kept, 1));
        assert_eq!(git(&private(&h), &["status", "--porcelain"]), "");
        assert_eq!(git(&private(&h), &["rev-parse", "HEAD"]).trim(), h);
        assert_eq!(as_checked_out(&private(&h)), as_checked_out(src));
        assert_eq!(as_checked_out(&dest), as_checked_out(src));
        assert_ne!(h, head);
        head = h;
    }
}

#[test]
fn dest_mode_kill_9_while_moving_its_tree_forward_then_restart_converges() {
    // Each round: a daemon catches up, a commit comes (every file changed,
    // or one), and the daemon is killed at some moment of moving its
    // private tree forward and copying into DEST. A last run repairs all.
    let f = Fixture::new(Transport::File);
    const N: usize = 2000;
    commit_version(&f.repo, N, 0);
    let dest = f.dest();
    let src = &f.repo.dir;
    let caught_up = || {
        let read = |d: &Path| fs::read_to_string(d.join("version.txt")).ok();
        read(&dest).is_some() && read(&dest) == read(src)
    };
    for (round, delay_ms) in [2u64, 5, 10, 20, 35, 50, 80, 120].into_iter().enumerate() {
        let mut d = f.dest_daemon(&[]);
        d.wait_for(LONG, "caught up", caught_up);
        if round % 2 == 0 {
            commit_version(&f.repo, N, round + 1);
        } else {
            let text = format!("tweak {round}\n");
            f.repo
                .commit(&[("d0/f0.txt", &text), ("version.txt", &text)], "tweak");
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill9();
    }
    let args = f.dest_args(&["--one-time"]);
    let out = run_git_sync(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(as_checked_out(&dest), as_checked_out(src));
    let trees = private_trees(&f);
    assert_eq!(trees, [f.repo.head()], "one private tree, whole");
    let private = f.tmp.path().join("state/.worktrees").join(&trees[0]);
    assert_eq!(git(&private, &["status", "--porcelain"]), "");
}

#[test]
fn dest_mode_removes_a_previous_private_tree_without_a_grace() {
    // Link mode keeps a retired tree --stale-worktree-grace (5s) for
    // readers that resolved the link just before the swap; dest mode's
    // readers read a copy. (A pre-publish hook: the tree is made anew.)
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "c1");
    let mut p = f.dest_daemon(&["--pre-publish-exechook-command=true"]);
    wait_updates(&mut p, 1);
    let h2 = f.repo.commit(&[("index.html", "v2")], "c2");
    wait_updates(&mut p, 2);
    p.wait_for(Duration::from_secs(2), "the old tree removed", || {
        private_trees(&f) == std::slice::from_ref(&h2)
    });
}

#[test]
fn dest_mode_leaves_the_tree_an_exechook_is_in_as_it_is() {
    // The hook of one commit may still run (here, wait) while the next is
    // published: its tree is not the one moved forward.
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("index.html", "v1")], "c1");
    let (gate, record) = (f.tmp.path().join("gate"), f.tmp.path().join("record"));
    let hook = f.tmp.path().join("hook");
    script(
        &hook,
        &format!(
            "i=0; while [ ! -e {gate} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n\
             echo \"$(cat index.html) $(basename \"$(pwd -P)\")\" >> {record}",
            gate = gate.display(),
            record = record.display()
        ),
    );
    let mut p = f.dest_daemon(&[&format!("--exechook-command={}", hook.display())]);
    wait_updates(&mut p, 1);
    let h2 = f.repo.commit(&[("index.html", "v2")], "c2");
    wait_updates(&mut p, 2);
    fs::write(&gate, "").unwrap();
    p.wait_for(Duration::from_secs(30), "both hooks", || {
        fs::read_to_string(&record).is_ok_and(|r| r.lines().count() == 2)
    });
    let record = fs::read_to_string(&record).unwrap();
    assert_eq!(record, format!("v1 {h1}\nv2 {h2}\n"));
}

#[test]
fn dest_mode_publishes_what_a_pre_publish_hook_made() {
    // The hook may write files no commit tracks (a build step): every
    // file is compared for DEST, not only the paths the commit changed.
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "c1");
    let hook = f.tmp.path().join("hook");
    script(&hook, "cat index.html > built.txt");
    let dest = f.dest();
    let mut p = f.dest_daemon(&[&format!(
        "--pre-publish-exechook-command={}",
        hook.display()
    )]);
    wait_updates(&mut p, 1);
    assert_eq!(fs::read_to_string(dest.join("built.txt")).unwrap(), "v1");
    f.repo.commit(&[("index.html", "v2")], "c2");
    wait_updates(&mut p, 2);
    assert_eq!(fs::read_to_string(dest.join("built.txt")).unwrap(), "v2");
}

#[test]
fn dest_mode_follows_sparse_patterns_edited_under_a_running_daemon() {
    // The same commit checked out again another way: DEST is compared
    // file by file, as no path of the commit changed.
    let f = Fixture::new(Transport::File);
    f.repo
        .commit(&[("docs/d.md", "d"), ("src/s.rs", "s")], "tree");
    let patterns = f.tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let dest = f.dest();
    let mut p = f.dest_daemon(&[&format!("--sparse-checkout-file={}", patterns.display())]);
    wait_updates(&mut p, 1);
    assert!(dest.join("docs/d.md").exists() && !dest.join("src").exists());
    fs::write(&patterns, "/src/\n").unwrap();
    wait_updates(&mut p, 2);
    assert!(dest.join("src/s.rs").exists(), "{}", p.log());
    assert!(!dest.join("docs").exists());
}

#[test]
fn a_damaged_index_of_the_published_tree_means_a_full_checkout_not_a_failure() {
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("a.txt", "a"), ("b.txt", "b")], "c1");
    f.sync_once(&[]);
    let index = f.root().join(".git/worktrees").join(&h1).join("index");
    fs::write(&index, "not an index").unwrap();
    let h2 = f.repo.commit(&[("a.txt", "a2")], "c2");
    let log = f.sync_once(&[]);
    assert_published(&f, &h2);
    assert_eq!(
        (f.read("a.txt"), f.read("b.txt")),
        ("a2".into(), "b".into())
    );
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
    assert!(log.contains("cannot be read"), "{log}");
}

#[test]
fn a_pre_publish_hook_works_in_a_tree_that_shares_nothing_with_the_published_one() {
    // The hook runs in the new tree before the swap and may edit a file in
    // place; with that file shared, readers of the published tree would see
    // the edit (or a truncated file) before the swap.
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit_numbered("keep", 20, &[("b.txt", "b")], "c1");
    let hook = f.tmp.path().join("hook");
    script(&hook, "if [ -f marker ]; then echo edited >> b.txt; fi");
    let hook = format!("--pre-publish-exechook-command={}", hook.display());
    f.sync_once(&[&hook]);
    f.repo.commit(&[("marker", "")], "c2");
    f.sync_once(&[&hook, "--stale-worktree-grace=60s"]);
    assert_eq!(f.read("b.txt"), "bedited\n");
    let old = f.root().join(".worktrees").join(&h1).join("b.txt");
    assert_eq!(fs::read_to_string(old).unwrap(), "b");
}

fn large_files_are_streamed_from_the_pack(t: Transport) {
    // Files of 4 MiB and more are written from the pack a chunk at a
    // time (their memory does not grow with them); the tree is still
    // exactly the commit: bytes, modes, index.
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(t);
    let src = &f.repo.dir;
    let (big, tool) = (noise(1, 5 << 20), noise(2, (4 << 20) + 1));
    fs::create_dir_all(src.join("media")).unwrap();
    fs::write(src.join("media/big.bin"), &big).unwrap();
    fs::write(src.join("run.bin"), &tool).unwrap();
    fs::set_permissions(src.join("run.bin"), fs::Permissions::from_mode(0o755)).unwrap();
    // Attributes do not stop streaming, but a file they filter is written
    // as they say.
    let notes: String = noise(3, 5 << 20)
        .as_bytes()
        .chunks(100)
        .map(|line| format!("{}\n", String::from_utf8_lossy(line)))
        .collect();
    fs::write(src.join("notes.txt"), &notes).unwrap();
    let attributes = "*.txt text eol=crlf\n*.bin -text\n";
    f.repo.commit(
        &[("index.html", "small"), (".gitattributes", attributes)],
        "c1",
    );
    let log = f.sync_once(&["-v=1"]);
    assert_eq!(
        log_lines_with(&log, "large files streamed from their pack"),
        1,
        "{log}"
    );
    assert!(f.read("notes.txt") == notes.replace('\n', "\r\n"));
    assert!(f.read("media/big.bin") == big);
    assert!(f.read("run.bin") == tool);
    let mode = fs::metadata(f.link().join("run.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    let status = ["status", "--porcelain", "--untracked-files=all"];
    assert_eq!(git(&f.link(), &status), "");

    // One changes: it is streamed, the other shared.
    let big = noise(3, 5 << 20);
    fs::write(src.join("media/big.bin"), &big).unwrap();
    let h2 = f.repo.commit(&[], "c2");
    let log = f.sync_once(&["-v=1"]);
    assert_eq!(
        log_lines_with(&log, "large files streamed from their pack"),
        1,
        "{log}"
    );
    assert_published(&f, &h2);
    assert!(f.read("media/big.bin") == big);
    assert!(f.read("run.bin") == tool);
    assert_eq!(git(&f.link(), &status), "");
}

#[test]
fn large_files_are_streamed_from_the_pack_file() {
    large_files_are_streamed_from_the_pack(Transport::File);
}

#[test]
fn large_files_are_streamed_from_the_pack_http() {
    large_files_are_streamed_from_the_pack(Transport::Http);
}

/// Run git in `repo` with `input` on its standard input; its output.
fn git_with_input(repo: &SourceRepo, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("git")
        .args(args)
        .current_dir(&repo.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A tree object made of `entries` (`git ls-tree` lines), as a hostile
/// pusher could make one: `git mktree` checks no names.
fn mktree(repo: &SourceRepo, entries: &[String]) -> String {
    let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
    git_with_input(repo, &["mktree"], text.as_bytes())
}

/// Every path under `dir` whose file name is `name`.
fn find_named(dir: &Path, name: &str, found: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_name() == name {
            found.push(e.path());
        }
        if e.file_type().unwrap().is_dir() {
            find_named(&e.path(), name, found);
        }
    }
}

#[test]
fn a_tree_with_paths_that_climb_out_or_into_git_is_refused_and_writes_nothing() {
    // Servers that do not fsck what is pushed accept trees with `..` or
    // `.git` in a path; git refuses to check them out ("invalid path"),
    // and so must every file git-sync writes itself, the large ones it
    // streams from the pack included: none may land outside the tree.
    let f = Fixture::new(Transport::File);
    let good = f.repo.commit(&[("index.html", "good")], "c1");
    f.sync_once(&[]);
    let src = &f.repo.dir;
    fs::write(src.join("big.bin"), noise(7, 5 << 20)).unwrap();
    let big = f.repo.git(&["hash-object", "-w", "big.bin"]);
    fs::remove_file(src.join("big.bin")).unwrap();
    let page = f.repo.git(&["rev-parse", "HEAD:index.html"]);
    // The branch moves to a commit of `top` on top of the good one.
    let put_on_main = |top: &str| {
        let commit = f
            .repo
            .git(&["commit-tree", top, "-p", &good, "-m", "hostile"]);
        f.repo.git(&["update-ref", "refs/heads/main", &commit]);
    };
    // The page beside one hostile `entry`, on main: the sync fails and
    // the good commit stays published. Its log.
    let refused = |entry: String| {
        let top = mktree(&f.repo, &[format!("100644 blob {page}\tindex.html"), entry]);
        put_on_main(&top);
        let log = f.fail_once(&[]);
        assert_published(&f, &good);
        log
    };
    // `sub/../../../../escaped.bin`: from the tree up to the test's
    // directory; `.GIT/escaped.bin`, `.git/escaped.bin`: git's own names.
    let mut climbing = mktree(&f.repo, &[format!("100644 blob {big}\tescaped.bin")]);
    for _ in 0..4 {
        climbing = mktree(&f.repo, &[format!("040000 tree {climbing}\t..")]);
    }
    let holding = mktree(&f.repo, &[format!("100644 blob {big}\tescaped.bin")]);
    for (name, tree) in [("sub", &climbing), (".GIT", &holding), (".git", &holding)] {
        let log = refused(format!("040000 tree {tree}\t{name}"));
        assert!(log.contains("invalid path"), "{name}: {log}");
        let mut found = Vec::new();
        find_named(f.tmp.path(), "escaped.bin", &mut found);
        assert!(found.is_empty(), "{name}: written at {found:?}");
        assert_eq!(f.read("index.html"), "good");
    }

    // A symlink `lib` to a directory outside beside a directory `lib`
    // holding a submodule: nothing may be made where the symlink points.
    let outside = f.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let lib = SourceRepo::new(f.tmp.path(), "lib");
    let lib_head = lib.commit(&[("x.txt", "lib")], "lib");
    fs::write(
        src.join(".gitmodules"),
        format!(
            "[submodule \"lib\"]\n\tpath = lib/sub\n\turl = {}\n",
            lib.url()
        ),
    )
    .unwrap();
    let modules = f.repo.git(&["hash-object", "-w", ".gitmodules"]);
    let target = outside.to_str().unwrap();
    let symlink = git_with_input(
        &f.repo,
        &["hash-object", "-w", "--stdin"],
        target.as_bytes(),
    );
    let gitlink = mktree(&f.repo, &[format!("160000 commit {lib_head}\tsub")]);
    // Written as is: mktree would sort the entries.
    let top = raw_tree(
        &f.repo,
        &[
            ("100644", ".gitmodules", &modules),
            ("100644", "index.html", &page),
            ("40000", "lib", &gitlink),
            ("120000", "lib", &symlink),
        ],
    );
    put_on_main(&top);
    let log = f.fail_once(&["--git-config=protocol.file.allow:always"]);
    assert!(log.contains("invalid path 'lib'"), "{log}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "{log}");
    assert_published(&f, &good);

    // `.gitmodules` as a symlink (to a file outside, in any case or short
    // name): git and libgit2 refuse to check it out, and so does git-sync.
    for name in [".gitmodules", ".GitModules", "GITMOD~1"] {
        let log = refused(format!("120000 blob {symlink}\t{name}"));
        assert!(log.contains(&format!("invalid path '{name}'")), "{log}");
    }
}

/// A tree object of `entries` (mode, name, id) in the order given, as
/// only a hand-made tree has them (duplicates, unsorted).
fn raw_tree(repo: &SourceRepo, entries: &[(&str, &str, &str)]) -> String {
    let mut data = Vec::new();
    for (mode, name, id) in entries {
        data.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        let id: Vec<u8> = (0..id.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
            .collect();
        data.extend_from_slice(&id);
    }
    let args = ["hash-object", "-t", "tree", "--literally", "-w", "--stdin"];
    git_with_input(repo, &args, &data)
}

fn force_push_and_backwards(t: Transport) {
    let f = Fixture::new(t);
    let a = f.repo.commit(&[("f", "a")], "a");
    let b = f.repo.commit(&[("f", "b")], "b");
    let mut d = f.daemon(&[]);
    d.wait_for(LONG, "b", || published(&f.link()).as_deref() == Some(&b));
    // Rewrite history: b disappears, c replaces it.
    f.repo.git(&["reset", "-q", "--hard", &a]);
    let c = f.repo.commit(&[("f", "c")], "c (force-pushed)");
    f.repo.git(&["reflog", "expire", "--expire=now", "--all"]);
    f.repo.git(&["gc", "-q", "--prune=now"]);
    d.wait_for(LONG, "c", || published(&f.link()).as_deref() == Some(&c));
    assert_eq!(f.read("f"), "c");
    // The ref moves backwards.
    f.repo.git(&["reset", "-q", "--hard", &a]);
    d.wait_for(LONG, "a", || published(&f.link()).as_deref() == Some(&a));
    assert_eq!(f.read("f"), "a");
    d.kill9();
}

#[test]
fn force_push_and_backwards_file() {
    force_push_and_backwards(Transport::File);
}

#[test]
fn force_push_and_backwards_http() {
    force_push_and_backwards(Transport::Http);
}

#[test]
fn ref_changes_to_another_branch_on_restart() {
    let f = Fixture::new(Transport::Http);
    let m = f.repo.commit(&[("f", "main")], "m");
    f.repo.git(&["checkout", "-q", "-b", "feature"]);
    let x = f.repo.commit(&[("f", "feature")], "x");
    f.sync_once(&["--ref=main"]);
    assert_published(&f, &m);
    f.sync_once(&["--ref=feature"]);
    assert_published(&f, &x);
    assert_eq!(f.read("f"), "feature");
}

/// A push lands between the question (ls-remote) and the fetch, as it
/// will on a busy repository: here it replaces the commit asked about
/// (amended, force-pushed; then an annotated tag moved) and the server
/// drops it (a gc), so that it cannot send it and a fetch of the ref at
/// depth 1 brings another commit. (A commit still there is sent, as
/// listed.) That one is published: failing the pass instead ended the
/// process at the default --max-failures=0. Over HTTP, where the listing
/// and the fetch are separate requests (over SSH and git:// they share
/// one session, in which the commit listed is the one fetched).
#[test]
fn a_ref_that_moves_between_ls_remote_and_fetch_publishes_where_it_moved() {
    let f = Fixture::new(Transport::Http);
    // As a server that serves only what its refs reach.
    f.repo
        .git(&["config", "--unset", "uploadpack.allowAnySHA1InWant"]);
    let asked = f.repo.commit(&[("f", "asked")], "asked");
    let dir = f.repo.dir.clone();
    // What the next fetch request (libgit2's POST, without Git-Protocol,
    // or a v2 fetch command) is preceded by: 1 an amend, 2 an amend with
    // the annotated tag moved to the new commit.
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let stage = next.clone();
    let port = proxy(
        f.server.as_ref().unwrap().port,
        Duration::ZERO,
        move |_, bytes| {
            let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
            let v0_fetch = bytes.starts_with(b"POST ") && !text.contains("git-protocol: version=2");
            if !v0_fetch && !text.contains("command=fetch") {
                return;
            }
            match stage.swap(0, std::sync::atomic::Ordering::SeqCst) {
                1 => drop(git(&dir, &["commit", "-q", "--amend", "-m", "moved"])),
                2 => {
                    git(&dir, &["commit", "-q", "--amend", "-m", "retagged"]);
                    git(&dir, &["tag", "-f", "-a", "v1", "-m", "again"]);
                }
                _ => return,
            }
            git(&dir, &["reflog", "expire", "--expire=now", "--all"]);
            git(&dir, &["gc", "-q", "--prune=now"]);
        },
    );
    let run = |git_ref: &str, root: &std::path::Path| {
        let out = run_git_sync(&[
            &format!("--repo=http://127.0.0.1:{port}/site"),
            &format!("--root={}", root.display()),
            &format!("--ref={git_ref}"),
            "--one-time",
        ]);
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "{log}");
        assert!(log.contains("moved while it was fetched"), "{log}");
    };
    run("main", &f.root());
    let moved = f.repo.head();
    assert_ne!(moved, asked);
    assert_published(&f, &moved);

    f.repo.git(&["tag", "-a", "v1", "-m", "first"]);
    next.store(2, std::sync::atomic::Ordering::SeqCst);
    let root = f.tmp.path().join("tag-root");
    run("v1", &root);
    let retagged = f.repo.head();
    assert_ne!(retagged, moved);
    assert_eq!(published(&root.join("site")), Some(retagged));
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

/// Over HTTP a poll asks the server for the refs `--ref` may name, not for
/// every ref it has, as upstream's `git ls-remote` does (protocol v2), and
/// an update asks for the commit alone; from a server that speaks only v0,
/// which sends them all, once a poll and once more for a fetch.
#[test]
fn an_http_poll_or_update_receives_the_refs_it_asks_for_not_every_ref() {
    let (tmp, srv, repo) = temp_source("site");
    repo.commit(&[("f", "1")], "one");
    repo.add_pull_refs(3_000);
    let v2 = HttpServer::start(&srv);
    // The same repository behind a server that does not pass Git-Protocol on.
    let v0_backend = tmp.path().join("v0-backend");
    script(
        &v0_backend,
        "unset GIT_PROTOCOL HTTP_GIT_PROTOCOL\nexec /usr/lib/git-core/git-http-backend",
    );
    let location = git_location(&srv, Path::new("{sock}")).replace(
        "/usr/lib/git-core/git-http-backend",
        &v0_backend.display().to_string(),
    );
    let v0 = Nginx::start(&location, "root root");
    let (status, advertisement) = http_get(v0.port, "/site/info/refs?service=git-upload-pack");
    assert_eq!(status, 200);
    assert!(advertisement.len() > 150_000, "{}", advertisement.len());
    for (version, port) in [("v2", v2.port), ("v0", v0.port)] {
        let (proxied, received, requests) = recording_proxy(port);
        let root = tmp.path().join(format!("root-{version}"));
        let sync = |git_ref: &str| {
            let out = run_git_sync(&[
                &format!("--repo=http://127.0.0.1:{proxied}/site"),
                &format!("--root={}", root.display()),
                &format!("--ref={git_ref}"),
                "--one-time",
            ]);
            let log = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{version}: {log}");
            received.load(std::sync::atomic::Ordering::SeqCst)
        };
        let first = sync("main");
        let poll = sync("main") - first;
        match version {
            "v2" => assert!(poll < 10_000, "v2: a poll received {poll} bytes"),
            _ => assert!(
                poll >= advertisement.len() && poll < advertisement.len() * 3 / 2,
                "v0: a poll received {poll} bytes, the advertisement is {}",
                advertisement.len()
            ),
        }
        // A running git-sync: one request a poll, once the server is known.
        let mut daemon = spawn(git_sync(&[
            &format!("--repo=http://127.0.0.1:{proxied}/site"),
            &format!("--root={}", root.display()),
            "--period=20ms",
        ]));
        let polls_from = requests.lock().unwrap().len() + 2;
        daemon.wait_for(LONG, "ten polls", || {
            requests.lock().unwrap().len() >= polls_from + 10
        });
        drop(daemon);
        let polls = requests.lock().unwrap()[polls_from..].to_vec();
        let first = &polls[0][..polls[0].find(' ').unwrap()];
        assert!(
            polls.iter().all(|r| r.starts_with(first)),
            "{version}: {polls:?}"
        );
        // An update, then a name only a look at every ref resolves.
        let h2 = repo.commit(&[("f", "2")], &format!("two {version}"));
        let before = received.load(std::sync::atomic::Ordering::SeqCst);
        let update = sync("main") - before;
        assert_eq!(published(&root.join("site")), Some(h2.clone()), "{version}");
        match version {
            "v2" => assert!(update < 10_000, "v2: an update received {update} bytes"),
            _ => assert!(
                update >= advertisement.len() * 2,
                "v0: an update received {update} bytes, the advertisement is {}",
                advertisement.len()
            ),
        }
        repo.git(&["update-ref", "refs/pull/7/head", "HEAD~1"]);
        sync("pull/7/head");
        assert_eq!(
            published(&root.join("site")),
            Some(repo.git(&["rev-parse", "HEAD~1"]).trim().to_string()),
            "{version}"
        );
    }
}

/// The connection kept between polls carries the fetches too: an update
/// opens none of its own.
#[test]
fn an_http_update_keeps_the_polls_connection() {
    let (tmp, srv, repo) = temp_source("site");
    let h1 = repo.commit(&[("f", "1")], "one");
    let server = HttpServer::start(&srv);
    let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = connections.clone();
    let (port, _) = counting_proxy(server.port, move |n, bytes| {
        if bytes.starts_with(b"POST ") || bytes.starts_with(b"GET ") {
            seen.lock().unwrap().push(n);
        }
    });
    let root = tmp.path().join("root");
    let mut p = spawn(git_sync(&[
        &format!("--repo=http://127.0.0.1:{port}/site"),
        &format!("--root={}", root.display()),
        "--period=20ms",
        "-v=5",
    ]));
    let published_is = |h: &str| published(&root.join("site")).as_deref() == Some(h);
    p.wait_for(LONG, "the first sync", || published_is(&h1));
    let requests = || connections.lock().unwrap().len();
    let from = requests() + 2;
    p.wait_for(LONG, "polls", || requests() >= from + 3);
    let h2 = repo.commit(&[("f", "2")], "two");
    p.wait_for(LONG, "the update", || published_is(&h2));
    let to = requests() + 3;
    p.wait_for(LONG, "polls after it", || requests() >= to + 3);
    let used: std::collections::BTreeSet<usize> = connections.lock().unwrap()[from..]
        .iter()
        .copied()
        .collect();
    assert_eq!(used.len(), 1, "connections {used:?}: {}", p.log());
}

/// A commit named by its hash (no listing before its fetch) is fetched
/// with protocol v2 too: the server's first answer shows it speaks v2, and
/// the fetch asks for that commit alone, where libgit2's would have every
/// ref listed.
#[test]
fn an_http_fetch_of_a_commit_named_by_its_hash_lists_no_refs() {
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "1")], "one");
    repo.add_pull_refs(3_000);
    let server = HttpServer::start(&srv);
    let (proxied, received, _) = recording_proxy(server.port);
    let root = tmp.path().join("root");
    let out = run_git_sync(&[
        &format!("--repo=http://127.0.0.1:{proxied}/site"),
        &format!("--root={}", root.display()),
        &format!("--ref={h}"),
        "--one-time",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(published(&root.join("site")), Some(h));
    let got = received.load(std::sync::atomic::Ordering::SeqCst);
    // (The 3,000 refs are some 190 KB.)
    assert!(got < 20_000, "{got} bytes received");
}

/// `protocol.version` 0 or 1 in the git config keeps to version 0, as git
/// does: no request asks for v2, libgit2 lists and fetches.
#[test]
fn protocol_version_0_in_the_git_config_keeps_to_version_0() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "1")], "one");
    let server = HttpServer::start(&srv);
    let asked_v2 = std::sync::Arc::new(AtomicUsize::new(0));
    let count = asked_v2.clone();
    let port = proxy(server.port, Duration::ZERO, move |_, bytes| {
        let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        if text.contains("git-protocol: version=2") {
            count.fetch_add(1, SeqCst);
        }
    });
    for (n, config, v2) in [
        (0, "--git-config=http.lowSpeedTime:60", true),
        (1, "--git-config=protocol.version:0", false),
        (2, "--git-config=protocol.version:1", false),
    ] {
        asked_v2.store(0, SeqCst);
        let root = tmp.path().join(format!("root{n}"));
        let out = run_git_sync(&[
            &format!("--repo=http://127.0.0.1:{port}/site"),
            &format!("--root={}", root.display()),
            config,
            "--one-time",
        ]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{config}: {log}");
        assert_eq!(published(&root.join("site")), Some(h.clone()), "{config}");
        assert_eq!(asked_v2.load(SeqCst) > 0, v2, "{config}: {log}");
    }
}

/// A protocol v2 fetch the server breaks off leaves nothing behind in the
/// store: libgit2 fetches the commit again, and the sync goes on; the
/// next updates are fetched by libgit2 at once, for a while.
#[test]
fn an_http_fetch_cut_short_is_made_again_and_leaves_no_partial_pack() {
    let (tmp, srv, repo) = temp_source("site");
    // Text that hardly compresses: a pack far larger than the cut.
    let noise: String = (0..8_000u64)
        .map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let h = repo.commit(&[("noise.txt", &noise)], "noise");
    let backend = tmp.path().join("cutting-backend");
    let fetches = tmp.path().join("v2-fetches");
    script(
        &backend,
        &format!(
            r#"body=$(cat; echo x); body=${{body%x}}
case "$body" in
  *command=fetch*) echo >> {}
    printf '%s' "$body" | /usr/lib/git-core/git-http-backend | head -c 2000 ;;
  *) printf '%s' "$body" | exec /usr/lib/git-core/git-http-backend ;;
esac"#,
            fetches.display()
        ),
    );
    let v2_fetches = || fs::read_to_string(&fetches).unwrap_or_default().len();
    let location = git_location(&srv, Path::new("{sock}")).replace(
        "/usr/lib/git-core/git-http-backend",
        &backend.display().to_string(),
    );
    let server = Nginx::start(&location, "root root");
    let root = tmp.path().join("root");
    let out = run_git_sync(&[
        &format!("--repo=http://127.0.0.1:{}/site", server.port),
        &format!("--root={}", root.display()),
        "--one-time",
        "-v=5",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(published(&root.join("site")), Some(h), "{log}");
    assert!(log.contains("fetching with libgit2"), "{log}");
    let packs: Vec<String> = fs::read_dir(root.join(".git/objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        packs
            .iter()
            .all(|name| name.ends_with(".pack") || name.ends_with(".idx")),
        "{packs:?}"
    );
    assert_eq!(packs.len(), 2, "{packs:?}");
    assert_eq!(v2_fetches(), 1);

    let root = tmp.path().join("daemon-root");
    let mut daemon = spawn(git_sync(&[
        &format!("--repo=http://127.0.0.1:{}/site", server.port),
        &format!("--root={}", root.display()),
        "--period=50ms",
    ]));
    daemon.wait_for(LONG, "the first sync", || {
        published(&root.join("site")).as_deref() == Some(repo.head().as_str())
    });
    let h2 = repo.commit(&[("f", "2")], "two");
    daemon.wait_for(LONG, "the update", || {
        published(&root.join("site")).as_deref() == Some(h2.as_str())
    });
    assert_eq!(v2_fetches(), 2, "{}", daemon.log());
}

/// A repository its server redirects (renamed on GitHub, say) is asked for
/// where it moved, from then on, as git does; within that server only.
#[test]
fn a_repository_its_server_moved_is_polled_where_it_moved() {
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "1")], "one");
    let server = HttpServer::start_with(
        &srv,
        "location ~ ^/old(/.*)$ { absolute_redirect off; return 301 /site$1$is_args$args; }",
    );
    let (proxied, _, requests) = recording_proxy(server.port);
    let root = tmp.path().join("root");
    let mut daemon = spawn(git_sync(&[
        &format!("--repo=http://127.0.0.1:{proxied}/old"),
        &format!("--root={}", root.display()),
        "--period=20ms",
    ]));
    daemon.wait_for(LONG, "the first sync", || {
        published(&root.join("old")).as_deref() == Some(h.as_str())
    });
    let polls_from = requests.lock().unwrap().len() + 2;
    daemon.wait_for(LONG, "ten polls", || {
        requests.lock().unwrap().len() >= polls_from + 10
    });
    drop(daemon);
    let polls = requests.lock().unwrap()[polls_from..].to_vec();
    assert!(
        polls
            .iter()
            .all(|r| r.starts_with("POST /site/git-upload-pack ")),
        "{polls:?}"
    );
}

/// Over SSH and git:// the listing and the fetch share one session: one
/// handshake, not two, per update.
#[test]
fn the_listing_and_the_fetch_share_one_connection() {
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("f", "1")], "one");
    let daemon = GitDaemon::start(&f.tmp.path().join("srv"));
    let connections = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let seen = connections.clone();
    let port = proxy(daemon.port, Duration::ZERO, move |n, _| {
        seen.lock().unwrap().insert(n);
    });
    let sync = || {
        git_sync_ok(&[
            &format!("--repo=git://127.0.0.1:{port}/site"),
            &format!("--root={}", f.root().display()),
            "--one-time",
        ]);
        connections.lock().unwrap().len()
    };
    assert_eq!(sync(), 1, "a first sync");
    let h = f.repo.commit(&[("f", "2")], "two");
    assert_eq!(sync(), 2, "an update");
    assert_published(&f, &h);
}

// ---- failures ------------------------------------------------------------

#[test]
fn unreachable_remote_writes_error_keeps_link_and_exits_after_max_failures() {
    let f = Fixture::new(Transport::Http);
    let h = f.repo.commit(&[("f", "1")], "c1");
    f.sync_once(&["--link=site"]);
    assert_published(&f, &h);

    let dead = format!("http://127.0.0.1:{}/site", free_port());
    let mut p = spawn(git_sync(&[
        &format!("--repo={dead}"),
        &format!("--root={}", f.root().display()),
        "--link=site",
        "--period=20ms",
        "--max-failures=2",
        "--error-file=status/error.json",
    ]));
    assert_eq!(p.wait_exit(LONG), 1);
    assert_eq!(failed_passes(&p.log()), 3, "{}", p.log());
    assert_published(&f, &h);
    assert_eq!(f.read("f"), "1");
    let err = fs::read_to_string(f.root().join("status/error.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&err).unwrap();
    assert!(v["Err"].as_str().unwrap().contains("127.0.0.1"), "{err}");
    // As upstream writes it for the failure that ends the process.
    assert_eq!(v["Msg"], "too many failures, aborting", "{err}");
    assert_eq!(v["Args"]["failCount"], 3, "{err}");
    assert_eq!(v["Args"]["maxFailures"], 2, "{err}");

    // The next success removes the error file.
    f.sync_once(&["--link=site", "--error-file=status/error.json"]);
    assert!(!f.root().join("status/error.json").exists());
}

#[test]
fn a_checkout_that_fails_leaves_no_half_made_tree() {
    let f = Fixture::new(Transport::File);
    let good = f.repo.commit(&[("a", "1")], "good");
    f.sync_once(&[]);
    // A commit git stores but no Linux filesystem can check out: after
    // `a`, a file name of 300 bytes. (On a full disk the half-made tree
    // would hold the space the next commit needs.)
    fs::write(f.repo.dir.join("content"), "x").unwrap();
    let blob = f.repo.git(&["hash-object", "-w", "content"]);
    let long_name = "z".repeat(300);
    f.repo.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("100644,{},{long_name}", blob.trim()),
    ]);
    f.repo.git(&["commit", "-q", "-m", "unmaterialisable"]);
    let bad = f.repo.head();
    let log = f.fail_once(&[]);
    assert!(log.contains(&bad), "{log}");
    assert_published(&f, &good);
    let half_made = f.root().join(".worktrees").join(&bad);
    assert!(
        !half_made.exists(),
        "{} was left behind",
        half_made.display()
    );
}

/// A tmpfs of `size` mounted at `dir` (root only), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {}", self.0.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_pass_leaves_nothing_half_written_and_recovers() {
    let f = Fixture::new(Transport::File);
    let Some(disk) = is_root()
        .then(|| SmallDisk::mount(&f.tmp.path().join("vol"), "2m"))
        .flatten()
    else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let root = disk.0.join("root");
    let link = root.join("site");
    let h1 = f.repo.commit(&[("index.html", "one")], "c1");
    let mut d = spawn(git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", root.display()),
        "--period=50ms",
        "--max-failures=-1",
    ]));
    d.wait_for(LONG, "first publish", || {
        published(&link).as_deref() == Some(&h1)
    });
    let no_space = |log: &str, what: &str| {
        log.lines()
            .filter(|l| is_failed_pass(l) && l.contains(what))
            .filter(|l| l.contains("No space left on device"))
            .count()
    };
    let left_over = || {
        let worktrees: Vec<String> = fs::read_dir(root.join(".worktrees"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| *n != h1)
            .collect();
        let temps: Vec<String> = fs::read_dir(root.join(".git/objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("tmp_") || n.starts_with("pack_git2_"))
            .collect();
        (worktrees, temps)
    };
    // About 2.4 MB once compressed: its pack does not fit in 2 MB.
    let big = noise(7, 3_000_000);
    let h2 = f.repo.commit(&[("big.txt", &big)], "c2");
    d.wait_log(LONG, "fetches failing", |log| no_space(log, "fetch") >= 2);
    assert_eq!(published(&link).as_deref(), Some(h1.as_str()));
    assert_eq!(fs::read_to_string(link.join("index.html")).unwrap(), "one");
    assert_eq!(left_over(), (vec![], vec![]), "half-written files left");
    // The pack fits in 5 MB, the checked-out file no longer does.
    disk.resize("5m");
    d.wait_log(LONG, "checkouts failing", |log| {
        no_space(log, "checkout") >= 2
    });
    assert_eq!(published(&link).as_deref(), Some(h1.as_str()));
    assert_eq!(left_over(), (vec![], vec![]), "half-written files left");
    // Room again: the next pass publishes, with nobody's help.
    disk.resize("16m");
    d.wait_for(LONG, "publish after the disk grew", || {
        published(&link).as_deref() == Some(&h2)
    });
    assert_eq!(fs::read_to_string(link.join("big.txt")).unwrap(), big);
    d.kill9();
    git(&root, &["fsck", "--no-progress"]);
}

#[test]
fn one_time_exit_status() {
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("f", "1")], "c1");
    let log = f.sync_once(&[]);
    // Upstream's last line, with the status.
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("\"msg\":\"exiting after one sync\",\"status\":0"),
        "{log}"
    );
    let out = run_git_sync(&[
        &format!("--repo=file://{}/nothing-here", f.tmp.path().display()),
        &format!("--root={}", f.tmp.path().join("root2").display()),
        "--one-time",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // Retries up to --max-failures, then still fails.
    let out = run_git_sync(&[
        &format!("--repo=file://{}/nothing-here", f.tmp.path().display()),
        &format!("--root={}", f.tmp.path().join("root2").display()),
        "--one-time",
        "--max-failures=2",
        "--period=10ms",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(failed_passes(&log), 3, "{log}");
}

#[test]
fn init_max_failures_applies_before_first_success() {
    let f = Fixture::new(Transport::File);
    // The repository appears only after a few attempts.
    let repo_dir = f.tmp.path().join("later");
    let mut p = spawn(git_sync(&[
        &format!("--repo=file://{}", repo_dir.display()),
        &format!("--root={}", f.root().display()),
        "--one-time",
        "--init-max-failures=-1",
        "--period=20ms",
        "--error-file=error.json",
    ]));
    wait_until(LONG, "a few failures", || failed_passes(&p.log()) >= 3);
    // The file follows the log line: wait for it to say as much.
    let fail_count = |v: &serde_json::Value| v["Args"]["failCount"].as_u64().unwrap_or(0);
    let error_file = || {
        let text = fs::read_to_string(f.root().join("error.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        (text, v)
    };
    wait_until(LONG, "the error file at 3 failures", || {
        fail_count(&error_file().1) >= 3
    });
    let (err, v) = error_file();
    assert_eq!(v["Msg"], "error syncing repo, will retry", "{err}");
    assert!(fail_count(&v) >= 3, "{err}");
    assert!(v["Args"].get("maxFailures").is_none(), "{err}");
    let later = SourceRepo::new(f.tmp.path(), "later");
    let h = later.commit(&[("f", "x")], "x");
    assert_eq!(p.wait_exit(LONG), 0);
    assert_eq!(
        published(&f.root().join("later")).as_deref(),
        Some(h.as_str())
    );
}

#[test]
fn a_root_that_cannot_be_made_yet_is_retried_like_a_failed_sync() {
    // As a volume that is not ready: the root's parent is in the way.
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    let parent = f.tmp.path().join("volume");
    fs::write(&parent, "not a directory yet").unwrap();
    let root = parent.join("root");
    let mut p = spawn(git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", root.display()),
        "--error-file=error.json",
        "--one-time",
        "--init-max-failures=-1",
        "--period=20ms",
    ]));
    wait_until(LONG, "a few failures", || failed_passes(&p.log()) >= 3);
    fs::remove_file(&parent).unwrap();
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
    assert_eq!(published(&root.join("site")).as_deref(), Some(h.as_str()));
    assert!(!root.join("error.json").exists(), "error file left behind");

    // Without retries allowed, the first failure exits 1.
    let blocked = f.tmp.path().join("blocked");
    fs::write(&blocked, "x").unwrap();
    let out = run_git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", blocked.join("root").display()),
        "--one-time",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

// ---- the root ------------------------------------------------------------

#[test]
fn non_empty_root_not_ours_is_emptied() {
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    // The root's parent is a git repository: it must not be taken for ours.
    git(f.tmp.path(), &["init", "-q"]);
    fs::create_dir_all(f.root().join("junk/dir")).unwrap();
    fs::write(f.root().join("junk/dir/file"), "x").unwrap();
    fs::write(f.root().join("stray.txt"), "x").unwrap();
    f.sync_once(&[]);
    assert_published(&f, &h);
    assert!(!f.root().join("junk").exists());
    assert!(!f.root().join("stray.txt").exists());
}

/// Unmounts on drop, so that a failed assertion leaves no mount behind.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(at: &Path) -> Option<Self> {
        fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mounted(at.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Every entry under `dir`, with its content for files.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
                out.push((p, None));
            } else {
                let bytes = fs::read(&p).ok();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_root_or_dest_that_is_clearly_not_a_sync_directory_is_refused_and_left_whole() {
    use std::process::Command;
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "one");
    let t = f.tmp.path();
    let other = SourceRepo::new(t, "other");
    other.commit(&[("README", "mine"), ("docs/guide.txt", "mine")], "mine");
    let (home, started_in, tools, project, vol) = (
        t.join("home"),
        t.join("www"),
        t.join("tools"),
        t.join("project"),
        t.join("vol"),
    );
    for d in [&home, &started_in, &tools, &vol] {
        fs::create_dir_all(d).unwrap();
        fs::write(d.join("notes.txt"), "precious").unwrap();
    }
    git(t, &["clone", "-q", &other.url(), "project"]);
    // Someone's git command at work in the project: its lock is not ours.
    fs::write(project.join(".git/index.lock"), "").unwrap();
    fs::create_dir_all(tools.join("bin")).unwrap();
    copy_executable(&bin(), &tools.join("bin/git-sync"));
    let mount = Mounted::tmpfs(&vol.join("inner"));
    // git-sync syncing into `dir` (as --root or --dest), retried forever
    // were this a failure that could pass.
    let start = |dir: &Path, flag: &str| {
        let mut c = git_sync(&[
            &format!("--repo={}", f.url()),
            &format!("--{flag}={}", dir.display()),
            &format!("--state-dir={}", t.join("state").display()),
            "--max-failures=-1",
            "--init-max-failures=-1",
            "--init-period=10ms",
        ]);
        c.current_dir(t);
        c
    };
    let mut cases: Vec<(&str, &Path, Command, &str)> = Vec::new();
    let mut c = start(&home, "root");
    c.env("HOME", &home);
    cases.push(("home", &home, c, "it is the home directory"));
    let mut c = git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--dest={}", t.join("served").display()),
        &format!("--state-dir={}", home.display()),
    ]);
    c.env("HOME", &home);
    let reason = format!(
        "--state-dir {}: will not empty it (it is the home directory)",
        home.display()
    );
    cases.push(("state dir", &home, c, reason.as_str()));
    let mut c = start(Path::new("."), "root");
    c.current_dir(&started_in);
    cases.push((
        "cwd",
        &started_in,
        c,
        "it is the directory git-sync was started in",
    ));
    let mut c = Command::new(tools.join("bin/git-sync"));
    c.args(start(&tools, "root").get_args())
        .env_remove("GITSYNC_REPO")
        .env_remove("GITSYNC_ROOT")
        .stderr(std::process::Stdio::piped());
    cases.push(("binary", &tools, c, "it holds git-sync's own binary"));
    let sources = f.repo.dir.parent().unwrap();
    let reason = "it holds the repository it syncs from";
    cases.push(("source", sources, start(sources, "root"), reason));
    let reason = "it is the working tree of a git repository (a clone of file://";
    cases.push(("project", &project, start(&project, "root"), reason));
    cases.push(("dest", &project, start(&project, "dest"), reason));
    // A directory of a project, given by mistake for a build output.
    let docs = project.join("docs");
    let reason = format!(
        "it holds files tracked by the git repository at {}",
        project.display()
    );
    cases.push(("tracked", &docs, start(&docs, "root"), &reason));
    cases.push(("tracked dest", &docs, start(&docs, "dest"), &reason));
    if mount.is_some() {
        let reason = "another filesystem is mounted at";
        cases.push(("mount", &vol, start(&vol, "root"), reason));
    }
    for (name, dir, cmd, reason) in cases {
        let before = snapshot(dir);
        let mut p = spawn(cmd);
        let code = p.wait_exit(Duration::from_secs(30));
        let log = p.log();
        assert_eq!(code, 1, "{name}: {log}");
        assert_eq!(log.matches("will not empty it").count(), 1, "{name}: {log}");
        assert!(log.contains(reason), "{name}: {log}");
        assert!(!log.contains("starting again"), "{name}: {log}");
        // Said to end the process, not to be retried.
        assert_eq!(
            log_lines_with(&log, "error syncing repo, aborting"),
            1,
            "{name}: {log}"
        );
        assert_eq!(snapshot(dir), before, "{name}: touched");
    }
    // What the 2015 git-sync left in its --dest (a clone of the same
    // repository) is still replaced by the commit.
    let dest = t.join("dest");
    git(t, &["clone", "-q", &f.url(), "dest"]);
    let out = run_git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--dest={}", dest.display()),
        &format!("--state-dir={}", t.join("state").display()),
        "--one-time",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!dest.join(".git").exists());
    assert_eq!(fs::read_to_string(dest.join("index.html")).unwrap(), "v1");
    // A root inside a repository that tracks nothing there is emptied as
    // any other (upstream's head_once_root_exists_but_is_not_git_root).
    let root = t.join("parent/root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("left-over"), "x").unwrap();
    git(&t.join("parent"), &["init", "-q"]);
    let out = run_git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", root.display()),
        "--one-time",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(root.join("site/index.html").exists());
    assert!(!root.join("left-over").exists());
}

#[test]
fn a_volumes_lost_and_found_stays_and_does_not_stop_the_sync() {
    // A fresh ext4 persistent volume holds lost+found, root's and 0700:
    // upstream fails on it for good when not root (its issue 598).
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "one");
    let volume = |name: &str| {
        let dir = f.tmp.path().join(name);
        fs::create_dir_all(dir.join("lost+found")).unwrap();
        fs::write(dir.join("lost+found/#1234"), "recovered").unwrap();
        fs::set_permissions(dir.join("lost+found"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(dir.join("stray.txt"), "x").unwrap();
        give_to_nobody(&dir);
        dir
    };
    let (root, dest, state) = (volume("root"), volume("dest"), volume("state"));
    for args in [
        [format!("--root={}", root.display()), "--link=site".into()],
        [
            format!("--dest={}", dest.display()),
            format!("--state-dir={}", state.join("git-sync").display()),
        ],
    ] {
        let flag = &args[0];
        let mut c = f.as_nobody(&args);
        c.arg("--one-time");
        let mut p = spawn(c);
        assert_eq!(p.wait_exit(LONG), 0, "{flag}: {}", p.log());
    }
    assert_eq!(
        fs::read_to_string(root.join("site/index.html")).unwrap(),
        "v1"
    );
    assert_eq!(fs::read_to_string(dest.join("index.html")).unwrap(), "v1");
    for dir in [&root, &dest] {
        assert!(!dir.join("stray.txt").exists(), "{dir:?}");
        let kept = dir.join("lost+found/#1234");
        assert_eq!(fs::read_to_string(&kept).unwrap(), "recovered");
    }
}

#[test]
fn root_left_by_an_earlier_run_is_reused() {
    let f = Fixture::new(Transport::Http);
    let h1 = f.repo.commit(&[("f", "1")], "c1");
    f.sync_once(&[]);
    let wt = f.root().join(".worktrees").join(&h1);
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&wt).unwrap());
    // Restart with nothing new: a no-op, nothing fetched, same worktree.
    let log = f.sync_once(&["-v=1"]);
    assert_eq!(log_lines_with(&log, "no change"), 1, "{log}");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&wt).unwrap()),
        ino
    );
    // Junk in .worktrees and v3-era hash dirs are cleaned; a deleted
    // worktree is recreated.
    fs::write(f.root().join(".worktrees/junk"), "x").unwrap();
    fs::create_dir_all(f.root().join("0123456789012345678901234567890123456789")).unwrap();
    fs::remove_dir_all(&wt).unwrap();
    let h2 = f.repo.commit(&[("f", "2")], "c2");
    f.sync_once(&[&format!("--ref={h1}")]);
    assert_published(&f, &h1);
    assert_eq!(f.read("f"), "1");
    assert!(!f.root().join(".worktrees/junk").exists());
    assert!(!f
        .root()
        .join("0123456789012345678901234567890123456789")
        .exists());
    f.sync_once(&[]);
    assert_published(&f, &h2);
}

/// Replacing upstream v4 on a volume it synced (a persistent volume, a
/// container restarted with our image, a laptop's root): its root, made
/// here by the git commands upstream runs, is taken over as it is. The
/// link goes from its worktree to ours in one rename, and its worktree
/// and git's record of it are removed once stale.
#[test]
fn a_root_upstream_v4_made_is_taken_over_as_it_is() {
    let f = Fixture::new(Transport::Http);
    let h1 = f.repo.commit(&[("index.html", "one")], "one");
    let root = f.root();
    fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q", "-b", "git-sync"]);
    git(&root, &["remote", "add", "origin", &f.url()]);
    git(
        &root,
        &[
            "fetch",
            "-q",
            "origin",
            "HEAD",
            "--no-auto-gc",
            "--depth",
            "1",
        ],
    );
    let theirs = format!(".worktrees/{h1}");
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "--force",
            "--detach",
            &theirs,
            &h1,
            "--no-checkout",
        ],
    );
    git(&root.join(&theirs), &["reset", "-q", "--hard", &h1]);
    git(&root, &["reset", "-q", "--soft", &h1]);
    std::os::unix::fs::symlink(&theirs, f.link()).unwrap();
    assert_eq!(f.read("index.html"), "one");

    let h2 = f.repo.commit(&[("index.html", "two")], "two");
    let log = f.sync_once(&[]);
    assert_published(&f, &h2);
    assert_eq!(f.read("index.html"), "two");
    assert!(!log.contains("emptied it"), "{log}");
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
    f.sync_once(&["--stale-worktree-grace=0s"]);
    assert!(!root.join(&theirs).exists());
    assert!(!root.join(".git/worktrees").join(&h1).exists());
    assert_eq!(
        git(&root, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        2
    );
}

#[test]
fn a_root_that_is_a_file_is_said_to_be_one_and_left_alone() {
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "one");
    fs::write(f.root(), "not a directory").unwrap();
    let log = f.fail_once(&[]);
    assert!(log.contains("--root must be a directory"), "{log}");
    assert_eq!(fs::read_to_string(f.root()).unwrap(), "not a directory");
}

#[test]
fn a_root_this_user_may_not_write_in_says_how_to_fix_it() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "one");
    let root = f.root();
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o555)).unwrap();
    // Root may write anywhere: then another UID.
    let mut cmd = f.as_nobody(&[format!("--root={}", root.display())]);
    cmd.args(["--one-time", "--log-format=json"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", f.tmp.path());
    let out = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("permission denied to uid") && log.contains("fsGroup"),
        "{log}"
    );
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
}

#[test]
fn a_link_path_holding_someone_elses_files_is_left_alone() {
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("index.html", "v1")], "one");
    let www = f.tmp.path().join("www");
    fs::create_dir_all(www.join("site")).unwrap();
    fs::write(www.join("site/keep.txt"), "mine").unwrap();
    fs::write(www.join("notes"), "my notes").unwrap();
    fs::create_dir_all(www.join("placeholder")).unwrap();
    let run = |link: &str| f.run_once(&[&format!("--link={}", www.join(link).display())]);
    // A directory with files, or a file: refused, named, untouched.
    for (link, what) in [("site", "a directory with files"), ("notes", "a file")] {
        let (code, log) = run(link);
        assert_eq!(code, Some(1), "{log}");
        assert!(log.contains(what) && log.contains("--link"), "{log}");
    }
    assert_eq!(
        fs::read_to_string(www.join("site/keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(fs::read_to_string(www.join("notes")).unwrap(), "my notes");
    // An empty directory (a mount point's placeholder) becomes the link.
    let (code, log) = run("placeholder");
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        published(&www.join("placeholder")).as_deref(),
        Some(h.as_str())
    );
}

#[test]
fn absolute_link_outside_the_root_is_relative_and_survives_a_move() {
    let f = Fixture::new(Transport::File);
    SourceRepo::new(&f.tmp.path().join("srv"), "lib").commit(&[("l.txt", "l")], "lib");
    f.repo.commit(&[("f", "1")], "c1");
    add_submodule(&f.repo, "../lib", "lib");
    let h = f.repo.head();
    let link = f.tmp.path().join("elsewhere/deeper/site");
    let allow = "--git-config=protocol.file.allow:always";
    f.sync_once(&[&format!("--link={}", link.display()), allow]);
    let target = fs::read_link(&link).unwrap();
    assert_eq!(
        target,
        Path::new("../../root/.worktrees").join(&h),
        "link must be relative"
    );
    assert_eq!(fs::read_to_string(link.join("f")).unwrap(), "1");
    // Relative, so both moved together (a volume mounted elsewhere) it
    // still resolves.
    let moved = f.tmp.path().join("moved");
    fs::create_dir(&moved).unwrap();
    fs::rename(f.root(), moved.join("root")).unwrap();
    fs::rename(f.tmp.path().join("elsewhere"), moved.join("elsewhere")).unwrap();
    let link = moved.join("elsewhere/deeper/site");
    assert_eq!(fs::read_to_string(link.join("f")).unwrap(), "1");
    // So do the worktrees' .git files: git works in the published tree
    // and its submodules (another container mounting the volume at
    // another path runs `git log` there).
    assert_eq!(git(&link, &["rev-parse", "HEAD"]), h);
    assert_eq!(
        git(&link.join("lib"), &["rev-parse", "HEAD"]),
        git(&link, &["rev-parse", "HEAD:lib"])
    );
    assert_eq!(git(&link, &["status", "--porcelain"]), "");
}

#[test]
fn a_root_given_through_dots_or_a_symlink_is_the_real_directory() {
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    let sync_with_root = |root: &str| {
        let out = run_git_sync(&[
            &format!("--repo={}", f.url()),
            &format!("--root={root}"),
            "--one-time",
        ]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{log}");
        assert_published(&f, &h);
    };
    // `..` above `/` stays at `/`, as the shell and upstream treat it.
    let root = f.root().display().to_string();
    sync_with_root(&format!(
        "../../../../../{root}/../../../../../../../{root}"
    ));

    // A root reached through a symlink that lives inside it: the real
    // directory is the root, so emptying it (the link is not ours) must not
    // turn the symlink into a directory of its own.
    fs::remove_dir_all(f.root()).unwrap();
    fs::create_dir(f.root()).unwrap();
    std::os::unix::fs::symlink(f.root(), f.root().join("rootlink")).unwrap();
    sync_with_root(&format!("{root}/rootlink"));
    assert_eq!(f.read("f"), "1");
    assert!(!f.root().join("rootlink").exists(), "not ours: emptied");

    // A link named through a symlink to the root is known as inside it:
    // resetting a broken root (the remote away) keeps it published.
    let alias = f.tmp.path().join("alias");
    std::os::unix::fs::symlink(f.root(), &alias).unwrap();
    let run = || {
        run_git_sync(&[
            &format!("--repo={}", f.url()),
            &format!("--root={}", alias.display()),
            &format!("--link={}", alias.join("site").display()),
            "--one-time",
        ])
    };
    assert_eq!(run().status.code(), Some(0));
    fs::write(f.root().join(".git/HEAD"), "garbage").unwrap();
    let away = f.tmp.path().join("away");
    fs::rename(&f.repo.dir, &away).unwrap();
    assert_eq!(run().status.code(), Some(1));
    assert_published(&f, &h);
    assert_eq!(f.read("f"), "1");
    fs::rename(&away, &f.repo.dir).unwrap();
}

#[test]
fn corrupt_root_is_reset() {
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    f.sync_once(&[]);
    fs::write(f.root().join(".git/HEAD"), "garbage").unwrap();
    f.sync_once(&[]);
    assert_published(&f, &h);
    assert_eq!(f.read("f"), "1");

    // Reset while the remote is away: the published tree is still served.
    fs::write(f.root().join(".git/HEAD"), "garbage").unwrap();
    let away = f.tmp.path().join("away");
    fs::rename(&f.repo.dir, &away).unwrap();
    let out = run_git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", f.root().display()),
        "--one-time",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_published(&f, &h);
    assert_eq!(f.read("f"), "1");
    fs::rename(&away, &f.repo.dir).unwrap();
    f.sync_once(&[]);
    assert_published(&f, &h);
    assert_eq!(f.read("f"), "1");
    // Checked out again into a worktree of the new repository.
    assert_eq!(git(&f.link(), &["rev-parse", "HEAD"]), h);

    // Also when git-sync was started in the root (`--root=.` of a local
    // daemon): a root it made is a sync directory wherever it is.
    fs::write(f.root().join(".git/HEAD"), "garbage").unwrap();
    let mut p = spawn({
        let mut c = git_sync(&[&format!("--repo={}", f.url()), "--root=.", "--link=site"]);
        c.arg("--one-time").current_dir(f.root());
        c
    });
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
    assert!(p.log().contains("unusable"), "{}", p.log());
    assert_eq!(git(&f.link(), &["rev-parse", "HEAD"]), h);
}

/// Remove `dir` as `rm -rf` would while a daemon may be writing into it
/// (a clean-up after a publish, a pass): try again until it is gone.
fn remove_under_a_daemon(dir: &Path) {
    let deadline = std::time::Instant::now() + LONG;
    while let Err(e) = fs::remove_dir_all(dir) {
        assert!(
            std::time::Instant::now() < deadline,
            "cannot remove {}: {e}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn worktrees_kept_from_before_a_reset_do_not_stop_the_cleanup() {
    // Readers' worktrees outlive a repository set up again under them, and
    // their commits are not in the new store: gc keeps what it has.
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("f", "1")], "1");
    let mut p = f.daemon(&["-v=1", "--stale-worktree-grace=60s", "--period=60s"]);
    p.wait_for(LONG, "1", || published(&f.link()).as_deref() == Some(&h1));
    let publish = |p: &mut Proc, n: &str| {
        let h = f.repo.commit(&[("f", n)], n);
        p.wait_for(LONG, n, || published(&f.link()).as_deref() == Some(&h));
    };
    publish(&mut p, "2");
    // Its cleanup done (it measures the garbage of two commits), the
    // repository goes.
    p.wait_log(LONG, "the gc after the second update", |log| {
        log.contains("too little garbage") || log.contains("git gc done")
    });
    remove_under_a_daemon(&f.root().join(".git"));
    publish(&mut p, "3");
    publish(&mut p, "4");
    p.wait_log(LONG, "a gc after the update", |log| {
        log.lines()
            .skip_while(|l| !l.contains("gone from the root"))
            .any(|l| l.contains("\"msg\":\"git gc") || l.contains("cleanup failed"))
    });
    assert!(!p.log().contains("cleanup failed"), "{}", p.log());
    // A no-op pass queued behind the second update may be caught by the
    // removal; no more than that.
    assert!(failed_passes(&p.log()) <= 1, "{}", p.log());
}

#[test]
fn a_repository_removed_while_running_is_set_up_again() {
    // Someone cleans the directory of a running daemon between passes: the
    // next pass sets the root up again instead of failing until a restart
    // (with the default --max-failures=0, a failed pass would end the
    // process). A local repository is watched, so the long period keeps
    // other passes out of the way.
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("f", "1")], "c1");
    // A commit may queue one more (no-op) pass behind its update, and if
    // that pass runs while the test is deleting, it fails as it should:
    // one failure is allowed for that, a second in a row would end the
    // process (and a root not set up again fails every pass).
    let mut p = spawn(git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", f.root().display()),
        "--period=60s",
        "--max-failures=1",
    ]));
    let updates = |n: usize| move |log: &str| log_lines_with(log, "updated successfully") >= n;
    let remove = remove_under_a_daemon;
    p.wait_log(LONG, "h1 published", updates(1));
    assert_published(&f, &h1);
    remove(&f.root().join(".git"));
    let h2 = f.repo.commit(&[("f", "2")], "c2");
    p.wait_log(LONG, "h2 after .git was removed", updates(2));
    assert_published(&f, &h2);
    // The whole root this time.
    remove(&f.root());
    let h3 = f.repo.commit(&[("f", "3")], "c3");
    p.wait_log(LONG, "h3 after the root was removed", updates(3));
    assert_published(&f, &h3);
    assert_eq!(f.read("f"), "3");
    assert_eq!(git(&f.link(), &["rev-parse", "HEAD"]), h3);
    assert!(failed_passes(&p.log()) <= 1, "{}", p.log());
    // The root made again is locked again: a second git-sync is refused
    // there, as on the root it started with.
    let log = f.fail_once(&[]);
    let holder = format!("another git-sync (pid {})", p.child.id());
    assert!(log.contains(&holder), "{log}");
    assert_published(&f, &h3);
}

#[test]
fn a_published_tree_emptied_behind_our_back_is_checked_out_again() {
    // A volume that lost the files (upstream's kubernetes/git-sync#827),
    // or `rm -rf <link>/*`: the next poll puts the same commit back,
    // without waiting for a new one. Its git files alone are enough too.
    let f = Fixture::new(Transport::File);
    let h = f
        .repo
        .commit(&[("index.html", "1"), ("a/b.txt", "b")], "c1");
    let mut p = f.daemon(&["--watch-local=false"]);
    let updates = |n: usize| move |log: &str| log_lines_with(log, "updated successfully") >= n;
    p.wait_log(LONG, "published", updates(1));
    let wt = f.root().join(".worktrees").join(&h);
    for (n, entry) in [(2, "index.html"), (3, "a"), (4, ".git")] {
        remove_any_under_a_daemon(&wt.join(entry));
        p.wait_log(LONG, &format!("{entry} back"), updates(n));
    }
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
    assert_published(&f, &h);
    assert_eq!(f.read("index.html"), "1");
    assert!(p.log().contains("changed behind our back"), "{}", p.log());
    assert_eq!(failed_passes(&p.log()), 0, "{}", p.log());
}

/// Remove a file or a directory as `rm -rf` would under a daemon.
fn remove_any_under_a_daemon(path: &Path) {
    if path.is_dir() {
        remove_under_a_daemon(path)
    } else {
        fs::remove_file(path).unwrap()
    }
}

#[test]
fn readers_never_lose_the_tree_while_a_reset_repository_checks_it_out_again() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let f = Fixture::new(Transport::File);
    // Enough files that the checkout takes a while.
    let files: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("d{}/f{i}", i % 20), format!("content {i}")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .chain([("f", "1")])
        .collect();
    let h = f.repo.commit(&refs, "c1");
    f.sync_once(&[]);
    fs::write(f.root().join(".git/HEAD"), "garbage").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (reads, misses) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let reader = {
        let (stop, reads, misses, link) = (stop.clone(), reads.clone(), misses.clone(), f.link());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match fs::read_to_string(link.join("f")) {
                    Ok(s) if s == "1" => reads.fetch_add(1, Ordering::Relaxed),
                    _ => misses.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    let log = f.sync_once(&[]);
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(
        misses.load(Ordering::Relaxed),
        0,
        "the tree went missing:\n{log}"
    );
    assert_published(&f, &h);
    assert_eq!(git(&f.link(), &["rev-parse", "HEAD"]), h);
    // The stand-in stays for --stale-worktree-grace, like an old worktree,
    // for readers that were inside it.
    let others = || -> Vec<String> {
        fs::read_dir(f.root().join(".worktrees"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| *n != h)
            .collect()
    };
    assert_eq!(others(), vec![format!("{h}.stand-in")]);
    f.sync_once(&["--stale-worktree-grace=0s"]);
    assert_eq!(others(), Vec::<String>::new());
}

#[test]
fn an_unreadable_user_git_config_fails_without_touching_the_root() {
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    f.sync_once(&[]);
    let home = f.tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    fs::write(home.join(".gitconfig"), "[broken\n").unwrap();
    let mut cmd = git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", f.root().display()),
        "--one-time",
    ]);
    cmd.env("HOME", &home).env_remove("XDG_CONFIG_HOME");
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 1);
    let log = p.log();
    assert!(
        log.contains(".gitconfig"),
        "the error names the file: {log}"
    );
    assert!(!log.contains("emptied"), "{log}");
    assert_published(&f, &h);
    assert!(f.root().join(".git/HEAD").exists());
}

// ---- depth ---------------------------------------------------------------

fn depth(t: Transport) {
    let f = Fixture::new(t);
    for i in 0..5 {
        f.repo.commit(&[("f", &i.to_string())], &format!("c{i}"));
    }
    f.sync_once(&["--depth=1"]);
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "1");
    assert!(f.root().join(".git/shallow").exists());
    let h = f.repo.commit(&[("f", "5")], "c5");
    f.sync_once(&["--depth=2"]);
    assert_published(&f, &h);
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "2");
    // A restart asking for more history brings it, the tree left as it is.
    use std::os::unix::fs::MetadataExt;
    let tree = || {
        fs::metadata(f.root().join(".worktrees").join(&h))
            .unwrap()
            .ino()
    };
    let before = tree();
    let log = f.sync_once(&["--depth=4"]);
    assert!(
        log.contains("fetching the history --depth asks for"),
        "{log}"
    );
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "4");
    f.sync_once(&["--depth=0"]);
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "6");
    assert!(!f.root().join(".git/shallow").exists());
    assert_eq!(tree(), before, "the tree was made again");
    git(&f.root(), &["fsck", "--no-progress"]);
    // Once there, nothing more is fetched.
    let log = f.sync_once(&["--depth=0"]);
    assert!(!log.contains("fetching the history"), "{log}");

    // All history asked for with a new commit, from a shallow store.
    let g = Fixture::new(match f.server {
        Some(_) => Transport::Http,
        None => Transport::File,
    });
    for i in 0..5 {
        g.repo.commit(&[("f", &i.to_string())], &format!("c{i}"));
    }
    g.sync_once(&["--depth=1"]);
    g.repo.commit(&[("f", "5")], "c5");
    g.sync_once(&["--depth=0"]);
    assert_eq!(git(&g.link(), &["rev-list", "--count", "HEAD"]), "6");
    assert!(!g.root().join(".git/shallow").exists());
    git(&g.root(), &["fsck", "--no-progress"]);
}

#[test]
fn depth_file() {
    depth(Transport::File);
}

#[test]
fn depth_http() {
    depth(Transport::Http);
}

// ---- no git binary -------------------------------------------------------

#[test]
fn syncs_without_any_git_binary_on_path() {
    let f = Fixture::new(Transport::Http);
    let h = f.repo.commit(&[("f", "1")], "c1");
    let empty = f.tmp.path().join("empty-bin");
    fs::create_dir_all(&empty).unwrap();
    for url in [f.url(), f.repo.url()] {
        let root = f.tmp.path().join(format!("root-{}", url.len()));
        let mut cmd = git_sync(&[
            &format!("--repo={url}"),
            &format!("--root={}", root.display()),
            "--one-time",
        ]);
        cmd.env_clear().env("PATH", &empty);
        let mut p = spawn(cmd);
        assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
        assert_eq!(published(&root.join("site")).as_deref(), Some(h.as_str()));
    }
}

// ---- configuration errors ------------------------------------------------

#[test]
fn bad_flags_exit_1_with_one_line_naming_the_flag() {
    for (args, needle) in [
        (vec!["--no-such-flag"], "--no-such-flag"),
        (
            vec!["--repo=x", "--root=/tmp/x", "--period=ten"],
            "--period",
        ),
        (vec!["--repo=x", "--root=/tmp/x", "--depth=-1"], "--depth"),
        (
            vec!["--repo=x", "--root=/tmp/x", "--one-time=maybe"],
            "one-time",
        ),
        (vec!["--root=/tmp/x"], "--repo"),
        (
            vec!["--repo=x", "--root=/tmp/x", "--git-config=proxy:http://p"],
            "--git-config",
        ),
        (
            vec!["--repo=x", "--root=/tmp/x", "--http-bind=8080"],
            "--http-bind",
        ),
        (
            vec!["--repo=htps://git.example.com/x.git", "--root=/tmp/x"],
            "unknown URL scheme",
        ),
        (
            vec!["--repo=x", "--root=/tmp/x", "--ref=main~1"],
            "revision expression",
        ),
        // A misspelt key, as upstream rejects it (its value never shown).
        (
            vec![
                "--repo=x",
                "--root=/tmp/x",
                r#"--credential={"url":"https://h","username":"u","password":"S3CRET","password_file":"/f"}"#,
            ],
            "unknown field \"password_file\"",
        ),
        // A fault signal (SEGV: signal-hook aborts on it) or the C library's own.
        (
            vec!["--repo=x", "--root=/tmp/x", "--sync-on-signal=11"],
            "--sync-on-signal",
        ),
        (
            vec!["--repo=x", "--root=/tmp/x", "--sync-on-signal=32"],
            "--sync-on-signal",
        ),
    ] {
        let out = git_sync(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("S3CRET"), "{args:?}: {err}");
    }
    // A repository URL from a Secret made with `echo ... | base64`: said at
    // start (git refuses such a URL), its password not repeated.
    let out = git_sync(&["--root=/tmp/x"])
        .env("GITSYNC_REPO", "https://bot:S3CRET@git.example.com/x.git\n")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--repo (env GITSYNC_REPO): contains a newline at its end"),
        "{err}"
    );
    assert!(!err.contains("S3CRET"), "{err}");
    let out = git_sync(&["--repo=x", "--root=/tmp/x"])
        .env("GITSYNC_SYNC_TIMEOUT", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("--sync-timeout") && err.contains("GITSYNC_SYNC_TIMEOUT"),
        "{err}"
    );
}

#[test]
fn help_version_and_man() {
    for flag in ["--help", "-h", "--version", "--man"] {
        let out = git_sync(&[flag]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(!out.stdout.is_empty(), "{flag}");
    }
    // Upstream prints the bare version, as `git describe` names it.
    let version = git_sync(&["--version"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("v{}\n", env!("CARGO_PKG_VERSION"))
    );
    let man = git_sync(&["--man"]).output().unwrap();
    let man = String::from_utf8_lossy(&man.stdout);
    for name in [
        "--repo",
        "--stale-worktree-timeout",
        "GITSYNC_PERIOD",
        "--git-gc",
    ] {
        assert!(man.contains(name), "manual lacks {name}");
    }
}

/// A server speaking protocol v0 (as libgit2 does; here by
/// `protocol.version`) refuses a hash no ref points at unless configured
/// to allow it: all branches and tags are fetched instead. Over v2, which
/// has no such check, the commit is fetched at once.
#[test]
fn hash_ref_from_a_server_that_refuses_unadvertised_wants() {
    let f = Fixture::new(Transport::Http);
    f.repo
        .git(&["config", "uploadpack.allowAnySHA1InWant", "false"]);
    let c1 = f.repo.commit(&[("f", "1")], "c1");
    f.repo.commit(&[("f", "2")], "c2");
    let v0 = "--git-config=protocol.version:0";
    let log = f.sync_once(&[&format!("--ref={c1}"), v0]);
    assert!(
        log.contains("refused a fetch by hash"),
        "fallback not taken:\n{log}"
    );
    assert_published(&f, &c1);
    assert_eq!(f.read("f"), "1");
    // Once synced, a pinned hash needs nothing from the remote at all.
    let log = f.sync_once(&[&format!("--ref={c1}"), "-v=1"]);
    assert_eq!(log_lines_with(&log, "no change"), 1, "{log}");
    // Upstream's word for it, said once by a daemon (a one-time run just
    // ends).
    let pinned = "ref appears to be a git hash, no further sync needed";
    assert_eq!(log_lines_with(&log, pinned), 0, "{log}");
    let mut d = f.daemon(&[&format!("--ref={c1}"), "--period=20ms", "-v=1"]);
    d.wait_log(LONG, "a few polls", |log| {
        log_lines_with(log, "no change") >= 3
    });
    assert_eq!(log_lines_with(&d.log(), pinned), 1, "{}", d.log());
    drop(d);

    let root = f.tmp.path().join("v2-root");
    let out = run_git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", root.display()),
        &format!("--ref={c1}"),
        "--one-time",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!log.contains("refused a fetch by hash"), "{log}");
    assert_eq!(published(&root.join("site")), Some(c1));
}

// ---- crash safety and disk use ------------------------------------------

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

/// The published tree, if any, is complete and of one version.
fn assert_link_complete(link: &Path, n: usize) {
    if fs::symlink_metadata(link).is_err() {
        return; // nothing published yet
    }
    let version =
        fs::read_to_string(link.join("version.txt")).expect("published tree lacks version.txt");
    assert_eq!(count_files(link), n + 1, "published tree is incomplete");
    for i in (0..n).step_by(97) {
        let c = fs::read_to_string(link.join(format!("d{}/f{i}.txt", i % 20))).unwrap();
        assert_eq!(c, version, "published tree mixes versions");
    }
}

#[test]
fn a_first_sync_needs_no_repack_but_an_update_does() {
    for t in [Transport::File, Transport::Http] {
        let f = Fixture::new(t);
        f.repo.commit(&[("f", "1")], "c1");
        f.repo.commit(&[("f", "2"), ("g", "x")], "c2");
        let packs = || {
            fs::read_dir(f.root().join(".git/objects/pack"))
                .unwrap()
                .count()
        };
        // The fetched pack already holds exactly the published commit.
        let log = f.sync_once(&["-v=1", "--git-gc=always"]);
        assert_eq!(log_lines_with(&log, "git gc done"), 0, "{log}");
        assert_eq!(packs(), 2, ".pack and .idx");
        assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "1");
        // An update brings a second pack; the old commit goes after the grace.
        let h3 = f.repo.commit(&[("f", "3")], "c3");
        let log = f.sync_once(&["-v=1", "--git-gc=always", "--stale-worktree-grace=0s"]);
        assert_eq!(log_lines_with(&log, "git gc done"), 1, "{log}");
        assert_published(&f, &h3);
        assert_eq!(packs(), 2, "one pack again");
        assert_eq!(git(&f.link(), &["fsck", "--connectivity-only"]), "");
    }
}

#[test]
fn always_repacks_once_garbage_is_worth_it_aggressive_after_every_update() {
    let f = Fixture::new(Transport::Http);
    f.repo
        .commit(&[("big.bin", &noise(1, 300_000)), ("small", "0")], "c0");
    let packs = || {
        fs::read_dir(f.root().join(".git/objects/pack"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("pack".as_ref()))
            .count()
    };
    let gc = |mode: &str| {
        let log = f.sync_once(&["-v=1", mode, "--stale-worktree-grace=0s"]);
        log_lines_with(&log, "git gc done")
    };
    assert_eq!(gc("--git-gc=always"), 0, "a first fetch is already minimal");
    // Small changes: the old versions are a few hundred bytes of a store
    // of 300 kB, not worth rewriting it, until more than 8 packs build up.
    for i in 1..=7 {
        f.repo.commit(&[("small", &i.to_string())], "small change");
        assert_eq!(gc("--git-gc=always"), 0, "update {i}");
        assert_eq!(packs(), 1 + i);
    }
    f.repo.commit(&[("small", "8")], "small change");
    assert_eq!(gc("--git-gc=always"), 1, "ninth pack");
    assert_eq!(packs(), 1);
    // Replacing the big file makes half the store garbage: repacked at once.
    let before = disk_usage(&f.root().join(".git"));
    f.repo
        .commit(&[("big.bin", &noise(2, 300_000))], "new big file");
    assert_eq!(gc("--git-gc=always"), 1, "big file replaced");
    assert_eq!(packs(), 1);
    let after = disk_usage(&f.root().join(".git"));
    assert!(after < before + 50_000, "{before} then {after} bytes");
    // aggressive: after every update, however small.
    f.repo.commit(&[("small", "9")], "small change");
    assert_eq!(gc("--git-gc=aggressive"), 1);
    assert_eq!(packs(), 1);
    assert_eq!(git(&f.link(), &["fsck", "--connectivity-only"]), "");
    assert_eq!(f.read("small"), "9");
}

#[test]
fn a_repack_at_depth_0_keeps_the_whole_history_and_its_deltas() {
    // A repack copies stored objects (deltas included) rather than
    // searching deltas again: git must read every object of the result.
    let f = Fixture::new(Transport::Http);
    let page = |version: usize| -> String {
        (0..300)
            .map(|l| format!("line {l}: {}\n", if l % 30 == 0 { version } else { l }))
            .collect()
    };
    for v in 0..10 {
        f.repo
            .commit(&[("page.txt", &page(v)), ("n", &v.to_string())], "edit");
    }
    let sync = || {
        let log = f.sync_once(&["-v=1", "--depth=0", "--stale-worktree-grace=0s"]);
        log_lines_with(&log, "git gc done")
    };
    assert_eq!(sync(), 0, "a first fetch is already minimal");
    // Updates until one repacks (the copies of delta bases that fetches
    // bring, or nine packs, make it worth it), then check what it wrote.
    let mut v = 10;
    loop {
        f.repo.commit(&[("page.txt", &page(v))], "edit");
        v += 1;
        if sync() == 1 {
            break;
        }
        assert!(v < 19, "no repack after {} updates", v - 10);
    }
    let pack_dir = f.root().join(".git/objects/pack");
    let packs: Vec<_> = fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some("pack".as_ref()))
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    git(&f.root(), &["fsck", "--full", "--strict", "--no-progress"]);
    assert_eq!(
        git(&f.link(), &["rev-list", "--count", "HEAD"]),
        v.to_string()
    );
    let listing = git(
        &pack_dir,
        &["verify-pack", "-v", packs[0].to_str().unwrap()],
    );
    let deltas = listing
        .lines()
        .filter(|l| l.contains(" blob ") && l.split_whitespace().count() == 7)
        .count();
    assert!(
        deltas >= 9,
        "versions of page.txt stored as deltas: {listing}"
    );
    assert_eq!(f.read("page.txt"), page(v - 1));
}

#[test]
fn at_depth_0_forward_updates_are_collected_without_walking_the_history() {
    // Each gc at --depth=0 used to walk the whole history to find garbage
    // (1.3 s per update for 20,000 commits). While the history only moves
    // forward nothing becomes garbage but extra copies, which the pack
    // indexes show; a force-push is found out and collected in full.
    for t in [Transport::File, Transport::Http] {
        let f = Fixture::new(t);
        f.repo.commit(&[("a", &noise(1, 50_000))], "c1");
        let mut d = f.daemon(&["-v=1", "--depth=0", "--stale-worktree-grace=0s"]);
        let forward = |log: &str| {
            log.lines()
                .filter(|l| l.contains("git gc: history only moved forward"))
                .count()
        };
        let publish = |d: &mut Proc, files: &[(&str, &str)], msg: &str| {
            let h = f.repo.commit(files, msg);
            d.wait_for(LONG, msg, || published(&f.link()).as_deref() == Some(&h));
            h
        };
        let c2 = publish(&mut d, &[("b", "2")], "c2");
        let c3 = publish(&mut d, &[("big3", &noise(3, 200_000))], "c3");
        let c4 = publish(&mut d, &[("big4", &noise(4, 200_000))], "c4");
        d.wait_log(LONG, "a gc without a walk", |log| forward(log) >= 2);
        // Rewritten: c3 and c4 (400 kB of 450) are garbage now.
        f.repo.git(&["reset", "-q", "--hard", &c2]);
        let before = forward(&d.log());
        let c5 = publish(&mut d, &[("c", "5")], "c5");
        d.wait_for(LONG, "the rewritten commits dropped", || {
            !git_succeeds(&f.root(), &["cat-file", "-e", &c4])
        });
        assert!(!git_succeeds(&f.root(), &["cat-file", "-e", &c3]));
        let log = d.log();
        assert!(log.contains("git gc: repacking"), "{log}");
        d.kill9();
        assert!(forward(&log) >= before, "{log}");
        git(&f.root(), &["fsck", "--full", "--strict", "--no-progress"]);
        assert_eq!(git(&f.link(), &["rev-list", "--count", &c5]), "3");
    }
}

#[test]
fn at_depth_0_what_the_store_holds_is_remembered_across_restarts() {
    // Every run of a --one-time job (and the first update after a
    // restart) walked the whole history to find garbage: 1.3 s for 20,000
    // commits. What is known survives the process; a claim that does not
    // hold (a force-push, a file of hashes the store lacks) only costs the
    // walk.
    let f = Fixture::new(Transport::File);
    let args = ["-v=1", "--depth=0", "--stale-worktree-grace=0s"];
    let walked =
        |log: &str| log.contains("git gc: too little garbage") || log.contains("git gc: repacking");
    let forward = |log: &str| log.contains("git gc: history only moved forward");
    f.repo.commit(&[("a", &noise(1, 50_000))], "c1");
    f.sync_once(&args);
    let c2 = f.repo.commit(&[("b", &noise(2, 50_000))], "c2");
    let log = f.sync_once(&args);
    assert!(forward(&log) && !walked(&log), "{log}");
    let c3 = f.repo.commit(&[("c", &noise(3, 50_000))], "c3");
    let log = f.sync_once(&args);
    assert!(forward(&log) && !walked(&log), "{log}");

    // Rewritten: c2 and c3 are garbage, found by a walk.
    f.repo.git(&["reset", "-q", "--hard", "HEAD~2"]);
    let c4 = f.repo.commit(&[("d", "4")], "c4");
    let log = f.sync_once(&args);
    assert!(walked(&log) && !forward(&log), "{log}");
    for gone in [&c2, &c3] {
        assert!(
            !git_succeeds(&f.root(), &["cat-file", "-e", gone]),
            "{gone} kept"
        );
    }
    assert_eq!(published(&f.link()).as_deref(), Some(c4.as_str()));

    // A claim naming commits the store does not have is not trusted.
    let tips = f.root().join(".git/git-sync-tips");
    assert!(tips.exists());
    fs::write(&tips, format!("{c3}\n")).unwrap();
    f.repo.commit(&[("e", "5")], "c5");
    let log = f.sync_once(&args);
    assert!(walked(&log) && !forward(&log), "{log}");
    git(&f.root(), &["fsck", "--full", "--strict", "--no-progress"]);
}

#[test]
fn at_depth_0_small_packs_are_rolled_up_and_the_large_one_left_alone() {
    // A long history's store is not rewritten every nine updates: only the
    // packs the updates brought are, into one.
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("big", &noise(9, 400_000))], "c1");
    let packs = || f.packs();
    let mut d = f.daemon(&["-v=1", "--depth=0", "--stale-worktree-grace=0s"]);
    d.wait_for(LONG, "first publish", || f.link().exists());
    let first = packs();
    assert_eq!(first.len(), 1);
    let mut last = String::new();
    for i in 0..8 {
        last = f.repo.commit(&[("n", &i.to_string())], "small");
        d.wait_for(LONG, &format!("update {i}"), || {
            published(&f.link()).as_deref() == Some(&last)
        });
    }
    d.wait_log(LONG, "a roll-up", |log| {
        log.contains("rolling the small packs up into one")
    });
    d.wait_for(LONG, "two packs", || packs().len() == 2);
    d.kill9();
    let now = packs();
    assert!(
        now.contains(&first[0]),
        "the large pack was rewritten: {now:?}"
    );
    assert!(!d.log().contains("repacking"), "{}", d.log());
    git(&f.root(), &["fsck", "--full", "--strict", "--no-progress"]);
    assert_eq!(git(&f.link(), &["rev-list", "--count", &last]), "9");
}

#[test]
fn kill_9_at_any_moment_then_restart_converges() {
    let f = Fixture::new(Transport::Http);
    const N: usize = 2000;
    let mut head = commit_version(&f.repo, N, 0);
    for (round, delay_ms) in [3u64, 10, 25, 40, 60, 90, 130, 200].into_iter().enumerate() {
        let mut d = f.daemon(&[]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill9();
        assert_link_complete(&f.link(), N);
        head = commit_version(&f.repo, N, round + 1);
    }
    f.sync_once(&["--stale-worktree-grace=0s"]);
    assert_published(&f, &head);
    assert_link_complete(&f.link(), N);
    // Nothing half-made is left behind.
    let worktrees: Vec<_> = fs::read_dir(f.root().join(".worktrees")).unwrap().collect();
    assert_eq!(worktrees.len(), 1, "{worktrees:?}");
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
}

#[test]
fn a_second_git_sync_on_the_same_root_is_refused_and_touches_nothing() {
    let f = Fixture::new(Transport::File);
    let h0 = f.repo.commit(&[("index.html", "zero")], "c0");
    let h1 = f.repo.commit(&[("index.html", "one")], "c1");
    let mut d = f.daemon(&[]);
    d.wait_for(LONG, "first publish", || {
        published(&f.link()).as_deref() == Some(&h1)
    });
    // Another one on the same root, for an older commit: it would flip the
    // link and remove the first one's worktree as stale.
    let log = f.fail_once(&[&format!("--ref={h0}"), "--error-file=error.json"]);
    let holder = format!("another git-sync (pid {})", d.child.id());
    // Not even an error file: the root's error file is the first one's.
    assert!(!f.root().join("error.json").exists());
    assert!(log.contains(&holder), "{log}");
    assert!(log.contains(&f.root().display().to_string()), "{log}");
    assert_published(&f, &h1);
    let worktrees: Vec<String> = fs::read_dir(f.root().join(".worktrees"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(worktrees, vec![h1.clone()]);
    // The first goes on.
    let h2 = f.repo.commit(&[("index.html", "two")], "c2");
    d.wait_for(LONG, "publish after the refused run", || {
        published(&f.link()).as_deref() == Some(&h2)
    });
    // One told to retry its setup forever waits for the root...
    let mut waiting = f.daemon(&[
        &format!("--ref={h0}"),
        "--init-max-failures=-1",
        "--init-period=50ms",
    ]);
    waiting.wait_log(LONG, "two refusals", |log| {
        log.matches(&holder).count() >= 2
    });
    assert_published(&f, &h2);
    // ... which the first one's end, even by kill -9, frees.
    d.kill9();
    waiting.wait_for(LONG, "the waiting one publishes", || {
        published(&f.link()).as_deref() == Some(&h0)
    });
}

#[test]
fn disk_use_stays_flat_over_50_updates() {
    let f = Fixture::new(Transport::Http);
    let mut d = f.daemon(&["--stale-worktree-grace=0s", "--period=20ms"]);
    let mut sizes = Vec::new();
    for i in 0..50u64 {
        let h = f.repo.commit(
            &[("big.bin", &noise(i, 100_000)), ("n", &i.to_string())],
            "update",
        );
        d.wait_for(LONG, &format!("publish {i}"), || {
            published(&f.link()).as_deref() == Some(&h)
        });
        sizes.push(disk_usage(&f.root()));
    }
    // Let the last cleanup run to its end: the old worktrees, then their
    // admin entries in .git/worktrees (a kill between the two leaves an
    // entry the next cleanup removes).
    let count = |dir: &str| fs::read_dir(f.root().join(dir)).unwrap().count();
    d.wait_for(
        LONG,
        "old worktrees and their admin entries removed",
        || count(".worktrees") == 1 && count(".git/worktrees") == 1,
    );
    d.kill9();
    let early = sizes[..10].iter().max().copied().unwrap();
    let late = disk_usage(&f.root());
    // Without cleanup, 50 versions of 100 kB would take ~5 MB.
    assert!(
        late < early + 200_000,
        "disk grew: {early} then {late} bytes"
    );
    assert!(late < 1_500_000, "root holds {late} bytes after 50 updates");
    // What is left is a sound repository, as git itself sees it.
    git(&f.root(), &["fsck", "--no-progress"]);
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "1");
}

#[test]
fn trees_a_hook_made_read_only_are_still_removed_once_stale() {
    // Hooks build in the tree: `go mod download` leaves read-only
    // directories, which `rm -rf` cannot empty without root. They are
    // still ours to remove, and one that resists must not keep the others
    // (nor the repository's garbage) from going.
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "one");
    let root = f.root();
    fs::create_dir_all(&root).unwrap();
    give_to_nobody(&root);
    let hook = f.tmp.path().join("hook");
    script(
        &hook,
        "mkdir -p cache/mod/x && echo built > cache/mod/x/f && chmod -R a-w cache",
    );
    let mut d = spawn(f.as_nobody(&[
        format!("--root={}", root.display()),
        format!("--exechook-command={}", hook.display()),
        "--period=50ms".into(),
        "--max-failures=-1".into(),
        "-v=1".into(),
    ]));
    let built = |link: &Path| link.join("cache/mod/x/f").exists();
    d.wait_for(LONG, "first tree built", || built(&f.link()));
    // Where the test can, a directory of another user in the first tree:
    // that tree stays, the next one still goes.
    let stuck = fs::canonicalize(f.link()).unwrap();
    if is_root() {
        fs::create_dir(stuck.join("theirs")).unwrap();
        fs::write(stuck.join("theirs/f"), "not yours").unwrap();
    }
    for n in 2..4 {
        let h = f.repo.commit(&[("index.html", &format!("v{n}"))], "next");
        d.wait_for(LONG, "update built", || {
            published(&f.link()).as_deref() == Some(&h) && built(&f.link())
        });
    }
    let left = || {
        let mut names: Vec<_> = fs::read_dir(root.join(".worktrees"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    };
    let current = fs::canonicalize(f.link()).unwrap();
    let mut want = vec![current];
    if is_root() {
        want.push(stuck.clone());
    }
    want.sort();
    d.wait_for(LONG, "the old trees removed", || left() == want);
    // ... and the store was collected after each update all the same.
    d.wait_log(LONG, "gc after both updates", |log| {
        log_lines_with(log, "git gc done") == 2
    });
    let log = d.log();
    assert!(!log.contains("cleanup failed"), "{log}");
    if is_root() {
        assert!(log.contains("cannot remove it; will try again"), "{log}");
    }
    d.kill9();
    // What the hook left read-only in the published tree: for TempDir.
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&root)
        .status();
}

#[test]
fn symlinks_are_published_as_such_or_as_files_with_core_symlinks_false() {
    // A committed symlink may point anywhere, say at a Pod's service
    // account token: with core.symlinks=false it is written, as git does
    // where there are no symlinks, as a file holding its target, in link
    // and dest mode alike.
    let f = Fixture::new(Transport::File);
    std::os::unix::fs::symlink("/etc/hostname", f.repo.dir.join("host")).unwrap();
    f.repo.commit(&[("index.html", "v1")], "with a symlink");
    f.sync_once(&[]);
    assert_eq!(
        fs::read_link(f.link().join("host")).unwrap(),
        Path::new("/etc/hostname")
    );
    let no_symlinks = "--git-config=core.symlinks:false";
    let root = f.tmp.path().join("plain");
    let dest = f.tmp.path().join("served");
    for args in [
        vec![format!("--root={}", root.display())],
        vec![
            format!("--dest={}", dest.display()),
            format!("--state-dir={}", f.tmp.path().join("state").display()),
        ],
    ] {
        let mut all = vec![
            format!("--repo={}", f.url()),
            "--one-time".to_string(),
            no_symlinks.to_string(),
        ];
        all.extend(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = run_git_sync(&all);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    for host in [root.join("site/host"), dest.join("host")] {
        let meta = fs::symlink_metadata(&host).unwrap();
        assert!(meta.is_file(), "{host:?}");
        assert_eq!(fs::read_to_string(&host).unwrap(), "/etc/hostname");
    }
}

#[test]
fn gitattributes_filters_apply_as_git_would() {
    let f = Fixture::new(Transport::File);
    f.repo.commit(
        &[
            ("sub/.gitattributes", "*.txt text eol=crlf\n"),
            ("sub/a.txt", "one\ntwo\n"),
            ("plain.txt", "one\ntwo\n"),
            (
                ".gitattributes",
                "*.id ident\n*.bin filter=lfs diff=lfs merge=lfs -text\n",
            ),
            ("v.id", "version $Id$\n"),
            ("big.bin", LFS_POINTER),
        ],
        "attrs",
    );
    f.sync_once(&[]);
    assert_eq!(f.read("sub/a.txt"), "one\r\ntwo\r\n");
    assert_eq!(f.read("plain.txt"), "one\ntwo\n");
    let blob = git(&f.repo.dir, &["rev-parse", "HEAD:v.id"]);
    assert_eq!(f.read("v.id"), format!("version $Id: {blob} $\n"));
    // No git-lfs: the pointer is published as it is, as git without it does.
    assert_eq!(f.read("big.bin"), LFS_POINTER);
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");

    // Under the same attributes, an unchanged file is shared with the
    // previous tree, filtered as it was.
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| fs::metadata(f.link().join(p)).unwrap().ino();
    let (crlf, ident) = (ino("sub/a.txt"), ino("v.id"));
    f.repo.commit(&[("plain.txt", "three\n")], "plain");
    f.sync_once(&[]);
    assert_eq!((ino("sub/a.txt"), ino("v.id")), (crlf, ident));
    assert_eq!(f.read("sub/a.txt"), "one\r\ntwo\r\n");
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
    // Other attributes: checked out afresh, as they now say.
    f.repo.commit(&[("sub/.gitattributes", "")], "no crlf");
    f.sync_once(&[]);
    assert_eq!(f.read("sub/a.txt"), "one\ntwo\n");
    assert_eq!(f.read("v.id"), format!("version $Id: {blob} $\n"));
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
}

#[test]
fn working_tree_encoding_is_said_not_to_apply() {
    // git writes a file under working-tree-encoding=UTF-16LE in UTF-16;
    // libgit2 cannot: the file is published as stored, and the log says so.
    let f = Fixture::new(Transport::File);
    f.repo.commit(
        &[
            (
                ".gitattributes",
                "*.rc text working-tree-encoding=UTF-16LE\n",
            ),
            ("app.rc", "h\0i\0\n\0"),
            ("index.html", "v1"),
        ],
        "a UTF-16 file",
    );
    assert_eq!(git(&f.repo.dir, &["cat-file", "-p", "HEAD:app.rc"]), "hi");
    let log = f.sync_once(&[]);
    assert_eq!(f.read("app.rc"), "hi\n");
    assert_eq!(f.read("index.html"), "v1");
    assert!(log.contains("working-tree-encoding"), "{log}");
    // Without it, nothing is said.
    f.repo
        .commit(&[(".gitattributes", "*.rc text\n")], "no encoding");
    let log = f.sync_once(&[]);
    assert!(!log.contains("working-tree-encoding"), "{log}");
}

#[test]
fn attributes_that_convert_nothing_leave_each_file_its_blob() {
    // The attributes most repositories set change nothing on checkout
    // under Linux: the tree is written as its blobs, without libgit2's
    // checkout, and equals what git checks out.
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(
        &[
            (
                ".gitattributes",
                "* text=auto\n*.sh text eol=lf\n*.png binary\n\
                 *.bin filter=lfs diff=lfs merge=lfs -text\n",
            ),
            (
                "docs/.gitattributes",
                "** linguist-documentation export-ignore\n",
            ),
            ("run.sh", "echo run\n"),
            ("v.c", "version $Id$\n"),
            ("big.bin", LFS_POINTER),
            ("docs/a.md", "a\n"),
        ],
        "common attributes",
    );
    let log = f.sync_once(&["-v=1"]);
    assert_published(&f, &h);
    assert!(log.contains("written without libgit2"), "{log}");
    // What git checks out, from a fresh clone (a pull leaves a file whose
    // blob did not change as it was, whatever its attributes now say).
    let git_clone = |name: &str| {
        let dir = f.tmp.path().join(name);
        git(
            f.tmp.path(),
            &["clone", "-q", &f.repo.url(), dir.to_str().unwrap()],
        );
        as_checked_out(&dir)
    };
    assert_eq!(as_checked_out(&f.link()), git_clone("git-clone"));
    assert_eq!(f.read("v.c"), "version $Id$\n");
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");

    // The user's own attributes file converts too, as with git.
    let xdg = f.tmp.path().join("xdg");
    fs::create_dir_all(xdg.join("git")).unwrap();
    fs::write(xdg.join("git/attributes"), "*.md eol=crlf\n").unwrap();
    let other = f.tmp.path().join("other-root");
    let mut cmd = git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", other.display()),
        "--one-time",
    ]);
    cmd.env("XDG_CONFIG_HOME", &xdg);
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(Duration::from_secs(60)), 0, "{}", p.log());
    let md = fs::read_to_string(other.join("site/docs/a.md")).unwrap();
    assert_eq!(md, "a\r\n");

    // One converting attribute, in a macro (top level only, as in git):
    // libgit2 checks the tree out, converting.
    f.repo.commit(
        &[
            (".gitattributes", "[attr]dos text eol=crlf\n* text=auto\n"),
            ("docs/.gitattributes", "*.md dos\n"),
        ],
        "crlf for docs",
    );
    let log = f.sync_once(&["-v=1"]);
    assert!(!log.contains("written without libgit2"), "{log}");
    assert_eq!(f.read("docs/a.md"), "a\r\n");
    assert_eq!(as_checked_out(&f.link()), git_clone("git-clone-again"));
}

const LFS_POINTER: &str = "version https://git-lfs.github.com/spec/v1\n\
    oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
    size 12345\n";

/// A one-time git-sync with `--sync-timeout=<timeout>` and `extra`
/// against a server that accepts connections and never answers, its root
/// in `tmp`: its exit status, and how long it took.
fn one_time_against_a_hung_server(
    tmp: &Path,
    timeout: &str,
    extra: &[&str],
) -> (Option<i32>, Duration) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let started = std::time::Instant::now();
    let mut args = vec![
        format!("--repo=http://127.0.0.1:{port}/site"),
        format!("--root={}", tmp.join("root").display()),
        "--one-time".into(),
        format!("--sync-timeout={timeout}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_git_sync(&args);
    (out.status.code(), started.elapsed())
}

/// The pass's time is the bound for the whole pass: a listing that ran out
/// of it is neither tried again nor handed to libgit2 to wait once more.
#[test]
fn a_hung_server_holds_a_pass_for_the_sync_timeout_only() {
    let tmp = TempDir::new().unwrap();
    let (code, took) = one_time_against_a_hung_server(tmp.path(), "2s", &[]);
    assert_eq!(code, Some(1));
    // Twice the time-out when the listing's wait was followed by libgit2's.
    assert!(took < Duration::from_millis(3500), "took {took:?}");
}

#[test]
fn sync_timeout_bounds_a_hung_server() {
    let tmp = TempDir::new().unwrap();
    let (code, took) = one_time_against_a_hung_server(tmp.path(), "1s", &["--error-file=err.json"]);
    assert_eq!(code, Some(1));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = fs::read_to_string(tmp.path().join("root/err.json")).unwrap();
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn v3_names_errors_are_one_line_exit_1() {
    for (env, needle) in [
        (
            vec![("GIT_SYNC_BRANCH", "a"), ("GIT_SYNC_REV", "v1")],
            "--rev",
        ),
        (
            vec![("GIT_SYNC_PERMISSIONS", "0755")],
            "--change-permissions",
        ),
        (vec![("GIT_SYNC_WAIT", "soon")], "--wait"),
    ] {
        let mut cmd = git_sync(&["--repo=x", "--root=/tmp/x"]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{env:?}: {err}");
        assert!(err.contains(needle), "{env:?}: {err}");
    }
}

/// Apache Airflow's Helm chart gives git-sync each setting under its v3
/// and its v4 name (GIT_SYNC_BRANCH and GITSYNC_REF, GIT_SYNC_DEST and
/// GITSYNC_LINK, ...), from values users set apart: it syncs, and where the
/// two differ the v3 value is used, as upstream v4 uses it, with a warning.
#[test]
fn a_chart_setting_v3_and_v4_names_together_syncs_as_upstream() {
    let f = Fixture::new(Transport::File);
    let main = f.repo.commit(&[("dag.py", "main")], "main");
    f.repo.git(&["checkout", "-q", "-b", "dev"]);
    let dev = f.repo.commit(&[("dag.py", "dev")], "dev");
    let root = f.root().display().to_string();
    let url = f.repo.url();
    let run = |branch: &str, link: &str| {
        let mut cmd = git_sync(&[]);
        for (k, v) in [
            ("GIT_SYNC_REV", "HEAD"),
            ("GITSYNC_REF", "main"),
            ("GIT_SYNC_BRANCH", branch),
            ("GIT_SYNC_REPO", url.as_str()),
            ("GITSYNC_REPO", url.as_str()),
            ("GIT_SYNC_DEPTH", "1"),
            ("GITSYNC_DEPTH", "1"),
            ("GIT_SYNC_ROOT", root.as_str()),
            ("GITSYNC_ROOT", root.as_str()),
            ("GIT_SYNC_DEST", link),
            ("GITSYNC_LINK", "repo"),
            ("GIT_SYNC_ADD_USER", "true"),
            ("GITSYNC_ADD_USER", "true"),
            ("GIT_SYNC_WAIT", "5"),
            ("GITSYNC_PERIOD", "5s"),
            ("GIT_SYNC_MAX_SYNC_FAILURES", "0"),
            ("GITSYNC_MAX_FAILURES", "0"),
            ("GIT_SYNC_ONE_TIME", "true"),
            ("GITSYNC_ONE_TIME", "true"),
        ] {
            cmd.env(k, v);
        }
        let mut p = spawn(cmd);
        assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
        p.log()
    };
    let warned = |log: &str| {
        log.contains("a deprecated v3 name wins") || log.contains("the newer name wins")
    };

    // The chart's defaults: the same value under both names.
    let log = run("main", "repo");
    assert_eq!(
        published(&f.root().join("repo")).as_deref(),
        Some(main.as_str())
    );
    assert!(!warned(&log), "{log}");

    // A branch set where the chart has a ref too: the branch, as upstream.
    let log = run("dev", "dags");
    assert_eq!(
        published(&f.root().join("dags")).as_deref(),
        Some(dev.as_str())
    );
    assert!(
        log.lines().any(|l| warned(l)
            && l.contains(r#"--branch (env GIT_SYNC_BRANCH) \"dev\" is used, not --ref (env GITSYNC_REF) \"main\""#)),
        "{log}"
    );
    assert!(
        log.contains(
            r#"--dest (env GIT_SYNC_DEST) \"dags\" is used, not --link (env GITSYNC_LINK) \"repo\""#
        ),
        "{log}"
    );
}

// ---- sparse checkout ---------------------------------------------------------

#[test]
fn sparse_checkout_in_both_pattern_modes() {
    let f = Fixture::new(Transport::Http);
    f.repo.commit(
        &[
            ("README.md", "r"),
            ("docs/index.md", "i"),
            ("docs/api/x.md", "x"),
            ("docs/guide/y.md", "y"),
            ("src/main.rs", "m"),
            ("src/keep.keep", "k"),
        ],
        "tree",
    );
    // Submodules are matched as directories: one inside the selection,
    // one outside it (git leaves that one out).
    SourceRepo::new(&f.tmp.path().join("srv"), "lib").commit(&[("l.txt", "l")], "lib");
    add_submodule(&f.repo, "../lib", "docs/api/vendored");
    add_submodule(&f.repo, "../lib", "src/lib");
    let patterns = f.tmp.path().join("sparse");
    let present = |p: &str| f.link().join(p).exists();
    let submodules_as_git_would = || {
        assert!(present("docs/api/vendored/l.txt"));
        assert!(!present("src/lib"));
        assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
    };

    // Non-cone: gitignore-style patterns.
    fs::write(&patterns, "/docs/\n!/docs/guide/\n*.keep\n").unwrap();
    f.sync_once(&[&format!("--sparse-checkout-file={}", patterns.display())]);
    assert!(present("docs/index.md") && present("docs/api/x.md") && present("src/keep.keep"));
    assert!(!present("docs/guide/y.md") && !present("src/main.rs") && !present("README.md"));
    submodules_as_git_would();

    // Cone mode, as `git sparse-checkout set --cone docs/api` writes it.
    fs::write(&patterns, "/*\n!/*/\n/docs/\n!/docs/*/\n/docs/api/\n").unwrap();
    let h = f.repo.commit(&[("README.md", "r2")], "next");
    f.sync_once(&[&format!("--sparse-checkout-file={}", patterns.display())]);
    assert_published(&f, &h);
    assert!(present("README.md") && present("docs/index.md") && present("docs/api/x.md"));
    assert!(!present("docs/guide/y.md") && !present("src/main.rs") && !present("src/keep.keep"));
    submodules_as_git_would();
}

#[test]
fn a_sparse_tree_shares_its_unchanged_files_and_still_leaves_the_rest_out() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(Transport::File);
    f.repo
        .commit_numbered("docs", 10, &[("src/main.rs", "m")], "c1");
    let flag = f.sparse_flag("/docs/\n");
    f.sync_once(&[&flag]);
    let ino = |p: &str| fs::metadata(f.link().join(p)).unwrap().ino();
    let shared = ino("docs/0.txt");
    let h2 = f
        .repo
        .commit(&[("docs/9.txt", "nine"), ("src/main.rs", "m2")], "c2");
    f.sync_once(&[&flag]);
    assert_published(&f, &h2);
    assert_eq!(ino("docs/0.txt"), shared);
    assert_eq!(f.read("docs/9.txt"), "nine");
    assert!(!f.link().join("src").exists());
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
}

/// `--filter=blob:none` with a sparse checkout (a partial clone, as
/// upstream's git makes one): from a server that takes filters, the
/// commit and its trees come first, then only the contents the sparse
/// patterns select (and the `.gitattributes` the checkout reads). The
/// megabytes outside never come: not for the first sync, not for an
/// update, not for a repack; patterns edited later fetch what they add.
#[test]
fn a_filtered_sparse_sync_fetches_only_the_selected_contents() {
    let (tmp, srv, repo) = temp_source("site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let big: Vec<String> = (0..3).map(|i| noise(i, 1 << 20)).collect();
    repo.commit(
        &[
            ("docs/a.md", "a1"),
            ("docs/.gitattributes", "*.md text\n"),
            ("assets/0.bin", &big[0]),
            ("assets/1.bin", &big[1]),
            ("assets/2.bin", &big[2]),
        ],
        "one",
    );
    let server = HttpServer::start(&srv);
    let (port, received, _) = recording_proxy(server.port);
    let root = tmp.path().join("root");
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let sync = |gc: &str| {
        let before = received.load(std::sync::atomic::Ordering::SeqCst);
        let out = run_git_sync(&[
            &format!("--repo=http://127.0.0.1:{port}/site"),
            &format!("--root={}", root.display()),
            &format!("--sparse-checkout-file={}", patterns.display()),
            "--filter=blob:none",
            &format!("--git-gc={gc}"),
            "--one-time",
        ]);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{log}");
        assert!(!log.contains("cleanup failed"), "{log}");
        received.load(std::sync::atomic::Ordering::SeqCst) - before
    };
    let link = root.join("site");
    let read = |p: &str| fs::read_to_string(link.join(p)).unwrap();

    let first = sync("auto");
    assert_eq!(read("docs/a.md"), "a1");
    assert!(!link.join("assets").exists());
    // (The three files outside are some 2.5 MB compressed.)
    assert!(first < 20_000, "first sync: {first} bytes");
    assert_eq!(git(&link, &["status", "--porcelain"]), "");

    let h2 = repo.commit(
        &[("docs/a.md", "a2"), ("assets/0.bin", &noise(9, 1 << 20))],
        "two",
    );
    let update = sync("aggressive");
    assert_eq!(published(&link), Some(h2));
    assert_eq!(read("docs/a.md"), "a2");
    assert!(update < 20_000, "update: {update} bytes");

    // Patterns that select one of the large files: its content alone.
    fs::write(&patterns, "/docs/\n/assets/1.bin\n").unwrap();
    let widened = sync("always");
    assert_eq!(read("assets/1.bin"), big[1]);
    assert!(!link.join("assets/2.bin").exists());
    assert!(widened < (1 << 20), "widened: {widened} bytes");
    assert_eq!(git(&link, &["status", "--porcelain"]), "");
}

/// A running daemon keeps what the server's capabilities said (polls skip
/// them): its updates are fetched filtered too, each a few KB, while the
/// large files outside the patterns change under it.
#[test]
fn a_filtering_daemon_fetches_every_update_filtered() {
    let (tmp, srv, repo) = temp_source("site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    repo.commit(
        &[("docs/a.md", "0"), ("assets/big.bin", &noise(0, 1 << 20))],
        "0",
    );
    let server = HttpServer::start(&srv);
    let (port, received, _) = recording_proxy(server.port);
    let root = tmp.path().join("root");
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let mut p = spawn(git_sync(&[
        &format!("--repo=http://127.0.0.1:{port}/site"),
        &format!("--root={}", root.display()),
        &format!("--sparse-checkout-file={}", patterns.display()),
        "--filter=blob:none",
        "--period=50ms",
        "--git-gc=always",
    ]));
    let link = root.join("site");
    let shows = |n: usize| fs::read_to_string(link.join("docs/a.md")).ok() == Some(n.to_string());
    p.wait_for(LONG, "the first sync", || shows(0));
    for n in 1..=3u64 {
        let before = received.load(std::sync::atomic::Ordering::SeqCst);
        let big = noise(n, 1 << 20);
        repo.commit(
            &[("docs/a.md", &n.to_string()), ("assets/big.bin", &big)],
            "next",
        );
        p.wait_for(LONG, "the update", || shows(n as usize));
        let got = received.load(std::sync::atomic::Ordering::SeqCst) - before;
        // (Polls in between are a few hundred bytes each.)
        assert!(got < 100_000, "update {n}: {got} bytes");
    }
    assert!(!link.join("assets").exists());
    let log = p.log();
    assert!(
        !log.contains("cleanup failed") && failed_passes(&log) == 0,
        "{log}"
    );
}

/// A server may allow filters but not the kind asked for
/// (`uploadpackfilter.<kind>.allow`): the refused fetch is made again
/// whole, and the server is not asked with the filter again.
#[test]
fn a_server_that_refuses_the_filter_kind_is_fetched_from_whole() {
    let (tmp, srv, repo) = temp_source("site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    repo.git(&["config", "uploadpackfilter.blob:none.allow", "false"]);
    repo.commit(&[("docs/a.md", "0"), ("src/b.rs", "b")], "0");
    let server = HttpServer::start(&srv);
    let root = tmp.path().join("root");
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let mut p = spawn(git_sync(&[
        &format!("--repo={}", server.url("site")),
        &format!("--root={}", root.display()),
        &format!("--sparse-checkout-file={}", patterns.display()),
        "--filter=blob:none",
        "--period=50ms",
        "-v=5",
    ]));
    let link = root.join("site");
    let shows = |n: usize| fs::read_to_string(link.join("docs/a.md")).ok() == Some(n.to_string());
    p.wait_for(LONG, "the first sync", || shows(0));
    for n in 1..=2 {
        repo.commit(&[("docs/a.md", &n.to_string())], "next");
        p.wait_for(LONG, "the update", || shows(n));
    }
    let log = p.log();
    assert_eq!(
        log_lines_with(
            &log,
            "the server refused --filter; fetching whole objects from it"
        ),
        1,
        "{log}"
    );
    assert_eq!(log_lines_with(&log, "fetching with libgit2"), 1, "{log}");
    assert!(
        failed_passes(&log) == 0 && !link.join("src").exists(),
        "{log}"
    );
}

/// A hook's git reads a filtered store as it reads a partial clone it
/// made: the contents the store lacks are fetched when a command needs
/// them, from the repository's URL, which is written to disk without its
/// credentials. `git fsck` finds nothing missing that was not promised,
/// and the syncs go on.
#[test]
fn a_hooks_git_fetches_what_a_filtered_store_lacks() {
    let (tmp, srv, repo) = temp_source("site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    // (No command reads `assets/`: it stays out of the store.)
    repo.commit(
        &[("docs/a.md", "a1"), ("src/b.rs", "b1"), ("assets/c", "c")],
        "one",
    );
    let server = HttpServer::start(&srv);
    let root = tmp.path().join("root");
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let shown = tmp.path().join("shown");
    let hook = tmp.path().join("hook");
    script(
        &hook,
        &format!(
            "git show HEAD:src/b.rs > {0}.tmp && mv {0}.tmp {0}",
            shown.display()
        ),
    );
    let url = format!("http://reader:hunter2@127.0.0.1:{}/site", server.port);
    let mut p = spawn(git_sync(&[
        &format!("--repo={url}"),
        &format!("--root={}", root.display()),
        &format!("--sparse-checkout-file={}", patterns.display()),
        "--filter=blob:none",
        &format!("--exechook-command={}", hook.display()),
        "--period=50ms",
        "--git-gc=always",
    ]));
    let link = root.join("site");
    let shows = |what: &str| fs::read_to_string(&shown).ok().as_deref() == Some(what);
    p.wait_for(LONG, "the hook to show a file outside the patterns", || {
        shows("b1")
    });
    assert!(!link.join("src").exists());
    repo.commit(&[("docs/a.md", "a2"), ("src/b.rs", "b2")], "two");
    p.wait_for(LONG, "the hook to show the update", || shows("b2"));
    assert_eq!(fs::read_to_string(link.join("docs/a.md")).unwrap(), "a2");
    assert!(!link.join("src").exists());
    git(&root, &["fsck", "--no-progress"]);
    let leaks = files_holding(&root.join(".git"), "hunter2");
    assert_eq!(
        leaks,
        Vec::<std::path::PathBuf>::new(),
        "the password written to disk"
    );
    let log = p.log();
    assert_eq!(failed_passes(&log), 0, "{log}");
}

/// As upstream's, the store names the repository `origin` (a hook's git
/// asks for it: `git remote get-url origin`, relative submodule URLs),
/// and names it again when `--repo` changes; a whole store is no partial
/// clone to git.
#[test]
fn the_store_names_the_repository_origin() {
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("a", "1")], "one");
    let path = f.repo.dir.display().to_string();
    let run = |repo: &str| {
        git_sync_ok(&[
            &format!("--repo={repo}"),
            &format!("--root={}", f.root().display()),
            "--link=site",
            "--one-time",
        ]);
        git(&f.link(), &["remote", "get-url", "origin"])
    };
    assert_eq!(run(&path).trim(), path);
    let url = format!("file://{path}");
    assert_eq!(run(&url).trim(), url);
    assert_published(&f, &h1);
    let config = fs::read_to_string(f.root().join(".git/config")).unwrap();
    assert!(!config.contains("partialClone"), "{config}");
    assert!(!config.contains("promisor"), "{config}");
}

/// The store is collected by git-sync alone: a git binary in a hook (its
/// `git fetch`, the lazy fetch of a partial store) does not start a gc of
/// its own there, whatever its thresholds.
#[test]
fn a_hooks_git_starts_no_gc_in_the_store() {
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("a", "1")], "one");
    f.sync_once(&["--git-gc=off"]);
    let h2 = f.repo.commit(&[("a", "2")], "two");
    f.sync_once(&["--git-gc=off"]);
    assert_published(&f, &h2);
    let before = f.packs();
    assert!(before.len() >= 2, "{before:?}");
    // (In the foreground, so that what it would do is done here.)
    let eager = ["-c", "gc.autoPackLimit=1", "-c", "gc.autoDetach=false"];
    git(
        &f.link(),
        &[&eager[..], &["gc", "--auto", "--quiet"]].concat(),
    );
    git(
        &f.link(),
        &[&eager[..], &["maintenance", "run", "--auto", "--quiet"]].concat(),
    );
    assert_eq!(f.packs(), before);
}

/// Naming the (promisor) remote is for a hook's git only: a store config
/// that cannot be written (here immutable) is said in the log, and the
/// sync goes on.
#[test]
fn a_store_config_that_cannot_take_the_promisor_remote_does_not_stop_the_sync() {
    let f = Fixture::new(Transport::File);
    f.repo
        .commit(&[("docs/a.md", "a1"), ("src/b.rs", "b")], "one");
    let sparse = f.sparse_flag("/docs/\n");
    let flags = [sparse.as_str(), "--filter=blob:none"];
    f.sync_once(&flags);
    let config = f.root().join(".git/config");
    git(&f.root(), &["config", "--unset", "remote.origin.promisor"]);
    let immutable = |on: bool| {
        std::process::Command::new("chattr")
            .arg(if on { "+i" } else { "-i" })
            .arg(&config)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !immutable(true) {
        eprintln!("skipped: chattr +i is not available here");
        return;
    }
    let h2 = f.repo.commit(&[("docs/a.md", "a2")], "two");
    let (code, log) = f.run_once(&flags);
    assert!(immutable(false));
    assert_eq!(code, Some(0), "{log}");
    assert_published(&f, &h2);
    assert_eq!(f.read("docs/a.md"), "a2");
    assert_eq!(
        log_lines_with(
            &log,
            "cannot name the origin remote: a git in a hook will not find it"
        ),
        1,
        "{log}"
    );
}

/// From a local repository, `--filter` with a sparse checkout copies the
/// commit and its trees, then only the contents the patterns select: the
/// store of a monorepo's one directory holds that directory's files.
#[test]
fn a_filtered_sparse_sync_from_a_local_path_copies_only_the_selected_contents() {
    let f = Fixture::new(Transport::File);
    let big: Vec<String> = (0..3).map(|i| noise(i + 20, 1 << 20)).collect();
    f.repo.commit(
        &[
            ("docs/a.md", "a1"),
            ("assets/0.bin", &big[0]),
            ("assets/1.bin", &big[1]),
            ("assets/2.bin", &big[2]),
        ],
        "one",
    );
    let patterns = f.tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let flags = [
        format!("--sparse-checkout-file={}", patterns.display()),
        "--filter=blob:none".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let objects = f.root().join(".git/objects");
    f.sync_once(&flags);
    assert_eq!(f.read("docs/a.md"), "a1");
    assert!(!f.link().join("assets").exists());
    // (The three files outside are 3 MB, some 2.5 MB packed.)
    let stored = disk_usage(&objects);
    assert!(stored < 200_000, "{stored} bytes stored");
    let h2 = f.repo.commit(&[("docs/a.md", "a2")], "two");
    f.sync_once(&flags);
    assert_published(&f, &h2);
    assert_eq!(f.read("docs/a.md"), "a2");
    fs::write(&patterns, "/docs/\n/assets/1.bin\n").unwrap();
    f.sync_once(&flags);
    assert_eq!(f.read("assets/1.bin"), big[1]);
    assert!(!f.link().join("assets/0.bin").exists());
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
}

/// A server without `uploadpack.allowFilter` does not offer filters: it
/// is asked for whole objects, with protocol v2 all the same (a filter it
/// refused would leave the fetch to libgit2).
#[test]
fn a_filter_is_not_sent_to_a_server_that_does_not_take_one() {
    let f = Fixture::new(Transport::Http);
    f.repo
        .commit(&[("docs/a.md", "a"), ("src/b.rs", "b")], "one");
    let log = f.sync_once(&[&f.sparse_flag("/docs/\n"), "--filter=blob:none", "-v=5"]);
    assert_eq!(f.read("docs/a.md"), "a");
    assert!(!f.link().join("src").exists());
    assert!(log.contains("\"fetched\""), "{log}");
    assert!(!log.contains("fetching with libgit2"), "{log}");
    assert!(!f.root().join(".git/git-sync-partial").exists());
}

/// Contents a partial store lacks are fetched when a checkout needs them
/// (here patterns widened under a pinned hash, which needs no listing).
/// When that fetch fails, the pass fails as any other, saying why, and
/// the published tree stays as it was; once the server answers again, the
/// next pass publishes the whole selection.
#[test]
fn a_partial_store_that_cannot_be_filled_leaves_the_published_tree_alone() {
    let tmp = TempDir::new().unwrap();
    let srv = tmp.path().join("srv");
    let repo = SourceRepo::new(&srv, "site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let hash = repo.commit(
        &[("docs/a.md", "a"), ("assets/b.bin", &noise(1, 1 << 16))],
        "one",
    );
    let daemon = GitDaemon::start(&srv);
    let root = tmp.path().join("root");
    let patterns = tmp.path().join("sparse");
    let sync = || {
        let out = run_git_sync(&[
            &format!("--repo={}", daemon.url("site")),
            &format!("--ref={hash}"),
            &format!("--root={}", root.display()),
            &format!("--sparse-checkout-file={}", patterns.display()),
            "--filter=blob:none",
            "--one-time",
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let link = root.join("site");
    fs::write(&patterns, "/docs/\n").unwrap();
    let (code, log) = sync();
    assert_eq!(code, Some(0), "{log}");
    assert!(root.join(".git/git-sync-partial").exists());
    let first = fs::read_link(&link).unwrap();

    // The repository gone from the server: the fill cannot be made.
    fs::rename(srv.join("site"), srv.join("away")).unwrap();
    fs::write(&patterns, "/docs/\n/assets/\n").unwrap();
    let (code, log) = sync();
    assert_eq!(code, Some(1), "{log}");
    let errors = error_lines(&log).join("\n");
    assert!(
        errors.contains("the server says: ") && errors.contains("/site"),
        "{errors}"
    );
    assert_eq!(fs::read_link(&link).unwrap(), first);
    assert_eq!(fs::read_to_string(link.join("docs/a.md")).unwrap(), "a");
    assert!(!link.join("assets").exists());

    fs::rename(srv.join("away"), srv.join("site")).unwrap();
    let (code, log) = sync();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(published(&link).as_deref(), Some(hash.as_str()));
    assert_eq!(
        fs::read_to_string(link.join("assets/b.bin")).unwrap().len(),
        1 << 16
    );
    assert_eq!(git(&link, &["status", "--porcelain"]), "");
}

#[test]
fn changed_checkout_settings_reshape_the_published_commit() {
    // The commit stays the same; how it is checked out changes: the
    // sparse-checkout file edited under a running daemon, then restarts
    // with other --submodules and --group-write. Each takes effect at
    // once, not at the next commit.
    let f = Fixture::new(Transport::File);
    SourceRepo::new(&f.tmp.path().join("srv"), "lib").commit(&[("l.txt", "l")], "lib");
    f.repo
        .commit(&[("docs/d.md", "d"), ("src/s.rs", "s")], "tree");
    add_submodule(&f.repo, "../lib", "lib");
    let h = f.repo.head();
    let present = |p: &str| f.link().join(p).exists();
    let allow = "--git-config=protocol.file.allow:always";
    let patterns = f.tmp.path().join("sparse");
    let sparse = format!("--sparse-checkout-file={}", patterns.display());

    fs::write(&patterns, "/docs/\n").unwrap();
    let mut d = f.daemon(&[allow, &sparse]);
    d.wait_for(LONG, "docs only", || present("docs/d.md"));
    assert!(!present("src/s.rs") && !present("lib/l.txt"));
    fs::write(&patterns, "/src/\n").unwrap();
    d.wait_for(LONG, "src instead of docs", || {
        present("src/s.rs") && !present("docs/d.md")
    });
    assert_published(&f, &h);
    drop(d);

    let log = f.sync_once(&[allow, "--submodules=off"]);
    assert!(present("docs/d.md") && present("src/s.rs") && !present("lib/l.txt"));
    assert!(log.contains("checking out again"), "{log}");
    f.sync_once(&[allow, "--submodules=recursive", "--group-write"]);
    assert!(present("lib/l.txt"));
    let mode = fs::metadata(f.link().join("docs/d.md"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o020,
        0o020
    );
    assert_published(&f, &h);

    // Settings unchanged: the tree is left as it is.
    let log = f.sync_once(&[allow, "--submodules=recursive", "--group-write"]);
    assert!(!log.contains("checking out again"), "{log}");
    // A tree without the record of its making finished is made again.
    fs::remove_file(f.root().join(format!(".git/worktrees/{h}/git-sync-recipe"))).unwrap();
    fs::remove_file(f.link().join("src/s.rs")).unwrap();
    f.sync_once(&[allow, "--submodules=recursive", "--group-write"]);
    assert!(present("src/s.rs"));
}

// ---- submodules ----------------------------------------------------------------

/// Add `url` as a submodule of `repo` at `path`, and commit.
fn add_submodule(repo: &SourceRepo, url: &str, path: &str) {
    let allow = ["-c", "protocol.file.allow=always"];
    repo.git(&[&allow[..], &["submodule", "add", "-q", url, path]].concat());
    repo.git(&["commit", "-q", "-m", &format!("add {path}")]);
}

#[test]
fn a_submodule_without_a_url_is_said_to_have_none() {
    // A gitlink .gitmodules declares with no url (as git says it).
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("top.txt", "top")], "top");
    let link = format!("160000,{h},lib");
    f.repo.git(&["update-index", "--add", "--cacheinfo", &link]);
    fs::write(
        f.repo.dir.join(".gitmodules"),
        "[submodule \"lib\"]\n\tpath = lib\n",
    )
    .unwrap();
    f.repo.git(&["add", ".gitmodules"]);
    f.repo.git(&["commit", "-q", "-m", "lib without a url"]);
    let log = f.fail_once(&[]);
    assert!(
        log.contains("no url found for submodule path \\\"lib\\\" in .gitmodules"),
        "{log}"
    );
    // Without submodules, the commit is published.
    f.sync_once(&["--submodules=off"]);
    assert_eq!(f.read("top.txt"), "top");
}

#[test]
fn submodules_share_their_unchanged_files_with_the_previous_tree_too() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(Transport::Http);
    let srv = f.tmp.path().join("srv");
    let sub = SourceRepo::new(&srv, "sub");
    sub.commit_numbered("", 10, &[], "sub");
    f.repo.commit(&[("top.txt", "top")], "top");
    add_submodule(&f.repo, "../sub", "libs/sub");
    let recursive = ["--submodules=recursive"];
    f.sync_once(&recursive);
    // As in git's own submodule clone, its origin is its URL.
    let origin = git(&f.link().join("libs/sub"), &["remote", "get-url", "origin"]);
    let sub_url = f.url().replace("/site", "/sub");
    assert_eq!(origin.trim(), sub_url);
    let ino = |p: &str| fs::metadata(f.link().join(p)).unwrap().ino();
    let shared = ino("libs/sub/0.txt");
    let clean = |f: &Fixture| {
        for dir in ["", "libs/sub"] {
            let status = git(&f.link().join(dir), &["status", "--porcelain"]);
            assert_eq!(status, "", "in {dir:?}");
        }
    };

    // The parent changes, the submodule does not.
    let h = f.repo.commit(&[("top.txt", "top 2")], "top 2");
    f.sync_once(&recursive);
    assert_published(&f, &h);
    assert_eq!(ino("libs/sub/0.txt"), shared);
    clean(&f);

    // The submodule moves on: what it did not change is still shared.
    sub.commit(&[("9.txt", "9, v2")], "sub v2");
    let allow = ["-c", "protocol.file.allow=always"];
    let update = ["submodule", "update", "-q", "--remote", "libs/sub"];
    f.repo.git(&[&allow[..], &update[..]].concat());
    let h = f.repo.commit(&[], "bump sub");
    f.sync_once(&recursive);
    assert_published(&f, &h);
    assert_eq!(f.read("libs/sub/9.txt"), "9, v2");
    assert_eq!(ino("libs/sub/0.txt"), shared);
    clean(&f);
}

#[test]
fn submodules_on_this_machine_need_protocol_file_allow_as_in_git() {
    // A repository must not be able to copy another local repository into
    // the published tree: git refuses file-protocol submodules by default.
    let f = Fixture::new(Transport::File);
    SourceRepo::new(&f.tmp.path().join("srv"), "private").commit(&[("p.txt", "p")], "p");
    f.repo.commit(&[("f", "1")], "one");
    add_submodule(&f.repo, "../private", "private");
    let log = f.fail_once(&[]);
    assert!(log.contains("protocol.file.allow:always"), "{log}");
    assert!(!f.link().exists());

    let h = f.repo.head();
    f.sync_once(&["--git-config=protocol.file.allow:always"]);
    assert_published(&f, &h);
    assert_eq!(f.read("private/p.txt"), "p");
}

#[test]
fn nested_submodules_recursive_shallow_and_off() {
    let f = Fixture::new(Transport::Http);
    let srv = f.tmp.path().join("srv");
    let nested = SourceRepo::new(&srv, "nested");
    nested.commit(&[("n.txt", "nested")], "nested");
    let sub = SourceRepo::new(&srv, "sub");
    sub.commit(&[("s.txt", "sub")], "sub");
    let server = f.server.as_ref().unwrap();
    add_submodule(&sub, &server.url("nested"), "nested");
    f.repo.commit(&[("top.txt", "top")], "top");
    // A relative URL, resolved against the parent's, as git does.
    add_submodule(&f.repo, "../sub", "libs/sub");
    // One marked `update = none` in .gitmodules: git leaves it out.
    add_submodule(&f.repo, "../sub", "optional");
    let none = [
        "config",
        "-f",
        ".gitmodules",
        "submodule.optional.update",
        "none",
    ];
    f.repo.git(&none);
    f.repo.git(&["commit", "-q", "-am", "optional stays out"]);

    f.sync_once(&["--submodules=recursive"]);
    assert_eq!(f.read("libs/sub/s.txt"), "sub");
    assert_eq!(f.read("libs/sub/nested/n.txt"), "nested");
    assert!(!f.link().join("optional/s.txt").exists());

    // The submodule moves on; the parent records the new commit.
    sub.commit(&[("s.txt", "sub v2")], "sub v2");
    f.repo.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "update",
        "-q",
        "--remote",
        "libs/sub",
    ]);
    f.repo.git(&["commit", "-q", "-am", "bump sub"]);
    f.sync_once(&["--submodules=recursive"]);
    assert_eq!(f.read("libs/sub/s.txt"), "sub v2");
    assert_eq!(f.read("libs/sub/nested/n.txt"), "nested");

    // Each submodule is a worktree git sees at the commit its parent
    // records, fetched --depth deep (hooks may run git in them), the nested
    // one too; and the whole tree is clean to git.
    let in_link = |dir: &str, args: &[&str]| git(&f.link().join(dir), args);
    for (parent, sub) in [("", "libs/sub"), ("libs/sub", "nested")] {
        let here = Path::new(parent).join(sub);
        let here = here.to_str().unwrap();
        assert_eq!(
            in_link(here, &["rev-parse", "HEAD"]),
            in_link(parent, &["rev-parse", &format!("HEAD:{sub}")]),
            "{here}"
        );
        assert_eq!(in_link(here, &["rev-list", "--count", "HEAD"]), "1");
    }
    assert_eq!(in_link("", &["status", "--porcelain"]), "");
    // `-`: not initialized, `+`: another commit checked out.
    let status = in_link("", &["submodule", "status", "--recursive"]);
    let off: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with(['-', '+']))
        .collect();
    assert_eq!(status.lines().count(), 3, "{status}");
    assert!(
        off.len() == 1 && off[0].starts_with('-') && off[0].ends_with(" optional"),
        "every submodule but the skipped one shows as checked out:\n{status}"
    );
    // Their registrations go with the worktrees that made them.
    f.sync_once(&["--submodules=recursive", "--stale-worktree-grace=0s"]);
    let current = published(&f.link()).unwrap();
    for store in ["libs_2fsub", "libs_2fsub/modules/nested"] {
        let admins = f.root().join(".git/modules").join(store).join("worktrees");
        let names: Vec<String> = fs::read_dir(&admins)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [current.as_str()], "{}", admins.display());
    }

    // All history asked for: the submodules get theirs with the next
    // commit of the parent (the one that has not moved too).
    f.repo.commit(&[("top.txt", "top1")], "deeper");
    f.sync_once(&["--submodules=recursive", "--depth=0"]);
    assert_eq!(in_link("libs/sub", &["rev-list", "--count", "HEAD"]), "3");
    assert_eq!(
        in_link("libs/sub/nested", &["rev-list", "--count", "HEAD"]),
        "1"
    );

    let h = f.repo.commit(&[("top.txt", "top2")], "shallow");
    f.sync_once(&["--submodules=shallow"]);
    assert_published(&f, &h);
    assert_eq!(f.read("libs/sub/s.txt"), "sub v2");
    assert!(!f.link().join("libs/sub/nested/n.txt").exists());

    let h = f.repo.commit(&[("top.txt", "top3")], "off");
    f.sync_once(&["--submodules=off"]);
    assert_published(&f, &h);
    assert!(!f.link().join("libs/sub/s.txt").exists());
    assert_eq!(f.read("top.txt"), "top3");

    // Garbage collection reaches the submodule stores: the old submodule
    // commit is gone, and a store no kept commit records is removed.
    let store = f.root().join(".git/modules/libs_2fsub");
    let packs = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("objects/pack"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(store.is_dir(), "no submodule store at {}", store.display());
    assert_eq!(packs(&store), 1);
    f.repo.git(&["rm", "-q", "libs/sub"]);
    f.repo.git(&["commit", "-q", "-m", "drop sub"]);
    f.sync_once(&["--submodules=recursive", "--stale-worktree-grace=0s"]);
    assert!(!store.exists(), "store of a dropped submodule kept");
}

// ---- running as an arbitrary UID --------------------------------------------

/// Every file and directory under `dir` (not following links), with its mode
/// and owner.
fn modes(dir: &Path, out: &mut Vec<(std::path::PathBuf, u32, u32)>) {
    use std::os::unix::fs::MetadataExt;
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        if m.file_type().is_symlink() {
            continue;
        }
        out.push((p.clone(), m.mode(), m.uid()));
        if m.is_dir() {
            modes(&p, out);
        }
    }
}

#[test]
fn the_published_tree_is_readable_by_others_whatever_the_inherited_umask() {
    // A web server reads the tree as another user. As upstream, git-sync
    // works under umask 022 (002 with --group-write), not the one it was
    // started with (077 here).
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let f = Fixture::new(Transport::File);
    f.repo
        .commit(&[("index.html", "hi"), ("dir/page.html", "p")], "c1");
    let mut cmd = git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", f.root().display()),
        "--one-time",
    ]);
    // SAFETY: umask is async-signal-safe and has no preconditions.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let link = f.link();
    assert_eq!(mode(&link.join("index.html")), 0o644);
    assert_eq!(mode(&link.join("dir")), 0o755);
    assert_eq!(mode(&link.join("dir/page.html")), 0o644);
    assert_eq!(mode(&fs::canonicalize(&link).unwrap()), 0o755);
}

/// As a Pod's volume with fsGroup: `f`'s root made, owned by root and
/// `group`, group-writable and setgid; the test's directory opened up. A
/// copy of the binary other users may run (it may sit where they cannot
/// reach, a clone under /root).
fn group_writable_root(f: &Fixture, group: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    open_up(f.tmp.path());
    let bin_copy = f.tmp.path().join("git-sync");
    copy_executable(&bin(), &bin_copy);
    let root = f.root();
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(0), Some(group)).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o2775)).unwrap();
    bin_copy
}

#[test]
fn arbitrary_uids_share_a_group_writable_root() {
    // As in a Pod with runAsUser and fsGroup: the volume belongs to root and
    // a shared group, the repository to someone else, and a restarted
    // container may run as another UID of the same group.
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    if !is_root() {
        eprintln!("skipped: switching UIDs needs root");
        return;
    }
    let (uid_a, uid_b, group) = (65532, 65533, 4242);
    let f = Fixture::new(Transport::File);
    let h1 = f
        .repo
        .commit(&[("index.html", "one"), ("sub/page", "p")], "one");
    let bin_copy = group_writable_root(&f, group);
    let root = f.root();

    let run_as = |uid: u32, extra: &[&str]| {
        let mut as_user = Command::new(&bin_copy);
        as_user
            .arg(format!("--repo={}", f.repo.dir.display()))
            .arg(format!("--root={}", root.display()))
            .args(["--group-write", "--add-user", "--period=50ms"])
            .args(["--max-failures=-1", "--log-format=json"])
            .args(extra)
            .env_clear()
            .env("HOME", "/root")
            .env("PATH", "/usr/bin:/bin")
            .uid(uid)
            .gid(group)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        spawn(as_user)
    };

    let mut a = run_as(uid_a, &[]);
    a.wait_for(LONG, "first sync as the first UID", || {
        published(&f.link()).as_deref() == Some(h1.as_str())
    });
    let h2 = f.repo.commit(&[("index.html", "two")], "two");
    a.wait_for(LONG, "update as the first UID", || {
        published(&f.link()).as_deref() == Some(h2.as_str())
    });
    a.kill9();
    assert!(error_lines(&a.log()).is_empty(), "{}", a.log());
    let mut all = Vec::new();
    modes(&root, &mut all);
    let worktree = root.join(".worktrees").join(&h2);
    for (p, mode, uid) in all.iter().filter(|(p, ..)| p.starts_with(&worktree)) {
        assert_eq!(*uid, uid_a, "{p:?} owned by {uid}");
        assert_eq!(mode & 0o020, 0o020, "{p:?} not group-writable: {mode:o}");
    }

    // The next container runs as another UID of the group: it takes over the
    // same root, publishes the next commit and cleans what the first left.
    let h3 = f.repo.commit(&[("index.html", "three")], "three");
    let mut b = run_as(uid_b, &["--stale-worktree-grace=0s"]);
    b.wait_for(LONG, "update as the second UID", || {
        published(&f.link()).as_deref() == Some(h3.as_str())
            && !root.join(".worktrees").join(&h2).exists()
    });
    b.kill9();
    let log = b.log();
    assert!(error_lines(&log).is_empty(), "{log}");
    assert!(
        !log.contains("unusable"),
        "the root was started again: {log}"
    );
    // HOME (/root) is closed to this UID: its git config is left out, as
    // git leaves it out, with a warning.
    assert!(log.contains("cannot read this git config"), "{log}");
    // The first UID's git-sync.config is its own (it may hold tokens): the
    // second drops it and writes its own.
    assert!(
        log.contains("cannot read the previous user's git config file"),
        "{log}"
    );
    assert_eq!(
        fs::read_to_string(f.link().join("index.html")).unwrap(),
        "three"
    );
}

/// After a restart as another UID of the volume's group, with nothing
/// new, the exec hook runs again in the tree the first UID published: a
/// git binary there works (upstream's hooks inherit `safe.directory=*`
/// from its global config; git refuses a tree another user owns).
#[test]
fn a_hooks_git_works_in_a_tree_another_uid_made() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !is_root() {
        eprintln!("skipped: switching UIDs needs root");
        return;
    }
    let (uid_a, uid_b, group) = (65532, 65533, 4242);
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("index.html", "one")], "one");
    let bin_copy = group_writable_root(&f, group);
    let root = f.root();
    let said = f.tmp.path().join("said");
    fs::create_dir(&said).unwrap();
    fs::set_permissions(&said, fs::Permissions::from_mode(0o777)).unwrap();
    let hook = f.tmp.path().join("hook");
    script(
        &hook,
        &format!("git log -1 --format=%H > {0}/$(id -u) 2>&1", said.display()),
    );
    let run_as = |uid: u32| {
        let out = std::process::Command::new(&bin_copy)
            .arg(format!("--repo={}", f.repo.dir.display()))
            .arg(format!("--root={}", root.display()))
            .arg(format!("--exechook-command={}", hook.display()))
            .args(["--group-write", "--one-time"])
            .env_clear()
            .env("HOME", "/nonexistent")
            .env("PATH", "/usr/bin:/bin")
            .uid(uid)
            .gid(group)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let hook_said = fs::read_to_string(said.join(uid.to_string())).unwrap_or_default();
        (out.status.code(), hook_said, log)
    };
    let (code, hook_said, log) = run_as(uid_a);
    assert_eq!(code, Some(0), "{hook_said}\n{log}");
    assert_eq!(hook_said.trim(), h1);
    let (code, hook_said, log) = run_as(uid_b);
    assert_eq!(code, Some(0), "{hook_said}\n{log}");
    assert_eq!(hook_said.trim(), h1);
}

#[test]
fn add_user_appends_a_passwd_entry_when_the_file_is_writable() {
    // The running UID has no passwd entry, and /etc/passwd is writable (as
    // in images that make it group-writable for this): a private mount
    // namespace gives git-sync a writable copy, the machine's stays as is.
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    if !is_root() {
        eprintln!("skipped: mount namespaces need root");
        return;
    }
    let (uid, gid) = (65531u32, 4243u32);
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    open_up(f.tmp.path());
    let bin_copy = f.tmp.path().join("git-sync");
    copy_executable(&bin(), &bin_copy);
    let passwd = f.tmp.path().join("passwd");
    let original = fs::read_to_string("/etc/passwd").unwrap();
    assert!(!original.contains(&format!(":{uid}:")));
    fs::write(&passwd, &original).unwrap();
    fs::set_permissions(&passwd, fs::Permissions::from_mode(0o666)).unwrap();
    let root = f.root();
    fs::create_dir(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(uid), Some(gid)).unwrap();

    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    let (source, target, slash) = (c(passwd.to_str().unwrap()), c("/etc/passwd"), c("/"));
    let mut cmd = Command::new(&bin_copy);
    cmd.arg(format!("--repo={}", f.repo.dir.display()))
        .arg(format!("--root={}", root.display()))
        .args(["--one-time", "--add-user", "--log-format=json"])
        .env_clear()
        .env("HOME", "/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let ok = libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(
                    std::ptr::null(),
                    slash.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
                && libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) == 0
                && libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(gid) == 0
                && libc::setuid(uid) == 0;
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
    assert_published(&f, &h);
    let entry = format!("git-sync:x:{uid}:{gid}::{}:/sbin/nologin", root.display());
    let written = fs::read_to_string(&passwd).unwrap();
    assert!(written.ends_with(&format!("{entry}\n")), "{written}");
    assert_eq!(fs::read_to_string("/etc/passwd").unwrap(), original);
}
