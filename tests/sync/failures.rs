//! Failures: what a failed pass leaves, and the failure policy.

use super::*;

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

/// A repository of SHA-256 object names (`git init --object-format=sha256`)
/// cannot be synced: libgit2, as built, knows SHA-1 only. From a path and
/// over HTTP the error says so, in words a user can act on, and nothing is
/// published.
#[test]
fn a_sha256_repository_is_refused_saying_why() {
    let (tmp, srv, _) = temp_source("site");
    let dir = srv.join("sha256");
    fs::create_dir_all(&dir).unwrap();
    git(
        &dir,
        &["init", "-q", "-b", "main", "--object-format=sha256"],
    );
    SourceRepo { dir: dir.clone() }.commit(&[("f", "1")], "c1");
    let server = HttpServer::start(&srv);
    for (n, url) in [format!("file://{}", dir.display()), server.url("sha256")]
        .iter()
        .enumerate()
    {
        let root = tmp.path().join(format!("root{n}"));
        let out = run_git_sync(&[
            &format!("--repo={url}"),
            &format!("--root={}", root.display()),
            "--link=site",
            "--one-time",
        ]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{log}");
        let errors = error_lines(&log).join("\n");
        assert!(errors.contains("SHA-256 repository"), "{url}: {log}");
        assert!(published(&root.join("site")).is_none());
    }
}
