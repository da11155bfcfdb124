//! The Pod story: git-sync and a real nginx sharing a directory, as the
//! example manifests deploy them, and what a reader of that nginx sees.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

const LONG: Duration = Duration::from_secs(60);

struct Pod {
    tmp: TempDir,
    repo: SourceRepo,
    git_server: HttpServer,
}

impl Pod {
    /// A repository on branch `master` holding index.html, served over HTTP.
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        open_up(tmp.path());
        let srv = tmp.path().join("srv");
        fs::create_dir_all(&srv).unwrap();
        let repo = SourceRepo::on_branch(&srv, "test", "master");
        repo.commit(&[("index.html", "hello world 1!")], "one");
        let git_server = HttpServer::start(&srv);
        Pod {
            tmp,
            repo,
            git_server,
        }
    }

    fn volume(&self) -> PathBuf {
        let v = self.tmp.path().join("volume");
        fs::create_dir_all(&v).unwrap();
        v
    }
}

fn body(port: u16, path: &str) -> (u16, String) {
    let (status, b) = http_get(port, path);
    (status, String::from_utf8_lossy(&b).into_owned())
}

fn wait_served(p: &mut Proc, port: u16, path: &str, want: &str, limit: Duration) {
    p.wait_for(limit, &format!("{path} to serve {want:?}"), || {
        body(port, path) == (200, want.to_string())
    });
}

/// git-sync started with exactly the environment of the 2015 manifest
/// (`nginx-git.yml`), the repository URL pointing at our local server.
fn manifest_2015(pod: &Pod, dest: &Path, tmpdir: &Path) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TMPDIR", tmpdir)
        .env("GIT_SYNC_REPO", pod.git_server.url("test"))
        .env("GIT_SYNC_DEST", dest)
        .env("GIT_SYNC_BRANCH", "master")
        .env("GIT_SYNC_REV", "FETCH_HEAD")
        .env("GIT_SYNC_WAIT", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn(cmd)
}

#[test]
fn the_2015_manifest_runs_unchanged() {
    let pod = Pod::new();
    let git_volume = pod.volume(); // mounted at /git and at nginx's docroot
    let nginx = static_server(&git_volume);
    let container_tmp = pod.tmp.path().join("container-tmp");
    fs::create_dir_all(&container_tmp).unwrap();
    let mut sync = manifest_2015(&pod, &git_volume, &container_tmp);

    wait_served(&mut sync, nginx.port, "/", "hello world 1!", LONG);
    assert_eq!(body(nginx.port, "/.git/config").0, 404);
    assert_eq!(body(nginx.port, "/.git").0, 404);
    assert!(sync.log().contains("switch to link mode"), "{}", sync.log());

    pod.repo.commit(&[("index.html", "hello world 2!")], "two");
    let pushed = Instant::now();
    wait_served(
        &mut sync,
        nginx.port,
        "/",
        "hello world 2!",
        Duration::from_secs(13),
    );
    assert!(pushed.elapsed() <= Duration::from_secs(13));

    // A restarted container (fresh private state) repairs the volume.
    sync.kill9();
    fs::remove_file(git_volume.join("index.html")).unwrap();
    fs::write(git_volume.join("junk.html"), "junk").unwrap();
    fs::create_dir_all(git_volume.join(".git")).unwrap();
    fs::write(git_volume.join(".git/config"), "[core]").unwrap();
    let fresh_tmp = pod.tmp.path().join("container-tmp-2");
    fs::create_dir_all(&fresh_tmp).unwrap();
    let mut sync = manifest_2015(&pod, &git_volume, &fresh_tmp);
    wait_served(&mut sync, nginx.port, "/", "hello world 2!", LONG);
    sync.wait_for(LONG, "junk and .git removed", || {
        !git_volume.join("junk.html").exists() && !git_volume.join(".git").exists()
    });
    assert_eq!(body(nginx.port, "/.git/config").0, 404);
}

