//! What users deploy is checked: the example manifests against the
//! Kubernetes schema, the Dockerfile with a linter, the shell example's
//! syntax, the systemd unit with systemd and by running its environment,
//! the 2015 manifest still saying what it said, and the README's flag tables
//! agreeing with the parser.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::*;

fn examples() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (scripts/install-test-deps installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn manifests_are_valid_kubernetes() {
    let manifests: Vec<_> = examples()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(manifests.len() >= 3, "{manifests:?}");
    run(Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&manifests));
}

#[test]
fn dockerfile_passes_hadolint() {
    run(Command::new("hadolint").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")));
}

#[test]
fn shell_example_parses() {
    for p in examples()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
    {
        run(Command::new("sh").arg("-n").arg(&p));
    }
}

#[test]
fn the_2015_manifest_keeps_its_environment() {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/nginx-git.yml"))
            .unwrap();
    for line in [
        r#"- {name: GIT_SYNC_REPO, value: "https://github.com/jasonGeng88/test.git"}"#,
        r#"- {name: GIT_SYNC_DEST, value: "/git"}"#,
        r#"- {name: GIT_SYNC_BRANCH, value: "master"}"#,
        r#"- {name: GIT_SYNC_REV, value: "FETCH_HEAD"}"#,
        r#"- {name: GIT_SYNC_WAIT, value: "10"}"#,
        "volumeMounts: [{mountPath: /usr/share/nginx/html, name: git-volume}]",
        "volumeMounts: [{mountPath: /git, name: git-volume}]",
    ] {
        assert!(text.contains(line), "examples/nginx-git.yml lacks {line}");
    }
}

#[test]
fn the_systemd_unit_verifies_and_its_environment_syncs() {
    let unit =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/git-sync.service"))
            .unwrap();
    let tmp = tempfile::TempDir::new().unwrap();
    // systemd's own check, with ExecStart pointing at this build.
    let copy = tmp.path().join("git-sync.service");
    let exec = "ExecStart=/usr/local/bin/git-sync";
    assert!(unit.contains(exec), "{unit}");
    fs::write(
        &copy,
        unit.replace(exec, &format!("ExecStart={}", bin().display())),
    )
    .unwrap();
    // It says what it ignores (a misspelt value) without failing: any word
    // from it is a failure here.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (scripts/install-test-deps installs it)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    // Its environment as written, but a local repository for the remote
    // and a temporary state directory, syncs.
    let repo = SourceRepo::new(tmp.path(), "site");
    let h = repo.commit(&[("index.html", "v1")], "one");
    let mut cmd = git_sync(&["--one-time"]);
    let env: Vec<(&str, &str)> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .collect();
    assert!(env.len() >= 5, "{env:?}");
    cmd.envs(env.iter().copied());
    cmd.env("GITSYNC_REPO", repo.url())
        .env("GITSYNC_ROOT", tmp.path().join("state"));
    // Type=notify: systemd hears that it is ready.
    assert!(unit.contains("\nType=notify\n"), "{unit}");
    let socket_path = tmp.path().join("notify");
    let systemd = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    systemd.set_nonblocking(true).unwrap();
    cmd.env("NOTIFY_SOCKET", &socket_path);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        published(&tmp.path().join("state/site")).as_deref(),
        Some(h.as_str())
    );
    let mut buf = [0u8; 4096];
    let len = systemd.recv(&mut buf).expect("READY=1 sent before exiting");
    assert!(buf[..len].starts_with(b"READY=1\n"));
}

#[test]
fn the_local_daemon_script_publishes_and_follows_commits() {
    // Run as written, for a user whose home is a temporary directory.
    let home = tempfile::TempDir::new().unwrap();
    let repo = SourceRepo::new(&home.path().join("src"), "site");
    let h1 = repo.commit(&[("index.html", "v1")], "one");
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local-daemon.sh"))
        .env("HOME", home.path())
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for var in ["GITSYNC_REPO", "GITSYNC_ROOT", "GIT_CONFIG_COUNT"] {
        cmd.env_remove(var);
    }
    let mut p = spawn(cmd);
    let link = home.path().join("www/site");
    let limit = std::time::Duration::from_secs(60);
    p.wait_for(limit, "the first commit", || {
        published(&link).as_deref() == Some(h1.as_str())
    });
    let h2 = repo.commit(&[("index.html", "v2")], "two");
    p.wait_for(limit, "the next commit", || {
        published(&link).as_deref() == Some(h2.as_str())
    });
    assert_eq!(fs::read_to_string(link.join("index.html")).unwrap(), "v2");
}

