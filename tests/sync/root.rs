//! The root: what is found there, what is made, what is refused.

use super::*;

#[test]
fn non_empty_root_not_ours_is_emptied() {
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("f", "1")], "c1");
    // The root's parent is a git repository: it must not be taken for ours.
    git(f.tmp.path(), &["init", "-q"]);
    fs::create_dir_all(f.root().join("junk/dir")).unwrap();
    fs::write(f.root().join("junk/dir/file"), "x").unwrap();
    fs::write(f.root().join("stray.txt"), "x").unwrap();
    let log = f.sync_once(&[]);
    assert_published(&f, &h);
    assert!(!f.root().join("junk").exists());
    assert!(!f.root().join("stray.txt").exists());
    // Said, with nothing kept to speak of.
    let said = |log: &str, msg: &str| {
        log_lines_with(
            log,
            &format!("root is not ours or its repository is unusable: {msg}"),
        )
    };
    assert_eq!(said(&log, "emptied it"), 1, "{log}");
    // A published tree found is kept, and said to be.
    fs::write(f.root().join(".git/HEAD"), "garbage").unwrap();
    let log = f.sync_once(&[]);
    assert_eq!(
        said(&log, "emptied it, keeping the published tree"),
        1,
        "{log}"
    );
    assert_published(&f, &h);
}

