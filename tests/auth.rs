//! HTTP basic authentication against a real nginx, and no secret in any
//! output.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

const LONG: Duration = Duration::from_secs(60);

struct Fixture {
    tmp: TempDir,
    repo: SourceRepo,
    htpasswd: std::path::PathBuf,
    server: HttpServer,
}

impl Fixture {
    fn new(password: &str) -> Self {
        let (tmp, srv, repo) = temp_source("private");
        repo.commit(&[("f", "1")], "one");
        let htpasswd = tmp.path().join("htpasswd");
        fs::write(&htpasswd, format!("bot:{{PLAIN}}{password}\n")).unwrap();
        let server = HttpServer::start_with(
            &srv,
            &format!(
                "auth_basic \"git\";\nauth_basic_user_file {};",
                htpasswd.display()
            ),
        );
        Fixture {
            tmp,
            repo,
            htpasswd,
            server,
        }
    }

    /// A public repository `site` on a server of its own, whose submodule
    /// at `path` is the private repository on ours: that server.
    fn public_parent_of_the_private_repo(&self, path: &str) -> HttpServer {
        let public = self.tmp.path().join("public");
        let parent = SourceRepo::new(&public, "site");
        parent.commit(&[("index.html", "parent")], "one");
        let private_dir = self.tmp.path().join("srv/private");
        parent.git(&[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            private_dir.to_str().unwrap(),
            path,
        ]);
        let key = format!("submodule.{path}.url");
        let url = self.server.url("private");
        parent.git(&["config", "-f", ".gitmodules", &key, &url]);
        parent.git(&["commit", "-q", "-am", "a submodule on another server"]);
        HttpServer::start(&public)
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!("--repo={}", self.server.url("private")),
            format!("--root={}", self.tmp.path().join("root").display()),
            "--username=bot".into(),
            "--error-file=error.json".into(),
        ]
    }
}

fn assert_secret_absent(text: &str, secret: &str) {
    assert!(!text.contains(secret), "secret leaked into: {text}");
}

#[test]
fn password_from_env_right_and_wrong() {
    let f = Fixture::new("right-S3CRET");
    let args = f.args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--one-time");
    let mut cmd = git_sync(&args);
    cmd.env("GITSYNC_PASSWORD", "right-S3CRET").arg("-v=5");
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
    assert_eq!(
        published(&f.tmp.path().join("root/private")).as_deref(),
        Some(f.repo.head().as_str())
    );
    assert_secret_absent(&p.log(), "right-S3CRET");
    // The refs were asked for with protocol v2, the password given when
    // the server asked for one.
    assert!(
        p.log()
            .lines()
            .any(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2")),
        "{}",
        p.log()
    );

    // From a Secret made with `echo right-S3CRET | base64`: the newline is
    // no part of the password, as with upstream (git's credential protocol
    // ends a value at its line's end).
    let mut cmd = git_sync(&args);
    cmd.env("GITSYNC_PASSWORD", "right-S3CRET\n");
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());

    let mut cmd = git_sync(&args);
    cmd.env("GITSYNC_PASSWORD", "wrong-S3CRET");
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 1);
    assert!(p.log().contains("rejected"), "{}", p.log());
    assert_secret_absent(&p.log(), "wrong-S3CRET");
    let err = fs::read_to_string(f.tmp.path().join("root/error.json")).unwrap();
    assert_secret_absent(&err, "wrong-S3CRET");

    // No credentials at all: a clear error.
    let out = run_git_sync(&[
        &format!("--repo={}", f.server.url("private")),
        &format!("--root={}", f.tmp.path().join("root2").display()),
        "--one-time",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("requires authentication"));
}

#[test]
fn credentials_in_the_repo_url_are_used_and_never_logged() {
    // As with git: `https://user:password@host/repo` logs in; the password
    // stays out of the log, the error file and the link's name.
    let f = Fixture::new("right-S3CRET");
    let with = |pw: &str| {
        f.server
            .url("private")
            .replace("http://", &format!("http://bot:{pw}@"))
    };
    let root = f.tmp.path().join("root");
    let args = |pw: &str| {
        vec![
            format!("--repo={}", with(pw)),
            format!("--root={}", root.display()),
            "--error-file=error.json".to_string(),
        ]
    };
    let (code, log) = one_time(&args("right-S3CRET"), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&root.join("private")).as_deref(),
        Some(f.repo.head().as_str())
    );
    let (code, log) = one_time(&args("wrong-S3CRET"), &[]);
    assert_eq!(code, 1, "{log}");
    let err = fs::read_to_string(root.join("error.json")).unwrap();
    assert_no_secret("the error file", &err);
}

/// A URL that names the user alone (`https://org@dev.azure.com/...`, as
/// Azure DevOps and Bitbucket give them) is asked with protocol v2 by
/// git-sync's own client too, the password given for that user sent when
/// the server asks; a wrong one is rejected, saying so.
#[test]
fn a_url_naming_the_user_alone_is_listed_with_v2() {
    let f = Fixture::new("right-S3CRET");
    let url = f.server.url("private").replace("http://", "http://bot@");
    let root = f.tmp.path().join("root");
    let server = f.server.url("");
    let run = |password: &str| {
        let credential =
            format!(r#"{{"url":"{server}","username":"bot","password":"{password}"}}"#);
        let args = [
            format!("--repo={url}"),
            format!("--root={}", root.display()),
            format!("--credential={credential}"),
            "-v=5".into(),
        ];
        one_time(&args, &[])
    };
    let (code, log) = run("right-S3CRET");
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&root.join("private")).as_deref(),
        Some(f.repo.head().as_str())
    );
    assert!(refs_listed_with_v2(&log), "{log}");
    assert!(!log.contains("refs listed by libgit2"), "{log}");
    assert_secret_absent(&log, "right-S3CRET");
    let (code, log) = run("wrong-S3CRET");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("rejected"), "{log}");
    assert_secret_absent(&log, "wrong-S3CRET");
    // A .netrc's login for that user, not the first one for the host, as
    // curl under git picks it.
    let home = f.tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    fs::write(
        home.join(".netrc"),
        "machine 127.0.0.1 login other password wrong-S3CRET
         machine 127.0.0.1 login bot password right-S3CRET
",
    )
    .unwrap();
    let netrc_root = f.tmp.path().join("netrc");
    let args = [
        format!("--repo={url}"),
        format!("--root={}", netrc_root.display()),
        "-v=5".into(),
    ];
    let (code, log) = one_time(&args, &[("HOME", home.to_str().unwrap())]);
    assert_eq!(code, 0, "{log}");
    assert!(refs_listed_with_v2(&log), "{log}");
}

/// Credentials in the URL go with git-sync's own requests (protocol v2:
/// one small listing per poll, the commit alone fetched), not only with
/// libgit2's; decoded as git decodes them, and sent as the server asks.
#[test]
fn credentials_in_the_repo_url_go_with_git_syncs_own_requests() {
    let f = Fixture::new("p@ss-S3CRET");
    let url = f
        .server
        .url("private")
        .replace("http://", "http://bot:p%40ss-S3CRET@");
    let root = f.tmp.path().join("root");
    let mut p = spawn(git_sync(&[
        &format!("--repo={url}"),
        &format!("--root={}", root.display()),
        "--period=50ms",
        "-v=5",
    ]));
    let link = root.join("private");
    p.wait_for(LONG, "the first sync", || {
        published(&link).as_deref() == Some(f.repo.head().as_str())
    });
    let h2 = f.repo.commit(&[("f", "2")], "two");
    p.wait_for(LONG, "the update", || {
        published(&link).as_deref() == Some(h2.as_str())
    });
    let log = p.log();
    let listed_v2 = log
        .lines()
        .filter(|l| l.contains("\"msg\":\"refs listed\"") && l.contains("\"protocol\":2"))
        .count();
    assert!(listed_v2 >= 2, "{log}");
    assert_eq!(
        log_lines_with(&log, "refs listed by libgit2 for the next 10 minutes"),
        0,
        "{log}"
    );
    assert_eq!(log_lines_with(&log, "fetching with libgit2"), 0, "{log}");
    assert_secret_absent(&log, "S3CRET");
}

/// A git in an exec hook reaches the private repository, `origin`, with
/// the credentials git-sync has (upstream's hooks find them in git's
/// credential cache): from `--username` and the password, and from the
/// URL, which the store's config does not hold. The password is in no
/// file under the root, and no variable git-sync adds holds it.
#[test]
fn a_hooks_git_gets_the_repositorys_http_credentials() {
    let f = Fixture::new("right-S3CRET");
    let said = f.tmp.path().join("said");
    let env = f.tmp.path().join("env");
    let hook = f.tmp.path().join("hook");
    script(
        &hook,
        &format!(
            "env > '{}'\nGIT_TERMINAL_PROMPT=0 git ls-remote origin HEAD > '{}' 2>&1",
            env.display(),
            said.display()
        ),
    );
    let root = f.tmp.path().join("root");
    let with_url = f
        .server
        .url("private")
        .replace("http://", "http://bot:right-S3CRET@");
    for (n, (repo, password)) in [
        (f.server.url("private"), Some("right-S3CRET")),
        (with_url, None),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = fs::remove_file(&said);
        let mut args = vec![
            format!("--repo={repo}"),
            format!("--root={}", root.display()),
            format!("--exechook-command={}", hook.display()),
            format!("--link=run{n}"),
        ];
        let mut vars = Vec::new();
        if let Some(p) = password {
            args.push("--username=bot".into());
            vars.push(("GITSYNC_PASSWORD", p));
        }
        let (code, log) = one_time(&args, &vars);
        let said = fs::read_to_string(&said).unwrap_or_default();
        assert_eq!(code, 0, "{said}\n{log}");
        assert!(
            said.starts_with(&format!("{}\tHEAD", f.repo.head())),
            "{said}"
        );
        // (Hooks inherit git-sync's environment, as upstream's: a
        // GITSYNC_PASSWORD given there is theirs too.)
        let env = fs::read_to_string(&env).unwrap();
        let added: Vec<&str> = env
            .lines()
            .filter(|l| !l.starts_with("GITSYNC_PASSWORD="))
            .collect();
        assert_secret_absent(&added.join("\n"), "S3CRET");
    }
    let leaks = files_holding(&root, "S3CRET");
    assert!(leaks.is_empty(), "the password in {leaks:?}");
}

/// A `.netrc` (`$NETRC`, else `$HOME/.netrc`) logs in where git-sync is
/// given no credentials, as curl under upstream's git reads one; those
/// git-sync is given come first.
#[test]
fn a_netrc_logs_in_where_no_credential_is_given() {
    let f = Fixture::new("right-S3CRET");
    let home = f.tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    let netrc = home.join(".netrc");
    let root = |name: &str| f.tmp.path().join(name);
    let args = |name: &str| {
        vec![
            format!("--repo={}", f.server.url("private")),
            format!("--root={}", root(name).display()),
            "--error-file=error.json".to_string(),
        ]
    };
    let home_env = ("HOME", home.to_str().unwrap());
    fs::write(
        &netrc,
        "machine elsewhere.example login x password y\n\
         machine 127.0.0.1\n  login bot\n  password right-S3CRET\n",
    )
    .unwrap();
    let (code, log) = one_time(&args("r1"), &[home_env]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&root("r1/private")).as_deref(),
        Some(f.repo.head().as_str())
    );
    // Where it came from is said at start.
    assert!(
        log.contains(&format!("\"netrc\":\"{}\"", netrc.display())),
        "{log}"
    );

    // $NETRC names another file, whose `default` entry fits any host.
    let other = f.tmp.path().join("other-netrc");
    fs::write(&other, "default login bot password wrong-S3CRET\n").unwrap();
    let netrc_env = ("NETRC", other.to_str().unwrap());
    let (code, log) = one_time(&args("r2"), &[home_env, netrc_env]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("rejected"), "{log}");
    let err = fs::read_to_string(root("r2/error.json")).unwrap();
    assert_no_secret("the error file", &err);

    // A password git-sync is given wins over the .netrc's.
    let mut given = args("r3");
    given.push("--username=bot".into());
    let (code, log) = one_time(&given, &[home_env, ("GITSYNC_PASSWORD", "wrong-S3CRET")]);
    assert_eq!(code, 1, "{log}");
    let (code, log) = one_time(&args("r4"), &[("HOME", "/nonexistent")]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("none is configured"), "{log}");
}

/// `credential.helper=store` in the git config: the files of git's store
/// helper are read in process (its `--file`, else `~/.git-credentials`),
/// before every pass, by server.
#[test]
fn the_files_of_gits_store_credential_helper_are_read() {
    let f = Fixture::new("right-S3CRET");
    let home = f.tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    let root = |name: &str| f.tmp.path().join(name);
    let server = format!("127.0.0.1:{}", f.server.port);
    let args = |name: &str, helper: &str| {
        vec![
            format!("--repo={}", f.server.url("private")),
            format!("--root={}", root(name).display()),
            format!("--git-config=credential.helper:{helper}"),
        ]
    };
    let home_env = ("HOME", home.to_str().unwrap());
    fs::write(
        home.join(".git-credentials"),
        format!("https://bot:wrong-S3CRET@{server}\nhttp://bot:right-S3CRET@{server}/other/path\n"),
    )
    .unwrap();
    let (code, log) = one_time(&args("r1", "store"), &[home_env]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&root("r1/private")).as_deref(),
        Some(f.repo.head().as_str())
    );
    assert!(!log.contains("not supported"), "{log}");

    let file = f.tmp.path().join("git-credentials");
    fs::write(&file, format!("http://bot:wrong-S3CRET@{server}\n")).unwrap();
    let helper = format!("store --file={}", file.display());
    let (code, log) = one_time(&args("r2", &helper), &[home_env]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("rejected"), "{log}");
    // Another helper is run as git runs it (`git-credential-cache get`,
    // which has nothing here), with no warning.
    let (code, log) = one_time(&args("r3", "cache"), &[home_env]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("the credential helpers asked (cache) had none"),
        "{log}"
    );
    assert!(!log.contains("not supported"), "{log}");
}