/// The git-sync container of an example manifest as written: its args
/// and env, `secretKeyRef`s resolved from the Secret of the same file
/// (the YAML read by PyYAML, which kubernetes-validate brings).
struct ExampleContainer {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The documents of an example manifest, as JSON values.
fn example_docs(file: &str) -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(file);
    let json = run_ok(Command::new("python3").arg("-c").arg(
        "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
    ).arg(&path));
    serde_json::from_str(&json).unwrap()
}

fn example_container(file: &str) -> ExampleContainer {
    let docs = example_docs(file);
    let secret = |name: &str, key: &str| -> String {
        docs.iter()
            .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == name)
            .and_then(|d| d["stringData"][key].as_str())
            .unwrap_or_else(|| panic!("{file}: no Secret {name} with {key}"))
            .to_string()
    };
    let container = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|c| c["name"] == "git-sync")
        .unwrap_or_else(|| panic!("{file}: no git-sync container"));
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let env = container["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let name = e["name"].as_str().unwrap().to_string();
                    let value = match e["value"].as_str() {
                        Some(v) => v.to_string(),
                        None => {
                            let r = &e["valueFrom"]["secretKeyRef"];
                            secret(r["name"].as_str().unwrap(), r["key"].as_str().unwrap())
                        }
                    };
                    (name, value)
                })
                .collect()
        })
        .unwrap_or_default();
    ExampleContainer {
        args: strings(&container["args"]),
        env,
    }
}

impl ExampleContainer {
    /// git-sync as the container runs it, but with the test's repository
    /// URL, volume and endpoint port in place of the manifest's.
    fn start(&self, url: &str, volume: &Path, http_port: u16) -> Proc {
        spawn(self.command(url, volume, http_port))
    }

    fn command(&self, url: &str, volume: &Path, http_port: u16) -> Command {
        let local = |name: &str, value: &str| -> String {
            match name {
                "repo" | "GITSYNC_REPO" => url.to_string(),
                "root" | "GITSYNC_ROOT" => volume.display().to_string(),
                "http-bind" | "GITSYNC_HTTP_BIND" => format!("127.0.0.1:{http_port}"),
                _ => value.to_string(),
            }
        };
        let args: Vec<String> = self
            .args
            .iter()
            .map(
                |a| match a.strip_prefix("--").and_then(|f| f.split_once('=')) {
                    Some((flag, value)) => format!("--{flag}={}", local(flag, value)),
                    None => a.clone(),
                },
            )
            .collect();
        let mut cmd = git_sync(&args.iter().map(String::as_str).collect::<Vec<_>>());
        for (name, value) in &self.env {
            cmd.env(name, local(name, value));
        }
        cmd
    }
}

