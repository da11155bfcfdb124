//! Crash safety (`kill -9` at any moment), garbage collection and disk use.

use super::*;

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
    // ... and the store was collected all the same, once the last
    // update's predecessor was gone. (How many repacks that took depends
    // on how the updates and the trees' grace periods fell.)
    d.wait_log(LONG, "a gc after the last update", |log| {
        log.rsplit_once("\"updated successfully\"")
            .is_some_and(|(_, after)| after.contains("\"git gc done\""))
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
    store_lfs_object(&f.repo);
    f.sync_once(&[]);
    assert_eq!(f.read("sub/a.txt"), "one\r\ntwo\r\n");
    assert_eq!(f.read("plain.txt"), "one\ntwo\n");
    let blob = git(&f.repo.dir, &["rev-parse", "HEAD:v.id"]);
    assert_eq!(f.read("v.id"), format!("version $Id: {blob} $\n"));
    // LFS content, as git with git-lfs writes it; the index vouches for it
    // (a git without git-lfs sees it unchanged too).
    assert_eq!(f.read("big.bin"), LFS_CONTENT);
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
    store_lfs_object(&f.repo);
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
    // (With git-lfs, whose content git leaves to it.)
    let mut by_git = git_clone("git-clone");
    by_git.insert(b"big.bin".to_vec(), ('f', false, LFS_CONTENT.into()));
    assert_eq!(as_checked_out(&f.link()), by_git);
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

/// The content of the LFS file these tests commit, and its pointer.
const LFS_CONTENT: &str = "a large file\n";
const LFS_POINTER: &str = "version https://git-lfs.github.com/spec/v1\n\
    oid sha256:bb9f8b6bfc1f21e9915abe2b08ddd222b3aaf691c70247316243566576ea7930\n\
    size 13\n";

/// Put the LFS file's object where git-lfs keeps it in `repo`.
fn store_lfs_object(repo: &SourceRepo) {
    let oid = "bb9f8b6bfc1f21e9915abe2b08ddd222b3aaf691c70247316243566576ea7930";
    let dir = repo.dir.join(".git/lfs/objects/bb/9f");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(oid), LFS_CONTENT).unwrap();
}

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
    // Every name the chart sets is read.
    assert!(!log.contains("no flag reads"), "{log}");

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

/// A misspelt variable (`GITSYNC_REFF`) sets nothing, as with upstream,
/// but is named at start with the name meant; a Kubernetes Service's own
/// variables (a Service named git-sync) are not.
#[test]
fn a_misspelt_environment_variable_is_named_with_the_one_meant() {
    let f = Fixture::new(Transport::File);
    let head = f.repo.commit(&[("a", "1")], "one");
    let mut cmd = git_sync(&[
        &format!("--repo={}", f.url()),
        &format!("--root={}", f.root().display()),
        "--one-time",
    ]);
    for (k, v) in [
        ("GITSYNC_REFF", "no-such-branch"),
        ("GIT_SYNC_SERVICE_HOST", "10.0.0.1"),
        ("GIT_SYNC_PORT", "tcp://10.0.0.1:80"),
        ("GIT_SYNC_PORT_80_TCP_ADDR", "10.0.0.1"),
    ] {
        cmd.env(k, v);
    }
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
    assert_eq!(published(&f.link()).as_deref(), Some(head.as_str()));
    let log = p.log();
    let warning: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("no flag reads"))
        .collect();
    assert_eq!(warning.len(), 1, "{log}");
    assert!(
        warning[0].contains(r#""names":"GITSYNC_REFF (GITSYNC_REF?)""#),
        "{log}"
    );
}

/// Do `damage` to each pack of our store.
fn each_pack(f: &Fixture, damage: fn(&Path)) {
    for pack in fs::read_dir(f.root().join(".git/objects/pack")).unwrap() {
        let pack = pack.unwrap().path();
        if pack.extension() == Some("pack".as_ref()) {
            damage(&pack);
        }
    }
}

/// 32 bytes in the middle of `file` overwritten, as a disk's fault would.
fn overwrite_middle(file: &Path) {
    let mut bytes = fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle - 16..middle + 16].fill(0x55);
    fs::write(file, bytes).unwrap();
}