/// Another credential helper (`credential.helper=<name>`, a program, or a
/// `!` shell snippet) is run as git runs it: `git-credential-<name> get`
/// with git's request on its standard input; its answer logs in. One
/// scoped to another server is not asked.
#[test]
fn a_credential_helper_program_is_asked_as_git_asks_it() {
    let f = Fixture::new("right-S3CRET");
    let bin = f.tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let record = f.tmp.path().join("asked");
    script(
        &bin.join("git-credential-fake"),
        &format!(
            "cat >> {r}\necho \"args $*\" >> {r}\necho username=bot\necho password=right-S3CRET",
            r = record.display()
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let root = |name: &str| f.tmp.path().join(name);
    let run = |name: &str, config: &[&str]| {
        let mut args = vec![
            format!("--repo={}", f.server.url("private")),
            format!("--root={}", root(name).display()),
        ];
        args.extend(config.iter().map(|c| format!("--git-config-add={c}")));
        one_time(&args, &[("PATH", path.as_str())])
    };
    let (code, log) = run("named", &["credential.helper:fake --flag"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&root("named/private")).as_deref(),
        Some(f.repo.head().as_str())
    );
    let asked = fs::read_to_string(&record).unwrap();
    assert_eq!(
        asked,
        format!(
            "protocol=http\nhost=127.0.0.1:{}\n\nargs --flag get\n",
            f.server.port
        )
    );
    // With credential.useHttpPath, the path goes too.
    let (code, log) = run(
        "with-path",
        &["credential.helper:fake", "credential.useHttpPath:true"],
    );
    assert_eq!(code, 0, "{log}");
    let with_path = fs::read_to_string(&record).unwrap();
    assert_eq!(
        with_path.strip_prefix(&asked),
        Some(
            format!(
                "protocol=http\nhost=127.0.0.1:{}\npath=private\n\nargs get\n",
                f.server.port
            )
            .as_str()
        )
    );
    let asked = with_path;
    // A shell snippet; one scoped to another server is passed over.
    let other = "\"credential.http://other.example.helper\":fake";
    let snippet =
        "credential.helper:\"!f() { echo username=bot; echo password=right-S3CRET; }; f\"";
    let (code, log) = run("snippet", &[other, snippet]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(fs::read_to_string(&record).unwrap(), asked);
    // A helper that leaves a process holding its output open (a cache
    // daemon) is read once it has exited.
    let pid_file = f.tmp.path().join("daemon.pid");
    script(
        &bin.join("git-credential-spawns"),
        &format!(
            "sleep 120 &\necho $! > {}\necho username=bot\necho password=right-S3CRET",
            pid_file.display()
        ),
    );
    let (code, log) = run("spawns", &["credential.helper:spawns"]);
    if let Ok(pid) = fs::read_to_string(&pid_file) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    assert_eq!(code, 0, "{log}");
    // A helper with nothing to say: no credentials.
    let (code, log) = run("nothing", &["credential.helper:\"!true\""]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("the credential helpers asked (!...) had none"),
        "{log}"
    );
}

/// git asks its credential helpers when a server wants credentials, and
/// only then: not for a public repository (its polls run no helper), but
/// for its submodule on a private server. An answer is used again at the
/// next polls; once the server refuses it, the helper is asked anew.
#[test]
fn credential_helpers_are_asked_when_a_server_wants_credentials() {
    let f = Fixture::new("right-S3CRET");
    let public = f.public_parent_of_the_private_repo("vendor");
    let bin = f.tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let (record, answer) = (f.tmp.path().join("asked"), f.tmp.path().join("answer"));
    fs::write(&answer, "right-S3CRET").unwrap();
    script(
        &bin.join("git-credential-fake"),
        &format!(
            "cat >> {r}\necho username=bot\necho password=$(cat {a})",
            r = record.display(),
            a = answer.display()
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let args = |repo: String, root: &str| {
        vec![
            format!("--repo={repo}"),
            format!("--root={}", f.tmp.path().join(root).display()),
            "--git-config=credential.helper:fake".to_string(),
        ]
    };
    let (code, log) = one_time(&args(public.url("site"), "r1"), &[("PATH", &path)]);
    assert_eq!(code, 0, "{log}");
    let vendored = f.tmp.path().join("r1/site/vendor/f");
    assert_eq!(fs::read_to_string(vendored).unwrap(), "1");
    let private_server = format!("protocol=http\nhost=127.0.0.1:{}\n\n", f.server.port);
    assert_eq!(fs::read_to_string(&record).unwrap(), private_server);

    fs::remove_file(&record).unwrap();
    let mut args = args(f.server.url("private"), "r2");
    args.extend(["--period=50ms".into(), "--max-failures=-1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = git_sync(&args);
    cmd.env("PATH", &path);
    let mut p = spawn(cmd);
    let link = f.tmp.path().join("r2/private");
    let h1 = f.repo.head();
    p.wait_for(LONG, "first sync", || {
        published(&link).as_deref() == Some(&h1)
    });
    let h2 = f.repo.commit(&[("f", "2")], "two");
    p.wait_for(LONG, "an update", || {
        published(&link).as_deref() == Some(&h2)
    });
    assert_eq!(fs::read_to_string(&record).unwrap(), private_server);
    // The password changes, on the server and in the helper.
    fs::write(&f.htpasswd, "bot:{PLAIN}second-S3CRET\n").unwrap();
    fs::write(&answer, "second-S3CRET").unwrap();
    let h3 = f.repo.commit(&[("f", "3")], "three");
    p.wait_for(LONG, "an update with the new password", || {
        published(&link).as_deref() == Some(&h3)
    });
    assert_eq!(
        fs::read_to_string(&record).unwrap(),
        private_server.repeat(2)
    );
    for s in ["right-S3CRET", "second-S3CRET"] {
        assert_secret_absent(&p.log(), s);
    }
}

#[test]
fn rotated_password_file_is_picked_up_without_restart() {
    let f = Fixture::new("first-S3CRET");
    let pwfile = f.tmp.path().join("password");
    fs::write(&pwfile, "first-S3CRET\n").unwrap();
    let args = f.args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let pw_arg = format!("--password-file={}", pwfile.display());
    args.extend([pw_arg.as_str(), "--period=50ms", "--max-failures=-1"]);
    let mut p = spawn(git_sync(&args));
    let link = f.tmp.path().join("root/private");
    let h1 = f.repo.head();
    p.wait_for(LONG, "first sync", || {
        published(&link).as_deref() == Some(&h1)
    });

    // The server's password is rotated: syncs fail until the file follows.
    fs::write(&f.htpasswd, "bot:{PLAIN}second-S3CRET\n").unwrap();
    let h2 = f.repo.commit(&[("f", "2")], "two");
    p.wait_log(LONG, "a rejected sync", |l| l.contains("rejected"));
    assert_eq!(published(&link).as_deref(), Some(h1.as_str()));
    fs::write(&pwfile, "second-S3CRET\n").unwrap();
    p.wait_for(LONG, "sync with the new password", || {
        published(&link).as_deref() == Some(&h2)
    });
    for s in ["first-S3CRET", "second-S3CRET"] {
        assert_secret_absent(&p.log(), s);
    }
}

#[test]
fn username_without_password_is_a_config_error() {
    let out = git_sync(&[
        "--repo=http://127.0.0.1:1/x",
        "--root=/tmp/x",
        "--username=bot",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--username"), "{err}");
    let out = git_sync(&[
        "--repo=http://127.0.0.1:1/x",
        "--root=/tmp/x",
        "--username=bot",
        "--password-file=/p",
    ])
    .env("GITSYNC_PASSWORD", "x")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-file"));
}

#[test]
fn http_extra_header_from_git_config_is_sent_where_it_matches() {
    let f = Fixture::new("right-S3CRET");
    let basic = openssl::base64::encode_block(b"bot:right-S3CRET");
    let run = |root: &str, config: String| {
        let args = [
            format!("--repo={}", f.server.url("private")),
            format!("--root={}", f.tmp.path().join(root).display()),
            format!("--git-config={config}"),
        ];
        let (code, log) = one_time(&args, &[]);
        assert!(!log.contains(&basic), "the header leaked: {log}");
        (code, log)
    };
    // As with git: no --username, the header carries the login.
    let (code, log) = run(
        "r1",
        format!("http.extraHeader:Authorization: Basic {basic}"),
    );
    assert_eq!(code, 0, "{log}");
    // For the server's URL prefix, the key quoted (it holds colons).
    let for_prefix =
        |prefix: &str| format!(r#""http.{prefix}.extraHeader":Authorization: Basic {basic}"#);
    let (code, log) = run("r2", for_prefix(&f.server.url("")));
    assert_eq!(code, 0, "{log}");
    // For another URL: not sent, so the server refuses.
    let (code, log) = run("r3", for_prefix("http://elsewhere/"));
    assert_eq!(code, 1, "{log}");
    // A repository URL that `url.<base>.insteadOf` rewrites: the header
    // follows the URL really reached.
    let server = f.server.url("");
    let args = [
        "--repo=http://git.example.invalid/private".to_string(),
        format!("--root={}", f.tmp.path().join("r4").display()),
        format!(
            r#"--git-config="url.{server}.insteadOf":http://git.example.invalid/,{}"#,
            for_prefix(&server)
        ),
    ];
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 0, "{log}");
    // A key naming a URL with a password in it: the start line lists the
    // keys, and one_time finds no secret in the log.
    let with_password = server.replace("http://", "http://bot:right-S3CRET@");
    run("r5", for_prefix(&with_password));

    // A redirect to another server: the Authorization header stays with
    // the server it was configured for (curl strips it, for git), and the
    // pass fails saying why, where libgit2 would send it on.
    let redirect = Nginx::start(
        &format!(
            "location / {{ return 302 http://127.0.0.1:{}$request_uri; }}",
            f.server.port
        ),
        "www-data www-data",
    );
    let args = [
        format!("--repo=http://127.0.0.1:{}/private", redirect.port),
        format!("--root={}", f.tmp.path().join("r6").display()),
        format!("--git-config=http.extraHeader:Authorization: Basic {basic}"),
    ];
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 1, "{log}");
    let refused = format!(
        "leads to 127.0.0.1:{}, which would receive the Authorization or Cookie headers",
        f.server.port
    );
    assert!(log.contains(&refused), "{log}");
}

/// Every secret of these tests, for the leak checks.
const SECRETS: &[&str] = &[
    "right-S3CRET",
    "wrong-S3CRET",
    "first-S3CRET",
    "second-S3CRET",
    "askpass-S3CRET",
    "cred-S3CRET",
    "own-S3CRET",
    "ghs_T0KEN-S3CRET",
    "entra-T0KEN-S3CRET",
    "cookie-S3CRET",
    "stale-cookie-S3CRET",
    "proxy-S3CRET",
    "hook-S3CRET",
    "hookq-S3CRET",
];

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret {s:?} leaked into {what}: {text}");
    }
}

fn one_time(args: &[String], env: &[(&str, &str)]) -> (i32, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = git_sync(&args);
    cmd.arg("--one-time");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = spawn(cmd);
    let code = p.wait_exit(LONG);
    let log = p.log();
    assert_no_secret("the log", &log);
    (code, log)
}

#[test]
fn https_with_a_private_ca_from_git_config_or_git_env() {
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "tls")], "one");
    let (ca, cert, key) = test_certificates(tmp.path());
    let server = HttpServer::start_tls(&srv, "", Some((&cert, &key)));
    let url = format!("https://127.0.0.1:{}/site", server.port);
    let root = tmp.path().join("root");
    let base = vec![
        format!("--repo={url}"),
        format!("--root={}", root.display()),
    ];
    // Unknown CA: refused, saying how to trust it.
    let (code, log) = one_time(&base, &[]);
    assert_eq!(code, 1);
    assert!(log.to_lowercase().contains("certificate"), "{log}");
    assert!(log.contains("http.sslCAInfo"), "{log}");
    // With the CA: synced.
    let mut args = base.clone();
    args.push(format!("--git-config=http.sslCAInfo:{}", ca.display()));
    args.push("-v=5".into());
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&root.join("site")).as_deref(), Some(h.as_str()));
    // Our own client for the listing trusts that CA too.
    assert!(
        log.lines()
            .any(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2")),
        "{log}"
    );
    // The environment variables git reads: a CA file, or no verification
    // at all (Config Sync sets these on its git-sync containers).
    let ca = ca.display().to_string();
    for env in [
        ("GIT_SSL_CAINFO", ca.as_str()),
        ("GIT_SSL_NO_VERIFY", "true"),
    ] {
        let (code, log) = one_time(&base, &[env]);
        assert_eq!(code, 0, "{env:?}: {log}");
    }
    // Nothing of that stays behind for the next start.
    let (code, _) = one_time(&base, &[]);
    assert_eq!(code, 1);
}

/// The system's and the user's git config files, which git reads before
/// the command line: a laptop's `~/.gitconfig` naming a private CA and
/// git's store helper serves a local daemon as it serves git;
/// `GIT_CONFIG_GLOBAL` names another file, `--git-config` has the last
/// word.
#[test]
fn the_users_git_config_file_gives_the_ca_and_the_credential_helper() {
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "tls")], "one");
    let (ca, cert, key) = test_certificates(tmp.path());
    let htpasswd = tmp.path().join("htpasswd");
    fs::write(&htpasswd, "bot:{PLAIN}right-S3CRET\n").unwrap();
    let auth = format!(
        "auth_basic \"git\";\nauth_basic_user_file {};",
        htpasswd.display()
    );
    let server = HttpServer::start_tls(&srv, &auth, Some((&cert, &key)));
    let home = tmp.path().join("home");
    fs::create_dir_all(home.join(".config/git")).unwrap();
    fs::copy(&ca, home.join("ca.pem")).unwrap();
    fs::write(
        home.join(".config/git/config"),
        "[http]\n\tsslCAInfo = ~/ca.pem\n",
    )
    .unwrap();
    fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Me\n[credential]\n\thelper = store\n",
    )
    .unwrap();
    fs::write(
        home.join(".git-credentials"),
        format!("https://bot:right-S3CRET@127.0.0.1:{}\n", server.port),
    )
    .unwrap();
    let home_env = home.display().to_string();
    let run = |name: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            format!("--repo=https://127.0.0.1:{}/site", server.port),
            format!("--root={}", tmp.path().join(name).display()),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut all = vec![("HOME", home_env.as_str())];
        all.extend_from_slice(env);
        let (code, log) = one_time(&args, &all);
        (code, log, published(&tmp.path().join(name).join("site")))
    };
    let (code, log, got) = run("user", &[], &[]);
    assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
    assert!(log.contains("http.sslCAInfo,credential.helper"), "{log}");
    // user.name is git's business only: not named.
    assert!(!log.contains("user.name"), "{log}");

    // GIT_CONFIG_GLOBAL: that file instead of the user's (none here).
    let empty = tmp.path().join("empty-config");
    fs::write(&empty, "").unwrap();
    let (code, log, _) = run(
        "global",
        &[],
        &[("GIT_CONFIG_GLOBAL", empty.to_str().unwrap())],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("http.sslCAInfo"), "{log}");
    // The command line's config over the files': no helper.
    let (code, log, _) = run("no-helper", &["--git-config=credential.helper:\"\""], &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("none is configured"), "{log}");

    // A CA for this server only (its path written in another case than
    // the scheme and host: git matches those in any case), then for
    // another port only.
    for (port, code) in [(server.port, 0), (server.port + 1, 1)] {
        fs::write(
            home.join(".config/git/config"),
            format!("[http \"HTTPS://127.0.0.1:{port}/\"]\n\tsslCAInfo = ~/ca.pem\n"),
        )
        .unwrap();
        let (got, log, _) = run(&format!("scoped-{port}"), &[], &[]);
        assert_eq!(got, code, "{log}");
    }
}

/// `http.<url>.sslVerify=false` turns certificate checks off for the
/// URLs it names only, for git-sync's own requests and libgit2's alike.
#[test]
fn ssl_verify_off_for_one_url_leaves_the_others_checked() {
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "tls")], "one");
    let (_ca, cert, key) = test_certificates(tmp.path());
    let server = HttpServer::start_tls(&srv, "", Some((&cert, &key)));
    let port = server.port;
    let run = |name: &str, config: &str| {
        let args = vec![
            format!("--repo=https://127.0.0.1:{port}/site"),
            format!("--root={}", tmp.path().join(name).display()),
            format!("--git-config={config}"),
            "-v=5".into(),
        ];
        one_time(&args, &[])
    };
    let listed_v2 = |log: &str| {
        log.lines()
            .any(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2"))
    };
    for (name, url) in [
        ("server", format!("https://127.0.0.1:{port}/")),
        ("path", format!("https://127.0.0.1:{port}/site")),
    ] {
        let off = format!("\"http.{url}.sslVerify\":false");
        let (code, log) = run(name, &off);
        assert_eq!(code, 0, "{log}");
        assert_eq!(
            published(&tmp.path().join(name).join("site")).as_deref(),
            Some(h.as_str())
        );
        assert!(listed_v2(&log), "{log}");
        assert!(log.contains("not verified for this URL"), "{log}");
        // libgit2 lists and fetches (protocol version 0).
        let (code, log) = run(&format!("{name}-v0"), &format!("{off},protocol.version:0"));
        assert_eq!(code, 0, "{log}");
        assert!(!listed_v2(&log), "{log}");
    }
    for (name, other) in [
        ("other-port", format!("https://127.0.0.1:{}/", port + 1)),
        ("other-path", format!("https://127.0.0.1:{port}/elsewhere")),
    ] {
        let (code, log) = run(name, &format!("\"http.{other}.sslVerify\":false"));
        assert_eq!(code, 1, "{log}");
        assert!(log.to_lowercase().contains("certificate"), "{log}");
    }
}

/// An HTTPS server of `srv` that wants a client certificate of the test
/// CA, and what to reach it with or be refused.
struct MutualTls {
    server: HttpServer,
    /// The CA of the server's certificate and of the clients it trusts.
    ca: PathBuf,
    /// A client certificate and key it trusts.
    bot: (PathBuf, PathBuf),
    /// Another CA, and a client certificate of it, which it does not trust.
    other_ca: PathBuf,
    stranger: (PathBuf, PathBuf),
}