/// The `server { ... }` of an nginx config a ConfigMap of the example
/// holds, without its `listen` (the test's server picks a loopback port)
/// and with the test's docroot in place of `/usr/share/nginx/html`.
fn example_nginx_server(file: &str, docroot: &Path) -> String {
    let docs = example_docs(file);
    let conf = docs
        .iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .find_map(|d| {
            d["data"]
                .as_object()?
                .values()
                .find_map(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("{file}: no ConfigMap with an nginx config"));
    let inner = conf
        .split_once("server {")
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(body, _)| body)
        .unwrap_or_else(|| panic!("{file}: no server block in {conf}"));
    inner
        .lines()
        .filter(|l| !l.trim_start().starts_with("listen "))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("/usr/share/nginx/html", &docroot.display().to_string())
}

/// A repository on `main` holding index.html, served over smart HTTP,
/// with `extra` nginx directives (basic auth, say).
fn main_repo_served(tmp: &Path, extra: &str) -> (SourceRepo, HttpServer) {
    let srv = tmp.join("srv");
    fs::create_dir_all(&srv).unwrap();
    let repo = SourceRepo::on_branch(&srv, "site", "main");
    repo.commit(&[("index.html", "hello from main")], "one");
    let server = HttpServer::start_with(&srv, extra);
    (repo, server)
}

#[test]
fn the_link_mode_example_serves_the_link() {
    use std::os::unix::process::CommandExt;
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let (repo, server) = main_repo_served(tmp.path(), "");
    // Committed symlinks: one within the tree, one to a system file.
    std::os::unix::fs::symlink("index.html", repo.dir.join("inside")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", repo.dir.join("evil")).unwrap();
    let h = repo.commit(&[], "links");
    // The volume is mounted at /usr/share/nginx; nginx serves .../html
    // with the manifest's own server block.
    let volume = tmp.path().join("volume");
    fs::create_dir_all(&volume).unwrap();
    let nginx = Nginx::start(
        &example_nginx_server("link-mode.yml", &volume.join("html")),
        "www-data www-data",
    );
    let port = free_port();
    let example = example_container("link-mode.yml");
    assert!(
        example.args.iter().any(|a| a == "--link=html"),
        "{:?}",
        example.args
    );
    let mut cmd = example.command(&server.url("site"), &volume, port);
    // As the manifest's runAsUser, so that what it writes is not owned
    // like /etc/passwd (already so when the tests do not run as root).
    if is_root() {
        std::os::unix::fs::chown(&volume, Some(65533), Some(65533)).unwrap();
        cmd.uid(65533).gid(65533).env("HOME", &volume);
    }
    let mut sync = spawn(cmd);
    sync.wait_for(LONG, "the links commit", || {
        published(&volume.join("html")).as_deref() == Some(h.as_str())
    });
    wait_served(&mut sync, nginx.port, "/", "hello from main", LONG);
    // The readiness probe: 200 once synced.
    sync.wait_for(LONG, "ready", || http_get(port, "/").0 == 200);
    let (status, metrics) = body(port, "/metrics");
    assert!(
        status == 200 && metrics.contains("git_sync_count_total"),
        "{metrics}"
    );
    assert_eq!(body(nginx.port, "/.git/config").0, 404);
    assert_eq!(
        body(nginx.port, "/inside"),
        (200, "hello from main".to_string())
    );
    let (status, text) = body(nginx.port, "/evil");
    // Refused (try_files finds no file it may serve), not /etc/passwd.
    assert!(
        matches!(status, 403 | 404) && !text.contains("root:"),
        "{status} {text}"
    );
}

#[test]
fn the_env_config_example_syncs_with_its_secret() {
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let example = example_container("env-config.yml");
    let value = |name: &str| {
        example
            .env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {:?}", example.env))
    };
    // The server wants exactly the Secret's username and token.
    let htpasswd = tmp.path().join("htpasswd");
    fs::write(
        &htpasswd,
        format!(
            "{}:{{PLAIN}}{}\n",
            value("GITSYNC_USERNAME"),
            value("GITSYNC_PASSWORD")
        ),
    )
    .unwrap();
    let (repo, server) = main_repo_served(
        tmp.path(),
        &format!(
            "auth_basic \"git\";\nauth_basic_user_file {};",
            htpasswd.display()
        ),
    );
    let volume = tmp.path().join("volume");
    fs::create_dir_all(&volume).unwrap();
    let link = volume.join(value("GITSYNC_LINK"));
    let mut sync = example.start(&server.url("site"), &volume, free_port());
    let h = repo.head();
    sync.wait_for(LONG, "the first sync", || {
        published(&link).as_deref() == Some(h.as_str())
    });
    assert!(!sync.log().contains(&value("GITSYNC_PASSWORD")));
}

// ---- torn reads -------------------------------------------------------------

const FILES: usize = 10;
const LINES: usize = 5000;

fn version_files(n: usize) -> Vec<(String, String)> {
    let content = format!("commit {n:04}\n").repeat(LINES);
    (0..FILES)
        .map(|i| (format!("f{i}.txt"), content.clone()))
        .collect()
}

fn commit_version(repo: &SourceRepo, n: usize) -> String {
    let files = version_files(n);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    repo.commit(&refs, &format!("v{n}"))
}

/// The version a file holds, if it is one complete committed version.
fn check_file(bytes: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let first = text.lines().next().ok_or("empty file")?;
    let n: usize = first
        .strip_prefix("commit ")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("bad first line {first:?}"))?;
    if text != format!("commit {n:04}\n").repeat(LINES) {
        return Err(format!(
            "file mixes versions or is truncated ({} bytes)",
            text.len()
        ));
    }
    Ok(n)
}

/// Read every file through nginx in a loop until `stop`; collect problems.
fn http_reader(
    port: u16,
    stop: Arc<AtomicBool>,
    problems: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut reads = 0;
        while !stop.load(Ordering::SeqCst) {
            let i = reads % FILES;
            let (status, b) = http_get(port, &format!("/f{i}.txt"));
            reads += 1;
            let problem = match status {
                200 => check_file(&b).err(),
                s => Some(format!("status {s}")),
            };
            if let Some(p) = problem {
                problems.lock().unwrap().push(format!("GET /f{i}.txt: {p}"));
            }
        }
        reads
    })
}

