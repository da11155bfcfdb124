//! Git LFS: files under `filter=lfs` published with their content, from a
//! local repository's LFS store (made by the real git-lfs client) and from
//! an LFS server over HTTP (nginx running a small batch-API CGI beside git
//! http-backend).

use super::*;
use std::process::Command;

/// The hex SHA-256 of `data`: an LFS object's id.
fn oid(data: &str) -> String {
    openssl::sha::sha256(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Have the real git-lfs client store `*.bin` in `repo` from now on.
fn track_bin(repo: &SourceRepo) {
    assert!(
        Command::new("git-lfs")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "git-lfs is not installed (scripts/install-test-deps installs it)"
    );
    repo.git(&["lfs", "install", "--local"]);
    repo.git(&["lfs", "track", "*.bin"]);
}

/// The objects in the LFS store under `root`, sorted.
fn stored_objects(root: &Path) -> Vec<String> {
    objects_in(&root.join(".git"))
}

/// The objects in the LFS store of the git directory `gitdir`, sorted.
fn objects_in(gitdir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let objects = gitdir.join("lfs/objects");
    for a in fs::read_dir(objects).into_iter().flatten().flatten() {
        for b in fs::read_dir(a.path()).into_iter().flatten().flatten() {
            for o in fs::read_dir(b.path()).into_iter().flatten().flatten() {
                found.push(o.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn lfs_files_of_a_local_repository_are_published_with_their_content() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(Transport::File);
    track_bin(&f.repo);
    let (a1, b, tool) = (noise(1, 300_000), noise(2, 50_000), noise(3, 1_000));
    f.repo.commit(
        &[
            ("img/a.bin", &a1),
            ("b.bin", &b),
            ("tool.bin", &tool),
            ("index.html", "hi"),
        ],
        "one",
    );
    fs::set_permissions(
        f.repo.dir.join("tool.bin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    f.repo.git(&["add", "tool.bin"]);
    f.repo.git(&["commit", "-q", "-m", "executable"]);
    assert!(f
        .repo
        .git(&["cat-file", "-p", "HEAD:img/a.bin"])
        .starts_with("version https://git-lfs"));

    let mut d = f.daemon(&["--stale-worktree-grace=0s", "-v=1"]);
    d.wait_for(LONG, "the LFS files' content", || {
        fs::read_to_string(f.link().join("img/a.bin")).is_ok_and(|c| c == a1)
    });
    assert_eq!(f.read("b.bin"), b);
    assert_eq!(f.read("index.html"), "hi");
    let mode = fs::metadata(f.link().join("tool.bin")).unwrap().mode();
    assert_eq!((f.read("tool.bin"), mode & 0o111), (tool.clone(), 0o111));
    // As a git with git-lfs sees it: nothing changed.
    assert_eq!(
        git(
            &f.link(),
            &[
                "-c",
                "filter.lfs.clean=git-lfs clean -- %f",
                "status",
                "--porcelain"
            ]
        ),
        ""
    );

    // An update downloads only what it adds: the unchanged LFS file is the
    // previous tree's; the replaced object leaves the store.
    let b_inode = fs::metadata(f.link().join("b.bin")).unwrap().ino();
    let a2 = noise(4, 300_000);
    let h2 = f.repo.commit(&[("img/a.bin", &a2)], "two");
    d.wait_for(LONG, "the update", || {
        published(&f.link()).as_deref() == Some(&h2[..])
            && fs::read_to_string(f.link().join("img/a.bin")).is_ok_and(|c| c == a2)
    });
    assert_eq!(fs::metadata(f.link().join("b.bin")).unwrap().ino(), b_inode);
    // (The executable file is a copy of its object, shared from tree to
    // tree: the store keeps only what trees link to.)
    let mut live = vec![oid(&a2), oid(&b)];
    live.sort();
    d.wait_for(LONG, "the replaced object removed", || {
        stored_objects(&f.root()) == live
    });
    let log = d.log();
    assert_eq!(
        log_lines_with(&log, "git-lfs objects downloaded"),
        2,
        "{log}"
    );
    assert!(
        log.contains("\"objects\":1") && log.contains("\"objects\":3"),
        "{log}"
    );
    drop(d);

    // Dest mode publishes the content too, and its updates (its private
    // tree moved forward in place).
    let mut d = f.dest_daemon(&[]);
    let in_dest = |p: &str| fs::read_to_string(f.dest().join(p)).unwrap_or_default();
    d.wait_for(LONG, "the content in DEST", || in_dest("img/a.bin") == a2);
    let a3 = noise(11, 300_000);
    f.repo
        .commit(&[("img/a.bin", &a3), ("index.html", "v3")], "three");
    d.wait_for(LONG, "the update in DEST", || {
        in_dest("index.html") == "v3" && in_dest("img/a.bin") == a3
    });
    assert_eq!((in_dest("b.bin"), in_dest("tool.bin")), (b, tool));
}

#[test]
fn lfs_attributes_deep_in_the_tree_count_at_each_update() {
    let f = Fixture::new(Transport::File);
    track_bin(&f.repo);
    // (No attributes at the top: git lfs track wrote them there.)
    fs::remove_file(f.repo.dir.join(".gitattributes")).unwrap();
    f.repo
        .commit_numbered("docs", 20, &[("index.html", "v1")], "no LFS yet");
    f.sync_once(&[]);
    // LFS for one directory only, by its own attributes file.
    let lfs_attrs = "*.bin filter=lfs diff=lfs merge=lfs -text\n";
    let a = noise(12, 20_000);
    f.repo.commit(
        &[
            ("assets/img/.gitattributes", lfs_attrs),
            ("assets/img/a.bin", &a),
        ],
        "LFS in assets/img",
    );
    assert!(f
        .repo
        .git(&["cat-file", "-p", "HEAD:assets/img/a.bin"])
        .starts_with("version "));
    f.sync_once(&[]);
    assert_eq!(f.read("assets/img/a.bin"), a);
    // An update elsewhere: the directory's file stays content.
    let h = f.repo.commit(&[("index.html", "v2")], "elsewhere");
    f.sync_once(&[]);
    assert_published(&f, &h);
    assert_eq!(f.read("assets/img/a.bin"), a);
}

#[test]
fn lfs_files_of_submodules_are_published_with_their_content() {
    let f = Fixture::new(Transport::File);
    let srv = f.tmp.path().join("srv");
    let sub = SourceRepo::new(&srv, "sub");
    track_bin(&sub);
    let (a1, b) = (noise(21, 40_000), noise(22, 30_000));
    sub.commit(&[("a.bin", &a1), ("b.bin", &b)], "sub one");
    f.repo.commit(&[("top.txt", "top")], "top");
    add_submodule(&f.repo, "../sub", "lib");
    let allow = "--git-config=protocol.file.allow:always";
    f.sync_once(&[allow]);
    assert_eq!((f.read("lib/a.bin"), f.read("lib/b.bin")), (a1, b.clone()));
    // As a git with git-lfs sees it: nothing changed in the submodule.
    let clean = ["-c", "filter.lfs.clean=git-lfs clean -- %f"];
    let status = git(
        &f.link().join("lib"),
        &[&clean[..], &["status", "--porcelain"]].concat(),
    );
    assert_eq!(status, "");

    // The submodule moves on: the replaced object leaves its store.
    let a2 = noise(23, 40_000);
    sub.commit(&[("a.bin", &a2)], "sub two");
    let git_allow = ["-c", "protocol.file.allow=always"];
    let update = ["submodule", "update", "-q", "--remote", "lib"];
    f.repo.git(&[&git_allow[..], &update[..]].concat());
    let h = f.repo.commit(&[], "bump lib");
    f.sync_once(&[allow, "--stale-worktree-grace=0s"]);
    assert_published(&f, &h);
    assert_eq!(
        (f.read("lib/a.bin"), f.read("lib/b.bin")),
        (a2.clone(), b.clone())
    );
    let mut live = vec![oid(&a2), oid(&b)];
    live.sort();
    assert_eq!(objects_in(&f.root().join(".git/modules/lib")), live);
    assert!(stored_objects(&f.root()).is_empty());

    // GIT_LFS_SKIP_SMUDGE leaves the submodule's pointers too.
    let pointer = sub.git(&["cat-file", "-p", "HEAD:a.bin"]);
    let out = once_with_env(&f, &[allow], ("GIT_LFS_SKIP_SMUDGE", "1"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(f.read("lib/a.bin").trim_end(), pointer.trim_end());
}

/// A `--one-time` run of `f` with `extra` flags and the environment
/// variable `name` set to `value`.
fn once_with_env(f: &Fixture, extra: &[&str], env: (&str, &str)) -> std::process::Output {
    once_at(&f.url(), &f.root(), extra, &[env])
}

/// A `--one-time` sync of `url` into `root`, with `extra` flags and the
/// environment variables `env`.
fn once_at(url: &str, root: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = vec![
        format!("--repo={url}"),
        format!("--root={}", root.display()),
        "--one-time".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    git_sync(&args).envs(env.iter().copied()).output().unwrap()
}

/// The exit status and the log of a run.
fn code_and_log(out: &std::process::Output) -> (Option<i32>, String) {
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), log)
}

#[test]
fn lfs_fetchinclude_and_fetchexclude_leave_files_pointers_as_git_lfs_does() {
    let f = Fixture::new(Transport::File);
    track_bin(&f.repo);
    let (a, b) = (noise(51, 20_000), noise(52, 30_000));
    f.repo
        .commit(&[("keep/a.bin", &a), ("skip/b.bin", &b)], "two dirs");
    let pointer = |p: &str| f.repo.git(&["cat-file", "-p", &format!("HEAD:{p}")]) + "\n";
    let (a_pointer, b_pointer) = (pointer("keep/a.bin"), pointer("skip/b.bin"));
    let grace = "--stale-worktree-grace=0s";

    // From the git config: the excluded file stays its pointer, and its
    // object is not fetched.
    f.sync_once(&["--git-config=lfs.fetchexclude:skip", grace]);
    assert_eq!(f.read("keep/a.bin"), a);
    assert_eq!(f.read("skip/b.bin"), b_pointer);
    assert_eq!(stored_objects(&f.root()), vec![oid(&a)]);

    // Without it, the same commit is checked out again, whole.
    f.sync_once(&[grace]);
    assert_eq!((f.read("keep/a.bin"), f.read("skip/b.bin")), (a, b.clone()));

    // From the commit's .lfsconfig: a file shared with the previous tree
    // as content goes back to its pointer.
    let h = f.repo.commit(
        &[(".lfsconfig", "[lfs]\n\tfetchinclude = skip/, other\n")],
        "lfsconfig",
    );
    f.sync_once(&[grace]);
    assert_published(&f, &h);
    assert_eq!(
        (f.read("keep/a.bin"), f.read("skip/b.bin")),
        (a_pointer, b.clone())
    );
    assert_eq!(stored_objects(&f.root()), vec![oid(&b)]);
    let clean = ["-c", "filter.lfs.clean=git-lfs clean -- %f"];
    let status = git(
        &f.link(),
        &[&clean[..], &["status", "--porcelain"]].concat(),
    );
    assert_eq!(status, "");
}

#[test]
fn git_lfs_skip_smudge_publishes_the_pointers() {
    let f = Fixture::new(Transport::File);
    track_bin(&f.repo);
    f.repo.commit(&[("a.bin", &noise(5, 10_000))], "one");
    let pointer = f.repo.git(&["cat-file", "-p", "HEAD:a.bin"]);
    let out = once_with_env(&f, &[], ("GIT_LFS_SKIP_SMUDGE", "1"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(f.read("a.bin").trim_end(), pointer);
    assert!(stored_objects(&f.root()).is_empty());

    // A value that is no boolean: one line naming it, nothing touched.
    let out = once_with_env(&f, &[], ("GIT_LFS_SKIP_SMUDGE", "perhaps"));
    let err = one_line_error(&out);
    assert!(
        err.contains("GIT_LFS_SKIP_SMUDGE") && err.contains("perhaps"),
        "{err}"
    );
    assert_eq!(f.read("a.bin").trim_end(), pointer);

    // Without it, the same commit is checked out again with the content.
    f.sync_once(&[]);
    assert_eq!(f.read("a.bin").len(), 10_000);
}

/// Commit `files` as LFS pointers (written here as git-lfs writes them,
/// `*.bin` under `filter=lfs`), and put their objects on the server's
/// `store` unless `pushed` says not.
fn commit_lfs(repo: &SourceRepo, store: &Path, files: &[(&str, &str)], pushed: bool) -> String {
    let mut all = vec![(
        ".gitattributes".to_string(),
        "*.bin filter=lfs diff=lfs merge=lfs -text\n".to_string(),
    )];
    for (path, content) in files {
        let pointer = format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
            oid(content),
            content.len()
        );
        all.push((path.to_string(), pointer));
        if pushed {
            fs::write(store.join(oid(content)), content).unwrap();
        }
    }
    let all: Vec<(&str, &str)> = all.iter().map(|(p, c)| (&p[..], &c[..])).collect();
    repo.commit(&all, "lfs")
}

#[test]
fn lfs_objects_come_from_the_lfs_server_with_the_repositorys_credentials() {
    let password = "lfs-S3CRET-pw";
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, requests) = lfs_server(tmp.path(), &srv, LfsAuth::Password(password));
    let (a, b) = (noise(6, 200_000), noise(7, 3_000));
    let h1 = commit_lfs(&repo, &store, &[("a.bin", &a), ("docs/b.bin", &b)], true);
    let root = tmp.path().join("root");
    let run = |extra: &[&str]| {
        let extra = [&["--username=bot"], extra].concat();
        let env = [("GITSYNC_PASSWORD", password)];
        let (code, log) = code_and_log(&once_at(&server.url("site"), &root, &extra, &env));
        assert!(!log.contains(password), "{log}");
        (code, log)
    };
    let link = root.join("site");
    let (code, log) = run(&[]);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(published(&link).as_deref(), Some(&h1[..]));
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), a);
    assert_eq!(fs::read_to_string(link.join("docs/b.bin")).unwrap(), b);
    // One batch request for both, then a download each, all with credentials.
    let asked = fs::read_to_string(&requests).unwrap();
    assert_eq!(
        asked
            .lines()
            .filter(|l| l.contains("/objects/batch auth=True"))
            .count(),
        1,
        "{asked}"
    );
    assert_eq!(
        asked
            .lines()
            .filter(|l| l.contains("/lfs-objects/") && l.ends_with("auth=True"))
            .count(),
        2,
        "{asked}"
    );

    // An object the server lacks fails the pass, naming it; the tree
    // published stays.
    let missing = noise(8, 1_000);
    commit_lfs(
        &repo,
        &store,
        &[("a.bin", &a), ("docs/b.bin", &b), ("c.bin", &missing)],
        false,
    );
    let (code, log) = run(&[]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(&oid(&missing)) && log.contains("Object does not exist"),
        "{log}"
    );
    assert_eq!(published(&link).as_deref(), Some(&h1[..]));

    // An object that is not what its id says is refused.
    fs::write(store.join(oid(&missing)), noise(9, 1_000)).unwrap();
    let (code, log) = run(&[]);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("hashing to"), "{log}");
    assert_eq!(published(&link).as_deref(), Some(&h1[..]));

    // Pushed at last: published.
    fs::write(store.join(oid(&missing)), &missing).unwrap();
    let (code, log) = run(&[]);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(fs::read_to_string(link.join("c.bin")).unwrap(), missing);
}

#[test]
fn with_lfs_skipdownloaderrors_an_object_the_server_lacks_leaves_a_pointer() {
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, _) = lfs_server(tmp.path(), &srv, LfsAuth::Open);
    let (a, lost) = (noise(61, 3_000), noise(62, 2_000));
    commit_lfs(&repo, &store, &[("a.bin", &a)], true);
    let h = commit_lfs(&repo, &store, &[("a.bin", &a), ("lost.bin", &lost)], false);
    let pointer = repo.git(&["cat-file", "-p", "HEAD:lost.bin"]) + "\n";
    let root = tmp.path().join("root");
    let run = |extra: &[&str]| code_and_log(&once_at(&server.url("site"), &root, extra, &[]));
    let (code, log) = run(&[]);
    assert_eq!(code, Some(1), "{log}");
    assert!(!root.join("site").exists());
    // As git-lfs with it: the object said in the log, its file a pointer.
    let (code, log) = run(&["--git-config=lfs.skipdownloaderrors:true"]);
    assert_eq!(code, Some(0), "{log}");
    let link = root.join("site");
    assert_eq!(published(&link).as_deref(), Some(&h[..]));
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), a);
    assert_eq!(fs::read_to_string(link.join("lost.bin")).unwrap(), pointer);
    let warned = log
        .lines()
        .find(|l| l.contains("git-lfs objects not downloaded"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(warned.contains(&oid(&lost)), "{warned}");

    // An LFS server that cannot be reached at all: pointers too (once
    // the request was made again: once here, not 8 times over 36 s).
    let b = noise(65, 1_000);
    let h = commit_lfs(&repo, &store, &[("a.bin", &a), ("b.bin", &b)], true);
    let dead = format!(
        "--git-config=lfs.url:http://127.0.0.1:{}/lfs,lfs.transfer.maxretries:1",
        free_port()
    );
    let (code, log) = run(&[dead.as_str()]);
    assert_eq!(code, Some(1), "{log}");
    let (code, log) = run(&[
        dead.as_str(),
        "--git-config-add=lfs.skipdownloaderrors:true",
    ]);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(published(&link).as_deref(), Some(&h[..]));
    let b_pointer = repo.git(&["cat-file", "-p", "HEAD:b.bin"]) + "\n";
    assert_eq!(fs::read_to_string(link.join("b.bin")).unwrap(), b_pointer);
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), a);
}

#[test]
fn git_lfs_skip_download_errors_in_the_environment_does_the_same() {
    let f = Fixture::new(Transport::File);
    track_bin(&f.repo);
    let (a, lost) = (noise(63, 3_000), noise(64, 2_000));
    f.repo.commit(&[("a.bin", &a), ("lost.bin", &lost)], "two");
    let pointer = f.repo.git(&["cat-file", "-p", "HEAD:lost.bin"]) + "\n";
    let id = oid(&lost);
    let object = format!(".git/lfs/objects/{}/{}/{id}", &id[..2], &id[2..4]);
    fs::remove_file(f.repo.dir.join(object)).unwrap();
    let skip = "GIT_LFS_SKIP_DOWNLOAD_ERRORS";
    let out = once_with_env(&f, &[], (skip, "1"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!((f.read("a.bin"), f.read("lost.bin")), (a, pointer));
    // A value that is no boolean: one line naming it.
    let out = once_with_env(&f, &[], (skip, "sometimes"));
    let err = one_line_error(&out);
    assert!(err.contains(skip) && err.contains("sometimes"), "{err}");
}

#[test]
fn a_credential_helpers_answer_serves_the_lfs_server_too() {
    // As git-lfs asks git's helpers: the answer the fetch got is the LFS
    // server's too (the same host), without asking again.
    let password = "helper-S3CRET";
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, requests) = lfs_server(tmp.path(), &srv, LfsAuth::Password(password));
    let a = noise(42, 5_000);
    let h = commit_lfs(&repo, &store, &[("a.bin", &a)], true);
    let asked = tmp.path().join("asked");
    let helper = format!(
        "credential.helper:\"!f() {{ echo $1 >> {}; echo username=bot; echo password={password}; }}; f\"",
        asked.display()
    );
    let root = tmp.path().join("root");
    let config = format!("--git-config={helper}");
    let (code, log) = code_and_log(&once_at(&server.url("site"), &root, &[&config], &[]));
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(password), "{log}");
    let link = root.join("site");
    assert_eq!(published(&link).as_deref(), Some(&h[..]));
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), a);
    assert_eq!(fs::read_to_string(&asked).unwrap(), "get\n");
    let requests = fs::read_to_string(&requests).unwrap();
    assert!(
        requests
            .lines()
            .any(|l| l.contains("/objects/batch auth=True")),
        "{requests}"
    );
}

#[test]
fn lfs_requests_that_fail_for_a_moment_are_made_again_as_git_lfs_does() {
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, requests) = lfs_server(tmp.path(), &srv, LfsAuth::Open);
    let (a, b) = (noise(41, 100_000), noise(42, 5_000));
    let h1 = commit_lfs(&repo, &store, &[("a.bin", &a), ("b.bin", &b)], true);
    let requests_of = |what: &str| {
        let all = fs::read_to_string(&requests).unwrap_or_default();
        all.lines().filter(|l| l.contains(what)).count()
    };
    // Each case syncs into a root of its own, which has no object yet.
    let sync = |case: &str, flaky: &str, extra: &[&str]| {
        fs::write(store.join("FLAKY"), flaky).unwrap();
        let root = tmp.path().join(case);
        let (code, log) = code_and_log(&once_at(&server.url("site"), &root, extra, &[]));
        (code, log, root.join("site"))
    };
    let whole = |link: &Path, log: &str| {
        assert_eq!(published(link).as_deref(), Some(&h1[..]), "{log}");
        assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), a);
        assert_eq!(fs::read_to_string(link.join("b.bin")).unwrap(), b);
    };

    // A server failing twice for a moment: the third batch request does.
    let (code, log, link) = sync("503", "503 2 batch", &[]);
    assert_eq!(code, Some(0), "{log}");
    whole(&link, &log);
    assert_eq!(requests_of("/objects/batch"), 3);

    // A download cut short is made again, and nothing half is kept.
    let (code, log, link) = sync("cut", "CUT 1 download", &[]);
    assert_eq!(code, Some(0), "{log}");
    whole(&link, &log);
    assert_eq!(requests_of("/lfs-objects/"), 2 + 3);

    // A busy server is asked again when it says (Retry-After: 1), not
    // after the usual delay (250 ms).
    let before = requests_of("/lfs-objects/");
    let (code, log, link) = sync("429", "429 1 download", &[]);
    assert_eq!(code, Some(0), "{log}");
    whole(&link, &log);
    let all = fs::read_to_string(&requests).unwrap();
    let downloads: Vec<(f64, &str)> = all
        .lines()
        .filter(|l| l.contains("/lfs-objects/"))
        .skip(before)
        .map(|l| {
            let (time, rest) = l.split_once(' ').unwrap();
            (time.parse().unwrap(), rest)
        })
        .collect();
    assert_eq!(downloads.len(), 3, "{all}");
    let again = downloads.iter().find_map(|(t, r)| {
        let first = downloads.iter().find(|(_, r2)| r2 == r)?.0;
        (*t > first).then_some(t - first)
    });
    let again = again.expect("one download made twice");
    assert!(again >= 0.95, "asked again after {again} s: {all}");

    // Not forever: lfs.transfer.maxretries, and the tree published stays.
    let (code, log, link) = sync(
        "gives-up",
        "503 9 any",
        &["--git-config=lfs.transfer.maxretries:2,lfs.transfer.maxretrydelay:0"],
    );
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("HTTP status 503") && log.contains("made again 2 times"),
        "{log}"
    );
    assert!(published(&link).is_none(), "{log}");
    assert!(!log.contains("without effect"), "{log}");
    // What fails for good is not made again: a 404 at once.
    let before = requests_of("/objects/batch");
    let (code, log, _) = sync("404", "404 1 batch", &[]);
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(requests_of("/objects/batch"), before + 1, "{log}");
}