impl MutualTls {
    fn start(dir: &Path, srv: &Path) -> MutualTls {
        let (ca, cert, key) = test_certificates(dir);
        let bot = client_certificate(dir, "bot");
        let other = dir.join("other");
        fs::create_dir_all(&other).unwrap();
        let (other_ca, _, _) = test_certificates_of(&other, "other CA");
        let stranger = client_certificate(&other, "stranger");
        let server = HttpServer::start_tls(
            srv,
            &format!(
                "ssl_client_certificate {};\nssl_verify_client on;",
                ca.display()
            ),
            Some((&cert, &key)),
        );
        MutualTls {
            server,
            ca,
            bot,
            other_ca,
            stranger,
        }
    }
}

#[test]
fn a_server_that_asks_for_a_client_certificate_gets_the_configured_one() {
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "mtls")], "one");
    let MutualTls {
        server,
        ca,
        bot: (bot_crt, bot_key),
        stranger: (stranger_crt, stranger_key),
        ..
    } = MutualTls::start(tmp.path(), &srv);
    let url = format!("https://127.0.0.1:{}/site", server.port);
    let run = |n: &str, config: &[String], env: &[(&str, &str)]| {
        let mut args = vec![
            format!("--repo={url}"),
            format!("--root={}", tmp.path().join(n).display()),
            format!("--git-config=http.sslCAInfo:{}", ca.display()),
        ];
        args.extend(config.iter().map(|c| format!("--git-config-add={c}")));
        one_time(&args, env)
    };
    let cert_of = |crt: &std::path::Path, key: &std::path::Path| {
        vec![
            format!("http.sslCert:{}", crt.display()),
            format!("http.sslKey:{}", key.display()),
        ]
    };
    // None: refused, and the error points at http.sslCert.
    let (code, log) = run("none", &[], &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("http.sslCert"), "{log}");
    // The configured one: synced.
    let (code, log) = run("bot", &cert_of(&bot_crt, &bot_key), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&tmp.path().join("bot/site")).as_deref(),
        Some(h.as_str())
    );
    // Certificate and key in one file, http.sslKey not given (as git).
    let both = tmp.path().join("both.pem");
    let mut pem = fs::read(&bot_crt).unwrap();
    pem.extend(fs::read(&bot_key).unwrap());
    fs::write(&both, pem).unwrap();
    let (code, log) = run("both", &[format!("http.sslCert:{}", both.display())], &[]);
    assert_eq!(code, 0, "{log}");
    // git's environment variables.
    let (crt, key) = (bot_crt.display().to_string(), bot_key.display().to_string());
    let (code, log) = run("env", &[], &[("GIT_SSL_CERT", &crt), ("GIT_SSL_KEY", &key)]);
    assert_eq!(code, 0, "{log}");
    // A key of another certificate: said, before any connection.
    let (code, log) = run("mismatch", &cert_of(&bot_crt, &stranger_key), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("does not match"), "{log}");
    // A certificate the server does not trust: refused.
    let (code, log) = run("stranger", &cert_of(&stranger_crt, &stranger_key), &[]);
    assert_eq!(code, 1, "{log}");

    // Rotated in place (a renewed Secret): the next pass presents the new
    // one, without a restart.
    let (live_crt, live_key) = (tmp.path().join("live.crt"), tmp.path().join("live.key"));
    fs::copy(&stranger_crt, &live_crt).unwrap();
    fs::copy(&stranger_key, &live_key).unwrap();
    let root = tmp.path().join("rotated");
    let mut d = spawn(git_sync(&[
        &format!("--repo={url}"),
        &format!("--root={}", root.display()),
        &format!("--git-config=http.sslCAInfo:{}", ca.display()),
        &format!("--git-config-add=http.sslCert:{}", live_crt.display()),
        &format!("--git-config-add=http.sslKey:{}", live_key.display()),
        "--period=100ms",
        "--max-failures=-1",
    ]));
    d.wait_log(LONG, "a refused pass", is_failed_pass);
    for (from, to) in [(&bot_key, &live_key), (&bot_crt, &live_crt)] {
        let staged = to.with_extension("new");
        fs::copy(from, &staged).unwrap();
        fs::rename(&staged, to).unwrap();
    }
    d.wait_for(LONG, "synced with the renewed certificate", || {
        published(&root.join("site")).as_deref() == Some(h.as_str())
    });
    assert!(
        d.log().contains("the client certificate changed"),
        "{}",
        d.log()
    );
}

/// `http.<url>.sslCAInfo`, `.sslCert` and `.sslKey`: a CA and a client
/// certificate for the servers their URL matches only, over those for
/// every server, for git-sync's own requests (protocol v2) and libgit2's
/// (version 0) alike; a URL that does not match gives them nothing.
#[test]
fn a_ca_and_a_client_certificate_for_one_server_only() {
    let (tmp, srv, repo) = temp_source("site");
    let h = repo.commit(&[("f", "scoped")], "one");
    let MutualTls {
        server,
        ca,
        bot: (bot_crt, bot_key),
        other_ca,
        stranger: (stranger_crt, stranger_key),
    } = MutualTls::start(tmp.path(), &srv);
    let port = server.port;
    let scoped = |url: &str, ca: &std::path::Path, crt: &std::path::Path, key: &std::path::Path| {
        vec![
            format!("\"http.{url}.sslCAInfo\":{}", ca.display()),
            format!("\"http.{url}.sslCert\":{}", crt.display()),
            format!("\"http.{url}.sslKey\":{}", key.display()),
        ]
    };
    let run_as = |user: &str, name: &str, config: &[String]| {
        let mut args = vec![
            format!("--repo=https://{user}127.0.0.1:{port}/site"),
            format!("--root={}", tmp.path().join(name).display()),
            "-v=5".to_string(),
        ];
        args.extend(config.iter().map(|c| format!("--git-config-add={c}")));
        let (code, log) = one_time(&args, &[]);
        (code, log, published(&tmp.path().join(name).join("site")))
    };
    let run = |name: &str, config: &[String]| run_as("", name, config);
    let listed_v2 = |log: &str| {
        log.lines()
            .any(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2"))
    };
    // For this server (or its path): trusted and presented, with a CA
    // and a client certificate for every server that are not the right
    // ones (the more specific settings win).
    let mut everywhere = vec![
        format!("http.sslCAInfo:{}", other_ca.display()),
        format!("http.sslCert:{}", stranger_crt.display()),
        format!("http.sslKey:{}", stranger_key.display()),
    ];
    everywhere.extend(scoped(
        &format!("https://127.0.0.1:{port}/"),
        &other_ca,
        &stranger_crt,
        &stranger_key,
    ));
    for (name, url) in [
        ("server", format!("https://127.0.0.1:{port}")),
        ("path", format!("https://127.0.0.1:{port}/site")),
    ] {
        let mut config = everywhere.clone();
        config.extend(scoped(&url, &ca, &bot_crt, &bot_key));
        let (code, log, got) = run(name, &config);
        assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
        assert!(listed_v2(&log), "{log}");
        assert!(!log.contains("some servers only"), "{log}");
        // libgit2 lists and fetches (protocol version 0).
        config.push("protocol.version:0".into());
        let (code, log, got) = run(&format!("{name}-v0"), &config);
        assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
        assert!(!listed_v2(&log), "{log}");
    }
    // For another server, or another path: neither, so refused, by
    // either client.
    for (name, url) in [
        ("other-port", format!("https://127.0.0.1:{}/", port + 1)),
        ("other-path", format!("https://127.0.0.1:{port}/elsewhere")),
    ] {
        for v0 in [false, true] {
            let mut config = scoped(&url, &ca, &bot_crt, &bot_key);
            if v0 {
                config.push("protocol.version:0".into());
            }
            let (code, log, _) = run(&format!("{name}-{v0}"), &config);
            assert_eq!(code, 1, "{log}");
            assert!(log.to_lowercase().contains("certificate"), "{log}");
        }
    }
    // The CA alone, for this server: trusted, but no client certificate.
    let ca_only = vec![format!(
        "\"http.https://127.0.0.1:{port}/.sslCAInfo\":{}",
        ca.display()
    )];
    for v0 in [false, true] {
        let mut config = ca_only.clone();
        if v0 {
            config.push("protocol.version:0".into());
        }
        let (code, log, _) = run(&format!("ca-only-{v0}"), &config);
        assert_eq!(code, 1, "{log}");
        assert!(log.contains("http.sslCert"), "{log}");
    }
    // For the user the URL names (as git matches `http.<url>.` keys): by
    // both clients, and not for another user.
    for (user, goes) in [("bot", true), ("other", false)] {
        let url = format!("https://{user}@127.0.0.1:{port}/");
        for v0 in [false, true] {
            let mut config = scoped(&url, &ca, &bot_crt, &bot_key);
            if v0 {
                config.push("protocol.version:0".into());
            }
            let (code, log, got) = run_as("bot@", &format!("{user}-{v0}"), &config);
            if goes {
                assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
                assert_eq!(listed_v2(&log), !v0, "{log}");
            } else {
                assert_eq!(code, 1, "{log}");
            }
        }
    }
}

#[test]
fn a_rotated_ca_file_is_trusted_without_a_restart() {
    // git reads http.sslCAInfo at every fetch; a daemon holding the CA it
    // read at start refused the server once its certificate came from the
    // new CA, until restarted. The file is swapped the way the kubelet
    // updates a mounted Secret: a new file renamed over the old.
    rotate_the_ca_file(false);
    // The same with a CA for this server only (`http.<url>.sslCAInfo`);
    // the CA dropped from it is then no longer trusted.
    rotate_the_ca_file(true);
}

fn rotate_the_ca_file(for_this_server_only: bool) {
    let (tmp, srv, repo) = temp_source("site");
    let h1 = repo.commit(&[("f", "1")], "one");
    let old = tmp.path().join("old");
    let new = tmp.path().join("new");
    fs::create_dir_all(&old).unwrap();
    fs::create_dir_all(&new).unwrap();
    let (old_ca, old_cert, old_key) = test_certificates_of(&old, "old test CA");
    let (new_ca, new_cert, new_key) = test_certificates_of(&new, "new test CA");
    let ca_file = tmp.path().join("ca.pem");
    fs::copy(&old_ca, &ca_file).unwrap();
    let server = HttpServer::start_at(&srv, "", Some((&old_cert, &old_key)), None);
    let port = server.port;
    let root = tmp.path().join("root");
    let key = match for_this_server_only {
        true => format!("\"http.https://127.0.0.1:{port}/.sslCAInfo\""),
        false => "http.sslCAInfo".to_string(),
    };
    let mut d = spawn(git_sync(&[
        &format!("--repo=https://127.0.0.1:{port}/site"),
        &format!("--root={}", root.display()),
        &format!("--git-config={key}:{}", ca_file.display()),
        "--period=100ms",
        "--max-failures=-1",
        "-v=5",
    ]));
    d.wait_for(LONG, "h1 over the old CA", || {
        published(&root.join("site")).as_deref() == Some(h1.as_str())
    });
    // The server moves to a certificate of the new CA; the file follows.
    drop(server);
    let _server = HttpServer::start_at(&srv, "", Some((&new_cert, &new_key)), Some(port));
    let swap = tmp.path().join("ca.pem.new");
    fs::copy(&new_ca, &swap).unwrap();
    fs::rename(&swap, &ca_file).unwrap();
    let h2 = repo.commit(&[("f", "2")], "two");
    d.wait_for(LONG, "h2 over the new CA", || {
        published(&root.join("site")).as_deref() == Some(h2.as_str())
    });
    assert!(d.log().contains("the CA file changed"), "{}", d.log());
    // Polls go on asking for the ref only (protocol v2), on a client that
    // trusts the new CA, not left to libgit2's listing of every ref.
    let v2_since_the_change = |log: &str| {
        let after = &log[log.find("the CA file changed").unwrap_or(log.len())..];
        after
            .lines()
            .filter(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2"))
            .count()
    };
    d.wait_log(LONG, "protocol v2 polls over the new CA", |l| {
        v2_since_the_change(l) >= 3
    });
    if for_this_server_only {
        // Back to the old CA's certificate, which the file no longer holds.
        drop(_server);
        let _server = HttpServer::start_at(&srv, "", Some((&old_cert, &old_key)), Some(port));
        let h3 = repo.commit(&[("f", "3")], "three");
        d.wait_log(LONG, "a pass refused", |l| {
            let after = &l[l.find("the CA file changed").unwrap_or(l.len())..];
            after.lines().any(is_failed_pass)
        });
        assert_ne!(published(&root.join("site")), Some(h3));
    }
}

#[test]
fn askpass_url_is_queried_and_counted() {
    let f = Fixture::new("askpass-S3CRET");
    let (askpass_port, calls) = fixed_server(
        200,
        "username=bot\npassword=askpass-S3CRET\n".into(),
        |_| true,
    );
    let http_port = free_port();
    let mut p = spawn(git_sync(&[
        &format!("--repo={}", f.server.url("private")),
        &format!("--root={}", f.tmp.path().join("root").display()),
        &format!("--askpass-url=http://127.0.0.1:{askpass_port}/creds"),
        &format!("--http-bind=127.0.0.1:{http_port}"),
        "--http-metrics",
        "--period=100ms",
    ]));
    let link = f.tmp.path().join("root/private");
    let h = f.repo.head();
    p.wait_for(LONG, "sync with askpass credentials", || {
        published(&link).as_deref() == Some(&h)
    });
    p.wait_for(LONG, "a few askpass calls", || *calls.lock().unwrap() >= 2);
    let (_, body) = http_get(http_port, "/metrics");
    let metrics = String::from_utf8_lossy(&body).into_owned();
    assert!(
        !metrics.contains("git_sync_askpass_calls{status=\"success\"} 0"),
        "{metrics}"
    );
    assert_no_secret("metrics", &metrics);
    assert_no_secret("the log", &p.log());
}

#[test]
fn credential_json_applies_by_url_prefix() {
    let f = Fixture::new("cred-S3CRET");
    let cred_file = f.tmp.path().join("cred-password");
    fs::write(&cred_file, "cred-S3CRET\n").unwrap();
    let prefix = format!("http://127.0.0.1:{}/", f.server.port);
    let mut args = vec![
        format!("--repo={}", f.server.url("private")),
        format!("--root={}", f.tmp.path().join("root").display()),
        "--error-file=error.json".to_string(),
    ];
    // A credential for another host does not apply.
    args.push(
        r#"--credential={"url":"http://elsewhere/","username":"bot","password":"wrong-S3CRET"}"#
            .into(),
    );
    let (code, _) = one_time(&args, &[]);
    assert_eq!(code, 1);
    let err = fs::read_to_string(f.tmp.path().join("root/error.json")).unwrap();
    assert_no_secret("the error file", &err);
    args.push(format!(
        r#"--credential=[{{"url":"{prefix}","username":"bot","password-file":"{}"}}]"#,
        cred_file.display()
    ));
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 0, "{log}");
}

#[test]
fn submodule_on_a_private_server_uses_the_credential_for_its_url() {
    // The parent is public; its submodule lives behind basic auth elsewhere.
    let f = Fixture::new("cred-S3CRET");
    let public_server = f.public_parent_of_the_private_repo("vendor/private");
    let args = |root: &str, credential: &str| {
        vec![
            format!("--repo={}", public_server.url("site")),
            format!("--root={}", f.tmp.path().join(root).display()),
            format!(
                r#"--credential={{"url":"http://127.0.0.1:{}/","username":"bot","password":"{credential}"}}"#,
                f.server.port
            ),
        ]
    };
    let (code, log) = one_time(&args("r1", "wrong-S3CRET"), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("rejected"), "{log}");
    let (code, log) = one_time(&args("r2", "cred-S3CRET"), &[]);
    assert_eq!(code, 0, "{log}");
    let link = f.tmp.path().join("r2/site");
    assert_eq!(
        fs::read_to_string(link.join("vendor/private/f")).unwrap(),
        "1"
    );
    assert_eq!(
        fs::read_to_string(link.join("index.html")).unwrap(),
        "parent"
    );

    // A proxy set by --git-config serves the submodule's fetch too.
    let (proxy_port, carried) = forward_proxy();
    let mut through_proxy = args("r3", "cred-S3CRET");
    through_proxy.push(format!("--git-config=http.proxy:127.0.0.1:{proxy_port}"));
    let (code, log) = one_time(&through_proxy, &[]);
    assert_eq!(code, 0, "{log}");
    let private = format!("127.0.0.1:{}", f.server.port);
    assert!(
        carried.lock().unwrap().contains(&private),
        "the submodule went around the proxy: {:?}",
        carried.lock().unwrap()
    );
}

#[test]
fn the_repositorys_password_goes_to_its_own_server_only() {
    // As git's credential helpers match by host, the password given for
    // the repository is not offered to a submodule's server, nor to a
    // server a redirect leads to, even one that would take it.
    let f = Fixture::new("own-S3CRET");
    let own_server = f.public_parent_of_the_private_repo("vendor");
    let other_server = f.server.url("private");
    let password = [("GITSYNC_PASSWORD", "own-S3CRET")];
    let args = |repo: &str, root: &str| {
        vec![
            format!("--repo={repo}"),
            format!("--root={}", f.tmp.path().join(root).display()),
            "--username=bot".to_string(),
        ]
    };
    let (code, log) = one_time(&args(&own_server.url("site"), "r1"), &password);
    assert_eq!(code, 1, "{log}");
    let only = format!(
        "credentials are for http://127.0.0.1:{} only",
        own_server.port
    );
    assert!(log.contains(&only), "{log}");
    // With its own credential, the submodule's server is served.
    let mut with_credential = args(&own_server.url("site"), "r2");
    with_credential.push(format!(
        r#"--credential={{"url":"{other_server}","username":"bot","password-file":"{}"}}"#,
        f.tmp.path().join("other-password").display()
    ));
    fs::write(f.tmp.path().join("other-password"), "own-S3CRET").unwrap();
    let (code, log) = one_time(&with_credential, &password);
    assert_eq!(code, 0, "{log}");

    // A server that redirects the repository elsewhere.
    let redirect = Nginx::start(
        &format!(
            "location / {{ return 302 http://127.0.0.1:{}$request_uri; }}",
            f.server.port
        ),
        "www-data www-data",
    );
    let moved = format!("http://127.0.0.1:{}/private", redirect.port);
    let (code, log) = one_time(&args(&moved, "r3"), &password);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("credentials are for"), "{log}");
    // Where it is the same server, the password goes.
    let (code, log) = one_time(&args(&f.server.url("private"), "r4"), &password);
    assert_eq!(code, 0, "{log}");
}

