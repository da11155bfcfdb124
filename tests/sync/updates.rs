//! Updates, polls of no change, history rewrites.

use super::*;

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
        String::from_utf8_lossy(&out.stderr).into_owned()
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
    let log = run();
    assert!(
        !log.contains("brought in line") && !log.contains("removed from"),
        "{log}"
    );
    let made = private_ino();
    fs::remove_file(dest.join("1.txt")).unwrap();
    let log = run();
    // Said once, with what was done.
    assert_eq!(
        log_lines_with(
            &log,
            "the dest directory differed from this commit's tree (changed by hand, or the tree made again another way): brought in line"
        ),
        1,
        "{log}"
    );
    assert!(log.contains(r#""written":1,"removed":0"#), "{log}");
    assert_eq!(private_ino(), made, "not checked out again");
    assert_eq!(
        fs::read_to_string(dest.join("1.txt")).unwrap(),
        "1",
        "repaired"
    );
    // The next commit's tree, made by the next start, shares the files it
    // did not change with that one, as in link mode.
    let h2 = f.repo.commit(&[("1.txt", "changed")], "c2");
    let log = run();
    assert!(
        !log.contains("brought in line") && !log.contains("removed from"),
        "{log}"
    );
    let shared = fs::metadata(state.join(".worktrees").join(h2).join("0.txt")).unwrap();
    assert_eq!(shared.nlink(), 2, "0.txt written again");
    assert_eq!(fs::read_to_string(dest.join("1.txt")).unwrap(), "changed");
}

#[test]
fn dest_mode_says_what_it_removed_that_no_commit_it_mirrored_holds() {
    let f = Fixture::new(Transport::File);
    f.repo.commit_numbered("", 2, &[], "c1");
    let dest = f.dest();
    fs::create_dir_all(dest.join("old/deeper")).unwrap();
    fs::write(dest.join("left-by-hand.html"), "x").unwrap();
    fs::write(dest.join("old/deeper/page.html"), "x").unwrap();
    let args = f.dest_args(&["--one-time"]);
    let out = run_git_sync(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!dest.join("left-by-hand.html").exists() && !dest.join("old").exists());
    assert_eq!(fs::read_to_string(dest.join("1.txt")).unwrap(), "1");
    // Two entries at the top: the file, and the directory with all in it.
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("removed from the dest"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(said[0].contains(r#""removed":2"#), "{log}");
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

#[test]
fn dest_mode_puts_back_what_was_removed_at_the_top_of_its_directory() {
    // `rm -rf /usr/share/nginx/html/*` in the other container, or a
    // volume that lost its files: the next poll puts the commit's tree
    // back, every file compared, without waiting for another commit.
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(
        &[
            ("index.html", "1"),
            ("site/a.txt", "a"),
            ("site/b/c.txt", "c"),
        ],
        "c1",
    );
    let dest = f.dest();
    let mut p = f.dest_daemon(&["--watch-local=false"]);
    wait_updates(&mut p, 1);
    let src = &f.repo.dir;
    assert_eq!(as_checked_out(&dest), as_checked_out(src), "{h}");
    fs::remove_dir_all(dest.join("site")).unwrap();
    wait_updates(&mut p, 2);
    assert_eq!(as_checked_out(&dest), as_checked_out(src));
    // Every file compared: one removed deeper down (which alone goes
    // unnoticed) comes back with it.
    fs::remove_file(dest.join("site/b/c.txt")).unwrap();
    fs::remove_file(dest.join("index.html")).unwrap();
    wait_updates(&mut p, 3);
    assert_eq!(as_checked_out(&dest), as_checked_out(src));
    // The directory itself gone.
    fs::remove_dir_all(&dest).unwrap();
    wait_updates(&mut p, 4);
    assert_eq!(as_checked_out(&dest), as_checked_out(src));
    let log = p.log();
    assert_eq!(
        log.matches("what readers see was changed behind our back")
            .count(),
        3,
        "{log}"
    );
    assert!(!log.contains("failCount"), "{log}");
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
    drop(p);
    // A restart runs the hook again, which may write other bytes (a build
    // stamp): DEST is brought to them, and the log says why it may differ.
    script(&hook, "cat index.html > built.txt; date +%N > stamp.txt");
    let args = f.dest_args(&[
        "--one-time",
        &format!("--pre-publish-exechook-command={}", hook.display()),
    ]);
    let out = run_git_sync(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(dest.join("stamp.txt").is_file(), "{log}");
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("brought in line"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    // (The stamp only.)
    assert!(said[0].contains(r#""written":1,"removed":0"#), "{log}");
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