/// Publish 100 commits back to back; `published(n)` says when version n is out.
fn publish_100(repo: &SourceRepo, sync: &mut Proc, published: impl Fn(usize, &str) -> bool) {
    for n in 1..=100 {
        let h = commit_version(repo, n);
        sync.wait_for(LONG, &format!("version {n} published"), || published(n, &h));
    }
}

#[test]
fn dest_mode_readers_never_see_a_torn_or_missing_file() {
    let pod = Pod::new();
    commit_version(&pod.repo, 0);
    let dest = pod.volume();
    let nginx = static_server(&dest);
    let mut sync = spawn(git_sync(&[
        &format!("--repo={}", pod.git_server.url("test")),
        &format!("--dest={}", dest.display()),
        &format!("--state-dir={}", pod.tmp.path().join("state").display()),
        "--period=10ms",
    ]));
    sync.wait_for(LONG, "version 0", || {
        fs::read(dest.join(format!("f{}.txt", FILES - 1))).is_ok_and(|b| check_file(&b) == Ok(0))
    });

    let stop = Arc::new(AtomicBool::new(false));
    let problems = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = (0..2)
        .map(|_| http_reader(nginx.port, stop.clone(), problems.clone()))
        .collect();
    publish_100(&pod.repo, &mut sync, |n, _| {
        (0..FILES).all(|i| {
            fs::read(dest.join(format!("f{i}.txt"))).is_ok_and(|b| check_file(&b) == Ok(n))
        })
    });
    stop.store(true, Ordering::SeqCst);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let problems = problems.lock().unwrap();
    assert!(
        problems.is_empty(),
        "{} bad reads of {reads}: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert!(reads > 200, "only {reads} reads");
}

#[test]
fn link_mode_readers_see_whole_commits() {
    let pod = Pod::new();
    commit_version(&pod.repo, 0);
    let root = pod.volume();
    let link = root.join("html");
    let nginx = static_server(&link);
    let mut sync = spawn(git_sync(&[
        &format!("--repo={}", pod.git_server.url("test")),
        &format!("--root={}", root.display()),
        "--link=html",
        "--period=10ms",
    ]));
    sync.wait_for(LONG, "version 0", || published(&link).is_some());

    let stop = Arc::new(AtomicBool::new(false));
    let problems = Arc::new(Mutex::new(Vec::new()));
    let http = http_reader(nginx.port, stop.clone(), problems.clone());
    // A reader that resolves the link once, then reads every file of that tree.
    let fs_reader = {
        let (stop, problems, root, link) =
            (stop.clone(), problems.clone(), root.clone(), link.clone());
        std::thread::spawn(move || {
            let mut snapshots = 0;
            while !stop.load(Ordering::SeqCst) {
                let Ok(target) = fs::read_link(&link) else {
                    problems.lock().unwrap().push("link missing".into());
                    continue;
                };
                let tree = root.join(target);
                let versions: Result<Vec<usize>, String> = (0..FILES)
                    .map(|i| {
                        // A reader takes its time (think of a slow client).
                        std::thread::sleep(Duration::from_millis(1));
                        fs::read(tree.join(format!("f{i}.txt")))
                            .map_err(|e| format!("f{i}.txt: {e}"))
                            .and_then(|b| check_file(&b))
                    })
                    .collect();
                snapshots += 1;
                match versions {
                    Ok(v) if v.iter().all(|x| *x == v[0]) => {}
                    Ok(v) => problems
                        .lock()
                        .unwrap()
                        .push(format!("snapshot mixes commits: {v:?}")),
                    Err(e) => problems
                        .lock()
                        .unwrap()
                        .push(format!("snapshot of {}: {e}", tree.display())),
                }
            }
            snapshots
        })
    };
    publish_100(&pod.repo, &mut sync, |_, h| {
        published(&link).as_deref() == Some(h)
    });
    stop.store(true, Ordering::SeqCst);
    let reads = http.join().unwrap();
    let snapshots = fs_reader.join().unwrap();
    let problems = problems.lock().unwrap();
    assert!(
        problems.is_empty(),
        "{} problems in {reads} reads and {snapshots} snapshots: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert!(
        reads > 100 && snapshots > 100,
        "{reads} reads, {snapshots} snapshots"
    );
}

/// What `ldd` says the binary loads, by file name, with the path it
/// resolves to (the kernel's vDSO has none).
fn shared_libraries(bin: &Path) -> Vec<(String, Option<PathBuf>)> {
    let out = run_ok(Command::new("ldd").arg(bin));
    out.lines()
        .filter_map(|line| {
            let line = line.trim();
            let first = line.split_whitespace().next()?;
            let name = Path::new(first).file_name()?.to_string_lossy().into_owned();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next().map(PathBuf::from),
                None => Some(PathBuf::from(first)).filter(|p| p.is_absolute()),
            };
            Some((name, path))
        })
        .collect()
}