fn readme() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The body rows of the README table whose header row starts with `header`.
fn table_rows<'a>(readme: &'a str, header: &str) -> Vec<&'a str> {
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(rows.len() > 10, "no table under {header:?}");
    rows
}

/// The flag names in the first column of a README table, globs
/// (`--webhook-*`) included.
fn flags_in_table(readme: &str, header: &str) -> Vec<String> {
    let mut names = Vec::new();
    for row in table_rows(readme, header) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for quoted in first.split('`').skip(1).step_by(2) {
            if let Some(name) = quoted.strip_prefix("--").or(quoted.strip_prefix('-')) {
                names.push(name.to_string());
            }
        }
    }
    names
}

#[test]
fn the_readme_tables_name_every_flag_and_only_flags_that_exist() {
    use gitsync::config::flags::{self, FLAGS};
    let readme = readme();
    let main = flags_in_table(&readme, "| flag | default | meaning |");
    let upstream = flags_in_table(&readme, "| upstream flag | here | notes |");
    let exists = |name: &str| match name.strip_suffix('*') {
        Some(prefix) => FLAGS.iter().any(|f| f.name.starts_with(prefix)),
        // `-?` is upstream's other spelling of `-h`.
        None if name == "?" => flags::find("help").is_some(),
        None => {
            flags::find(name).is_some()
                || FLAGS
                    .iter()
                    .any(|f| f.short.map(String::from).as_deref() == Some(name))
        }
    };
    let named = |names: &[String], flag: &str| {
        names.iter().any(|n| match n.strip_suffix('*') {
            Some(prefix) => flag.starts_with(prefix),
            None => n == flag,
        })
    };
    let unknown: Vec<&String> = main
        .iter()
        .chain(&upstream)
        .filter(|n| !exists(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "the README names flags git-sync does not have: {unknown:?}"
    );
    let missing: Vec<&str> = FLAGS
        .iter()
        .map(|f| f.name)
        .filter(|name| !named(&main, name) && !named(&upstream, name))
        .collect();
    assert!(
        missing.is_empty(),
        "flags missing from the README's tables: {missing:?}"
    );
}

#[test]
fn the_readme_gives_the_defaults_the_parser_uses() {
    use gitsync::config::flags;
    let readme = readme();
    // Rows of one flag whose default is one quoted value: `--period` | `10s`.
    let mut checked = Vec::new();
    for row in table_rows(&readme, "| flag | default | meaning |") {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (Some(name), Some(default)) = (
            cells[1]
                .strip_prefix("`--")
                .and_then(|c| c.strip_suffix('`')),
            cells[2].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
        ) else {
            continue;
        };
        if name.contains('`') || default.contains('`') {
            continue;
        }
        let flag = flags::find(name).unwrap_or_else(|| panic!("no flag --{name}"));
        assert_eq!(flag.default, default, "the README's default of --{name}");
        checked.push(name);
    }
    assert!(
        checked.len() >= 8,
        "too few defaults found to check: {checked:?}"
    );
}

/// Every `GITSYNC_*` and `GIT_SYNC_*` variable the examples and the
/// README set is one a flag reads: a misspelt one would set nothing.
#[test]
fn the_examples_and_the_readme_set_only_variables_git_sync_reads() {
    let mut texts: Vec<(String, String)> = examples()
        .iter()
        .map(|p| (p.display().to_string(), fs::read_to_string(p).unwrap()))
        .collect();
    texts.push(("README.md".into(), readme()));
    let mut checked = 0;
    for (file, text) in &texts {
        // A name, then what sets it (`=` or a manifest's `value`), as
        // opposed to one named in prose.
        let set: Vec<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|name| {
                ["GITSYNC_", "GIT_SYNC_"]
                    .iter()
                    .any(|p| name.len() > p.len() && name.starts_with(p))
            })
            .map(str::to_string)
            .filter(|name| {
                text.contains(&format!("{name}="))
                    || text.contains(&format!("name: {name}"))
                    || text.contains(&format!("{{name: {name}"))
            })
            .collect();
        checked += set.len();
        let unknown = gitsync::config::env_names::unknown(&set);
        assert!(unknown.is_empty(), "{file} sets {unknown:?}");
    }
    assert!(checked >= 20, "too few variables found: {checked}");
}