#[test]
fn a_damaged_store_is_made_afresh_and_the_sync_goes_on() {
    // Packs truncated, or with bytes overwritten in their middle (a
    // disk's fault): the pass that needs them finds the store damaged,
    // remakes it and syncs; at the default --max-failures=0 a failure
    // would end the process, and each restart would find the same store.
    // A pack gone is an object store that lacks the old commit: the fetch
    // brings all the new one needs.
    type Damage = fn(&Path);
    let damages: [(&str, Damage, usize); 3] = [
        (
            "truncated",
            |p| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(100)
                    .unwrap()
            },
            1,
        ),
        ("removed", |p| fs::remove_file(p).unwrap(), 0),
        ("overwritten", overwrite_middle, 1),
    ];
    for t in [Transport::File, Transport::Http] {
        for (how, damage, warned) in damages {
            let f = Fixture::new(t);
            f.repo
                .commit(&[("big.txt", &noise(7, 50_000)), ("f", "1")], "c1");
            f.sync_once(&[]);
            each_pack(&f, damage);
            // The published tree goes too (the same disk): the next one is
            // made from the store alone, not from files it shares.
            fs::remove_dir_all(fs::canonicalize(f.link()).unwrap()).unwrap();
            let h2 = f.repo.commit(&[("f", "2")], "c2");
            // (The old commit's tree goes at once: in a store a hand took
            // its pack from, git's fsck would miss its commit.)
            let log = f.sync_once(&["--stale-worktree-grace=0s"]);
            let said = log_lines_with(
                &log,
                "our repository store is damaged; making it afresh (the published tree stays)",
            );
            // Over HTTP a fetch at --depth=1 brings the new commit whole:
            // the damaged pack may not be read at all. Locally, what the
            // store has is not copied again.
            match t {
                Transport::File => assert_eq!(said, warned, "{how}: {log}"),
                Transport::Http => assert!(said <= warned, "{how}: {log}"),
            }
            assert_published(&f, &h2);
            assert_eq!(
                fs::read(f.link().join("big.txt")).unwrap(),
                noise(7, 50_000).as_bytes(),
                "{t:?} {how}"
            );
            // (A damaged pack no pass needed may stay, as git keeps one.)
            let h3 = f.repo.commit(&[("f", "3")], "c3");
            f.sync_once(&[]);
            assert_published(&f, &h3);
        }
    }
}

#[test]
fn a_store_the_cleanup_finds_damaged_is_made_afresh() {
    // An update that needs nothing from the damaged pack (its one file is
    // new; the big one is shared with the published tree), then a repack
    // that reads every object kept: the cleanup remakes the store rather
    // than fail after every update; the next pass fetches again and makes
    // the published tree again, its git files gone with the store.
    let f = Fixture::new(Transport::File);
    f.repo
        .commit(&[("big.txt", &noise(7, 50_000)), ("f", "1")], "c1");
    f.sync_once(&[]);
    each_pack(&f, overwrite_middle);
    let h2 = f.repo.commit(&[("f", "2")], "c2");
    let gc = ["--git-gc=aggressive", "--stale-worktree-grace=0s"];
    let log = f.sync_once(&gc);
    let warned = |log: &str| {
        log_lines_with(
            log,
            "our repository store is damaged; making it afresh (the published tree stays)",
        )
    };
    assert_eq!(warned(&log), 1, "{log}");
    assert_eq!(
        log_lines_with(&log, "cleanup failed; will retry after the next update"),
        0,
        "{log}"
    );
    assert_published(&f, &h2);
    let log = f.sync_once(&gc);
    assert_eq!(warned(&log), 0, "{log}");
    assert_published(&f, &h2);
    assert_eq!(
        fs::read(f.link().join("big.txt")).unwrap(),
        noise(7, 50_000).as_bytes()
    );
    assert_eq!(git(&f.link(), &["fsck"]), "");
}
