//! git-sync next to the plain git CLI doing the same work, on the same run,
//! over the same local smart-HTTP server (nginx + git http-backend):
//!
//! - first sync of a generated repository of 5,000 files
//!   (vs `git clone --depth 1`): wall time, CPU time, peak RSS;
//! - CPU time per idle poll of a running git-sync (vs one `git ls-remote`
//!   process), over HTTP, HTTPS and SSH, and the daemon's peak RSS; with
//!   50,000 refs on the server, also the bytes it sends for one poll
//!   (and over SSH, the CPU per poll, also from a stock OpenSSH server,
//!   where both speak protocol version 0);
//! - the same first sync over SSH from a local OpenSSH server (git runs
//!   the `ssh` client, git-sync speaks SSH in process): wall and CPU time;
//! - an update changing one file, as git-sync does it (one process: poll,
//!   fetch, new worktree, publish, clean up) vs what upstream runs for it
//!   (`git fetch --depth 1`, `git worktree add`, the old worktree removed,
//!   `git gc` with `gc.pruneExpire=now`): wall and CPU time;
//! - first sync of a repository holding one 100 MB incompressible file:
//!   wall time and peak RSS, over HTTP and from a local path where the
//!   file is a loose object (vs `git clone --depth 1 file://`);
//! - an update of that file with a few bytes changed in place, which the
//!   server sends as a delta on the old version (vs upstream's commands
//!   for an update): wall, CPU, peak RSS;
//! - first sync from a local path of 50 incompressible files of 1 MB
//!   (vs `git clone --depth 1 file://`): wall, CPU, peak RSS;
//! - first sync of a repository whose 50 files of 1 MB are Git LFS
//!   objects on an LFS server beside the git server (vs `git clone
//!   --depth 1` with git-lfs as its filter): wall, CPU, peak RSS;
//! - first sync from a local path of 50,000 small files (vs `git clone
//!   --depth 1 file://`), then an update of one of them (vs upstream's
//!   commands for an update): wall, CPU, peak RSS;
//! - a running dest-mode daemon (the 2015 manifest's mode) on those 50,000
//!   files: time from a one-file commit until the served directory has it,
//!   and CPU per update (vs the 2015 git-sync's `git fetch` and `git reset
//!   --hard` in the served directory);
//! - first sync of a whole history (`--depth=0`) from a local path, 20,000
//!   commits over 2,000 files (vs `git clone file://`): wall, CPU, peak RSS;
//! - CPU per update of that history by a running daemon (`--depth=0`; its
//!   file watcher triggers the pass), vs upstream's commands for an update
//!   (`git fetch`, `git worktree add`, the old worktree removed, `git gc`),
//!   and the daemon's heap while idle after them;
//! - a sparse checkout of one directory (200 small files) of a repository
//!   that also holds 50 incompressible files of 1 MB, over HTTP from a
//!   server that allows filters: git-sync with `--sparse-checkout-file`
//!   and `--filter=blob:none` (vs `git clone --depth 1 --filter=blob:none
//!   --sparse` then `git sparse-checkout set`), and git-sync without the
//!   filter: wall, CPU, peak RSS, bytes received;
//! - with 50,000 refs, an update by a running daemon over HTTP (wall, CPU,
//!   bytes) and over SSH (CPU), and `--one-time` runs on that SSH root
//!   after the daemon (what it found of the server is remembered), vs
//!   upstream's commands for an update;
//! - CPU per second of an idle daemon on the local repository (its file
//!   watcher on, a 60 s period), vs polling it with `git ls-remote` every
//!   minute.
//!
//! Run: `cargo bench --bench sync_vs_git` (needs scripts/install-test-deps).
//! CPU and RSS include every subprocess a command starts (git spawns
//! git-remote-http and index-pack): each measured command runs under a small
//! helper (this binary re-executed with `--measure`) that reports
//! `getrusage(RUSAGE_CHILDREN)`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const FILES: usize = 5000;
const RUNS: usize = 5;
const POLLS_MS: u64 = 100;
const IDLE_SECS: u64 = 10;
const LOCAL_IDLE_SECS: u64 = 30;
const BIG_FILE_MB: usize = 100;
const BINARY_FILES: usize = 50;
const MANY_FILES: usize = 50_000;
const HISTORY_COMMITS: usize = 20_000;
const HISTORY_FILES: usize = 2_000;
const HISTORY_UPDATES: usize = 5;
const SPARSE_FILES: usize = 200;

#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: i64,
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Helper mode: run the command, then print wall, CPU and peak RSS of it
/// and all its descendants.
fn measure_child(cmd: &[String]) -> ! {
    let start = Instant::now();
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run measured command");
    let wall = start.elapsed();
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
    println!(
        "{} {} {} {}",
        status.success(),
        wall.as_nanos(),
        cpu.as_nanos(),
        ru.ru_maxrss
    );
    std::process::exit(0)
}

fn measure(cmd: &[&str]) -> Usage {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--measure")
        .args(cmd)
        // As the daemons run (tests/support): no CA settings from the
        // environment of the machine (it would override git's -c).
        .env_remove("GIT_SSL_CAINFO")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"true"), "command failed: {cmd:?}");
    Usage {
        wall: Duration::from_nanos(f[1].parse().unwrap()),
        cpu: Duration::from_nanos(f[2].parse().unwrap()),
        max_rss_kb: f[3].parse().unwrap(),
    }
}

fn median(mut v: Vec<Usage>) -> Usage {
    v.sort_by_key(|u| u.wall);
    let mut m = v[v.len() / 2];
    m.cpu = {
        let mut c: Vec<Duration> = v.iter().map(|u| u.cpu).collect();
        c.sort();
        c[c.len() / 2]
    };
    m.max_rss_kb = v.iter().map(|u| u.max_rss_kb).max().unwrap();
    m
}

fn generate(repo: &SourceRepo) {
    generate_files(repo, FILES);
}

