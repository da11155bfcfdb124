//! Sparse checkout and partial clones (`--filter`).

use super::*;

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