#[test]
fn github_app_token_is_exchanged_with_a_signed_jwt() {
    let f = Fixture::new("ghs_T0KEN-S3CRET");
    fs::write(&f.htpasswd, "x-access-token:{PLAIN}ghs_T0KEN-S3CRET\n").unwrap();
    let key = f.tmp.path().join("app.pem");
    run_ok(
        std::process::Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048"),
    );
    let public_pem = run_ok(
        std::process::Command::new("openssl")
            .args(["rsa", "-pubout", "-in"])
            .arg(&key),
    );
    // The token endpoint checks the JWT's signature with the public key.
    let check = move |head: &str| -> bool {
        let Some(jwt) = head.lines().find_map(|l| {
            l.strip_prefix("Authorization: Bearer ")
                .or_else(|| l.strip_prefix("authorization: Bearer "))
        }) else {
            return false;
        };
        if !head.starts_with("POST /app/installations/42/access_tokens ") {
            return false;
        }
        let parts: Vec<&str> = jwt.trim().split('.').collect();
        let decode = |s: &str| {
            let mut b = s.replace('-', "+").replace('_', "/");
            while b.len() % 4 != 0 {
                b.push('=');
            }
            openssl::base64::decode_block(&b).unwrap_or_default()
        };
        let public = openssl::pkey::PKey::public_key_from_pem(public_pem.as_bytes()).unwrap();
        let mut v =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
        v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&decode(parts[1])).unwrap_or_default();
        parts.len() == 3 && v.verify(&decode(parts[2])).unwrap_or(false) && claims["iss"] == "12345"
    };
    let (api_port, calls) = fixed_server(
        201,
        r#"{"token":"ghs_T0KEN-S3CRET","expires_at":"2099-01-01T00:00:00Z"}"#.into(),
        check,
    );
    let mut args = vec![
        format!("--repo={}", f.server.url("private")),
        format!("--root={}", f.tmp.path().join("root").display()),
        format!("--github-app-private-key-file={}", key.display()),
        "--github-app-application-id=12345".into(),
        "--github-app-installation-id=42".into(),
        format!("--github-base-url=http://127.0.0.1:{api_port}"),
    ];
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(*calls.lock().unwrap(), 1);
    // A JWT signed with another key is refused by the API.
    let other = f.tmp.path().join("other.pem");
    run_ok(
        std::process::Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&other)
            .arg("2048"),
    );
    args[2] = format!("--github-app-private-key-file={}", other.display());
    args[1] = format!("--root={}", f.tmp.path().join("root2").display());
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 1);
    assert!(log.contains("401"), "{log}");
}

#[test]
fn azure_workload_identity_exchanges_the_federated_token() {
    // As the azure-workload-identity webhook sets up a Pod: AZURE_* env
    // vars and a projected token file that kubelet rotates.
    let f = Fixture::new("entra-T0KEN-S3CRET");
    fs::write(&f.htpasswd, "git-sync:{PLAIN}entra-T0KEN-S3CRET\n").unwrap();
    let token_file = f.tmp.path().join("azure-identity-token");
    fs::write(&token_file, "fed.assertion-1\n").unwrap();
    // The token endpoint wants the client-credentials grant with the file's
    // current content as the client assertion.
    let file = token_file.clone();
    let check = move |request: &str| -> bool {
        let assertion = fs::read_to_string(&file).unwrap_or_default();
        let body = request.split("\r\n\r\n").nth(1).unwrap_or("");
        let fields: Vec<&str> = body.split('&').collect();
        request.starts_with("POST /tenant-1/oauth2/v2.0/token ")
            && fields.contains(&"grant_type=client_credentials")
            && fields.contains(&"client_id=client-1")
            && fields.contains(&"scope=499b84ac-1321-427f-aa17-267ca6975798%2F.default")
            && fields.contains(
                &"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
            )
            && fields.contains(&format!("client_assertion={}", assertion.trim()).as_str())
    };
    let (port, calls) = fixed_server(
        200,
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"entra-T0KEN-S3CRET"}"#.into(),
        check,
    );
    let authority = format!("http://127.0.0.1:{port}/");
    let webhook_env = [
        ("AZURE_CLIENT_ID", "client-1"),
        ("AZURE_TENANT_ID", "tenant-1"),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
    ];
    let root = |name: &str| format!("--root={}", f.tmp.path().join(name).display());
    let args = |name: &str| {
        vec![
            format!("--repo={}", f.server.url("private")),
            root(name),
            "--azure-workload-identity".to_string(),
            "--error-file=error.json".to_string(),
        ]
    };
    let (code, log) = one_time(&args("r1"), &webhook_env);
    assert_eq!(code, 0, "{log}");
    assert_eq!(*calls.lock().unwrap(), 1);
    // The token file rotated: its new content is what is sent.
    fs::write(&token_file, "fed.assertion-2\n").unwrap();
    let (code, log) = one_time(&args("r2"), &webhook_env);
    assert_eq!(code, 0, "{log}");
    // An assertion Entra refuses: the sync fails and says where.
    let (code, log) = one_time(
        &args("r3"),
        &[
            ("AZURE_CLIENT_ID", "someone-else"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AZURE_AUTHORITY_HOST", authority.as_str()),
        ],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("Entra token request"), "{log}");
    let err = fs::read_to_string(f.tmp.path().join("r3/error.json")).unwrap();
    assert_no_secret("the error file", &err);
    // Without the webhook's variables: a config error naming what is missing.
    let (code, log) = one_time(&args("r4"), &[]);
    assert_eq!(code, 1);
    assert!(log.contains("--azure-client-id"), "{log}");
    // Not together with a password.
    let mut with_password = args("r5");
    with_password.push("--username=bot".into());
    with_password.push("--password-file=/dev/null".into());
    let (code, log) = one_time(&with_password, &webhook_env);
    assert_eq!(code, 1);
    assert!(
        log.contains("cannot be combined with --azure-workload-identity"),
        "{log}"
    );
}

#[test]
fn ssh_with_known_hosts_match_mismatch_and_absent() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    let h = repo.commit(&[("f", "over ssh")], "one");
    let sshd = Sshd::start();
    let known = tmp.path().join("known_hosts");
    let run = |known_hosts: &str, extra: &[&str], root: &str| {
        fs::write(&known, known_hosts).unwrap();
        let mut args = vec![
            format!("--repo={}", sshd.url(&repo.dir)),
            format!("--root={}", tmp.path().join(root).display()),
            format!("--ssh-key-file={}", sshd.client_key.display()),
            format!("--ssh-known-hosts-file={}", known.display()),
            "--link=site".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        one_time(&args, &[])
    };
    let (code, log) = run(&format!("{}\n", sshd.known_hosts_line), &[], "r1");
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&tmp.path().join("r1/site")).as_deref(),
        Some(h.as_str())
    );

    // A wildcard entry, as OpenSSH reads one.
    let wildcard = sshd.known_hosts_line.replace("[127.0.0.1]", "[127.0.0.*]");
    assert_ne!(wildcard, sshd.known_hosts_line);
    let (code, log) = run(&format!("{wildcard}\n"), &[], "wildcard");
    assert_eq!(code, 0, "{log}");

    // A file that lists only one of the server's keys, whichever type:
    // the server is asked for that one, as OpenSSH asks.
    for (i, line) in sshd.known_hosts_by_type.iter().enumerate() {
        let (code, log) = run(&format!("{line}\n"), &[], &format!("one-type-{i}"));
        assert_eq!(code, 0, "{line}: {log}");
    }

    let other_key = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let (code, log) = run(
        &format!("[127.0.0.1]:{} ssh-ed25519 {other_key}\n", sshd.port),
        &[],
        "r2",
    );
    assert_eq!(code, 1);
    assert!(log.contains("does not match"), "{log}");

    let (code, log) = run("", &[], "r3");
    assert_eq!(code, 1);
    assert!(log.contains("not in the known_hosts"), "{log}");
    assert!(
        log.contains(&format!("ssh-keyscan -p {} 127.0.0.1", sshd.port)),
        "{log}"
    );

    // No file at all (the default path, with no Secret mounted there).
    let (code, log) = one_time(
        &[
            format!("--repo={}", sshd.url(&repo.dir)),
            format!("--root={}", tmp.path().join("r5").display()),
            format!("--ssh-key-file={}", sshd.client_key.display()),
            format!(
                "--ssh-known-hosts-file={}",
                tmp.path().join("absent").display()
            ),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(log.contains("--ssh-known-hosts=false"), "{log}");

    // Verification off: the empty file does not matter.
    let (code, log) = run("", &["--ssh-known-hosts=false"], "r4");
    assert_eq!(code, 0, "{log}");

    // Lines OpenSSH passes over (libssh2, which libgit2 has read the file
    // for the key type to ask, refused the whole file for one of them),
    // in the given file or in the user's own ~/.ssh/known_hosts, which is
    // not read at all.
    let garbled = format!(
        "not a known_hosts line\nbroken.example ssh-ed25519 AAAA\n{}\n",
        sshd.known_hosts_line
    );
    let (code, log) = run(&garbled, &[], "garbled");
    assert_eq!(code, 0, "{log}");
    let home = tmp.path().join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    fs::write(home.join(".ssh/known_hosts"), "not a known_hosts line\n").unwrap();
    let with_home = |root: &str| {
        one_time(
            &[
                format!("--repo={}", sshd.url(&repo.dir)),
                format!("--root={}", tmp.path().join(root).display()),
                format!("--ssh-key-file={}", sshd.client_key.display()),
                "--ssh-known-hosts=false".into(),
            ],
            &[("HOME", home.to_str().unwrap())],
        )
    };
    let (code, log) = with_home("r6");
    assert_eq!(code, 0, "{log}");
    // ~/.ssh/config is read as OpenSSH reads it: the port and user the
    // URL names win over its Port and User, as git's `-p` and `user@` do.
    fs::write(
        home.join(".ssh/config"),
        "Host *\n  ServerAliveInterval 5\nHost other.example\n  Port 1\n",
    )
    .unwrap();
    let (code, log) = with_home("r7");
    assert_eq!(code, 0, "{log}");
    fs::write(
        home.join(".ssh/config"),
        "Host 127.0.0.*\n  Port 1\n  User nobody\n",
    )
    .unwrap();
    let (code, log) = with_home("r8");
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("SSH destination from"), "{log}");
}

/// A hook's git reaches the SSH server with git-sync's key and host
/// checks, as upstream's hooks do (they inherit its `GIT_SSH_COMMAND`).
#[test]
fn a_hooks_git_uses_the_ssh_key_and_known_hosts_of_git_sync() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    let h = repo.commit(&[("f", "over ssh")], "one");
    let sshd = Sshd::start();
    let known = tmp.path().join("known hosts");
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let listed = tmp.path().join("listed");
    let hook = tmp.path().join("hook");
    script(
        &hook,
        &format!(
            "git ls-remote '{}' HEAD > '{}' 2>&1",
            sshd.url(&repo.dir),
            listed.display()
        ),
    );
    let (code, log) = one_time(
        &[
            format!("--repo={}", sshd.url(&repo.dir)),
            format!("--root={}", tmp.path().join("root").display()),
            format!("--ssh-key-file={}", sshd.client_key.display()),
            format!("--ssh-known-hosts-file={}", known.display()),
            format!("--exechook-command={}", hook.display()),
        ],
        &[],
    );
    let said = fs::read_to_string(&listed).unwrap_or_default();
    assert_eq!(code, 0, "{said}\n{log}");
    assert!(said.starts_with(&format!("{h}\tHEAD")), "{said}");
}

/// After the key files, the keys of the ssh-agent at `SSH_AUTH_SOCK`
/// are offered, each in turn, as OpenSSH offers them to upstream's git:
/// a daemon on a laptop needs no copy of the developer's key. Both ways
/// of connecting are used: libgit2's first listing, and the session of
/// our own for a repository with many refs.
#[test]
fn the_keys_of_an_ssh_agent_are_offered_after_the_key_files() {
    use std::process::{Command, Stdio};
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    let first = repo.commit(&[("f", "1")], "one");
    repo.add_pull_refs(1_000);
    let sshd = Sshd::start();
    let known = tmp.path().join("known_hosts");
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let socket = tmp.path().join("agent.sock");
    let _agent = spawn({
        let mut c = Command::new("ssh-agent");
        c.arg("-D").arg("-a").arg(&socket);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    });
    wait_until(LONG, "the agent's socket", || socket.exists());
    let add = |key: &Path| {
        run_ok(
            Command::new("ssh-add")
                .arg("-q")
                .arg(key)
                .env("SSH_AUTH_SOCK", &socket),
        )
    };
    // A key the server does not know comes first.
    let other = tmp.path().join("other_key");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other),
    );
    add(&other);
    let args = |root: &str| {
        vec![
            format!("--repo={}", sshd.url(&repo.dir)),
            format!("--root={}", tmp.path().join(root).display()),
            format!("--ssh-key-file={}", tmp.path().join("absent").display()),
            format!("--ssh-known-hosts-file={}", known.display()),
            "--link=site".into(),
        ]
    };
    let agent_env = [("SSH_AUTH_SOCK", socket.to_str().unwrap())];
    let (code, log) = one_time(&args("no-agent"), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("no SSH key file found"), "{log}");
    assert!(!log.contains("ssh-agent"), "{log}");
    let (code, log) = one_time(&args("unknown-key"), &agent_env);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("the ssh-agent at SSH_AUTH_SOCK had no key the server accepted"),
        "{log}"
    );

    add(&sshd.client_key);
    let root = tmp.path().join("root");
    let mut p = spawn({
        let argv = args("root");
        let mut c = git_sync(&argv.iter().map(String::as_str).collect::<Vec<_>>());
        c.args(["--period=100ms", "-v=5"]).envs(agent_env);
        c
    });
    p.wait_for(LONG, "the first commit published", || {
        published(&root.join("site")).as_deref() == Some(first.as_str())
    });
    // Polls on a session of our own, which the agent's key opened too.
    p.wait_log(LONG, "a listing of our own", |l| {
        l.lines()
            .any(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2"))
    });
    let second = repo.commit(&[("f", "2")], "two");
    p.wait_for(LONG, "the second commit published", || {
        published(&root.join("site")).as_deref() == Some(second.as_str())
    });
}