/// A first sync of `src/` alone from `mono` (see `main`) through a proxy
/// counting what the server sends: git-sync with `flags` (into
/// `<tmp>/<prefix>root`), and, with `git_too`, git's partial sparse
/// clone (into `<prefix>clone`); their usage and bytes received.
fn sparse_first_sync(
    bin: &str,
    port: u16,
    tmp: &std::path::Path,
    (prefix, flags): (&str, &[&str]),
    git_too: bool,
) -> ((Usage, usize), Option<(Usage, usize)>) {
    use std::sync::atomic::Ordering::SeqCst;
    let (proxied, received) = counting_proxy(port, |_, _| {});
    let url = format!("http://127.0.0.1:{proxied}/mono");
    let patterns = tmp.join("sparse-src");
    fs::write(&patterns, "/src/\n").unwrap();
    let sparse = format!("--sparse-checkout-file={}", patterns.display());
    let mut ours_flags = vec![sparse.as_str()];
    ours_flags.extend_from_slice(flags);
    let root = tmp.join(format!("{prefix}root"));
    let ours = sync_once(bin, &url, &root, &ours_flags);
    assert_eq!(count_files(&root.join("mono")), SPARSE_FILES);
    let ours_bytes = received.load(SeqCst);
    if !git_too {
        return ((ours, ours_bytes), None);
    }
    let clone = tmp.join(format!("{prefix}clone"));
    let script = format!(
        "git clone -q --depth 1 --no-tags --filter=blob:none --sparse {url} {c} && \
         git -C {c} sparse-checkout set src",
        c = clone.display()
    );
    let theirs = measure(&["sh", "-c", &script]);
    assert!(clone.join("src/0.txt").is_file() && !clone.join("assets").exists());
    let theirs_bytes = received.load(SeqCst) - ours_bytes;
    ((ours, ours_bytes), Some((theirs, theirs_bytes)))
}

/// `count` small HTML files in 350 directories, committed and packed.
fn generate_files(repo: &SourceRepo, count: usize) {
    // No automatic gc in the background after the commit (over 6,700 loose
    // objects): it would hold the lock of the gc below.
    repo.git(&["config", "gc.auto", "0"]);
    for i in 0..count {
        let p = repo
            .dir
            .join(format!("dir{:02}/sub{}/file{i}.html", i % 50, i % 7));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let body: String = (0..20)
            .map(|l| format!("<p>file {i} line {l}</p>\n"))
            .collect();
        fs::write(p, body).unwrap();
    }
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "generated"]);
    repo.git(&["gc", "-q"]);
}

/// Write a file of `mb` MB of pseudo-random (incompressible) bytes.
fn random_file(repo: &SourceRepo, name: &str, mb: usize, seed: u64) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed;
    let mut data = Vec::with_capacity(mb << 20);
    while data.len() < mb << 20 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let path = repo.dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// `git-sync --repo=<url> --root=<root> --one-time <extra>`, measured.
fn sync_once(bin: &str, url: &str, root: &std::path::Path, extra: &[&str]) -> Usage {
    let (repo, root) = (
        format!("--repo={url}"),
        format!("--root={}", root.display()),
    );
    let mut cmd = vec![bin, &repo, &root, "--one-time"];
    cmd.extend_from_slice(extra);
    measure(&cmd)
}

/// RUNS first syncs of the generated repository at `url` into
/// `<tmp>/<prefix>root<n>` (git-sync with `flags`) and `<prefix>clone<n>`
/// (`git <git_args> clone --depth 1`): the medians.
fn first_syncs(
    bin: &str,
    url: &str,
    tmp: &std::path::Path,
    prefix: &str,
    flags: &[&str],
    git_args: &[&str],
) -> (Usage, Usage) {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let root = tmp.join(format!("{prefix}root{run}"));
        ours.push(sync_once(bin, url, &root, flags));
        assert_eq!(count_files(&root.join("site")), FILES);
        let dest = tmp.join(format!("{prefix}clone{run}"));
        let mut cmd = vec!["git"];
        cmd.extend_from_slice(git_args);
        cmd.extend(["clone", "-q", "--depth", "1", "--no-tags", url]);
        cmd.push(dest.to_str().unwrap());
        theirs.push(measure(&cmd));
    }
    (median(ours), median(theirs))
}

/// Overwrite `bytes` of the file `name` at `offset`, in place.
fn overwrite(repo: &SourceRepo, name: &str, offset: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .write(true)
        .open(repo.dir.join(name))
        .unwrap();
    f.write_all_at(bytes, offset as u64).unwrap();
}

/// What upstream runs for an update, in the clone `c` (its `origin` the
/// repository): `fetch --depth 1`, a new worktree `wt`, the previous one
/// (`old`, if any) removed, `gc` pruning at once. Measured.
fn upstream_update(
    c: &std::path::Path,
    wt: &std::path::Path,
    old: Option<&std::path::Path>,
) -> Usage {
    git(c, &["config", "gc.pruneExpire", "now"]);
    let remove_old = old.map_or(String::new(), |o| format!("rm -rf {} && ", o.display()));
    let (c, wt) = (c.display(), wt.display());
    let script = format!(
        "git -C {c} fetch -q --depth 1 origin HEAD && \
         git -C {c} worktree add -q --detach {wt} FETCH_HEAD && \
         {remove_old}git -C {c} worktree prune && git -C {c} gc -q"
    );
    measure(&["sh", "-c", &script])
}