#[test]
fn lfs_requests_go_through_the_proxy_git_uses() {
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, _) = lfs_server(tmp.path(), &srv, LfsAuth::Open);
    let a = noise(41, 5_000);
    let h = commit_lfs(&repo, &store, &[("a.bin", &a)], true);
    let (proxy, carried) = forward_proxy();
    // The LFS server under another name, to tell its requests apart.
    let lfs = format!("localhost:{}", server.port);
    let root = tmp.path().join("root");
    let config =
        format!("--git-config=http.proxy:127.0.0.1:{proxy},lfs.url:http://{lfs}/site.git/info/lfs");
    let (code, log) = code_and_log(&once_at(&server.url("site"), &root, &[&config], &[]));
    assert_eq!(code, Some(0), "{log}");
    let link = root.join("site");
    assert_eq!(published(&link).as_deref(), Some(&h[..]));
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), a);
    let carried = carried.lock().unwrap().clone();
    assert!(carried.contains(&lfs), "{carried:?}");
}

#[test]
fn lfs_requests_go_through_a_socks_proxy_as_git_lfs_sends_them() {
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, _) = lfs_server(tmp.path(), &srv, LfsAuth::Open);
    let a = noise(43, 5_000);
    let h = commit_lfs(&repo, &store, &[("a.bin", &a)], true);
    let socks = SocksProxy::start(Some(("puser", "pw")));
    // The LFS server under another name, which alone goes through the
    // proxy: a wrong password there fails the LFS download only.
    let lfs = format!("http://localhost:{}", server.port);
    let through = |root: &str, password: &str| {
        let proxy = format!("socks5h://puser:{password}@127.0.0.1:{}", socks.port);
        let config =
            format!(r#"--git-config=lfs.url:{lfs}/site.git/info/lfs,"http.{lfs}/.proxy":{proxy}"#);
        let root = tmp.path().join(root);
        let (code, log) = code_and_log(&once_at(&server.url("site"), &root, &[&config], &[]));
        (code, log, root.join("site"))
    };
    let (code, log, _) = through("wrong", "nope");
    assert_eq!(code, Some(1), "{log}");
    // A refusal for good, not made again (as a cut connection would be).
    assert!(
        log.contains("git-lfs download") && log.contains("password"),
        "{log}"
    );
    assert!(!log.contains("made again"), "{log}");
    let (code, log, link) = through("right", "pw");
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(published(&link).as_deref(), Some(&h[..]));
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), a);
}