/// A `GIT_SSH_COMMAND` (or `core.sshCommand`) written for upstream, whose
/// git runs it: its keys and host key options are used (they win over
/// the flags, as OpenSSH keeps an option's first value), and what is not
/// honoured is named in a warning.
#[test]
fn the_keys_and_host_checks_of_git_ssh_command_are_used() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    let h = repo.commit(&[("f", "over ssh")], "one");
    let sshd = Sshd::start();
    let key = sshd.client_key.display().to_string();
    let listed = tmp.path().join("known-listed");
    fs::write(&listed, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let other_key = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let wrong = tmp.path().join("known-wrong");
    fs::write(
        &wrong,
        format!("[127.0.0.1]:{} ssh-ed25519 {other_key}\n", sshd.port),
    )
    .unwrap();
    let unlisted = tmp.path().join("known-unlisted");
    fs::write(&unlisted, "[other.example]:22 ssh-ed25519 AAAA\n").unwrap();
    // The flags' defaults name files that are not there: only the
    // command's keys and known_hosts can be what works.
    let run = |root: &str, extra: &[String], env: &[(&str, &str)]| {
        let mut args = vec![
            format!("--repo={}", sshd.url(&repo.dir)),
            format!("--root={}", tmp.path().join(root).display()),
            format!("--ssh-key-file={}", tmp.path().join("absent-key").display()),
            format!(
                "--ssh-known-hosts-file={}",
                tmp.path().join("absent").display()
            ),
            "--link=site".into(),
        ];
        args.extend(extra.iter().cloned());
        one_time(&args, env)
    };
    let with_command = |root: &str, options: &str| {
        let command = format!("ssh -i {key} {options}");
        run(root, &[], &[("GIT_SSH_COMMAND", &command)])
    };
    let (code, log) = with_command("off", "-o StrictHostKeyChecking=no -o BatchMode=yes");
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&tmp.path().join("off/site")).as_deref(),
        Some(h.as_str())
    );
    assert!(!log.contains("not supported here"), "{log}");

    let file_option = |file: &Path, checking: &str| {
        format!(
            "-o UserKnownHostsFile={} -o StrictHostKeyChecking={checking}",
            file.display()
        )
    };
    let (code, log) = with_command("listed", &file_option(&listed, "yes"));
    assert_eq!(code, 0, "{log}");
    let (code, log) = with_command("wrong", &file_option(&wrong, "yes"));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("does not match"), "{log}");
    // accept-new: a host not listed is accepted, a listed one must match.
    let (code, log) = with_command("unlisted", &file_option(&unlisted, "accept-new"));
    assert_eq!(code, 0, "{log}");
    let (code, log) = with_command("wrong-new", &file_option(&wrong, "accept-new"));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("does not match"), "{log}");
    let (code, log) = with_command("strict", &file_option(&unlisted, "yes"));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("not in the known_hosts"), "{log}");
    // The system's files (here named by GlobalKnownHostsFile, by default
    // /etc/ssh/ssh_known_hosts) list the host: accepted, as by OpenSSH.
    let global = format!("-o GlobalKnownHostsFile={}", listed.display());
    let (code, log) = with_command(
        "global",
        &format!("{} {global}", file_option(&unlisted, "yes")),
    );
    assert_eq!(code, 0, "{log}");

    // -p and -l: the port and user of an scp-like URL, which cannot name
    // a port; they win over the URL's, as ssh keeps the first value.
    let scp = format!("nobody@127.0.0.1:{}", repo.dir.display());
    let command = format!(
        "ssh -p {} -l {} -i {key} -o StrictHostKeyChecking=no",
        sshd.port, sshd.user
    );
    let args = [
        format!("--repo={scp}"),
        format!("--root={}", tmp.path().join("port").display()),
        "--link=site".into(),
    ];
    let (code, log) = one_time(&args, &[("GIT_SSH_COMMAND", &command)]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("the ssh command line"), "{log}");
    assert!(!log.contains("not supported here"), "{log}");

    // core.sshCommand from the git config, an option not honoured named.
    let config = format!(
        "--git-config=core.sshCommand:ssh -i {key} -o StrictHostKeyChecking=no -o CertificateFile=/keys/cert"
    );
    let (code, log) = run("config", &[config], &[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("not -o CertificateFile=/keys/cert"), "{log}");
    // A wrapper script is not run: a warning says nothing of it is used.
    let (code, log) = run(
        "wrapper",
        &[],
        &[("GIT_SSH_COMMAND", "/usr/local/bin/my-ssh")],
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("no plain ssh command line"), "{log}");
}

/// OpenSSH's configuration, which upstream's `ssh` reads: a host alias
/// of `~/.ssh/config` (from an `Include`d file) leads to its `HostName`,
/// `Port` and `User` with its `IdentityFile`, on libgit2's connection and
/// on a session of ours (a filtered sync); `-F` in `GIT_SSH_COMMAND`
/// names another file (`none`: none), and what is not done here is named.
#[test]
fn the_openssh_configuration_of_the_repositorys_host_is_applied() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let h = repo.commit(&[("docs/a.md", "via the alias"), ("b", "b")], "one");
    let sshd = Sshd::start();
    let home = tmp.path().join("home");
    fs::create_dir_all(home.join(".ssh/config.d")).unwrap();
    let key = home.join(".ssh/deploy");
    fs::copy(&sshd.client_key, &key).unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fs::write(
        home.join(".ssh/config"),
        "Include config.d/*\nHost *\n  IdentityFile ~/.ssh/absent\n",
    )
    .unwrap();
    let destination = format!(
        "  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile ~/.ssh/deploy\n",
        sshd.port, sshd.user
    );
    fs::write(
        home.join(".ssh/config.d/hosts"),
        format!(
            "Host mirror\n{destination}Host 127.0.0.1\n  Port {}\n  IdentityFile %d/.ssh/deploy\n",
            sshd.port
        ),
    )
    .unwrap();
    let known = tmp.path().join("known_hosts");
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let path = repo.dir.display().to_string();
    let home_env = home.display().to_string();
    let run = |name: &str, repo_url: &str, extra: &[String], command: Option<&str>| {
        let mut args = vec![
            format!("--repo={repo_url}"),
            format!("--root={}", tmp.path().join(name).display()),
            "--link=site".into(),
            format!("--ssh-key-file={}", tmp.path().join("absent-key").display()),
            "-v=5".into(),
        ];
        if !extra
            .iter()
            .any(|a| a.starts_with("--ssh-known-hosts-file="))
        {
            args.push(format!("--ssh-known-hosts-file={}", known.display()));
        }
        args.extend(extra.iter().cloned());
        let mut env = vec![("HOME", home_env.as_str())];
        env.extend(command.map(|c| ("GIT_SSH_COMMAND", c)));
        let (code, log) = one_time(&args, &env);
        let published = published(&tmp.path().join(name).join("site"));
        (code, log, published)
    };
    let alias = format!("mirror:{path}");
    let (code, log, got) = run("alias", &alias, &[], None);
    assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
    assert!(
        log.contains("SSH destination from the OpenSSH configuration"),
        "{log}"
    );
    assert!(!log.contains("not supported here"), "{log}");

    // HostKeyAlias: the host key is looked up under that name alone, on
    // libgit2's connection and on ours.
    let key_part = sshd.known_hosts_line.split_once(' ').unwrap().1;
    let by_alias = tmp.path().join("known-by-alias");
    fs::write(&by_alias, format!("mirror-key {key_part}\n")).unwrap();
    fs::write(
        home.join(".ssh/config.d/aliased"),
        format!("Host aliased\n  HostKeyAlias mirror-key\n{destination}"),
    )
    .unwrap();
    let aliased = format!("aliased:{path}");
    let known_arg = format!("--ssh-known-hosts-file={}", by_alias.display());
    for (name, filtered) in [("key-alias", false), ("key-alias-filtered", true)] {
        let mut extra = vec![known_arg.clone()];
        if filtered {
            extra.push(format!(
                "--sparse-checkout-file={}",
                tmp.path().join("sparse").display()
            ));
            extra.push("--filter=blob:none".into());
            fs::write(tmp.path().join("sparse"), "/docs/\n").unwrap();
        }
        let (code, log, got) = run(name, &aliased, &extra, None);
        assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
        assert_eq!(log.contains("\"refs listed\""), filtered, "{log}");
    }
    // The alias's RSA key only: libgit2 is made to ask the server for
    // that type, not its preferred one.
    let rsa = sshd
        .known_hosts_by_type
        .iter()
        .find(|l| l.contains(" ssh-rsa "))
        .unwrap();
    let by_alias_rsa = tmp.path().join("known-rsa-by-alias");
    fs::write(
        &by_alias_rsa,
        format!("mirror-key {}\n", rsa.split_once(' ').unwrap().1),
    )
    .unwrap();
    let rsa_arg = format!("--ssh-known-hosts-file={}", by_alias_rsa.display());
    let (code, log, got) = run("key-alias-rsa", &aliased, &[rsa_arg], None);
    assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
    // Without it, that file lists no key for 127.0.0.1.
    let (code, log, _) = run("no-key-alias", &alias, &[known_arg], None);
    assert_eq!(code, 1, "{log}");

    // A filtered sync lists and fetches on a session of ours.
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let filtered = [
        format!("--sparse-checkout-file={}", patterns.display()),
        "--filter=blob:none".into(),
    ];
    let (code, log, got) = run("filtered", &alias, &filtered, None);
    assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
    assert!(log.contains("\"refs listed\""), "{log}");

    // The repository's own host has a block too: its Port applies, unless
    // `-F none` says no file is read.
    let direct = format!("{}@127.0.0.1:{path}", sshd.user);
    let (code, log, _) = run("direct", &direct, &[], None);
    assert_eq!(code, 0, "{log}");
    let (code, log, _) = run("no-file", &direct, &[], Some("ssh -F none"));
    assert_eq!(code, 1, "{log}");

    // -F names the only file read; what is not done there is named.
    let other = tmp.path().join("other-config");
    fs::write(
        &other,
        format!("Host mirror\n  CertificateFile ~/.ssh/cert\n{destination}"),
    )
    .unwrap();
    let command = format!("ssh -F {}", other.display());
    let (code, log, got) = run("other", &alias, &[], Some(&command));
    assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
    assert!(log.contains("CertificateFile ~/.ssh/cert"), "{log}");
}