/// How both clients reach `sshd`, whose host key is written to `known`:
/// git-sync's flags, and git's `core.sshCommand` setting.
fn ssh_client(sshd: &Sshd, known: &std::path::Path) -> ([String; 2], String) {
    fs::write(known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let flags = [
        format!("--ssh-key-file={}", sshd.client_key.display()),
        format!("--ssh-known-hosts-file={}", known.display()),
    ];
    let command = format!(
        "core.sshCommand=ssh -i {} -o UserKnownHostsFile={} -o IdentitiesOnly=yes -o BatchMode=yes",
        sshd.client_key.display(),
        known.display()
    );
    (flags, command)
}

/// `git clone -q --depth 1 <url> <dest>`, measured.
fn clone_depth_1(url: &str, dest: &std::path::Path) -> Usage {
    measure(&[
        "git",
        "clone",
        "-q",
        "--depth",
        "1",
        url,
        dest.to_str().unwrap(),
    ])
}

/// `commits` commits on `main`, the first adding `files` text files of 0.1
/// to 3 KB, each later one changing three of them; through `git
/// fast-import`, then packed by `git gc` as a server's store would be.
fn generate_history(repo: &SourceRepo, commits: usize, files: usize) {
    use std::io::Write;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut stream = Vec::new();
    for c in 0..commits {
        let changes: Vec<usize> = if c == 0 {
            (0..files).collect()
        } else {
            (0..3).map(|_| next(files)).collect()
        };
        write!(
            stream,
            "commit refs/heads/main\ncommitter B <b@example.com> {} +0000\ndata 3\nc{:<2}\n",
            1_600_000_000 + c,
            c % 100
        )
        .unwrap();
        for f in changes {
            let body = format!("file {f} version {c} {}\n", "y".repeat(100 + next(2900)));
            write!(
                stream,
                "M 100644 inline dir{}/f{f}.txt\ndata {}\n{body}",
                f % 50,
                body.len()
            )
            .unwrap();
        }
        stream.push(b'\n');
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&repo.dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    repo.git(&["reset", "-q", "--hard", "main"]);
    repo.git(&["gc", "-q"]);
}

fn commit_all(repo: &SourceRepo, msg: &str) {
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", msg]);
}

struct Idle {
    per_poll: Duration,
    polls: usize,
    hwm_kb: i64,
}

/// A git-sync daemon on `url` polling every POLLS_MS: CPU per no-op poll
/// over IDLE_SECS, and its peak RSS.
fn idle_polls(url: &str, root: &std::path::Path, extra: &[&str]) -> Idle {
    let mut cmd = git_sync(&[
        &format!("--repo={url}"),
        &format!("--root={}", root.display()),
        &format!("--period={POLLS_MS}ms"),
        "-v=1",
    ]);
    cmd.args(extra);
    cmd.stdout(std::process::Stdio::null());
    let mut daemon = spawn(cmd);
    let pid = daemon.child.id();
    daemon.wait_log(Duration::from_secs(60), "first no-op poll", |l| {
        log_lines_with(l, "no change") >= 1
    });
    let (cpu0, polls0) = (proc_cpu(pid), log_lines_with(&daemon.log(), "no change"));
    std::thread::sleep(Duration::from_secs(IDLE_SECS));
    let (cpu1, polls1) = (proc_cpu(pid), log_lines_with(&daemon.log(), "no change"));
    let hwm_kb = proc_hwm_kb(pid);
    daemon.kill9();
    let polls = (polls1 - polls0).max(1);
    Idle {
        per_poll: (cpu1 - cpu0) / polls as u32,
        polls,
        hwm_kb,
    }
}

/// The bytes the HTTP server on `port` sends for one idle poll of a
/// running git-sync on repository `name`, and for one `git ls-remote <url>
/// HEAD`, counted by a proxy in front of it.
fn bytes_per_poll(port: u16, name: &str, root: &std::path::Path) -> (usize, usize) {
    use std::sync::atomic::Ordering::SeqCst;
    let (proxied, received) = counting_proxy(port, |_, _| {});
    let url = format!("http://127.0.0.1:{proxied}/{name}");
    let mut daemon = spawn(git_sync(&[
        &format!("--repo={url}"),
        &format!("--root={}", root.display()),
        &format!("--period={POLLS_MS}ms"),
        "-v=1",
    ]));
    daemon.wait_log(Duration::from_secs(60), "first no-op poll", |l| {
        log_lines_with(l, "no change") >= 1
    });
    let (bytes0, polls0) = (
        received.load(SeqCst),
        log_lines_with(&daemon.log(), "no change"),
    );
    std::thread::sleep(Duration::from_secs(3));
    let (bytes1, polls1) = (
        received.load(SeqCst),
        log_lines_with(&daemon.log(), "no change"),
    );
    daemon.kill9();
    let ours = (bytes1 - bytes0) / (polls1 - polls0).max(1);
    let before = received.load(SeqCst);
    let listed = Command::new("git")
        .args(["ls-remote", &url, "HEAD"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(listed.success());
    (ours, received.load(SeqCst) - before)
}

/// Updates of the repository `name` (many refs) on the HTTP server on
/// `port`, through a proxy that counts what the server sends: git-sync's
/// and upstream's (`upstream_update`), the medians of RUNS, and the bytes
/// received for the last of them.
fn many_refs_updates(
    bin: &str,
    port: u16,
    repo: &SourceRepo,
    tmp: &std::path::Path,
) -> (Usage, Usage, usize, usize) {
    use std::sync::atomic::Ordering::SeqCst;
    let (proxied, received) = counting_proxy(port, |_, _| {});
    let url = format!("http://127.0.0.1:{proxied}/many-refs");
    let (root, clone) = (tmp.join("many-refs-root"), tmp.join("many-refs-clone"));
    sync_once(bin, &url, &root, &[]);
    clone_depth_1(&url, &clone);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_bytes, mut theirs_bytes) = (0, 0);
    for run in 0..RUNS {
        repo.commit(&[("f", &format!("update {run}"))], "update");
        let before = received.load(SeqCst);
        ours.push(sync_once(bin, &url, &root, &["--stale-worktree-grace=0s"]));
        ours_bytes = received.load(SeqCst) - before;
        let before = received.load(SeqCst);
        let (wt, old) = (
            tmp.join(format!("many-refs-wt{run}")),
            tmp.join(format!("many-refs-wt{}", run.wrapping_sub(1))),
        );
        theirs.push(upstream_update(&clone, &wt, Some(&old)));
        theirs_bytes = received.load(SeqCst) - before;
        let body = format!("update {run}");
        assert_eq!(fs::read_to_string(root.join("many-refs/f")).unwrap(), body);
        assert_eq!(fs::read_to_string(wt.join("f")).unwrap(), body);
    }
    (median(ours), median(theirs), ours_bytes, theirs_bytes)
}

/// CPU per update of the repository `repo` (many refs) over SSH at `url`:
/// a running git-sync's (each pass started by a signal, from the commit
/// until the gc after it is logged; its refs listed with protocol v2 once
/// its first listing showed them), and the median of upstream's commands
/// for the same update (`upstream_update`, git speaking v2 over OpenSSH).
/// Then the median of `--one-time` runs on that root, each with a new
/// commit (an init container's, a CronJob's): what the daemon found of the
/// server outlives it.
fn ssh_many_refs_updates(
    repo: &SourceRepo,
    url: &str,
    flags: &[&str],
    ssh_command: &str,
    tmp: &std::path::Path,
) -> (Duration, Usage, Usage) {
    let root = tmp.join("ssh-refs-daemon");
    let mut cmd = git_sync(&[
        &format!("--repo={url}"),
        &format!("--root={}", root.display()),
        "--period=1h",
        "--sync-on-signal=SIGHUP",
        "--stale-worktree-grace=0s",
        "-v=1",
    ]);
    cmd.args(flags);
    cmd.stdout(std::process::Stdio::null());
    let mut daemon = spawn(cmd);
    let link = root.join("many-refs");
    daemon.wait_for(Duration::from_secs(60), "first sync", || link.exists());
    let gcs = |log: &str| log.matches("\"msg\":\"git gc").count();
    let clone = tmp.join("ssh-refs-clone");
    run_ok(Command::new("git").args([
        "-c",
        ssh_command,
        "clone",
        "-q",
        "--depth",
        "1",
        url,
        clone.to_str().unwrap(),
    ]));
    let (key, value) = ssh_command.split_once('=').unwrap();
    git(&clone, &["config", key, value]);
    let mut cpu = Duration::ZERO;
    let mut theirs = Vec::new();
    for run in 0..RUNS {
        let before = gcs(&daemon.log());
        let head = repo.commit(&[("f", &format!("ssh update {run}"))], "update");
        let cpu0 = proc_cpu(daemon.child.id());
        signal(&daemon.child, libc::SIGHUP);
        daemon.wait_for(Duration::from_secs(60), "update published", || {
            published(&link).as_deref() == Some(&head)
        });
        daemon.wait_log(Duration::from_secs(60), "its gc", |log| gcs(log) > before);
        cpu += proc_cpu(daemon.child.id()) - cpu0;
        let (wt, old) = (
            tmp.join(format!("ssh-refs-wt{run}")),
            tmp.join(format!("ssh-refs-wt{}", run.wrapping_sub(1))),
        );
        theirs.push(upstream_update(&clone, &wt, Some(&old)));
    }
    daemon.kill9();
    let bin = bin();
    let once: Vec<Usage> = (0..RUNS)
        .map(|run| {
            repo.commit(&[("f", &format!("ssh one-time {run}"))], "update");
            sync_once(bin.to_str().unwrap(), url, &root, flags)
        })
        .collect();
    (cpu / RUNS as u32, median(theirs), median(once))
}

/// CPU per update of `hist` at `--depth=0`: a running git-sync (what its
/// process used from before the commit until its gc is logged), and the
/// median of upstream's commands for the same update on a full clone.
fn history_updates(hist: &SourceRepo, tmp: &std::path::Path) -> (Duration, Usage, i64) {
    let root = tmp.join("hist-daemon");
    let mut cmd = git_sync(&[
        &format!("--repo={}", hist.url()),
        &format!("--root={}", root.display()),
        "--depth=0",
        "--period=60s",
        "--stale-worktree-grace=0s",
        "-v=1",
    ]);
    cmd.stdout(std::process::Stdio::null());
    let mut daemon = spawn(cmd);
    let link = root.join("history");
    daemon.wait_for(Duration::from_secs(120), "first sync", || link.exists());
    std::thread::sleep(Duration::from_secs(1));
    let gcs = |log: &str| log.matches("\"msg\":\"git gc").count();
    let clone = tmp.join("hist-up");
    run_ok(Command::new("git").args(["clone", "-q", &hist.url(), clone.to_str().unwrap()]));
    let c = clone.display();
    let mut cpu = Duration::ZERO;
    let mut theirs = Vec::new();
    for i in 0..HISTORY_UPDATES {
        let cpu0 = proc_cpu(daemon.child.id());
        let before = gcs(&daemon.log());
        let head = hist.commit(&[("dir7/f7.txt", &format!("update {i}\n"))], "update");
        daemon.wait_for(Duration::from_secs(120), "update published", || {
            published(&link).as_deref() == Some(&head)
        });
        daemon.wait_log(Duration::from_secs(120), "its gc", |log| gcs(log) > before);
        cpu += proc_cpu(daemon.child.id()) - cpu0;
        let wt = tmp.join(format!("hist-wt{i}"));
        let old = tmp.join(format!("hist-wt{}", i.wrapping_sub(1)));
        let script = format!(
            "git -C {c} fetch -q origin main && \
             git -C {c} worktree add -q --detach {wt} FETCH_HEAD && \
             rm -rf {old} && git -C {c} worktree prune && git -C {c} gc -q",
            wt = wt.display(),
            old = old.display()
        );
        theirs.push(measure(&["sh", "-c", &script]));
    }
    // What the daemon keeps while idle after them: its heap (the packs it
    // maps are file pages the kernel can take back).
    std::thread::sleep(Duration::from_secs(1));
    let idle_anon_kb = proc_status_kb(daemon.child.id(), "RssAnon:");
    daemon.kill9();
    (cpu / HISTORY_UPDATES as u32, median(theirs), idle_anon_kb)
}

/// A running dest-mode daemon (the 2015 manifest's mode) on the local
/// repository `many`, its file watcher triggering each pass: the median
/// time from a one-file commit until DEST serves it, and the daemon's CPU
/// per update (from the commit until the clean-up after it, the previous
/// private tree removed, is logged); next to what
/// the 2015 git-sync ran in DEST itself, `git fetch` then `git reset
/// --hard FETCH_HEAD` (which leaves `.git` in the served directory and
/// files torn while it writes).
fn dest_updates(many: &SourceRepo, tmp: &std::path::Path) -> (Usage, Usage) {
    let dest = tmp.join("many-dest");
    let mut cmd = git_sync(&[
        &format!("--repo={}", many.url()),
        &format!("--dest={}", dest.display()),
        &format!("--state-dir={}", tmp.join("many-dest-state").display()),
        "--period=60s",
        "--stale-worktree-grace=0s",
        "-v=1",
    ]);
    cmd.stdout(std::process::Stdio::null());
    let mut daemon = spawn(cmd);
    let file = "dir00/sub0/file0.html";
    let served = |body: &str| fs::read_to_string(dest.join(file)).is_ok_and(|t| t == body);
    let head = fs::read_to_string(many.dir.join(file)).unwrap();
    daemon.wait_for(Duration::from_secs(120), "first mirror", || served(&head));
    let gcs = |log: &str| log.matches("\"msg\":\"git gc").count();
    let clone = tmp.join("many-dest-git");
    run_ok(Command::new("git").args(["clone", "-q", &many.url(), clone.to_str().unwrap()]));
    let c = clone.display();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        std::thread::sleep(Duration::from_secs(1));
        let before = gcs(&daemon.log());
        let cpu0 = proc_cpu(daemon.child.id());
        let body = format!("<p>dest update {i}</p>\n");
        many.commit(&[(file, &body)], "dest update");
        let t = Instant::now();
        daemon.wait_for(Duration::from_secs(60), "update served", || served(&body));
        let wall = t.elapsed();
        daemon.wait_log(Duration::from_secs(60), "its clean-up", |l| gcs(l) > before);
        let cpu = proc_cpu(daemon.child.id()) - cpu0;
        ours.push(Usage {
            wall,
            cpu,
            max_rss_kb: 0,
        });
        let script =
            format!("git -C {c} fetch -q origin main && git -C {c} reset -q --hard FETCH_HEAD");
        theirs.push(measure(&["sh", "-c", &script]));
        assert_eq!(fs::read_to_string(clone.join(file)).unwrap(), body);
    }
    daemon.kill9();
    (median(ours), median(theirs))
}

/// The median of 20 `git ls-remote <url> HEAD`.
fn ls_remote(url: &str, git_args: &[&str]) -> Usage {
    let mut cmd = vec!["git"];
    cmd.extend(git_args);
    cmd.extend(["ls-remote", url, "HEAD"]);
    median((0..20).map(|_| measure(&cmd)).collect())
}

/// utime + stime of a process, from /proc.
fn proc_cpu(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    Duration::from_secs_f64(ticks / hz)
}

fn proc_hwm_kb(pid: u32) -> i64 {
    proc_status_kb(pid, "VmHWM:")
}

/// A `/proc/<pid>/status` figure in kB (`VmHWM:`, `RssAnon:`...).
fn proc_status_kb(pid: u32, field: &str) -> i64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure") {
        measure_child(&args[1..]);
    }
    let tmp = TempDir::new().unwrap();
    let srv = tmp.path().join("srv");
    fs::create_dir_all(&srv).unwrap();
    let repo = SourceRepo::new(&srv, "site");
    generate(&repo);
    let server = HttpServer::start(&srv);
    let url = server.url("site");
    let bin = bin();
    let bin = bin.to_str().unwrap();

    // --- first sync --------------------------------------------------------
    let (o, t) = first_syncs(bin, &url, tmp.path(), "", &[], &[]);

    // --- an update of one file ---------------------------------------------
    let root0 = tmp.path().join("root0");
    let clone0 = tmp.path().join("clone0");
    let (mut ours_up, mut theirs_up) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let body = format!("<p>update {run}</p>\n");
        repo.commit(&[("dir00/sub0/file0.html", &body)], "update");
        ours_up.push(sync_once(bin, &url, &root0, &["--stale-worktree-grace=0s"]));
        let wt = tmp.path().join(format!("wt{run}"));
        let old = tmp.path().join(format!("wt{}", run.wrapping_sub(1)));
        theirs_up.push(upstream_update(&clone0, &wt, Some(&old)));
        assert_eq!(
            fs::read_to_string(wt.join("dir00/sub0/file0.html")).unwrap(),
            body
        );
        assert_eq!(
            fs::read_to_string(root0.join("site/dir00/sub0/file0.html")).unwrap(),
            body
        );
    }
    let (ou, tu) = (median(ours_up), median(theirs_up));

    // --- idle polls --------------------------------------------------------
    let idle = idle_polls(&url, &tmp.path().join("root0"), &[]);
    let ls = ls_remote(&url, &[]);
    // Over HTTPS (a TLS handshake per poll, as for git).
    let (ca, cert, key) = test_certificates(tmp.path());
    let tls_server = HttpServer::start_tls(&srv, "", Some((&cert, &key)));
    let tls_url = format!("https://127.0.0.1:{}/site", tls_server.port);
    let ca_config = format!("http.sslCAInfo={}", ca.display());
    let tls_idle = idle_polls(
        &tls_url,
        &tmp.path().join("root-tls"),
        &[&format!("--git-config=http.sslCAInfo:{}", ca.display())],
    );
    let tls_ls = ls_remote(&tls_url, &["-c", &ca_config]);
    // Over SSH: git runs OpenSSH's client (its CPU counted), git-sync
    // speaks SSH in process; a handshake and a key exchange each poll.
    let sshd = Sshd::start();
    let ssh_url = sshd.url(&repo.dir);
    let (ssh_flags, ssh_command) = ssh_client(&sshd, &tmp.path().join("known_hosts"));
    let ssh_flags: Vec<&str> = ssh_flags.iter().map(String::as_str).collect();
    let (o_ssh, t_ssh) = first_syncs(
        bin,
        &ssh_url,
        tmp.path(),
        "ssh-",
        &ssh_flags,
        &["-c", &ssh_command],
    );
    let ssh_idle = idle_polls(&ssh_url, &tmp.path().join("ssh-root0"), &ssh_flags);
    let ssh_ls = ls_remote(&ssh_url, &["-c", &ssh_command]);
    // The same with 50,000 more refs (GitHub advertises every pull request
    // head): git-sync asks for the refs --ref may name (protocol v2), `git
    // ls-remote <url> HEAD` receives them all (its patterns match the ends
    // of names).
    let many = SourceRepo::new(&srv, "many-refs");
    many.commit(&[("f", "1")], "one");
    many.add_pull_refs(50_000);
    let many_url = server.url("many-refs");
    let many_idle = idle_polls(&many_url, &tmp.path().join("many"), &[]);
    let many_ls = ls_remote(&many_url, &[]);
    // Over SSH, once the first listing showed them (git asks with
    // protocol v2 over SSH too, but `ls-remote <url> HEAD` for every ref).
    let many_ssh_url = sshd.url(&many.dir);
    let many_ssh_idle = idle_polls(&many_ssh_url, &tmp.path().join("many-ssh"), &ssh_flags);
    let many_ssh_ls = ls_remote(&many_ssh_url, &["-c", &ssh_command]);
    // From a stock OpenSSH server, which passes no GIT_PROTOCOL on: both
    // receive every ref with protocol version 0.
    let sshd_v0 = Sshd::start_passing_no_env();
    let (v0_flags, v0_command) = ssh_client(&sshd_v0, &tmp.path().join("known_hosts_v0"));
    let v0_flags: Vec<&str> = v0_flags.iter().map(String::as_str).collect();
    let many_v0_url = sshd_v0.url(&many.dir);
    let many_v0_idle = idle_polls(&many_v0_url, &tmp.path().join("many-v0"), &v0_flags);
    let many_v0_ls = ls_remote(&many_v0_url, &["-c", &v0_command]);
    let (many_bytes, many_ls_bytes) =
        bytes_per_poll(server.port, "many-refs", &tmp.path().join("many-bytes"));
    let (refs_up_ours, refs_up_theirs, refs_up_bytes, refs_up_git_bytes) =
        many_refs_updates(bin, server.port, &many, tmp.path());
    let (ssh_refs_up_ours, ssh_refs_up_theirs, ssh_refs_once) =
        ssh_many_refs_updates(&many, &many_ssh_url, &ssh_flags, &ssh_command, tmp.path());

    // --- one big file: memory follows the largest blob ----------------------
    let big = SourceRepo::new(&srv, "big");
    random_file(&big, "big.bin", BIG_FILE_MB, 0);
    commit_all(&big, "one big file");
    let big_url = server.url("big");
    let big_root = tmp.path().join("big-root");
    let big_clone = tmp.path().join("big-clone");
    let big_ours = sync_once(bin, &big_url, &big_root, &[]);
    let big_theirs = clone_depth_1(&big_url, &big_clone);
    // A few bytes of it changed in place: the server sends the new version
    // as a delta on the old one, which the client rebuilds.
    overwrite(
        &big,
        "big.bin",
        (BIG_FILE_MB << 20) / 2,
        b"changed in place",
    );
    commit_all(&big, "a few bytes changed");
    let big_up_ours = sync_once(bin, &big_url, &big_root, &["--stale-worktree-grace=0s"]);
    let big_up_theirs = upstream_update(&big_clone, &tmp.path().join("big-wt"), None);
    assert_eq!(
        fs::read(big_root.join("big/big.bin")).unwrap(),
        fs::read(big.dir.join("big.bin")).unwrap()
    );
    // The same from a local path, where `git add` left the file loose.
    let big_local_ours = sync_once(bin, &big.url(), &tmp.path().join("big-local-root"), &[]);
    let big_local_theirs = clone_depth_1(&big.url(), &tmp.path().join("big-local-clone"));

    // --- a local source of binary files: our own pack writer, in process ---
    let bins = SourceRepo::new(&srv, "binaries");
    for i in 0..BINARY_FILES {
        random_file(&bins, &format!("b{i}.bin"), 1, i as u64 + 1);
    }
    commit_all(&bins, "binary files");
    let bins_ours = sync_once(bin, &bins.url(), &tmp.path().join("bins-root"), &[]);
    let bins_theirs = clone_depth_1(&bins.url(), &tmp.path().join("bins-clone"));

    // --- Git LFS: the same binaries as LFS objects, from an LFS server ----
    // (a CGI script beside git http-backend, the same for both clients)
    let lfs_dir = tmp.path().join("lfs");
    let lfs_srv = lfs_dir.join("srv");
    let lfs = SourceRepo::new(&lfs_srv, "lfs");
    lfs.git(&["lfs", "install", "--local"]);
    lfs.git(&["lfs", "track", "*.bin"]);
    for i in 0..BINARY_FILES {
        random_file(&lfs, &format!("b{i}.bin"), 1, i as u64 + 1);
    }
    commit_all(&lfs, "LFS files");
    let (lfs_server, lfs_store, _) = lfs_server(&lfs_dir, &lfs_srv, LfsAuth::Open);
    // Pushed: the client's objects on the server.
    for a in fs::read_dir(lfs.dir.join(".git/lfs/objects")).unwrap() {
        for b in fs::read_dir(a.unwrap().path()).unwrap() {
            for o in fs::read_dir(b.unwrap().path()).unwrap() {
                let o = o.unwrap();
                fs::copy(o.path(), lfs_store.join(o.file_name())).unwrap();
            }
        }
    }
    let lfs_url = lfs_server.url("lfs");
    let lfs_root = tmp.path().join("lfs-root");
    let lfs_ours = sync_once(bin, &lfs_url, &lfs_root, &[]);
    let lfs_clone = tmp.path().join("lfs-clone");
    let lfs_theirs = measure(&[
        "git",
        "-c",
        "filter.lfs.process=git-lfs filter-process",
        "-c",
        "filter.lfs.required=true",
        "clone",
        "-q",
        "--depth",
        "1",
        &lfs_url,
        lfs_clone.to_str().unwrap(),
    ]);
    for dir in [lfs_root.join("lfs"), lfs_clone] {
        let len = fs::metadata(dir.join("b0.bin")).unwrap().len();
        assert_eq!(len, 1 << 20, "{}", dir.display());
    }

    // --- many small files from a local path: the checkout itself ---------
    let many = SourceRepo::new(&srv, "many");
    generate_files(&many, MANY_FILES);
    let many_root = tmp.path().join("many-root");
    let many_clone = tmp.path().join("many-clone");
    let many_ours = sync_once(bin, &many.url(), &many_root, &[]);
    let many_theirs = clone_depth_1(&many.url(), &many_clone);
    many.commit(&[("dir00/sub0/file0.html", "<p>changed</p>\n")], "one file");
    let many_up_ours = sync_once(bin, &many.url(), &many_root, &["--stale-worktree-grace=0s"]);
    let many_up_theirs = upstream_update(&many_clone, &tmp.path().join("many-wt"), None);
    let (dest_up_ours, dest_up_theirs) = dest_updates(&many, tmp.path());

    // --- a whole history from a local path: packed data copied as it is ----
    let hist = SourceRepo::new(&srv, "history");
    generate_history(&hist, HISTORY_COMMITS, HISTORY_FILES);
    let hist_ours = sync_once(
        bin,
        &hist.url(),
        &tmp.path().join("hist-root"),
        &["--depth=0"],
    );
    let hist_theirs = measure(&[
        "git",
        "clone",
        "-q",
        &hist.url(),
        tmp.path().join("hist-clone").to_str().unwrap(),
    ]);

    // --- updates of that history, by a running daemon and by git ----------
    let (hist_up_ours, hist_up_theirs, hist_idle_anon_kb) = history_updates(&hist, tmp.path());

    // --- one directory of a repository with large files: a partial clone --
    let mono = SourceRepo::new(&srv, "mono");
    mono.git(&["config", "uploadpack.allowFilter", "true"]);
    for i in 0..BINARY_FILES {
        random_file(&mono, &format!("assets/b{i}.bin"), 1, i as u64 + 100);
    }
    mono.commit_numbered("src", SPARSE_FILES, &[], "a directory beside binaries");
    let filtered = ("sparse-", &["--filter=blob:none"][..]);
    let ((sparse_ours, sparse_bytes), git_sparse) =
        sparse_first_sync(bin, server.port, tmp.path(), filtered, true);
    let (sparse_theirs, sparse_git_bytes) = git_sparse.unwrap();
    let ((sparse_whole, sparse_whole_bytes), _) =
        sparse_first_sync(bin, server.port, tmp.path(), ("sparse-whole-", &[]), false);

    // --- idle local daemon: the file watcher, polling every minute --------
    let local_url = format!("file://{}", repo.dir.display());
    let mut cmd = git_sync(&[
        &format!("--repo={local_url}"),
        &format!("--root={}", tmp.path().join("local").display()),
        "--period=60s",
    ]);
    cmd.stdout(std::process::Stdio::null());
    let mut local = spawn(cmd);
    local.wait_log(Duration::from_secs(60), "local daemon synced", |l| {
        l.contains("watching the local repository") && l.contains("\"updated successfully\"")
    });
    let local_pid = local.child.id();
    // Let the clean-up after the first publish finish: idle is what follows.
    std::thread::sleep(Duration::from_secs(2));
    // Over 30 s: /proc counts CPU in 10 ms ticks (a third of a ms a second).
    let local_cpu0 = proc_cpu(local_pid);
    std::thread::sleep(Duration::from_secs(LOCAL_IDLE_SECS));
    let local_cpu = (proc_cpu(local_pid) - local_cpu0) / LOCAL_IDLE_SECS as u32;
    local.kill9();
    let local_ls: Vec<Usage> = (0..20)
        .map(|_| measure(&["git", "ls-remote", &local_url, "HEAD"]))
        .collect();
    let local_ls = median(local_ls);

    let mb = |kb: i64| format!("{:.1} MiB", kb as f64 / 1024.0);
    println!();
    println!("git-sync vs git CLI, {FILES} files over local smart HTTP (median of {RUNS} runs)");
    println!(
        "{:<38} {:>14} {:>14} {:>8}",
        "", "git-sync", "git CLI", "ratio"
    );
    let row = |name: &str, a: Duration, b: Duration| {
        println!(
            "{name:<38} {:>14} {:>14} {:>7.2}x",
            ms(a),
            ms(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    };
    row("first sync, wall (vs clone --depth 1)", o.wall, t.wall);
    row("first sync, CPU", o.cpu, t.cpu);
    println!(
        "{:<38} {:>14} {:>14}",
        "first sync, peak RSS",
        mb(o.max_rss_kb),
        mb(t.max_rss_kb)
    );
    row("first sync over SSH, wall", o_ssh.wall, t_ssh.wall);
    row("first sync over SSH, CPU", o_ssh.cpu, t_ssh.cpu);
    row("update of one file, wall (vs git)", ou.wall, tu.wall);
    row("update of one file, CPU", ou.cpu, tu.cpu);
    row(
        &format!("first sync, one {BIG_FILE_MB} MB file, wall"),
        big_ours.wall,
        big_theirs.wall,
    );
    println!(
        "{:<38} {:>14} {:>14}",
        format!("first sync, one {BIG_FILE_MB} MB file, peak RSS"),
        mb(big_ours.max_rss_kb),
        mb(big_theirs.max_rss_kb)
    );
    let wall_cpu_rss = |name: &str, ours: Usage, theirs: Usage| {
        row(&format!("{name}, wall"), ours.wall, theirs.wall);
        row(&format!("{name}, CPU"), ours.cpu, theirs.cpu);
        println!(
            "{:<38} {:>14} {:>14}",
            format!("{name}, peak RSS"),
            mb(ours.max_rss_kb),
            mb(theirs.max_rss_kb)
        );
    };
    wall_cpu_rss(
        &format!("update of that {BIG_FILE_MB} MB file (delta)"),
        big_up_ours,
        big_up_theirs,
    );
    wall_cpu_rss(
        &format!("local path, one {BIG_FILE_MB} MB file (loose)"),
        big_local_ours,
        big_local_theirs,
    );
    wall_cpu_rss(
        &format!("local path, {BINARY_FILES} x 1 MB binaries"),
        bins_ours,
        bins_theirs,
    );
    wall_cpu_rss(
        &format!("Git LFS, {BINARY_FILES} x 1 MB objects, HTTP"),
        lfs_ours,
        lfs_theirs,
    );
    wall_cpu_rss(
        &format!("local path, {MANY_FILES} small files"),
        many_ours,
        many_theirs,
    );
    wall_cpu_rss(
        &format!("update of one file of {MANY_FILES} (vs git)"),
        many_up_ours,
        many_up_theirs,
    );
    row(
        "dest mode update, wall (vs fetch+reset)",
        dest_up_ours.wall,
        dest_up_theirs.wall,
    );
    row(
        "dest mode update, CPU (vs fetch+reset)",
        dest_up_ours.cpu,
        dest_up_theirs.cpu,
    );
    wall_cpu_rss(
        &format!("local path, {HISTORY_COMMITS} commits, depth 0"),
        hist_ours,
        hist_theirs,
    );
    row(
        "depth 0 update, CPU (vs fetch+worktree+gc)",
        hist_up_ours,
        hist_up_theirs.cpu,
    );
    println!(
        "{:<38} {:>14} {:>14}",
        "  then idle, heap (RssAnon)",
        mb(hist_idle_anon_kb),
        "-"
    );
    wall_cpu_rss(
        &format!("sparse {SPARSE_FILES} of +{BINARY_FILES} MB, --filter"),
        sparse_ours,
        sparse_theirs,
    );
    println!(
        "{:<38} {:>14} {:>14}",
        "  same without --filter, wall / RSS",
        ms(sparse_whole.wall),
        mb(sparse_whole.max_rss_kb)
    );
    row(
        "idle poll CPU (vs one git ls-remote)",
        idle.per_poll,
        ls.cpu,
    );
    println!(
        "{:<38} {:>14} {:>14}",
        "idle daemon peak RSS (VmHWM)",
        mb(idle.hwm_kb),
        "-"
    );
    row(
        "idle poll CPU, HTTPS (vs ls-remote)",
        tls_idle.per_poll,
        tls_ls.cpu,
    );
    row(
        "idle poll CPU, SSH (vs ls-remote)",
        ssh_idle.per_poll,
        ssh_ls.cpu,
    );
    row(
        "idle poll CPU, 50,000 refs (vs ls-remote)",
        many_idle.per_poll,
        many_ls.cpu,
    );
    row(
        "idle poll CPU, SSH, 50,000 refs (vs ls-remote)",
        many_ssh_idle.per_poll,
        many_ssh_ls.cpu,
    );
    row(
        "  the same, SSH in version 0 (stock sshd)",
        many_v0_idle.per_poll,
        many_v0_ls.cpu,
    );
    let bytes_row = |name: &str, ours: usize, theirs: usize| {
        println!(
            "{name:<38} {:>14} {:>14} {:>7.3}x",
            format!("{:.1} KB", ours as f64 / 1000.0),
            format!("{:.1} KB", theirs as f64 / 1000.0),
            ours as f64 / theirs as f64
        );
    };
    bytes_row(
        "idle poll, bytes received, 50,000 refs",
        many_bytes,
        many_ls_bytes,
    );
    bytes_row(
        "sparse, --filter, bytes received",
        sparse_bytes,
        sparse_git_bytes,
    );
    println!(
        "{:<38} {:>14}",
        "  same without --filter",
        format!("{:.1} KB", sparse_whole_bytes as f64 / 1000.0)
    );
    wall_cpu_rss("update, 50,000 refs (vs git)", refs_up_ours, refs_up_theirs);
    bytes_row(
        "update, bytes received, 50,000 refs",
        refs_up_bytes,
        refs_up_git_bytes,
    );
    row(
        "update over SSH, 50,000 refs, CPU",
        ssh_refs_up_ours,
        ssh_refs_up_theirs.cpu,
    );
    wall_cpu_rss(
        "--one-time update, SSH, 50,000 refs",
        ssh_refs_once,
        ssh_refs_up_theirs,
    );
    row(
        "idle local daemon CPU/s (vs ls-remote/60s)",
        local_cpu,
        local_ls.cpu / 60,
    );
    println!(
        "({} idle polls measured over {IDLE_SECS}s; ls-remote wall {}; over SSH: {} polls, ls-remote wall {}; with 50,000 refs: {} polls, ls-remote wall {})",
        idle.polls,
        ms(ls.wall),
        ssh_idle.polls,
        ms(ssh_ls.wall),
        many_idle.polls,
        ms(many_ls.wall)
    );
}