#[test]
fn sigterm_during_an_lfs_download_exits_0_and_keeps_the_published_tree() {
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, requests) = lfs_server(tmp.path(), &srv, LfsAuth::Open);
    let small = noise(31, 1_000);
    let h1 = commit_lfs(&repo, &store, &[("a.bin", &small)], true);
    let root = tmp.path().join("root");
    let link = root.join("site");
    let repo_arg = format!("--repo={}", server.url("site"));
    let root_arg = format!("--root={}", root.display());
    let mut p = spawn(git_sync(&[&repo_arg, &root_arg, "--period=50ms", "-v=1"]));
    p.wait_for(LONG, "the first commit", || {
        published(&link).as_deref() == Some(&h1[..])
    });

    // A large object, sent slowly (some 6 s): stopped in the middle.
    fs::write(store.join("SLOW"), "").unwrap();
    let big = noise(32, 2_000_000);
    let h2 = commit_lfs(&repo, &store, &[("a.bin", &big)], true);
    let big_oid = oid(&big);
    p.wait_for(LONG, "the download to start", || {
        fs::read_to_string(&requests).is_ok_and(|r| r.contains(&format!("/lfs-objects/{big_oid}")))
    });
    std::thread::sleep(Duration::from_millis(300));
    let stopped = std::time::Instant::now();
    signal(&p.child, libc::SIGTERM);
    assert_eq!(p.wait_exit(Duration::from_secs(20)), 0, "{}", p.log());
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}: {}", p.log());
    assert_eq!(published(&link).as_deref(), Some(&h1[..]), "{}", p.log());
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), small);
    // Nothing of the object in the store: no half of it passes for it.
    assert_eq!(stored_objects(&root), vec![oid(&small)]);

    // A restart converges.
    fs::remove_file(store.join("SLOW")).unwrap();
    run_ok(&mut git_sync(&[&repo_arg, &root_arg, "--one-time"]));
    assert_eq!(published(&link).as_deref(), Some(&h2[..]));
    assert_eq!(fs::read_to_string(link.join("a.bin")).unwrap(), big);
}