/// OpenSSH's `ProxyCommand` and `ProxyJump`, which upstream's `ssh` runs:
/// the server is reached over the command's input and output, on
/// libgit2's connection and on a session of ours (a filtered sync); a
/// `ProxyJump` runs `ssh -W` through the jump host, the `-F` file of the
/// ssh command passed on to it.
#[test]
fn the_server_is_reached_through_a_proxy_command_or_a_jump_host() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let h = repo.commit(&[("docs/a.md", "a"), ("b", "b")], "one");
    let sshd = Sshd::start();
    let bridge = write_bridge(tmp.path());
    let asked = tmp.path().join("asked");
    // The host names the server by a name that resolves nowhere: only the
    // command reaches it. Its key is known under that name.
    let key_part = sshd.known_hosts_line.split_once(' ').unwrap().1;
    let known = tmp.path().join("known_hosts");
    fs::write(
        &known,
        format!(
            "[git.invalid]:{port} {key_part}\n{}\n",
            sshd.known_hosts_line,
            port = sshd.port
        ),
    )
    .unwrap();
    let config = tmp.path().join("ssh_config");
    let destination = format!(
        "  Port {}\n  User {}\n  IdentityFile {}\n",
        sshd.port,
        sshd.user,
        sshd.client_key.display()
    );
    fs::write(
        &config,
        format!(
            "Host hidden\n  HostName git.invalid\n{destination}  ProxyCommand python3 {} %h %p {}\n\
             Host jumped\n  HostName 127.0.0.1\n{destination}  ProxyJump bastion\n\
             Host bastion\n  HostName 127.0.0.1\n{destination}  UserKnownHostsFile {}\n  BatchMode yes\n",
            bridge.display(),
            asked.display(),
            known.display(),
        ),
    )
    .unwrap();
    // The `ssh` a ProxyJump runs, which says how it was run.
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let ssh = bin.join("ssh");
    fs::write(
        &ssh,
        format!(
            "#!/bin/sh\necho \"ssh $*\" >> {}\nexec /usr/bin/ssh \"$@\"\n",
            asked.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path_env = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let command = format!("ssh -F {}", config.display());
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let run = |name: &str, alias: &str, filtered: bool| {
        let _ = fs::remove_file(&asked);
        let mut args = vec![
            format!("--repo={alias}:{}", repo.dir.display()),
            format!("--root={}", tmp.path().join(name).display()),
            "--link=site".into(),
            format!("--ssh-known-hosts-file={}", known.display()),
            "-v=5".into(),
        ];
        if filtered {
            args.push(format!("--sparse-checkout-file={}", patterns.display()));
            args.push("--filter=blob:none".into());
        }
        let env = [
            ("GIT_SSH_COMMAND", command.as_str()),
            ("PATH", path_env.as_str()),
        ];
        let (code, log) = one_time(&args, &env);
        let got = published(&tmp.path().join(name).join("site"));
        assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
        assert_eq!(log.contains("\"refs listed\""), filtered, "{log}");
        assert!(!log.contains("not supported here"), "{log}");
        assert!(
            log.contains("SSH connections through a proxy command"),
            "{log}"
        );
        fs::read_to_string(&asked).unwrap_or_default()
    };
    for (name, filtered) in [("command", false), ("command-filtered", true)] {
        let asked = run(name, "hidden", filtered);
        assert!(
            asked.lines().count() >= 1
                && asked
                    .lines()
                    .all(|l| l == format!("git.invalid {}", sshd.port)),
            "{asked}"
        );
    }
    for (name, filtered) in [("jump", false), ("jump-filtered", true)] {
        let asked = run(name, "jumped", filtered);
        let jump = format!(
            "ssh -F {} -W [127.0.0.1]:{} bastion",
            config.display(),
            sshd.port
        );
        assert!(
            asked.lines().count() >= 1 && asked.lines().all(|l| l == jump),
            "{asked}"
        );
    }
    // No ssh program to run the ProxyJump (as in the default image): a
    // channel from the jump host, opened in process, logged in to as the
    // file says of it; with the jump host down, nothing goes around it.
    let no_ssh = tmp.path().join("no-ssh");
    fs::create_dir(&no_ssh).unwrap();
    let down = tmp.path().join("ssh_config_down");
    fs::write(
        &down,
        fs::read_to_string(&config).unwrap().replace(
            "Host bastion\n  HostName 127.0.0.1\n  Port",
            "Host bastion\n  HostName 127.0.0.1\n  Port 1\n  Port",
        ),
    )
    .unwrap();
    for (name, file, filtered) in [
        ("in-process", &config, false),
        ("in-process-filtered", &config, true),
        ("in-process-down", &down, false),
    ] {
        let _ = fs::remove_file(&asked);
        let root = tmp.path().join(name);
        let sparse = filtered.then_some(patterns.as_path());
        let repo = format!("jumped:{}", repo.dir.display());
        let (code, log) = sync_without_ssh(&repo, &root, &known, file, &no_ssh, sparse);
        assert!(log.contains("through the jump host, in process"), "{log}");
        assert!(!asked.exists(), "{log}");
        if name.ends_with("down") {
            assert_eq!(code, 1, "{log}");
            assert!(log.contains("jump host"), "{log}");
            assert!(published(&root.join("site")).is_none(), "{log}");
        } else {
            let got = published(&root.join("site"));
            assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
        }
    }
    let args = [
        format!("--repo=hidden:{}", repo.dir.display()),
        format!("--root={}", tmp.path().join("direct").display()),
        format!("--ssh-known-hosts-file={}", known.display()),
    ];
    // A command that fails: what it said is logged, and the error points
    // there.
    fs::write(
        &config,
        format!(
            "Host hidden\n  HostName git.invalid\n{destination}  \
             ProxyCommand echo no route to %h >&2; exit 1\n"
        ),
    )
    .unwrap();
    let (code, log) = one_time(&args, &[("GIT_SSH_COMMAND", command.as_str())]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("no route to git.invalid"), "{log}");
    assert!(
        log.contains("through the proxy command echo no route to git.invalid"),
        "{log}"
    );
    // Without the command, the name leads nowhere.
    fs::write(
        &config,
        format!("Host hidden\n  HostName git.invalid\n{destination}"),
    )
    .unwrap();
    let (code, log) = one_time(&args, &[("GIT_SSH_COMMAND", command.as_str())]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("git.invalid"), "{log}");
    assert!(!log.contains("proxy command"), "{log}");
}

/// Without an `ssh` program, a `ProxyJump` of several hops is made in
/// process too, as OpenSSH makes it: the hops in the order listed, or the
/// first hop's own `ProxyJump` first; each jump host logged in to as the
/// file says of it (as the local user when it names none). Each jump
/// host's sshd may only open a channel to the next one, so the connection
/// passes them all; with the first down, the pass fails naming it.
#[test]
fn a_proxy_jump_of_several_hops_is_made_in_process() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let h = repo.commit(&[("docs/a.md", "a"), ("b", "b")], "one");
    let server = Sshd::start();
    let second = Sshd::start_with(&format!("PermitOpen 127.0.0.1:{}\n", server.port));
    let first = Sshd::start_with(&format!("PermitOpen 127.0.0.1:{}\n", second.port));
    let known = tmp.path().join("known_hosts");
    let mut lines: Vec<String> = [&server, &second, &first]
        .iter()
        .map(|d| d.known_hosts_line.clone())
        .collect();
    // The first jump host under a name only its proxy command reaches.
    let key_part = first.known_hosts_line.split_once(' ').unwrap().1;
    lines.push(format!("[first.invalid]:{} {key_part}", first.port));
    fs::write(&known, lines.join("\n") + "\n").unwrap();
    let bridge = write_bridge(tmp.path());
    let asked = tmp.path().join("asked");
    let at = |d: &Sshd| {
        format!(
            "  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n",
            d.port,
            d.client_key.display()
        )
    };
    let user = format!("  User {}\n", server.user);
    let config = |first_port: u16| {
        format!(
            "Host listed\n{server}{user}  ProxyJump hop-a,hop-b\n\
             Host chained\n{server}{user}  ProxyJump hop-b\n\
             Host bridged\n{server}{user}  ProxyJump hop-c,hop-b\n\
             Host broken\n{server}{user}  ProxyJump hop-a,,hop-b\n\
             Host hop-b\n{second}{user}  ProxyJump hop-a\n\
             Host hop-a\n{first}\
             Host hop-c\n{bridged}  ProxyCommand /usr/bin/python3 {} %h %p {}\n",
            bridge.display(),
            asked.display(),
            server = at(&server),
            second = at(&second),
            first = at(&first).replace(
                &format!("Port {}", first.port),
                &format!("Port {first_port}")
            ),
            bridged = at(&first).replace("127.0.0.1", "first.invalid"),
        )
    };
    let (up, down) = (
        tmp.path().join("ssh_config"),
        tmp.path().join("ssh_config_down"),
    );
    fs::write(&up, config(first.port)).unwrap();
    fs::write(&down, config(1)).unwrap();
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let no_ssh = tmp.path().join("no-ssh");
    fs::create_dir(&no_ssh).unwrap();
    let (a, c) = (
        format!("127.0.0.1:{}", first.port),
        format!("first.invalid:{}", first.port),
    );
    for (name, alias, file, filtered, first_hop) in [
        ("listed", "listed", &up, false, a.as_str()),
        ("chained", "chained", &up, true, &a),
        ("bridged", "bridged", &up, false, &c),
        ("listed-down", "listed", &down, false, "127.0.0.1:1"),
        ("chained-down", "chained", &down, false, "127.0.0.1:1"),
        ("broken", "broken", &up, false, ""),
    ] {
        let _ = fs::remove_file(&asked);
        let root = tmp.path().join(name);
        let sparse = filtered.then_some(patterns.as_path());
        let repo = format!("{alias}:{}", repo.dir.display());
        let (code, log) = sync_without_ssh(&repo, &root, &known, file, &no_ssh, sparse);
        if name == "broken" {
            // Not made, and nothing goes around it.
            assert_eq!((code, published(&root.join("site"))), (1, None), "{log}");
            assert!(
                log.contains("ProxyJump: \\\"\\\" is not a jump host"),
                "{log}"
            );
            continue;
        }
        assert!(log.contains("through the jump host, in process"), "{log}");
        let hops = format!(
            "\"jump_host\":\"{u}@{first_hop},{u}@127.0.0.1:{}\"",
            second.port,
            u = server.user
        );
        assert!(log.contains(&hops), "{hops} in {log}");
        let bridged = fs::read_to_string(&asked).unwrap_or_default();
        assert_eq!(
            bridged.contains(&c.replace(':', " ")),
            name == "bridged",
            "{log}"
        );
        let got = published(&root.join("site"));
        if name.ends_with("down") {
            assert_eq!((code, got), (1, None), "{log}");
            assert!(log.contains("jump host"), "{log}");
            assert!(log.contains(":1:"), "{log}");
        } else {
            assert_eq!((code, got.as_deref()), (0, Some(h.as_str())), "{log}");
            assert_eq!(log.contains("\"refs listed\""), filtered, "{log}");
        }
    }
}

/// One sync (`-v=5`) of `--repo=<repo>` into `root` (link `site`) with
/// the OpenSSH configuration `config` (`ssh -F`) and known hosts `known`,
/// no `ssh` program on `PATH` (only `no_ssh`); a sparse checkout of the
/// `sparse` patterns without blobs when given. Its exit code and log.
fn sync_without_ssh(
    repo: &str,
    root: &Path,
    known: &Path,
    config: &Path,
    no_ssh: &Path,
    sparse: Option<&Path>,
) -> (i32, String) {
    let mut args = vec![
        format!("--repo={repo}"),
        format!("--root={}", root.display()),
        "--link=site".into(),
        format!("--ssh-known-hosts-file={}", known.display()),
        "-v=5".into(),
    ];
    if let Some(patterns) = sparse {
        args.push(format!("--sparse-checkout-file={}", patterns.display()));
        args.push("--filter=blob:none".into());
    }
    let command = format!("ssh -F {}", config.display());
    let env = [
        ("GIT_SSH_COMMAND", command.as_str()),
        ("PATH", no_ssh.to_str().unwrap()),
    ];
    one_time(&args, &env)
}

/// A daemon that polls through a `ProxyCommand` holds steady: each poll's
/// command is ended and reaped, its connection and its standard error
/// closed, its threads gone; so does one through a `ProxyJump` of two
/// hops made in process.
#[test]
fn a_daemon_polling_through_a_proxy_command_holds_steady() {
    let tmp = TempDir::new().unwrap();
    let sshd = Sshd::start();
    let bridge = write_bridge(tmp.path());
    let key_part = sshd.known_hosts_line.split_once(' ').unwrap().1;
    let login = format!(
        "  Port {}\n  User {}\n  IdentityFile {}\n",
        sshd.port,
        sshd.user,
        sshd.client_key.display()
    );
    let command = format!(
        "Host hidden\n  HostName git.invalid\n{login}  ProxyCommand python3 {} %h %p {}\n",
        bridge.display(),
        tmp.path().join("asked").display(),
    );
    let known = format!("[git.invalid]:{} {key_part}\n", sshd.port);
    poll_steadily(&tmp.path().join("command"), &command, &known, None);
    // A ProxyJump of two hops made in process (no ssh program): their
    // threads and channels end with each connection.
    let jump = format!(
        "Host hidden\n  HostName 127.0.0.1\n{login}  ProxyJump bastion,bastion2\n\
         Host bastion bastion2\n  HostName 127.0.0.1\n{login}"
    );
    let no_ssh = tmp.path().join("no-ssh");
    fs::create_dir_all(&no_ssh).unwrap();
    let known = format!("{}\n", sshd.known_hosts_line);
    poll_steadily(&tmp.path().join("jump"), &jump, &known, Some(&no_ssh));
}

/// A daemon polling `hidden:<repo>` every 20 ms with the OpenSSH
/// configuration `config` and known hosts `known` (and `PATH` when
/// given) holds as many descriptors and threads after 40 polls as after
/// 10, and no zombie.
fn poll_steadily(dir: &Path, config: &str, known: &str, path: Option<&Path>) {
    let repo = SourceRepo::new(dir, "site");
    let h = repo.commit(&[("a", "a")], "one");
    let (config_file, known_file) = (dir.join("ssh_config"), dir.join("known_hosts"));
    fs::write(&config_file, config).unwrap();
    fs::write(&known_file, known).unwrap();
    let root = dir.join("root");
    let mut cmd = git_sync(&[
        &format!("--repo=hidden:{}", repo.dir.display()),
        &format!("--root={}", root.display()),
        "--link=site",
        &format!("--ssh-known-hosts-file={}", known_file.display()),
        "--period=20ms",
        "-v=5",
    ]);
    cmd.env(
        "GIT_SSH_COMMAND",
        format!("ssh -F {}", config_file.display()),
    );
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let mut p = spawn(cmd);
    let pid = p.child.id();
    let polls = |n: usize| move |log: &str| log_lines_with(log, "no change") >= n;
    p.wait_log(Duration::from_secs(60), "10 polls", polls(10));
    assert_eq!(published(&root.join("site")).as_deref(), Some(h.as_str()));
    let (fds, threads, _) = held(pid);
    p.wait_log(Duration::from_secs(120), "40 polls", polls(40));
    // (A poll may be under way when sampled: then it holds a few more.)
    p.wait_for(Duration::from_secs(30), "as many as after 10 polls", || {
        let now = held(pid);
        now.0 <= fds && now.1 <= threads && now.2 == 0
    });
}

/// `ssh` reads its configuration at each connection: a daemon sees a
/// change to `~/.ssh/config` (a file added where an `Include` pattern
/// looks, a file edited) at its next poll, without a restart.
#[test]
fn a_changed_openssh_configuration_is_read_at_the_next_poll() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    let h = repo.commit(&[("a", "a")], "one");
    let sshd = Sshd::start();
    let home = tmp.path().join("home");
    fs::create_dir_all(home.join(".ssh/config.d")).unwrap();
    fs::write(home.join(".ssh/config"), "Include config.d/*\n").unwrap();
    let known = tmp.path().join("known_hosts");
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let root = tmp.path().join("root");
    let args = [
        format!("--repo=later:{}", repo.dir.display()),
        format!("--root={}", root.display()),
        "--link=site".into(),
        format!("--ssh-key-file={}", sshd.client_key.display()),
        format!("--ssh-known-hosts-file={}", known.display()),
        "--period=50ms".into(),
        "--max-failures=-1".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = git_sync(&args);
    cmd.env("HOME", &home);
    let mut d = spawn(cmd);
    let failed_with = |log: &str, what: &str| {
        log.lines()
            .filter(|l| is_failed_pass(l) && l.contains(what))
            .count()
    };
    d.wait_log(LONG, "passes failing on an unknown host", |log| {
        failed_with(log, "later") >= 2
    });
    // A closed port first, then the server's.
    let closed = free_port();
    let block = |port: u16| {
        format!(
            "Host later\n  HostName 127.0.0.1\n  Port {port}\n  User {}\n",
            sshd.user
        )
    };
    let file = home.join(".ssh/config.d/later");
    fs::write(&file, block(closed)).unwrap();
    d.wait_log(LONG, "passes failing on the closed port", |log| {
        failed_with(log, &format!("127.0.0.1:{closed}")) >= 2
    });
    fs::write(&file, block(sshd.port)).unwrap();
    let link = root.join("site");
    d.wait_for(LONG, "a publish through the edited file", || {
        published(&link).as_deref() == Some(&h)
    });
    // Read again at the polls after each change; said once a change.
    let said = "SSH destination from the OpenSSH configuration or the ssh command line (HostName, Port, User)";
    assert_eq!(log_lines_with(&d.log(), said), 2, "{}", d.log());
}

#[test]
fn an_ssh_key_file_that_cannot_be_used_says_why_and_the_next_one_is_tried() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    let h = repo.commit(&[("f", "over ssh")], "one");
    let sshd = Sshd::start();
    let with_passphrase = tmp.path().join("with_passphrase");
    fs::copy(&sshd.client_key, &with_passphrase).unwrap();
    run_ok(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-p", "-P", "", "-N", "pass phrase", "-f"])
            .arg(&with_passphrase),
    );
    let public = sshd.client_key.with_extension("pub");
    let empty = tmp.path().join("empty");
    fs::write(&empty, "").unwrap();
    let run = |keys: &[&std::path::Path], root: &str| {
        let mut args = vec![
            format!("--repo={}", sshd.url(&repo.dir)),
            format!("--root={}", tmp.path().join(root).display()),
            "--ssh-known-hosts=false".into(),
            "--link=site".into(),
        ];
        args.extend(
            keys.iter()
                .map(|k| format!("--ssh-key-file={}", k.display())),
        );
        one_time(&args, &[])
    };
    let cases: [(&std::path::Path, &str); 5] = [
        (&with_passphrase, "is protected by a passphrase"),
        (&public, "holds a public key"),
        (&empty, "is empty"),
        // A directory: reading it fails, as an unreadable Secret would.
        (tmp.path(), "cannot be read"),
        (&tmp.path().join("absent"), "no SSH key file found"),
    ];
    for (i, (key, why)) in cases.iter().enumerate() {
        let (code, log) = run(&[key], &format!("r{i}"));
        assert_eq!(code, 1, "{log}");
        let line = log
            .lines()
            .find(|l| is_failed_pass(l))
            .unwrap_or_else(|| panic!("no failure logged: {log}"));
        assert!(line.contains(why), "{why}: {line}");
        assert!(line.contains(&key.display().to_string()), "{line}");
        assert!(!log.contains("pass phrase"), "{log}");
    }

    // A key that cannot be used is passed over for the next one.
    let (code, log) = run(&[&with_passphrase, &sshd.client_key], "both");
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&tmp.path().join("both/site")).as_deref(),
        Some(h.as_str())
    );
}

#[test]
fn ssh_scp_like_url_on_port_22() {
    // `user@host:path` has no port: the server listens on port 22 of a
    // spare loopback address, which needs root (as in CI).
    let Some(sshd) = Sshd::start_on_port_22() else {
        assert!(
            !is_root(),
            "port 22 is taken on every 127.x address tried (a system sshd on 0.0.0.0:22?)"
        );
        eprintln!("skipped: binding port 22 needs root");
        return;
    };
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    let h = repo.commit(&[("f", "scp-like")], "one");
    let known = tmp.path().join("known_hosts");
    // Port 22 hosts are written without brackets or port.
    assert!(sshd
        .known_hosts_line
        .starts_with(&format!("{} ", sshd.addr)));
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let args = vec![
        format!("--repo={}", sshd.scp_url(&repo.dir)),
        format!("--root={}", tmp.path().join("root").display()),
        format!("--ssh-key-file={}", sshd.client_key.display()),
        format!("--ssh-known-hosts-file={}", known.display()),
    ];
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        published(&tmp.path().join("root/site")).as_deref(),
        Some(h.as_str())
    );
}