/// The user the Dockerfile's final stage runs as (`USER`), and its UID
/// (and GID): upstream's.
const IMAGE_USER: &str = "65533:65533";
const IMAGE_UID: u32 = 65533;

#[test]
fn the_image_runs_as_upstreams_user() {
    let dockerfile =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let (_, last_stage) = dockerfile.rsplit_once("\nFROM ").unwrap();
    let users: Vec<&str> = last_stage
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .collect();
    assert_eq!(users, [IMAGE_USER]);
    assert!(
        last_stage.contains(&format!("--chown={IMAGE_USER} /volume /")),
        "/git is not the image user's"
    );
}

/// The image `--target with-git` builds, for exec hooks that are shell
/// scripts running git (as upstream's image allows), is the final image
/// plus Debian's git, OpenSSH client and shell: the same binary, user,
/// volume and environment, and a passwd entry for the user (OpenSSH's
/// `ssh` needs one).
#[test]
fn the_with_git_image_is_the_final_one_with_git_ssh_and_a_shell() {
    let dockerfile =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    let with_git = stages
        .iter()
        .find(|s| {
            s.lines()
                .next()
                .is_some_and(|l| l.ends_with(" AS with-git"))
        })
        .expect("a with-git stage");
    let last = stages.last().unwrap();
    assert_ne!(with_git, last, "the default image must stay the last stage");
    // Its instructions, without comments and continuation lines.
    let kept = |stage: &str, from: &[&str]| -> Vec<String> {
        stage
            .lines()
            .filter(|l| from.iter().any(|i| l.starts_with(&format!("{i} "))))
            .map(str::to_string)
            .collect()
    };
    let same = ["COPY", "ENV", "USER", "ENTRYPOINT"];
    assert_eq!(kept(with_git, &same), kept(last, &same));
    let run = with_git.replace("\\\n", " ");
    for needed in [
        "apt-get install -y --no-install-recommends ca-certificates git openssh-client",
        "groupadd -g 65533 git-sync",
        &format!("useradd -u {IMAGE_UID} -g 65533"),
    ] {
        assert!(run.contains(needed), "{needed:?} not in {with_git}");
    }
}