/// Over SSH, git-lfs asks the server where its LFS server is and for a
/// token there (`git-lfs-authenticate`, which GitHub's and GitLab's SSH
/// servers answer); so does git-sync, with its SSH key and known hosts.
#[test]
fn over_ssh_the_lfs_server_and_token_come_from_git_lfs_authenticate() {
    let token = "lfs-T0KEN-from-ssh";
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, requests) = lfs_server(tmp.path(), &srv, LfsAuth::Token(token));
    let a = noise(10, 100_000);
    let h = commit_lfs(&repo, &store, &[("a.bin", &a)], true);
    let said = tmp.path().join("authenticate.log");
    let dispatch = tmp.path().join("dispatch");
    script(
        &dispatch,
        &format!(
            r#"case "$SSH_ORIGINAL_COMMAND" in
  "git-lfs-authenticate '{path}' download")
    echo "$SSH_ORIGINAL_COMMAND" >> '{said}'
    printf '{{"href":"%s","header":{{"Authorization":"Bearer {token}"}},"expires_in":3600}}' '{href}' ;;
  *) exec /bin/sh -c "$SSH_ORIGINAL_COMMAND" ;;
esac"#,
            path = repo.dir.display(),
            said = said.display(),
            href = server.url("site.git/info/lfs"),
        ),
    );
    let sshd = Sshd::start_with(&format!("ForceCommand {}\n", dispatch.display()));
    let known = tmp.path().join("known_hosts");
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let root = tmp.path().join("root");
    let out = git_sync(&[
        &format!("--repo={}", sshd.url(&repo.dir)),
        &format!("--root={}", root.display()),
        &format!("--ssh-key-file={}", sshd.client_key.display()),
        &format!("--ssh-known-hosts-file={}", known.display()),
        "--one-time",
    ])
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains(token), "{log}");
    assert_eq!(published(&root.join("site")).as_deref(), Some(&h[..]));
    assert_eq!(fs::read_to_string(root.join("site/a.bin")).unwrap(), a);
    assert_eq!(fs::read_to_string(&said).unwrap().lines().count(), 1);
    let asked = fs::read_to_string(&requests).unwrap();
    assert!(asked.lines().all(|l| l.ends_with("auth=True")), "{asked}");
}