#[test]
fn cookie_file_is_sent_where_it_matches_and_reread_each_pass() {
    let (tmp, srv, repo) = temp_source("site");
    repo.commit(&[("f", "behind a cookie")], "one");
    // The whole server answers 403 without the right session cookie.
    let server = HttpServer::start_with(
        &srv,
        r#"if ($cookie_session != "cookie-S3CRET") { return 403; }"#,
    );
    let jar = tmp.path().join("cookies.txt");
    let cookie_line = |domain: &str, path: &str, value: &str| {
        format!(
            "# Netscape HTTP Cookie File\n{domain}\tFALSE\t{path}\tFALSE\t0\tsession\t{value}\n"
        )
    };
    let args = |root: &str| {
        vec![
            format!("--repo={}", server.url("site")),
            format!("--root={}", tmp.path().join(root).display()),
            format!("--git-config=http.cookieFile:{}", jar.display()),
            "--error-file=error.json".into(),
        ]
    };

    // A cookie for another host or another path is not sent.
    fs::write(&jar, cookie_line("example.com", "/", "cookie-S3CRET")).unwrap();
    let (code, log) = one_time(&args("r1"), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("403"), "{log}");
    fs::write(&jar, cookie_line("127.0.0.1", "/other", "cookie-S3CRET")).unwrap();
    let (code, log) = one_time(&args("r2"), &[]);
    assert_eq!(code, 1, "{log}");

    // A daemon with a stale cookie fails, then picks up the renewed file.
    fs::write(&jar, cookie_line("127.0.0.1", "/", "stale-cookie-S3CRET")).unwrap();
    let mut a = args("r3");
    a.extend(["--period=50ms".into(), "--max-failures=-1".into()]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut p = spawn(git_sync(&a));
    let err_file = tmp.path().join("r3/error.json");
    p.wait_for(LONG, "a refused sync", || err_file.exists());
    let error = fs::read_to_string(&err_file).unwrap();
    assert_no_secret("the error file", &error);
    fs::write(&jar, cookie_line("127.0.0.1", "/", "cookie-S3CRET")).unwrap();
    let link = tmp.path().join("r3/site");
    let head = repo.head();
    p.wait_for(LONG, "a sync with the renewed cookie", || {
        published(&link).as_deref() == Some(&head)
    });
    assert_eq!(
        fs::read_to_string(link.join("f")).unwrap(),
        "behind a cookie"
    );
    p.kill9();
    assert_no_secret("the log", &p.log());
}

/// A repository `site` served over HTTPS (with a test CA) and plain HTTP.
struct TwoServers {
    tmp: TempDir,
    ca: std::path::PathBuf,
    tls: HttpServer,
    plain: HttpServer,
}

impl TwoServers {
    fn start() -> Self {
        let (tmp, srv, repo) = temp_source("site");
        repo.commit(&[("f", "proxied")], "one");
        let (ca, cert, key) = test_certificates(tmp.path());
        let tls = HttpServer::start_tls(&srv, "", Some((&cert, &key)));
        let plain = HttpServer::start(&srv);
        TwoServers {
            tmp,
            ca,
            tls,
            plain,
        }
    }

    fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/site", self.tls.port)
    }
}

