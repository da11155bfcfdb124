//! First syncs and every kind of `--ref` target.

use super::*;

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
fn git_protocol_through_core_git_proxy_or_git_proxy_command() {
    // git runs `<program> <host> <port>` and speaks over its input and
    // output: here to a host name that resolves nowhere, on libgit2's
    // connection and, once the repository showed many refs, on ours.
    let f = Fixture::new(Transport::File);
    let daemon = GitDaemon::start(&f.tmp.path().join("srv"));
    let bridge = write_bridge(f.tmp.path());
    let asked = f.tmp.path().join("asked");
    let program = f.tmp.path().join("tunnel");
    fs::write(
        &program,
        format!(
            "#!/bin/sh\nexec python3 {} \"$1\" \"$2\" {}\n",
            bridge.display(),
            asked.display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let url = format!("--repo=git://git.invalid:{}/site", daemon.port);
    let root = format!("--root={}", f.root().display());
    let for_domain = format!(
        "--git-config=core.gitProxy:none for example,core.gitProxy:{} for invalid",
        program.display()
    );
    let env_program = program.display().to_string();
    let sync = |text: &str, extra: &[&str], env: &[(&str, &str)]| {
        let _ = fs::remove_file(&asked);
        let h = f.repo.commit(&[("index.html", text)], text);
        let mut args = vec![url.as_str(), root.as_str(), "--one-time", "-v=5"];
        args.extend(extra);
        let mut cmd = git_sync(&args);
        cmd.envs(env.iter().copied());
        let mut p = spawn(cmd);
        let code = p.wait_exit(Duration::from_secs(120));
        let log = p.log();
        assert_eq!(code, 0, "{log}");
        assert_published(&f, &h);
        let asked = fs::read_to_string(&asked).unwrap_or_default();
        let want = format!("git.invalid {}", daemon.port);
        assert!(
            asked.lines().count() >= 1 && asked.lines().all(|l| l == want),
            "{asked}"
        );
        log.contains("\"refs listed\"")
    };
    assert!(!sync("via core.gitProxy", &[&for_domain], &[]));
    let env = [("GIT_PROXY_COMMAND", env_program.as_str())];
    assert!(!sync("via GIT_PROXY_COMMAND", &[], &env));
    // Many refs seen, then listed and fetched on a connection of ours.
    f.repo.add_pull_refs(1_000);
    sync("many refs", &[&for_domain], &[]);
    assert!(sync("on our connection", &[&for_domain], &[]));
    // A program that fails: what it said is logged, and the error points
    // there.
    let fails = f.tmp.path().join("fails");
    fs::write(&fails, "#!/bin/sh\necho no route to $1 >&2\nexit 1\n").unwrap();
    fs::set_permissions(&fails, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fails = format!("--git-config=core.gitProxy:{}", fails.display());
    let out = run_git_sync(&[&url, &root, "--one-time", &fails]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("no route to git.invalid"), "{log}");
    assert!(log.contains("through the proxy command"), "{log}");
    // Without one, the name leads nowhere.
    let out = run_git_sync(&[&url, &root, "--one-time"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(!log.contains("through the proxy command"), "{log}");
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
    // A tag with a branch's name wins, as in git and upstream; said once
    // a process, with the way to the branch.
    f.repo.git(&["tag", "other", &c1]);
    const BOTH: &str = "the ref names both a tag and a branch: syncing the tag, as git does; give the full name (refs/heads/...) to sync the branch";
    let mut p = f.daemon(&["--ref=other", "-v=1"]);
    p.wait_log(Duration::from_secs(20), "three polls", |l| {
        log_lines_with(l, "no change") >= 3
    });
    assert_published(&f, &c1);
    assert_eq!(log_lines_with(&p.log(), BOTH), 1, "{}", p.log());
    drop(p);
    let log = f.sync_once(&["--ref=refs/heads/other"]);
    assert_published(&f, &c3);
    assert_eq!(log_lines_with(&log, BOTH), 0, "{log}");
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
        "--git-config-add=http.sslCertPasswordProtected:true",
        // One read here, for some servers only: neither.
        r#"--git-config-add="http.https://git.example.com/.sslCert":/etc/git-secret/client.pem"#,
    ]);
    let warned = log
        .lines()
        .find(|l| l.contains("not supported here"))
        .unwrap_or_else(|| panic!("no warning about http.sslCertPasswordProtected: {log}"));
    assert!(warned.contains("protected by a password"), "{warned}");
    assert!(!warned.contains(".sslCert/"), "{warned}");
    let said = log
        .lines()
        .find(|l| l.contains("without effect here"))
        .unwrap_or_else(|| panic!("no line about keys without effect: {log}"));
    for key in ["http.postBuffer", "sect.k1", "sect.k2"] {
        assert!(said.contains(key), "{said}");
    }
    assert!(!said.contains("git.example.com"), "{said}");
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
fn a_misspelt_ref_is_offered_the_names_the_remote_has_near_it() {
    for t in [Transport::File, Transport::Http] {
        let f = Fixture::new(t);
        let h = f.repo.commit(&[("f", "1")], "c1");
        f.repo.git(&["branch", "develop"]);
        f.repo.git(&["tag", "v1.2.3"]);
        for (given, offered) in [
            ("mian", r#"(did you mean "main"?)"#),
            ("master", r#"(did you mean "main"?)"#),
            ("devlop", r#"(did you mean "develop"?)"#),
            ("v1.2.4", r#"(did you mean "v1.2.3"?)"#),
            ("refs/heads/mian", r#"(did you mean "refs/heads/main"?)"#),
        ] {
            // (The log is JSON: its quotes are escaped.)
            let log = f
                .fail_once(&[&format!("--ref={given}")])
                .replace("\\\"", "\"");
            let said = format!("ref {given:?} not found in {} {offered}", f.url());
            assert!(log.contains(&said), "{given}: {log}");
        }
        assert!(!f.link().exists());
        // A HEAD that names no branch: the branches there are.
        f.repo.git(&["symbolic-ref", "HEAD", "refs/heads/gone"]);
        let log = f.fail_once(&[]).replace("\\\"", "\"");
        let said = r#"its HEAD names no branch: give --ref one of its branches, such as "main" or "develop""#;
        assert!(log.contains(said), "{log}");
        // Given one, it syncs.
        f.sync_once(&["--ref=main"]);
        assert_published(&f, &h);
    }
}

#[test]
fn a_hash_the_repository_does_not_have_fails_and_says_so() {
    for t in [Transport::File, Transport::Http] {
        let f = Fixture::new(t);
        f.repo.commit(&[("f", "1")], "c1");
        let absent = "0123456789abcdef0123456789abcdef01234567";
        let log = f.fail_once(&[&format!("--ref={absent}")]);
        let said = format!("commit {absent} is not in the repository");
        assert!(log.contains(&said), "{log}");
        assert!(!f.link().exists());
    }
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