/// Unmounts on drop, so that a failed assertion leaves no mount behind.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(at: &Path) -> Option<Self> {
        Self::tmpfs_with(at, "size=1m")
    }

    fn tmpfs_with(at: &Path, options: &str) -> Option<Self> {
        fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
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
fn a_root_or_state_dir_on_a_read_only_file_system_says_which_and_how_to_fix_it() {
    let f = Fixture::new(Transport::File);
    f.repo.commit(&[("index.html", "v1")], "one");
    let ro = f.tmp.path().join("ro");
    let Some(_mount) = Mounted::tmpfs_with(&ro, "size=1m,ro") else {
        eprintln!("skipped: mounting a file system needs root");
        return;
    };
    let fails = |flag: &str, dir: &Path, tmpdir: &Path| {
        let out = git_sync(&[
            &format!("--repo={}", f.url()),
            &format!("--{flag}={}", dir.display()),
            "--one-time",
        ])
        .env("TMPDIR", tmpdir)
        .output()
        .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{log}");
        log
    };
    // The root on it, or in a directory to be made there.
    for root in [ro.clone(), ro.join("root")] {
        let log = fails("root", &root, f.tmp.path());
        assert!(
            log.contains("the file system is read-only (a volume mounted readOnly?): --root must be writable"),
            "{log}"
        );
    }
    // Dest mode's private state, by default under the temp dir: a Pod with
    // a read-only root file system.
    let dest = f.tmp.path().join("dest");
    let log = fails("dest", &dest, &ro);
    assert!(
        log.contains("--state-dir must be writable (by default it is under $TMPDIR or /tmp"),
        "{log}"
    );
    assert!(!log.contains("--root"), "{log}");
    assert!(!dest.exists() || fs::read_dir(&dest).unwrap().next().is_none());
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
    // The same for the branch HEAD is on, damaged, as the next commit
    // comes (writing it would fail at every pass).
    fs::write(f.root().join(".git/refs/heads/git-sync"), "garbage").unwrap();
    let h2 = f.repo.commit(&[("f", "2")], "c2");
    let log = f.sync_once(&[]);
    assert!(log.contains("unusable"), "{log}");
    assert_published(&f, &h2);
    let h = f.repo.commit(&[("f", "1")], "c3");
    f.sync_once(&[]);

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
fn a_root_removed_and_made_again_is_set_up_again_and_locked_whatever_it_holds() {
    // The root wiped while a pass ends: its last writes may make the root
    // again with a `.git/HEAD` in it, over no store. That root is set up
    // again and locked, not taken for our repository (every pass would
    // fail, and another git-sync could take the root). Passes come only
    // from the signal, so nothing runs between the removal and the HEAD.
    let f = Fixture::new(Transport::File);
    let h1 = f.repo.commit(&[("f", "1")], "c1");
    let mut p = spawn(git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", f.root().display()),
        "--period=1h",
        "--watch-local=false",
        "--sync-on-signal=SIGHUP",
        "--max-failures=-1",
    ]));
    let is_published = |h: &str| published(&f.link()).as_deref() == Some(h);
    p.wait_for(LONG, "h1 published", || is_published(&h1));
    p.wait_log(LONG, "the first pass ended", |log| {
        log_lines_with(log, "updated successfully") == 1
    });
    remove_under_a_daemon(&f.root());
    fs::create_dir_all(f.root().join(".git")).unwrap();
    fs::write(f.root().join(".git/HEAD"), "ref: refs/heads/git-sync\n").unwrap();
    let h2 = f.repo.commit(&[("f", "2")], "c2");
    signal(&p.child, libc::SIGHUP);
    p.wait_for(LONG, "h2 in the root made again", || is_published(&h2));
    assert_published(&f, &h2);
    assert_eq!(f.read("f"), "2");
    let log = p.log();
    assert_eq!(failed_passes(&log), 0, "{log}");
    assert!(log.contains("the root was removed and made again"), "{log}");
    let refused = f.fail_once(&[]);
    assert!(
        refused.contains(&format!("another git-sync (pid {})", p.child.id())),
        "{refused}"
    );
    assert_published(&f, &h2);
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
    // By hash, not by count: that queued pass, run after the removal, sets
    // the root up again and publishes the old commit anew (its record of
    // being made whole went with .git), an update of its own.
    let is_published = |h: &str| published(&f.link()).as_deref() == Some(h);
    let remove = remove_under_a_daemon;
    p.wait_for(LONG, "h1 published", || is_published(&h1));
    assert_published(&f, &h1);
    remove(&f.root().join(".git"));
    let h2 = f.repo.commit(&[("f", "2")], "c2");
    p.wait_for(LONG, "h2 after .git was removed", || is_published(&h2));
    assert_published(&f, &h2);
    // The whole root this time.
    remove(&f.root());
    let h3 = f.repo.commit(&[("f", "3")], "c3");
    p.wait_for(LONG, "h3 after the root was removed", || is_published(&h3));
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
    // Each put back is an update; a poll that lands while `rm -rf` is at
    // work may make one more, so each wait also looks for what it needs.
    let updates = |n: usize| move |log: &str| log_lines_with(log, "updated successfully") >= n;
    p.wait_log(LONG, "published", updates(1));
    let wt = f.root().join(".worktrees").join(&h);
    for (n, entry) in [(2, "index.html"), (3, "a"), (4, ".git")] {
        remove_any_under_a_daemon(&wt.join(entry));
        p.wait_log(LONG, &format!("{entry} back"), updates(n));
        p.wait_for(LONG, &format!("{entry} there"), || wt.join(entry).exists());
    }
    assert_eq!(git(&f.link(), &["status", "--porcelain"]), "");
    assert_published(&f, &h);
    assert_eq!(f.read("index.html"), "1");
    assert!(p.log().contains("changed behind our back"), "{}", p.log());
    // The link itself removed, then pointed elsewhere: put back as well,
    // and said.
    let said = |log: &str| {
        log_lines_with(log, "what readers see was changed behind our back (the link removed or pointed elsewhere, files at the top of the dest directory removed): publishing again")
    };
    let is_back = || published(&f.link()).as_deref() == Some(h.as_str());
    fs::remove_file(f.link()).unwrap();
    p.wait_log(LONG, "the link back", updates(5));
    p.wait_for(LONG, "the link there", is_back);
    assert_published(&f, &h);
    let elsewhere = f.tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let tmp_link = f.root().join("by-hand");
    std::os::unix::fs::symlink(&elsewhere, &tmp_link).unwrap();
    fs::rename(&tmp_link, f.link()).unwrap();
    p.wait_log(LONG, "the link pointed back", updates(6));
    p.wait_for(LONG, "the link pointing back", is_back);
    assert_published(&f, &h);
    assert_eq!(said(&p.log()), 2, "{}", p.log());
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