#[test]
fn through_a_proxy_from_git_config_or_env() {
    // HTTPS is tunnelled (CONNECT), plain http:// sent in absolute form.
    let TwoServers {
        tmp,
        ca,
        tls: server,
        plain,
    } = TwoServers::start();
    let (proxy_port, carried) = forward_proxy();
    // An Authorization header confines the connections to the server and
    // its proxy (see the extra-header test): both are reached.
    let base = vec![
        format!("--repo=https://127.0.0.1:{}/site", server.port),
        format!("--root={}", tmp.path().join("r1").display()),
        format!(
            "--git-config=http.sslCAInfo:{},http.proxy:http://127.0.0.1:{proxy_port},\
             http.extraHeader:Authorization: Bearer unused",
            ca.display()
        ),
    ];
    let (code, log) = one_time(&base, &[("GITSYNC_VERBOSE", "1")]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        carried.lock().unwrap().len(),
        1,
        "ls-remote and fetch go through the proxy, in one tunnel"
    );
    // By git-sync's own client, which asks for the refs with v2.
    assert!(refs_listed_with_v2(&log), "{log}");
    let env_args = vec![
        format!("--repo=https://127.0.0.1:{}/site", server.port),
        format!("--root={}", tmp.path().join("r2").display()),
        format!("--git-config=http.sslCAInfo:{}", ca.display()),
    ];
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let (code, log) = one_time(&env_args, &[("https_proxy", proxy.as_str())]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(carried.lock().unwrap().len(), 2);

    let plain_args = |root: &str| {
        vec![
            format!("--repo=http://127.0.0.1:{}/site", plain.port),
            format!("--root={}", tmp.path().join(root).display()),
        ]
    };
    let mut cookie_header = plain_args("r3");
    cookie_header.push("--git-config=http.extraHeader:Cookie: unused=1".into());
    let (code, log) = one_time(&cookie_header, &[("http_proxy", proxy.as_str())]);
    assert_eq!(code, 0, "{log}");
    let after_plain = carried.lock().unwrap().len();
    assert!(after_plain > 2, "plain http:// went around the proxy");
    assert_eq!(
        fs::read_to_string(tmp.path().join("r3/site/f")).unwrap(),
        "proxied"
    );
    // no_proxy naming the host: straight to the server.
    let (code, log) = one_time(
        &plain_args("r4"),
        &[
            ("http_proxy", proxy.as_str()),
            ("no_proxy", "localhost,127.0.0.1"),
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        carried.lock().unwrap().len(),
        after_plain,
        "no_proxy was ignored"
    );
    // A proxy for one URL prefix: a key holding a colon, quoted as
    // upstream's --git-config syntax wants.
    let mut args = plain_args("r6");
    args.push(format!(
        r#"--git-config="http.http://127.0.0.1:{}/.proxy":{proxy}"#,
        plain.port
    ));
    let (code, log) = one_time(&args, &[]);
    assert_eq!(code, 0, "{log}");
    assert!(
        carried.lock().unwrap().len() > after_plain,
        "the URL's proxy was ignored"
    );
    // Dropped from the flags, the URL's proxy is forgotten at the next
    // start over the same root.
    let before = carried.lock().unwrap().len();
    let (code, log) = one_time(&plain_args("r6"), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        carried.lock().unwrap().len(),
        before,
        "the proxy of an earlier start was used"
    );
    // Config in git's own environment variables counts as well.
    let (code, log) = one_time(
        &plain_args("r7"),
        &[
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "http.proxy"),
            ("GIT_CONFIG_VALUE_0", proxy.as_str()),
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert!(
        carried.lock().unwrap().len() > before,
        "GIT_CONFIG_COUNT was ignored"
    );
    // An HTTPS proxy for a plain http:// remote, which libgit2 would go
    // around, fails the sync and says so.
    let tls_proxy = format!("https://127.0.0.1:{proxy_port}");
    let (code, log) = one_time(&plain_args("r8"), &[("http_proxy", tls_proxy.as_str())]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("an HTTPS proxy (https://) for a plain http:// remote"),
        "{log}"
    );
    // A proxy that is down fails the sync: the requests really go there.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (code, _) = one_time(&plain_args("r5"), &[("http_proxy", dead.as_str())]);
    assert_eq!(code, 1);
}

#[test]
fn proxy_credentials_from_the_proxy_url() {
    let servers = TwoServers::start();
    let TwoServers { tmp, ca, plain, .. } = &servers;
    let (proxy_port, carried) = forward_proxy_with_auth(Some(("puser", "proxy-S3CRET")));
    let proxy_url = |pw: &str| format!("http://puser:{pw}@127.0.0.1:{proxy_port}");
    let error_file = |root: &str| tmp.path().join(root).join("error.json");
    let run = |repo_url: String, root: &str, proxy: String| {
        let args = vec![
            format!("--repo={repo_url}"),
            format!("--root={}", tmp.path().join(root).display()),
            format!("--git-config=http.sslCAInfo:{}", ca.display()),
            "--error-file=error.json".to_string(),
        ];
        one_time(
            &args,
            &[
                ("https_proxy", proxy.as_str()),
                ("http_proxy", proxy.as_str()),
            ],
        )
    };

    // HTTPS (CONNECT) and plain HTTP both answer the proxy's 407 with the
    // URL's credentials.
    let (code, log) = run(servers.https_url(), "r1", proxy_url("proxy-S3CRET"));
    assert_eq!(code, 0, "{log}");
    let (code, log) = run(plain.url("site"), "r2", proxy_url("proxy-S3CRET"));
    assert_eq!(code, 0, "{log}");
    assert!(carried.lock().unwrap().len() >= 2);

    // A wrong proxy password fails, and says nothing of either password.
    let (code, log) = run(plain.url("site"), "r3", proxy_url("wrong-S3CRET"));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("proxy"), "{log}");
    let (code, log) = run(servers.https_url(), "r4", proxy_url("wrong-S3CRET"));
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("proxy"), "{log}");
    for root in ["r3", "r4"] {
        let text = fs::read_to_string(error_file(root)).unwrap();
        assert_no_secret("the error file", &text);
    }
}

/// Whether `log` (at `-v=1` or more) says refs were listed with v2.
fn refs_listed_with_v2(log: &str) -> bool {
    log.lines()
        .any(|l| l.contains("\"msg\":\"refs listed\"") && l.contains("\"protocol\":2"))
}

#[test]
fn through_a_socks_proxy_as_git_goes_through_one() {
    // libgit2 knows no SOCKS proxy (it would connect straight to the
    // server); git's curl speaks to one, and so does git-sync.
    let servers = TwoServers::start();
    let TwoServers { tmp, ca, plain, .. } = &servers;
    let socks = SocksProxy::start(Some(("puser", "proxy-S3CRET")));
    let proxy = |scheme: &str, pw: &str| format!("{scheme}://puser:{pw}@127.0.0.1:{}", socks.port);
    let run = |repo_url: String, root: &str, env: &[(&str, &str)]| {
        let args = vec![
            format!("--repo={repo_url}"),
            format!("--root={}", tmp.path().join(root).display()),
            format!("--git-config=http.sslCAInfo:{}", ca.display()),
            "--error-file=error.json".to_string(),
        ];
        let (code, log) = one_time(&args, env);
        let error =
            fs::read_to_string(tmp.path().join(root).join("error.json")).unwrap_or_default();
        assert_no_secret("the error file", &error);
        (code, log, error)
    };
    let synced = |root: &str| fs::read_to_string(tmp.path().join(root).join("site/f")).ok();

    // HTTPS tunnelled, its name looked up here (socks5) or by the proxy
    // (socks5h), from the environment as from the git config; the refs
    // asked for with protocol v2 by git-sync's own client there too.
    let right = proxy("socks5", "proxy-S3CRET");
    let env = [("https_proxy", right.as_str()), ("GITSYNC_VERBOSE", "1")];
    let (code, log, _) = run(servers.https_url(), "r1", &env);
    assert_eq!(
        (code, synced("r1").as_deref()),
        (0, Some("proxied")),
        "{log}"
    );
    assert!(refs_listed_with_v2(&log), "{log}");
    let by_name = plain.url("site").replace("127.0.0.1", "localhost");
    let hostname = proxy("socks5h", "proxy-S3CRET");
    let env = [("ALL_PROXY", hostname.as_str()), ("GITSYNC_VERBOSE", "1")];
    let (code, log, _) = run(by_name, "r2", &env);
    assert_eq!(
        (code, synced("r2").as_deref()),
        (0, Some("proxied")),
        "{log}"
    );
    assert!(refs_listed_with_v2(&log), "{log}");

    // The proxy is really asked: a wrong password fails the sync and says
    // why, a proxy that is down fails it too.
    let wrong = proxy("socks5h", "wrong-S3CRET");
    let (code, log, error) = run(plain.url("site"), "r3", &[("http_proxy", wrong.as_str())]);
    assert_eq!(code, 1, "{log}");
    assert!(
        error.contains("SOCKS5 proxy refused the user name and password"),
        "{error}"
    );
    assert_eq!(synced("r3"), None);
    let down = format!("socks5://127.0.0.1:{}", free_port());
    let (code, log, error) = run(servers.https_url(), "r4", &[("https_proxy", down.as_str())]);
    assert_eq!(code, 1, "{log}");
    assert!(error.contains("failed to connect"), "{error}");

    // A scheme git does not take fails the sync, naming it (from the
    // environment: the flags' value is refused at start).
    let (code, log, error) = run(
        plain.url("site"),
        "r5",
        &[("http_proxy", "ftp://127.0.0.1:1")],
    );
    assert_eq!(code, 1, "{log}");
    assert!(error.contains("proxy of scheme \\\"ftp\\\""), "{error}");
}

#[test]
fn through_a_socks4_proxy_the_name_looked_up_here_or_by_the_proxy() {
    // git's curl speaks SOCKS4 (`socks4://`, `socks://`: the server's
    // address looked up here) and SOCKS4a (`socks4a://`: its name sent for
    // the proxy to look up), with the proxy URL's user as the user id.
    let servers = TwoServers::start();
    let TwoServers { tmp, ca, plain, .. } = &servers;
    let (port, asked) = socks4_proxy();
    let by_name = plain.url("site").replace("127.0.0.1", "localhost");
    let cases = [
        (
            "socks4",
            servers.https_url(),
            format!("bot@127.0.0.1:{}", servers.tls.port),
        ),
        (
            "socks",
            by_name.clone(),
            format!("bot@127.0.0.1:{}", plain.port),
        ),
        ("socks4a", by_name, format!("bot@localhost:{}", plain.port)),
    ];
    for (n, (scheme, url, want)) in cases.iter().enumerate() {
        asked.lock().unwrap().clear();
        let root = tmp.path().join(format!("r{n}"));
        let proxy = format!("{scheme}://bot@127.0.0.1:{port}");
        let args = vec![
            format!("--repo={url}"),
            format!("--root={}", root.display()),
            format!("--git-config=http.sslCAInfo:{}", ca.display()),
        ];
        let env = [("ALL_PROXY", proxy.as_str()), ("GITSYNC_VERBOSE", "1")];
        let (code, log) = one_time(&args, &env);
        let synced = fs::read_to_string(root.join("site/f")).ok();
        assert_eq!((code, synced.as_deref()), (0, Some("proxied")), "{log}");
        assert!(refs_listed_with_v2(&log), "{scheme}: {log}");
        let asked = asked.lock().unwrap().clone();
        assert!(
            !asked.is_empty() && asked.iter().all(|a| a == want),
            "{scheme}: {asked:?}, not {want}"
        );
    }
}

#[test]
fn webhook_url_keys_stay_out_of_the_most_verbose_log() {
    // Webhook URLs carry keys in their login or their query.
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.commit(&[("f", "1")], "one");
    let (port, calls) = fixed_server(200, String::new(), |_| true);
    let mut p = spawn(git_sync(&[
        &format!("--repo={}", repo.url()),
        &format!("--root={}", tmp.path().join("root").display()),
        &format!(
            "--webhook-url=http://hook:hook-S3CRET@127.0.0.1:{port}/notify?token=hookq-S3CRET"
        ),
        "--period=100ms",
        "-v=9",
    ]));
    p.wait_for(LONG, "the webhook call", || *calls.lock().unwrap() >= 1);
    p.wait_log(LONG, "the webhook's outcome", |l| {
        l.contains("webhook") && (l.contains("succeeded") || l.contains("failed"))
    });
    let log = p.log();
    assert!(log.contains("token=***"), "{log}");
    assert_no_secret("a -v=9 log", &log);
}

/// Extra arguments and environment of one run.
type Scenario<'a> = (Vec<String>, Vec<(&'a str, &'a str)>);

#[test]
fn no_secret_in_logs_error_files_or_metrics() {
    let f = Fixture::new("right-S3CRET");
    let http_port = free_port();
    let pwfile = f.tmp.path().join("pw");
    fs::write(&pwfile, "wrong-S3CRET").unwrap();
    let jar = f.tmp.path().join("cookies.txt");
    fs::write(
        &jar,
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tcookie-S3CRET\n",
    )
    .unwrap();
    // Failing in every way a secret could travel: a wrong password in the
    // URL, in the environment, in a file, in a credential, from askpass, in
    // a cookie.
    let (askpass_port, _) = fixed_server(
        200,
        "username=bot\npassword=askpass-S3CRET\n".into(),
        |_| true,
    );
    let url_with_password = format!(
        "http://bot:wrong-S3CRET@127.0.0.1:{}/private",
        f.server.port
    );
    let scenarios: Vec<Scenario> = vec![
        (vec![format!("--repo={url_with_password}")], vec![]),
        (vec!["--username=bot".into()], vec![("GITSYNC_PASSWORD", "wrong-S3CRET")]),
        (vec!["--username=bot".into(), format!("--password-file={}", pwfile.display())], vec![]),
        (
            vec![r#"--credential={"url":"http://127.0.0.1","username":"bot","password":"cred-S3CRET"}"#.into()],
            vec![],
        ),
        (vec![format!("--askpass-url=http://127.0.0.1:{askpass_port}/")], vec![]),
        (vec![format!("--git-config=http.cookieFile:{}", jar.display())], vec![]),
    ];
    for (i, (extra, env)) in scenarios.into_iter().enumerate() {
        let root = f.tmp.path().join(format!("root{i}"));
        let mut cmd = git_sync(&[
            &format!("--root={}", root.display()),
            "--error-file=error.json",
            &format!("--http-bind=127.0.0.1:{http_port}"),
            "--http-metrics",
            "--max-failures=-1",
            "--period=100ms",
            "-v=6",
        ]);
        if !extra.iter().any(|a| a.starts_with("--repo=")) {
            cmd.arg(format!("--repo={}", f.server.url("private")));
        }
        cmd.args(&extra);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut p = spawn(cmd);
        let err_file = root.join("error.json");
        p.wait_for(LONG, "an error file", || err_file.exists());
        p.wait_for(LONG, "the endpoint", || {
            std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok()
        });
        let (_, metrics) = http_get(http_port, "/metrics");
        p.kill9();
        assert_no_secret(&format!("scenario {i} log"), &p.log());
        assert_no_secret(
            &format!("scenario {i} error file"),
            &fs::read_to_string(&err_file).unwrap(),
        );
        assert_no_secret(
            &format!("scenario {i} metrics"),
            &String::from_utf8_lossy(&metrics),
        );
    }
}

/// `repo` over SSH from `sshd`, through a TCP proxy on 127.0.0.1 that
/// counts what the server sends: git-sync's flags (its known_hosts names
/// the proxy's address; `--root` is `<dir>/root`) and that count.
fn ssh_through_counting_proxy(
    sshd: &Sshd,
    repo: &SourceRepo,
    dir: &Path,
) -> (Vec<String>, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let (port, received) = counting_proxy(sshd.port, |_, _| {});
    let known = dir.join("known_hosts");
    let direct = format!("[{}]:{}", sshd.addr, sshd.port);
    let lines: Vec<String> = sshd
        .known_hosts_by_type
        .iter()
        .map(|l| l.replace(&direct, &format!("[127.0.0.1]:{port}")))
        .collect();
    fs::write(&known, lines.join("\n") + "\n").unwrap();
    let flags = vec![
        format!(
            "--repo=ssh://{}@127.0.0.1:{port}{}",
            sshd.user,
            repo.dir.display()
        ),
        format!("--ssh-key-file={}", sshd.client_key.display()),
        format!("--ssh-known-hosts-file={}", known.display()),
        format!("--root={}", dir.join("root").display()),
    ];
    (flags, received)
}

/// Over SSH too, once libgit2's first listing has shown a repository with
/// many refs (GitHub's pull requests), a poll asks for the ref it syncs
/// only (protocol v2), where the server passes `GIT_PROTOCOL` on, and an
/// update fetches the commit on that session. A stock OpenSSH server,
/// which does not, answers our session with version 0: every ref, as to
/// libgit2, and the update is fetched on that session in version 0.
/// Either way commits are published.
#[test]
fn an_ssh_poll_of_a_repository_with_many_refs_asks_for_its_ref_only() {
    let per_poll = |passes_env: bool| {
        let tmp = TempDir::new().unwrap();
        let repo = SourceRepo::new(tmp.path(), "site");
        repo.commit(&[("f", "1")], "one");
        repo.add_pull_refs(3_000);
        let sshd = if passes_env {
            Sshd::start()
        } else {
            Sshd::start_passing_no_env()
        };
        let root = tmp.path().join("root");
        let (mut args, received) = ssh_through_counting_proxy(&sshd, &repo, tmp.path());
        args.extend(["--link=site".into(), "--period=100ms".into(), "-v=5".into()]);
        let mut p = spawn(git_sync(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
        let polls = |log: &str| log_lines_with(log, "no change");
        p.wait_log(LONG, "polls", |l| polls(l) >= 3);
        let (bytes, before) = (
            received.load(std::sync::atomic::Ordering::SeqCst),
            polls(&p.log()),
        );
        p.wait_log(LONG, "more polls", |l| polls(l) >= before + 5);
        let (bytes2, after) = (
            received.load(std::sync::atomic::Ordering::SeqCst),
            polls(&p.log()),
        );
        let head = repo.commit(&[("f", "2")], "two");
        let bytes3 = received.load(std::sync::atomic::Ordering::SeqCst);
        p.wait_for(LONG, "the new commit published", || {
            published(&root.join("site")).as_deref() == Some(head.as_str())
        });
        // (Polls of no change may come before it, a few KB each.)
        let update = received.load(std::sync::atomic::Ordering::SeqCst) - bytes3;
        let log = p.log();
        let listed_with = |version: u8| {
            let protocol = format!("\"protocol\":{version}");
            log.lines()
                .any(|l| l.contains("\"refs listed\"") && l.contains(&protocol))
        };
        let (spoken, not) = if passes_env { (2, 0) } else { (0, 2) };
        assert!(listed_with(spoken) && !listed_with(not), "{log}");
        // The update fetched on the session that listed it.
        let protocol = format!("\"protocol\":{spoken}");
        let fetched = log
            .lines()
            .any(|l| l.contains("\"fetched\"") && l.contains(&protocol));
        assert!(fetched, "{log}");
        ((bytes2 - bytes) / (after - before), update)
    };
    let ((v2, v2_update), (v0, v0_update)) = (per_poll(true), per_poll(false));
    // Each poll is an SSH session (a handshake, a few KB); version 0 adds
    // 3,000 refs of some 60 bytes. An update fetches on the listing's
    // session with v2, where libgit2 connects again and lists them all.
    assert!(v2 < 30_000, "{v2} bytes a poll with protocol v2");
    assert!(v0 > 150_000, "{v0} bytes a poll with protocol version 0");
    assert!(
        v2_update < 60_000,
        "{v2_update} bytes an update with protocol v2"
    );
    // With version 0 every session lists every ref: an update costs one
    // listing, where libgit2's fetch listed them all again (400 KB).
    assert!(
        v0_update > 150_000 && v0_update < v0 + 50_000,
        "{v0_update} bytes an update with protocol version 0, {v0} a poll"
    );
}

/// What an SSH server was found to be outlives the process: a run after
/// one that met many refs (a sidecar after its init container's
/// `--one-time` sync, the next run of a `--one-time` job) lists them with
/// protocol v2 from its first poll and fetches on that session, where
/// libgit2 would receive all 3,000 again (measured: 3.8 KB a run instead
/// of 199 KB).
#[test]
fn a_restart_remembers_that_an_ssh_repository_has_many_refs() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.commit(&[("f", "1")], "one");
    repo.add_pull_refs(3_000);
    let sshd = Sshd::start();
    let root = tmp.path().join("root");
    let (mut args, received) = ssh_through_counting_proxy(&sshd, &repo, tmp.path());
    args.extend(["--link=site".into(), "--one-time".into(), "-v=5".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let received = || received.load(std::sync::atomic::Ordering::SeqCst);
    let run = |head: &str| {
        let before = received();
        let out = run_git_sync(&args);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{log}");
        assert_eq!(published(&root.join("site")).as_deref(), Some(head));
        let v2 = log
            .lines()
            .any(|l| l.contains("\"refs listed\"") && l.contains("\"protocol\":2"));
        (received() - before, v2)
    };
    let (first, first_v2) = run(&repo.head());
    assert!(!first_v2 && first > 150_000, "first run: {first} bytes");
    let (second, second_v2) = run(&repo.commit(&[("f", "2")], "two"));
    assert!(
        second_v2,
        "the second run ({second} bytes) listed with protocol v2"
    );
    assert!(second < 60_000, "{second} bytes the second run");
}

/// A partial clone over SSH (`--filter` with a sparse checkout): the
/// listing and the filtered fetch on a session of ours (libgit2 has no
/// filters), the selected contents fetched on another; the large files
/// outside the patterns never come.
#[test]
fn a_filtered_sparse_sync_over_ssh_fetches_only_the_selected_contents() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let big = noise(1, 1 << 20);
    repo.commit(&[("docs/a.md", "a1"), ("assets/0.bin", &big)], "one");
    let sshd = Sshd::start();
    let root = tmp.path().join("root");
    let patterns = tmp.path().join("sparse");
    let (mut args, received) = ssh_through_counting_proxy(&sshd, &repo, tmp.path());
    args.extend([
        format!("--sparse-checkout-file={}", patterns.display()),
        "--filter=blob:limit=1k".into(),
        "--one-time".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sync = || {
        let before = received.load(std::sync::atomic::Ordering::SeqCst);
        let out = run_git_sync(&args);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{log}");
        received.load(std::sync::atomic::Ordering::SeqCst) - before
    };
    let link = root.join(repo.dir.file_name().unwrap());
    fs::write(&patterns, "/docs/\n").unwrap();
    let first = sync();
    assert_eq!(fs::read_to_string(link.join("docs/a.md")).unwrap(), "a1");
    assert!(!link.join("assets").exists());
    // (The file outside is some 860 KB compressed; a session's
    // handshake a few KB.)
    assert!(first < 60_000, "first sync: {first} bytes");
    fs::write(&patterns, "/assets/\n").unwrap();
    sync();
    assert_eq!(fs::read_to_string(link.join("assets/0.bin")).unwrap(), big);
    assert!(!link.join("docs").exists());
}

/// A hook's git fills a partial store over SSH as git-sync does: from the
/// promisor remote (the repository's URL), with git-sync's key and host
/// checks (`GIT_SSH_COMMAND`).
#[test]
fn a_hooks_git_fetches_what_a_filtered_store_lacks_over_ssh() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    repo.commit(&[("docs/a.md", "a1"), ("assets/b.txt", "outside")], "one");
    let sshd = Sshd::start();
    let known = tmp.path().join("known_hosts");
    fs::write(&known, format!("{}\n", sshd.known_hosts_line)).unwrap();
    let patterns = tmp.path().join("sparse");
    fs::write(&patterns, "/docs/\n").unwrap();
    let said = tmp.path().join("said");
    let hook = tmp.path().join("hook");
    script(
        &hook,
        &format!("git show HEAD:assets/b.txt > '{0}' 2>&1", said.display()),
    );
    let root = tmp.path().join("root");
    let (code, log) = one_time(
        &[
            format!("--repo={}", sshd.url(&repo.dir)),
            format!("--root={}", root.display()),
            format!("--ssh-key-file={}", sshd.client_key.display()),
            format!("--ssh-known-hosts-file={}", known.display()),
            format!("--sparse-checkout-file={}", patterns.display()),
            "--filter=blob:none".into(),
            format!("--exechook-command={}", hook.display()),
        ],
        &[],
    );
    let said = fs::read_to_string(&said).unwrap_or_default();
    assert_eq!(code, 0, "{said}\n{log}");
    assert_eq!(said, "outside");
    assert!(!root.join("site/assets").exists());
}

/// A partial clone from an SSH server that does not pass `GIT_PROTOCOL`
/// on (a stock OpenSSH): our session's fetch speaks version 0, which takes
/// the filter too, where the server also lets objects no ref points at be
/// fetched (`uploadpack.allowReachableSHA1InWant` or `allowAnySHA1InWant`),
/// as the contents the patterns select are fetched later; an update too
/// (v0's shallow update and haves). A server that does not gets whole
/// objects, and the sync works as without `--filter`.
#[test]
fn a_filtered_sparse_sync_over_ssh_in_protocol_version_0() {
    let sync = |reachable_wants: bool| {
        let tmp = TempDir::new().unwrap();
        let repo = SourceRepo::new(tmp.path(), "site");
        repo.git(&["config", "uploadpack.allowFilter", "true"]);
        if !reachable_wants {
            // (The test repositories allow any wants.)
            repo.git(&["config", "--unset", "uploadpack.allowAnySHA1InWant"]);
        }
        let big = noise(3, 1 << 20);
        repo.commit(&[("docs/a.md", "a1"), ("assets/0.bin", &big)], "one");
        let sshd = Sshd::start_passing_no_env();
        let root = tmp.path().join("root");
        let patterns = tmp.path().join("sparse");
        fs::write(&patterns, "/docs/\n").unwrap();
        let (mut args, received) = ssh_through_counting_proxy(&sshd, &repo, tmp.path());
        args.extend([
            format!("--sparse-checkout-file={}", patterns.display()),
            "--filter=blob:none".into(),
            "--one-time".into(),
            "-v=5".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let link = root.join("site");
        let once = |text: &str| {
            let before = received.load(std::sync::atomic::Ordering::SeqCst);
            let out = run_git_sync(&args);
            let log = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(0), "{log}");
            assert_eq!(fs::read_to_string(link.join("docs/a.md")).unwrap(), text);
            assert!(!link.join("assets").exists());
            assert!(log.contains("\"protocol\":0"), "{log}");
            received.load(std::sync::atomic::Ordering::SeqCst) - before
        };
        let first = once("a1");
        // An update: the shallow store's commit as a have, the new large
        // file left out again.
        let changes = [("docs/a.md", "a2"), ("assets/0.bin", &noise(4, 1 << 20))];
        repo.commit(&changes, "two");
        (first, once("a2"))
    };
    let (first, update) = sync(true);
    // (The file outside is some 860 KB compressed.)
    assert!(first < 60_000, "{first} bytes with the filter");
    assert!(
        update < 60_000,
        "{update} bytes for an update with the filter"
    );
    let (whole, whole_update) = sync(false);
    assert!(whole > 800_000, "{whole} bytes without reachable wants");
    assert!(whole_update > 800_000, "{whole_update} bytes");
}

/// A pinned hash needs no listing: over SSH it is fetched filtered on a
/// session of ours that lists nothing. Contents a later checkout needs
/// that the server can no longer send fail the pass with what the server
/// said, and leave the published tree as it was.
#[test]
fn a_pinned_hash_over_ssh_is_fetched_filtered_and_a_failed_fill_says_why() {
    let tmp = TempDir::new().unwrap();
    let repo = SourceRepo::new(tmp.path(), "site");
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let big = noise(2, 1 << 20);
    let hash = repo.commit(&[("docs/a.md", "a"), ("assets/0.bin", &big)], "one");
    let sshd = Sshd::start();
    let root = tmp.path().join("root");
    let patterns = tmp.path().join("sparse");
    let (mut args, received) = ssh_through_counting_proxy(&sshd, &repo, tmp.path());
    args.extend([
        format!("--ref={hash}"),
        format!("--sparse-checkout-file={}", patterns.display()),
        "--filter=blob:none".into(),
        "--one-time".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sync = || {
        let out = run_git_sync(&args);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), log)
    };
    let link = root.join("site");
    fs::write(&patterns, "/docs/\n").unwrap();
    let (code, log) = sync();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(fs::read_to_string(link.join("docs/a.md")).unwrap(), "a");
    let first = received.load(std::sync::atomic::Ordering::SeqCst);
    // (The file outside is some 860 KB compressed.)
    assert!(first < 60_000, "first sync: {first} bytes");
    let published_dir = fs::read_link(&link).unwrap();

    fs::rename(&repo.dir, tmp.path().join("away")).unwrap();
    fs::write(&patterns, "/docs/\n/assets/\n").unwrap();
    let (code, log) = sync();
    assert_eq!(code, Some(1), "{log}");
    let errors = error_lines(&log).join("\n");
    assert!(
        errors.contains("the server says: fatal: ") && errors.contains("site"),
        "{errors}"
    );
    assert_eq!(fs::read_link(&link).unwrap(), published_dir);
    assert!(!link.join("assets").exists());

    fs::rename(tmp.path().join("away"), &repo.dir).unwrap();
    let (code, log) = sync();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(fs::read_to_string(link.join("assets/0.bin")).unwrap(), big);
}