/// The environment the Dockerfile's final stage sets (its `ENV` lines).
fn image_env() -> Vec<(String, String)> {
    let dockerfile =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let (_, last_stage) = dockerfile.rsplit_once("\nFROM ").unwrap();
    last_stage
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("ENV K=V");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Copy `from` to `image` + `to` (an absolute path inside the image).
fn install(image: &Path, from: &Path, to: &str, mode: u32, owner: u32) {
    use std::os::unix::fs::PermissionsExt;
    let dest = image.join(to.trim_start_matches('/'));
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    copy_executable(from, &dest);
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(&dest, Some(owner), Some(owner)).unwrap();
}

/// The Dockerfile's final image, checked without a Docker engine: a chroot
/// holding only what gcr.io/distroless/cc-debian12 gives (glibc, libgcc,
/// the CA bundle, a passwd file) and the binary at /git-sync, run as the
/// image's user (upstream's 65533, which the base's passwd file does not
/// list) and as an arbitrary UID of group 0, as OpenShift runs it. It syncs over every transport with the image's
/// defaults (the system CA bundle, the SSH key and known_hosts under
/// /etc/git-secret), and in the 2015 manifest's dest mode: no shell, no
/// git, no other library.
#[test]
fn the_final_image_syncs_with_only_the_binary_and_ca_certificates() {
    if !is_root() {
        eprintln!("skipped: chroot needs root");
        return;
    }
    // glibc and libgcc are all the distroless "cc" base has to offer.
    const IN_THE_BASE: [&str; 7] = [
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
    ];
    let libs = shared_libraries(&bin());
    for (name, _) in &libs {
        assert!(
            IN_THE_BASE.contains(&name.as_str()) || name.starts_with("ld-linux"),
            "the binary needs {name}, which the final image lacks: {libs:?}"
        );
    }

    let tmp = TempDir::new().unwrap();
    let image = tmp.path().join("image");
    for dir in ["tmp", "home/nonroot", "src", "etc/ssl/certs"] {
        fs::create_dir_all(image.join(dir)).unwrap();
    }
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(image.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::chown(image.join("home/nonroot"), Some(65532), Some(65532)).unwrap();
    }
    install(&image, &bin(), "/git-sync", 0o755, 0);
    for (_, path) in &libs {
        if let Some(path) = path {
            install(&image, path, &path.to_string_lossy(), 0o755, 0);
        }
    }
    fs::write(
        image.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
         nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .unwrap();
    fs::write(image.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();

    // One repository, reached five ways.
    let repo = SourceRepo::new(&image.join("src"), "site");
    let hash = repo.commit(&[("index.html", "from the image")], "one");
    let (ca, cert, key) = test_certificates(tmp.path());
    let mut bundle = fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.extend(fs::read(&ca).unwrap());
    fs::write(image.join("etc/ssl/certs/ca-certificates.crt"), bundle).unwrap();
    let http = HttpServer::start(&image.join("src"));
    let https = HttpServer::start_tls(&image.join("src"), "", Some((&cert, &key)));
    let sshd = Sshd::start();
    install(
        &image,
        &sshd.client_key,
        "/etc/git-secret/ssh",
        0o400,
        IMAGE_UID,
    );
    let known = tmp.path().join("known_hosts");
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    install(&image, &known, "/etc/git-secret/known_hosts", 0o444, 0);

    let runs = [
        ("file", "file:///src/site".to_string(), IMAGE_USER),
        ("plain-path", "/src/site".to_string(), "1000770000:0"),
        // By name: glibc resolves it from the /etc/hosts Kubernetes mounts.
        (
            "http",
            http.url("site").replace("127.0.0.1", "localhost"),
            IMAGE_USER,
        ),
        (
            "https",
            format!("https://127.0.0.1:{}/site", https.port),
            IMAGE_USER,
        ),
        ("ssh", sshd.url(&repo.dir), IMAGE_USER),
    ];
    let in_image = |user: &str, args: &[String], env: &[(&str, &str)]| {
        let mut cmd = Command::new("/usr/sbin/chroot");
        // The image's ENV sets HOME, whatever the user.
        cmd.env_clear()
            .envs(image_env())
            .envs(env.iter().copied())
            .arg(format!("--userspec={user}"))
            .arg(&image)
            .args(["/git-sync", "--log-format=json", "-v=1"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut p = spawn(cmd);
        let code = p.wait_exit(LONG);
        (code, p.log())
    };
    let one_time = |name: &str, url: &str, user: &str| {
        let args = [
            "--one-time".to_string(),
            "--link=html".to_string(),
            format!("--repo={url}"),
            format!("--root=/tmp/{name}"),
        ];
        in_image(user, &args, &[])
    };
    for (name, url, user) in &runs {
        let (code, log) = one_time(name, url, user);
        assert_eq!(code, 0, "{name}: {log}");
        // The CA bundle is parsed only by a process that may speak TLS.
        assert_eq!(
            log.contains("trusting the CA certificates of"),
            name.starts_with("http"),
            "{name}: {log}"
        );
        let link = image.join("tmp").join(name).join("html");
        assert_eq!(published(&link).as_deref(), Some(hash.as_str()), "{name}");
        assert_eq!(
            fs::read_to_string(link.join("index.html")).unwrap(),
            "from the image",
            "{name}"
        );
    }
    // The webhook client finds the system's CA bundle in the image too.
    let receiver = Nginx::start_tls(
        "location / { return 200 \"ok\\n\"; }",
        "www-data www-data",
        Some((&cert, &key)),
    );
    let args = [
        "--one-time".to_string(),
        "--repo=file:///src/site".to_string(),
        "--root=/tmp/hook".to_string(),
        format!("--webhook-url=https://127.0.0.1:{}/hook", receiver.port),
    ];
    let (code, log) = in_image(IMAGE_USER, &args, &[]);
    assert_eq!(code, 0, "{log}");

    // Without any CA certificates, HTTPS fails and the log says why.
    fs::remove_dir_all(image.join("etc/ssl")).unwrap();
    let (code, log) = one_time("https-no-ca", &runs[3].1, IMAGE_USER);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("no CA certificates found"), "{log}");
    assert!(published(&image.join("tmp/https-no-ca/html")).is_none());

    // As upstream's image: no --root needed, /git is the default, the
    // image's user may write there (the Dockerfile's COPY --chown).
    assert!(
        image_env().contains(&("GITSYNC_ROOT".into(), "/git".into())),
        "{:?}",
        image_env()
    );
    let volume = image.join("git");
    fs::create_dir(&volume).unwrap();
    std::os::unix::fs::chown(&volume, Some(IMAGE_UID), Some(IMAGE_UID)).unwrap();
    let args = [
        "--one-time".to_string(),
        "--repo=file:///src/site".to_string(),
        "--link=html".to_string(),
    ];
    let (code, log) = in_image(IMAGE_USER, &args, &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&volume.join("html")).as_deref(),
        Some(hash.as_str())
    );

    // The 2015 manifest's environment: DEST is the volume (made by the
    // kubelet, root's, world-writable) and the image's root, the git state
    // private, in /tmp.
    fs::remove_dir_all(&volume).unwrap();
    fs::create_dir(&volume).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&volume, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let branch = repo.git(&["branch", "--show-current"]);
    let (code, log) = in_image(
        IMAGE_USER,
        &["--one-time".to_string()],
        &[
            ("GIT_SYNC_REPO", runs[2].1.as_str()),
            ("GIT_SYNC_DEST", "/git"),
            ("GIT_SYNC_BRANCH", branch.trim()),
            ("GIT_SYNC_REV", "FETCH_HEAD"),
            ("GIT_SYNC_WAIT", "10"),
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        fs::read_to_string(volume.join("index.html")).unwrap(),
        "from the image"
    );
    assert!(!volume.join(".git").exists());

    // `--root=/` run as root (a slip at a shell): refused before anything
    // is removed, here where it could only cost this throw-away image.
    let all_paths = || {
        let mut out = Vec::new();
        let mut stack = vec![image.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
                out.push(e.path());
            }
        }
        out.sort();
        out
    };
    let before = all_paths();
    let args = [
        "--root=/".to_string(),
        "--link=html".to_string(),
        "--repo=file:///src/site".to_string(),
        "--max-failures=-1".to_string(),
    ];
    let (code, log) = in_image("0:0", &args, &[]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("will not empty it (it is the filesystem's root)"),
        "{log}"
    );
    assert_eq!(all_paths(), before);
}
