//! Running as an arbitrary UID in a group-writable root.

use super::*;

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
