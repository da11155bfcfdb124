//! HTTP basic authentication against a real nginx, and no secret in any
//! output.

mod support;

use std::fs;
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
        let tmp = TempDir::new().unwrap();
        let srv = tmp.path().join("srv");
        fs::create_dir_all(&srv).unwrap();
        let repo = SourceRepo::new(&srv, "private");
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
    cmd.env("GITSYNC_PASSWORD", "right-S3CRET");
    let mut p = spawn(cmd);
    assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
    assert_eq!(
        published(&f.tmp.path().join("root/private")).as_deref(),
        Some(f.repo.head().as_str())
    );
    assert_secret_absent(&p.log(), "right-S3CRET");

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
