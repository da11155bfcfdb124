//! Configuration errors: one line, exit 1, nothing touched.

use super::*;

#[test]
fn bad_flags_exit_1_with_one_line_naming_the_flag() {
    for (args, needle) in [
        (vec!["--no-such-flag"], "--no-such-flag"),
        // A slip: the flag meant is named.
        (
            vec!["--repo=x", "--root=/tmp/x", "--perid=5s"],
            "'--perid' found (--period?)",
        ),
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
        // https:// left out of a URL with a login: git would show the
        // password in its errors (not repeated here: the loop checks).
        (
            vec!["--repo=bot:S3CRET@git.example.com/x.git", "--root=/tmp/x"],
            "reads as user:password@host without a scheme",
        ),
        // "://" without its ':', a local path to git, which would show
        // the password in every error.
        (
            vec![
                "--repo=https//bot:S3CRET@git.example.com/x.git",
                "--root=/tmp/x",
            ],
            "\"https\" without \"://\" (git would take it for a local path)",
        ),
        // An scp-like address after ssh://: how to write it.
        (
            vec![
                "--repo=ssh://git@git.example.com:org/x.git",
                "--root=/tmp/x",
            ],
            "--repo (flag): the port after git.example.com: is no number",
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
        (
            vec!["--repo=x", "--root=/tmp/x", "--webhook-url=ftp://h/x"],
            "--webhook-url (flag): must start with http:// or https://",
        ),
        // A password without a user name (not repeated: the loop checks).
        (
            vec!["--repo=x", "--root=/tmp/x", "--password=S3CRET"],
            "--username: must be set when a password is given",
        ),
        (
            vec![
                "--repo=x",
                "--root=/tmp/x",
                "--username=u",
                "--password=S3CRET",
                "--password-file=/f",
            ],
            "only one of --password (GITSYNC_PASSWORD) and --password-file may be set",
        ),
        (
            vec!["--repo=x", "--root=/tmp/x", "--ref="],
            "--ref: must not be empty (HEAD is the remote's default branch)",
        ),
        (
            vec!["--repo=x", "--root=/tmp/x", "--timeout=-5"],
            "--timeout (flag): must be a positive number of seconds",
        ),
        // Dest mode's private state inside the served directory, or
        // around it: readers would see it, or it would hold what they see.
        (
            vec!["--repo=x", "--dest=/tmp/d", "--state-dir=/tmp/d/state"],
            "--state-dir: must be outside the served --dest directory",
        ),
        (
            vec!["--repo=x", "--dest=/tmp/d", "--state-dir=/tmp"],
            "--state-dir: must be outside the served --dest directory",
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
    // A repository URL from a Secret made with `echo ... | base64`, or
    // pasted into a manifest with a space before it: said at start (git
    // refuses such a URL), its password not repeated.
    for (repo, said) in [
        (
            "https://bot:S3CRET@git.example.com/x.git\n",
            "contains a newline at its end",
        ),
        (
            " https://bot:S3CRET@git.example.com/x.git",
            "starts with a space",
        ),
    ] {
        let out = git_sync(&["--root=/tmp/x"])
            .env("GITSYNC_REPO", repo)
            .output()
            .unwrap();
        let err = one_line_error(&out);
        assert!(
            err.contains(&format!("--repo (env GITSYNC_REPO): {said}")),
            "{err}"
        );
        assert!(!err.contains("S3CRET"), "{err}");
    }
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
        "GIT_LFS_SKIP_SMUDGE",
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