/// A repository may name its LFS server in its `.lfsconfig` (`lfs.url`),
/// as git-lfs reads it: here a local repository whose objects are on an
/// HTTP server only.
#[test]
fn an_lfsconfig_names_the_lfs_server() {
    let (tmp, srv, repo) = temp_source("site");
    let (server, store, requests) = lfs_server(tmp.path(), &srv, LfsAuth::Open);
    let a = noise(13, 5_000);
    let lfsconfig = format!("[lfs]\n\turl = {}\n", server.url("elsewhere.git/info/lfs"));
    repo.commit(&[(".lfsconfig", &lfsconfig)], "where the LFS server is");
    let h = commit_lfs(&repo, &store, &[("a.bin", &a)], true);
    let root = tmp.path().join("root");
    run_ok(&mut git_sync(&[
        &format!("--repo={}", repo.url()),
        &format!("--root={}", root.display()),
        "--one-time",
    ]));
    assert_eq!(published(&root.join("site")).as_deref(), Some(&h[..]));
    assert_eq!(fs::read_to_string(root.join("site/a.bin")).unwrap(), a);
    let asked = fs::read_to_string(&requests).unwrap();
    assert!(
        asked.contains("POST /elsewhere.git/info/lfs/objects/batch"),
        "{asked}"
    );
}
