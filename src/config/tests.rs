//! Tests of the whole parse: flags, env layering, v3 names, placement.

use super::placement::{default_link_name, local_directory_name};
use super::*;
use std::collections::HashMap;

fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |k: &str| env.get(k).cloned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match parse(&args, &lookup, Path::new("/cwd"))? {
        Action::Run(c) => Ok(*c),
        Action::Print(_) => panic!("expected a config"),
    }
}

#[test]
fn defaults_and_link_name() {
    let c = run(&["--repo=https://h/org/site.git", "--root=r"], &[]).unwrap();
    assert_eq!(c.root, PathBuf::from("/cwd/r"));
    assert_eq!(c.link, PathBuf::from("/cwd/r/site.git"));
    assert_eq!(c.git_ref, "HEAD");
    assert_eq!(c.period, Duration::from_secs(10));
    assert_eq!(c.sync_timeout, Duration::from_secs(120));
    assert_eq!(c.depth, 1);
    assert_eq!(c.max_failures, 0);
    assert_eq!(c.init_max_failures, 0);
    assert_eq!(c.git_gc, GcMode::Always);
    assert_eq!(c.dest, None);
}

#[test]
fn deprecated_names_in_use_are_listed_with_their_replacements() {
    // The 2015 manifest: dest mode is a mode here, not a name to replace.
    let manifest = [
        ("GIT_SYNC_REPO", "https://h/site.git"),
        ("GIT_SYNC_DEST", "/git"),
        ("GIT_SYNC_BRANCH", "master"),
        ("GIT_SYNC_REV", "FETCH_HEAD"),
        ("GIT_SYNC_WAIT", "10"),
    ];
    let c = run(&[], &manifest).unwrap();
    assert_eq!(
        c.deprecated_names,
        [
            "env GIT_SYNC_REPO: use GITSYNC_REPO",
            "--branch (env GIT_SYNC_BRANCH): use --ref instead",
            "--rev (env GIT_SYNC_REV): use --ref instead",
            "--wait (env GIT_SYNC_WAIT): use --period instead (seconds, may be fractional)",
        ]
    );
    // v4 names, a v3 flag at its zero value (upstream ignores it) and
    // another tool's variable read as a fallback: nothing to say.
    let env = [
        ("GITSYNC_REPO", "https://h/site.git"),
        ("GIT_SYNC_WAIT", "0"),
        ("AZURE_CLIENT_ID", "id"),
    ];
    let c = run(&["--root=/r", "--ssh=false"], &env).unwrap();
    assert!(c.deprecated_names.is_empty(), "{:?}", c.deprecated_names);
    let c = run(
        &[
            "--repo=x",
            "--root=/r",
            "--dest=html",
            "--username=u",
            "--password=p",
        ],
        &[("GIT_KNOWN_HOSTS", "false")],
    )
    .unwrap();
    assert_eq!(c.deprecated_names.len(), 3, "{:?}", c.deprecated_names);
    assert!(c.deprecated_names[0].starts_with("--password: use env GITSYNC_PASSWORD"));
    assert_eq!(
        c.deprecated_names[1],
        "env GIT_KNOWN_HOSTS: use GITSYNC_SSH_KNOWN_HOSTS"
    );
    assert!(c.deprecated_names[2].starts_with("--dest: use --link instead"));
}

#[test]
fn flag_beats_new_env_beats_old_env_and_a_difference_is_reported() {
    let env = [
        ("GITSYNC_PERIOD", "2s"),
        ("GIT_SYNC_PERIOD", "3s"),
        ("GIT_SYNC_DEPTH", "5"),
    ];
    let c = run(&["--repo=x", "--root=/r", "--period=1s"], &env).unwrap();
    assert_eq!(c.period, Duration::from_secs(1));
    assert_eq!(c.depth, 5);
    // Nothing to say: the command line decided.
    assert!(c.names_overridden.is_empty(), "{:?}", c.names_overridden);
    let c = run(&["--repo=x", "--root=/r"], &env).unwrap();
    assert_eq!(c.period, Duration::from_secs(2));
    assert_eq!(
        c.names_overridden,
        [
            "env GITSYNC_PERIOD \"2s\" is used, not env GIT_SYNC_PERIOD \"3s\": the newer \
          name wins (upstream's newest releases take the older one); set only one"
        ]
    );
    let hosts = [
        ("GITSYNC_SSH_KNOWN_HOSTS", "true"),
        ("GIT_SYNC_KNOWN_HOSTS", "false"),
        ("GIT_KNOWN_HOSTS", "false"),
    ];
    let c = run(&["--repo=x", "--root=/r"], &hosts).unwrap();
    assert!(c.auth.ssh.known_hosts);
    assert_eq!(c.names_overridden.len(), 2, "{:?}", c.names_overridden);
    // The same value twice (charts set both names): nothing to say.
    let same = [("GITSYNC_DEPTH", "0"), ("GIT_SYNC_DEPTH", "0")];
    let c = run(&["--repo=x", "--root=/r"], &same).unwrap();
    assert!(c.names_overridden.is_empty(), "{:?}", c.names_overridden);
    // A secret is named, never shown.
    let pw = [
        ("GITSYNC_PASSWORD", "new-pw"),
        ("GIT_SYNC_PASSWORD", "old-pw"),
    ];
    let c = run(&["--repo=https://h/r", "--root=/r", "--username=u"], &pw).unwrap();
    assert_eq!(c.names_overridden.len(), 1);
    assert!(
        !c.names_overridden[0].contains("pw"),
        "{:?}",
        c.names_overridden
    );
    let c = run(&[], &[("GITSYNC_REPO", "x"), ("GITSYNC_ROOT", "/r")]).unwrap();
    assert_eq!(c.repo, "x");
}

#[test]
fn a_user_in_the_repo_url_and_username_do_not_go_together() {
    let pw = [("GITSYNC_PASSWORD", "p")];
    for repo in [
        "https://bot:t@h/org/r",
        "https://bot@h/org/r",
        "ssh://git@h/org/r",
    ] {
        let e = err(
            &[&format!("--repo={repo}"), "--root=/r", "--username=u"],
            &pw,
        );
        assert!(e.starts_with("invalid value for --username"), "{e}");
        assert!(e.contains("may not be given in --repo"), "{e}");
        assert!(!e.contains(":t@"), "{e}");
    }
    // An @ further on is no user; a user alone in the URL is fine.
    run(
        &["--repo=https://h/org/r@v2", "--root=/r", "--username=u"],
        &pw,
    )
    .unwrap();
    run(&["--repo=https://bot:t@h/org/r", "--root=/r"], &[]).unwrap();
}

#[test]
fn another_tools_variable_is_read_only_when_ours_is_not_set() {
    let base = ["--repo=https://dev.azure.com/o/p/_git/r", "--root=/r"];
    let azure = [
        ("GITSYNC_AZURE_WORKLOAD_IDENTITY", "true"),
        ("AZURE_CLIENT_ID", "from-webhook"),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
    ];
    let c = run(&base, &azure).unwrap();
    let id = |c: &Config| c.auth.azure.as_ref().unwrap().client_id.clone();
    assert_eq!(id(&c), "from-webhook");
    let mut mine = azure.to_vec();
    mine.push(("GITSYNC_AZURE_CLIENT_ID", "mine"));
    let c = run(&base, &mine).unwrap();
    assert_eq!(id(&c), "mine");
    assert!(c.names_overridden.is_empty(), "{:?}", c.names_overridden);
}

#[test]
fn endpoint_urls_must_be_http_urls_with_a_host() {
    let base = ["--repo=x", "--root=/r"];
    for flag in ["webhook-url", "askpass-url"] {
        for bad in ["not-a-url", "ftp://h/x", "http:///x", "http://u:s3cret@/x"] {
            let arg = format!("--{flag}={bad}");
            let e = run(&[base[0], base[1], &arg], &[]).unwrap_err().to_string();
            assert!(e.contains(&format!("--{flag}")), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        let arg = format!("--{flag}=https://h:8443/hook?x=1");
        assert!(run(&[base[0], base[1], &arg], &[]).is_ok());
    }
    let e = run(
        &base,
        &[
            ("GITSYNC_GITHUB_BASE_URL", "api.example.com"),
            ("GITSYNC_GITHUB_APP_PRIVATE_KEY", "k"),
            ("GITSYNC_GITHUB_APP_APPLICATION_ID", "1"),
            ("GITSYNC_GITHUB_APP_INSTALLATION_ID", "2"),
        ],
    )
    .unwrap_err();
    assert!(e.to_string().contains("--github-base-url"), "{e}");
}

#[test]
fn bad_values_name_the_flag() {
    let e = run(&["--repo=x", "--root=/r", "--period=5ms"], &[]).unwrap_err();
    assert!(e.to_string().contains("--period"), "{e}");
    let e = run(&["--repo=x", "--root=/r"], &[("GITSYNC_DEPTH", "-2")]).unwrap_err();
    assert!(e.to_string().contains("--depth"), "{e}");
    let e = err(
        &["--repo=x", "--root=/r", "--git-config=protocol.version:3"],
        &[],
    );
    assert!(e.contains("--git-config") && e.contains("\"3\""), "{e}");
    let later = [
        "--repo=x",
        "--root=/r",
        "--git-config-add=Protocol.Version:2",
    ];
    assert!(run(&later, &[("GITSYNC_GIT_CONFIG", "protocol.version:v2")]).is_ok());
}

#[test]
fn git_config_values_git_refuses_name_the_key_and_where_it_was_given() {
    let args = [
        "--repo=x",
        "--root=/r",
        "--git-config-add=core.symlinks:maybe",
    ];
    let e = err(&args, &[]);
    assert!(
        e.starts_with("invalid value for --git-config-add (flag): core.symlinks \"maybe\""),
        "{e}"
    );
    let e = err(
        &["--repo=x", "--root=/r"],
        &[("GITSYNC_GIT_CONFIG", "pack.windowMemory:12q")],
    );
    assert!(e.contains("--git-config (env GITSYNC_GIT_CONFIG)"), "{e}");
    let git_env = [
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "http.followRedirects"),
        ("GIT_CONFIG_VALUE_0", "sometimes"),
    ];
    let e = err(&["--repo=x", "--root=/r"], &git_env);
    assert!(
        e.contains("GIT_CONFIG_VALUE_<n> (env): http.followRedirects"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gitconfig");
    std::fs::write(&file, "[http]\n\tsslVerify = nope\n").unwrap();
    let global = [("GIT_CONFIG_GLOBAL", file.to_str().unwrap())];
    let e = err(&["--repo=x", "--root=/r"], &global);
    assert!(
        e.contains("user's git config file: http.sslVerify \"nope\""),
        "{e}"
    );
    // A proxy URL is not repeated: it may hold a password.
    let e = err(
        &[
            "--repo=x",
            "--root=/r",
            "--git-config=http.proxy:ftp://u:S3CRET@p",
        ],
        &[],
    );
    assert!(
        e.contains("--git-config (flag): http.proxy names a proxy of scheme \"ftp\"")
            && !e.contains("S3CRET"),
        "{e}"
    );
    // A flag's value, read last, is the one that counts.
    let over = ["--repo=x", "--root=/r", "--git-config=http.sslVerify:false"];
    assert!(run(&over, &global).is_ok());
    let e = run(&["--repo=htps://h/x.git", "--root=/r"], &[]).unwrap_err();
    assert!(
        e.to_string().contains("--repo") && e.to_string().contains("\"htps\""),
        "{e}"
    );
    for fine in [
        "HTTPS://h/x",
        "ssh://git@h/x",
        "git@h:x",
        "/srv/x",
        "file:///srv/x",
    ] {
        assert!(
            run(&[&format!("--repo={fine}"), "--root=/r"], &[]).is_ok(),
            "{fine}"
        );
    }
    // A made-up prefix that insteadOf rewrites is git's business.
    let rewritten = [
        "--repo=corp://x",
        "--root=/r",
        r#"--git-config="url.https://h/.insteadOf":corp://"#,
    ];
    assert!(run(&rewritten, &[]).is_ok());
    let e = run(&["--repo=x", "--root=/r", "--git-gc=sometimes"], &[]).unwrap_err();
    assert!(e.to_string().contains("--git-gc"), "{e}");
    let e = run(&["--root=/r"], &[]).unwrap_err();
    assert!(e.to_string().contains("--repo"), "{e}");
    // A value out of range names where it was set, as one that does
    // not parse does: the v3 name that won, or the env variable.
    let e = run(&["--repo=x", "--root=/r", "--period=5ms"], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for --period (flag): must be at least 10ms"
    );
    // Negative durations parse, as Go's do: refused where upstream
    // asks for a minimum, with its message; elsewhere they act as zero.
    let e = run(&["--repo=x", "--root=/r", "--period=-1s"], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for --period (flag): must be at least 10ms"
    );
    let cfg = run(
        &["--repo=x", "--root=/r", "--stale-worktree-timeout=-1m"],
        &[("GITSYNC_WEBHOOK_TIMEOUT", "-1s")],
    )
    .unwrap();
    assert_eq!(cfg.stale_worktree_timeout, Duration::ZERO);
    let e = run(
        &["--repo=x", "--root=/r"],
        &[("GIT_SYNC_WAIT", "0.001"), ("GITSYNC_PERIOD", "10s")],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for --wait (env GIT_SYNC_WAIT): must be at least 10ms"
    );
    let e = run(&["--repo=x", "--root=/r"], &[("GITSYNC_DEPTH", "-1")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for --depth (env GITSYNC_DEPTH): must be 0 or more"
    );
    // So does a value that is none of a flag's choices.
    let e = run(&["--repo=x", "--root=/r"], &[("GIT_SYNC_SUBMODULES", "no")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for --submodules (env GIT_SYNC_SUBMODULES): \"no\" is not one of \
         recursive, shallow, off"
    );
    let e = run(&["--repo=x", "--root=/r", "--log-format=xml"], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for --log-format (flag): \"xml\" is not json or text"
    );

    // Typed values must parse even where their feature is off.
    let e = run(
        &["--repo=x", "--root=/r", "--webhook-success-status=abc"],
        &[],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value for --webhook-success-status (flag): \"abc\" is not an integer"
    );
    let e = run(&["--repo=x", "--root=/r", "--ref="], &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid value for --ref: must not be empty"),
        "{e}"
    );
    let e = run(&["--repo=x", "--root=/r"], &[("GITSYNC_REF", "")]).unwrap_err();
    assert!(e.to_string().contains("--ref"), "{e}");
    // A name no remote can have fails at start, not at every pass,
    // under the name the user gave.
    for (args, env, flag) in [
        (vec!["--ref=main~1"], vec![], "--ref (flag)"),
        (vec!["--ref=HEAD^"], vec![], "--ref (flag)"),
        (
            vec![],
            vec![("GITSYNC_REF", "main@{1}")],
            "--ref (env GITSYNC_REF)",
        ),
        (vec!["--rev=v1..v2"], vec![], "--rev (flag)"),
        (
            vec![],
            vec![("GIT_SYNC_BRANCH", "my branch")],
            "--branch (env GIT_SYNC_BRANCH)",
        ),
        (vec!["--ref=topic/"], vec![], "--ref (flag)"),
        (vec!["--ref=a.lock"], vec![], "--ref (flag)"),
    ] {
        let args = [vec!["--repo=x", "--root=/r"], args].concat();
        let e = run(&args, &env).unwrap_err().to_string();
        assert!(e.starts_with(&format!("invalid value for {flag}")), "{e}");
    }
    for ok in [
        "feature/x-1",
        "refs/tags/v1.2",
        "v1.0",
        "HEAD",
        "0123456789abcdef",
    ] {
        let c = run(&["--repo=x", "--root=/r", &format!("--ref={ok}")], &[]).unwrap();
        assert_eq!(c.git_ref, ok);
    }
    let env = [("GITSYNC_EXECHOOK_BACKOFF", "3")];
    let e = run(&["--repo=x", "--root=/r"], &env).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid value for --exechook-backoff (env GITSYNC_EXECHOOK_BACKOFF)"),
        "{e}"
    );
}

#[test]
fn cookie_file_from_flag_env_or_git_config() {
    let base = ["--repo=x", "--root=/r"];
    assert_eq!(run(&base, &[]).unwrap().auth.cookie_file, None);
    let upstream = Some(PathBuf::from(auth::DEFAULT_COOKIE_FILE));
    let c = run(&[&base[..], &["--cookie-file"]].concat(), &[]).unwrap();
    assert_eq!(c.auth.cookie_file, upstream);
    let c = run(&base, &[("GIT_COOKIE_FILE", "true")]).unwrap();
    assert_eq!(c.auth.cookie_file, upstream);
    let c = run(
        &[
            &base[..],
            &["--cookie-file", "--git-config=http.cookiefile:/s/jar"],
        ]
        .concat(),
        &[],
    )
    .unwrap();
    assert_eq!(c.auth.cookie_file, Some(PathBuf::from("/s/jar")));
}

#[test]
fn link_and_files_relative_to_root() {
    let c = run(
        &[
            "--repo=x",
            "--root=/r",
            "--link=../out/l",
            "--error-file=e/err.json",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.link, PathBuf::from("/out/l"));
    assert_eq!(c.error_file, Some(PathBuf::from("/r/e/err.json")));
}

#[test]
fn link_names() {
    // As upstream: the last element of the URL split at '/', as is.
    assert_eq!(
        default_link_name("git@host:org/repo.git").as_deref(),
        Some("repo.git")
    );
    assert_eq!(default_link_name("/srv/repo/").as_deref(), Some("repo"));
    assert_eq!(
        default_link_name("file:///tmp/a.git").as_deref(),
        Some("a.git")
    );
    assert_eq!(default_link_name("https://h/org/.hidden"), None);
    assert_eq!(default_link_name("."), None);
    // A local path that names none: its directory's name.
    let tmp = tempfile::TempDir::new().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    for (repo, cwd) in [(".", &site), ("..", &site.join("sub")), ("./", &site)] {
        assert_eq!(
            local_directory_name(repo, cwd).as_deref(),
            Some("site"),
            "{repo}"
        );
    }
    assert_eq!(local_directory_name("file://.", &site), None);
    // A working tree's `.git`: the tree's name.
    std::fs::create_dir_all(site.join(".git")).unwrap();
    let dot_git = site.join(".git").display().to_string();
    for repo in [
        format!("file://{dot_git}"),
        format!("file://{dot_git}/"),
        dot_git.clone(),
        ".git".into(),
        "../.git".into(),
    ] {
        let cwd = if repo.starts_with("..") {
            site.join("sub")
        } else {
            site.clone()
        };
        assert_eq!(
            local_directory_name(&repo, &cwd).as_deref(),
            Some("site"),
            "{repo}"
        );
    }
    assert_eq!(local_directory_name("./absent/.", &site), None);
    for link in ["--link=.git", "--link=out/.site", "--dest=.worktrees"] {
        let e = err(&["--repo=x", "--root=/r", link], &[]);
        let flag = link.split('=').next().unwrap_or_default();
        assert_eq!(
            e,
            format!("invalid value for {flag} (flag): must not start with '.'"),
        );
    }
    // Nor below one of the root's hidden directories, however named.
    for link in [
        "--link=.worktrees/x",
        "--link=.git/site",
        "--link=a/../.worktrees/x",
        "--link=/r/.git/x",
    ] {
        let e = err(&["--repo=x", "--root=/r", link], &[]);
        assert!(
            e.starts_with("invalid value for --link (flag): must not be inside a directory"),
            "{link}: {e}"
        );
    }
    // A dot directory outside the root is the user's business.
    let c = run(&["--repo=x", "--root=/r", "--link=/srv/.sites/a"], &[]).unwrap();
    assert_eq!(c.link, PathBuf::from("/srv/.sites/a"));
}

fn err(args: &[&str], env: &[(&str, &str)]) -> String {
    run(args, env).unwrap_err().to_string()
}

#[test]
fn v3_branch_and_rev_fold_into_ref() {
    let base = ["--repo=x", "--root=/r"];
    let with = |env: &[(&str, &str)]| run(&base, env).unwrap().git_ref;
    assert_eq!(with(&[]), "HEAD");
    assert_eq!(with(&[("GIT_SYNC_BRANCH", "dev")]), "dev");
    assert_eq!(
        with(&[("GIT_SYNC_BRANCH", "dev"), ("GIT_SYNC_REV", "HEAD")]),
        "dev"
    );
    assert_eq!(with(&[("GIT_SYNC_REV", "v1.0")]), "v1.0");
    // Beyond upstream: the 2015 manifest's FETCH_HEAD means the branch tip.
    assert_eq!(
        with(&[
            ("GIT_SYNC_BRANCH", "master"),
            ("GIT_SYNC_REV", "FETCH_HEAD")
        ]),
        "master"
    );
    assert_eq!(with(&[("GIT_SYNC_REV", "FETCH_HEAD")]), "HEAD");
    let c = run(&["--repo=x", "--root=/r", "--branch=b", "--rev=HEAD"], &[]).unwrap();
    assert_eq!(c.git_ref, "b");
    // An error: both, with another rev.
    let e = err(
        &base,
        &[("GIT_SYNC_BRANCH", "dev"), ("GIT_SYNC_REV", "v1.0")],
    );
    assert!(e.contains("--rev"), "{e}");
    // With --ref as well, the v3 names win, as upstream; a --ref of
    // another value is warned about.
    let c = run(
        &["--repo=x", "--root=/r", "--ref=main", "--branch=dev"],
        &[],
    )
    .unwrap();
    assert_eq!(c.git_ref, "dev");
    assert_eq!(
        c.names_overridden,
        [
            "--branch (flag) \"dev\" is used, not --ref (flag) \"main\": as in upstream v4, \
          a deprecated v3 name wins over its v4 name; set only one"
        ]
    );
    let c = run(
        &["--repo=x", "--root=/r", "--rev=v1"],
        &[("GITSYNC_REF", "main")],
    )
    .unwrap();
    assert_eq!(c.git_ref, "v1");
    assert!(c.names_overridden[0]
        .starts_with("--rev (flag) \"v1\" is used, not --ref (env GITSYNC_REF)"));
    // The same value under both names (Apache Airflow's chart sets
    // GIT_SYNC_BRANCH and GITSYNC_REF, rev HEAD): nothing to say.
    let airflow = [
        ("GIT_SYNC_REV", "HEAD"),
        ("GITSYNC_REF", "v2-2-stable"),
        ("GIT_SYNC_BRANCH", "v2-2-stable"),
    ];
    let c = run(&base, &airflow).unwrap();
    assert_eq!(c.git_ref, "v2-2-stable");
    assert!(c.names_overridden.is_empty(), "{:?}", c.names_overridden);
    // No --ref at all (the 2015 manifest): its default lost nothing.
    for v3 in [("GIT_SYNC_BRANCH", "master"), ("GIT_SYNC_REV", "v1")] {
        let c = run(&base, &[v3]).unwrap();
        assert!(
            c.names_overridden.is_empty(),
            "{v3:?}: {:?}",
            c.names_overridden
        );
    }
}

#[test]
fn v3_names_win_over_their_v4_names_as_upstream() {
    let base = ["--repo=x", "--root=/r"];
    let won = |env: &[(&str, &str)]| {
        let c = run(&base, env).unwrap();
        let won = c.names_overridden.clone();
        (c, won)
    };
    // Equal values: quietly.
    let (c, w) = won(&[
        ("GIT_SYNC_DEST", "repo"),
        ("GITSYNC_LINK", "repo"),
        ("GIT_SYNC_WAIT", "5"),
        ("GITSYNC_PERIOD", "5s"),
        ("GIT_SYNC_MAX_SYNC_FAILURES", "3"),
        ("GITSYNC_MAX_FAILURES", "3"),
        ("GIT_SYNC_TIMEOUT", "60"),
        ("GITSYNC_SYNC_TIMEOUT", "1m"),
    ]);
    assert_eq!(c.link, PathBuf::from("/r/repo"));
    assert_eq!(c.period, Duration::from_secs(5));
    assert_eq!(
        (c.max_failures, c.sync_timeout),
        (3, Duration::from_secs(60))
    );
    assert!(w.is_empty(), "{w:?}");
    // Other values: the v3 one, and a warning naming both.
    let (c, w) = won(&[
        ("GIT_SYNC_DEST", "old"),
        ("GITSYNC_LINK", "new"),
        ("GIT_SYNC_WAIT", "60"),
        ("GITSYNC_PERIOD", "5s"),
        ("GIT_SYNC_MAX_SYNC_FAILURES", "-1"),
        ("GITSYNC_MAX_FAILURES", "3"),
        ("GIT_SYNC_TIMEOUT", "30"),
        ("GITSYNC_SYNC_TIMEOUT", "1m"),
    ]);
    assert_eq!(c.link, PathBuf::from("/r/old"));
    assert_eq!(c.period, Duration::from_secs(60));
    assert_eq!(
        (c.max_failures, c.sync_timeout),
        (-1, Duration::from_secs(30))
    );
    let starts = [
        "--dest (env GIT_SYNC_DEST) \"old\" is used, not --link (env GITSYNC_LINK) \"new\"",
        "--wait (env GIT_SYNC_WAIT) \"60\" is used, not --period (env GITSYNC_PERIOD) \"5s\"",
        "--timeout (env GIT_SYNC_TIMEOUT) \"30\" is used, not --sync-timeout",
        "--max-sync-failures (env GIT_SYNC_MAX_SYNC_FAILURES) \"-1\" is used, not --max-failures",
    ];
    assert_eq!(w.len(), starts.len(), "{w:?}");
    for s in starts {
        assert!(w.iter().any(|l| l.starts_with(s)), "{s}: {w:?}");
    }
    // The v3 hook name too, and -v.
    let c = run(
        &["--repo=x", "--root=/r", "--v=3", "-v=1"],
        &[
            ("GIT_SYNC_HOOK_COMMAND", "/old"),
            ("GITSYNC_EXECHOOK_COMMAND", "/new"),
        ],
    )
    .unwrap();
    assert_eq!(c.verbosity, 3);
    assert_eq!(
        c.ops.exechook.as_ref().map(|h| h.command.as_str()),
        Some("/old")
    );
    assert_eq!(c.names_overridden.len(), 2, "{:?}", c.names_overridden);
}

#[test]
fn v3_wait_timeout_failures_and_v() {
    let base = ["--repo=x", "--root=/r"];
    let c = run(&base, &[("GIT_SYNC_WAIT", "0.25")]).unwrap();
    assert_eq!(c.period, Duration::from_millis(250));
    let c = run(&["--repo=x", "--root=/r", "--wait=10"], &[]).unwrap();
    assert_eq!(c.period, Duration::from_secs(10));
    assert!(err(&base, &[("GIT_SYNC_WAIT", "ten")]).contains("--wait"));
    assert!(err(&base, &[("GIT_SYNC_WAIT", "0.001")]).contains("--wait (env GIT_SYNC_WAIT)"));

    let c = run(&base, &[("GIT_SYNC_TIMEOUT", "30")]).unwrap();
    assert_eq!(c.sync_timeout, Duration::from_secs(30));
    assert!(err(&["--repo=x", "--root=/r", "--timeout=-3"], &[]).contains("--timeout"));

    let c = run(&base, &[("GIT_SYNC_MAX_SYNC_FAILURES", "-1")]).unwrap();
    assert_eq!(c.max_failures, -1);
    assert_eq!(c.init_max_failures, -1);

    let c = run(&["--repo=x", "--root=/r", "--v=4"], &[]).unwrap();
    assert_eq!(c.verbosity, 4);
    let c = run(&["--repo=x", "--root=/r", "--v=-1", "-v=2"], &[]).unwrap();
    assert_eq!(c.verbosity, 2);
}

#[test]
fn v3_change_permissions_is_refused_unless_zero() {
    let base = ["--repo=x", "--root=/r"];
    assert!(run(&base, &[("GIT_SYNC_PERMISSIONS", "0")]).is_ok());
    let e = err(&base, &[("GIT_SYNC_PERMISSIONS", "0775")]);
    assert!(
        e.contains("--change-permissions") && e.contains("no longer supported"),
        "{e}"
    );
}

#[test]
fn dest_with_root_is_the_link_dest_without_root_is_served() {
    // v3 mode: --dest names the link under --root.
    let c = run(&["--repo=x", "--root=/r", "--dest=site"], &[]).unwrap();
    assert_eq!(c.link, PathBuf::from("/r/site"));
    assert_eq!(c.dest, None);
    let c = run(&["--repo=x", "--root=/r", "--dest=a", "--link=b"], &[]).unwrap();
    assert_eq!(c.link, PathBuf::from("/r/a"));
    // Dest mode: the 2015 manifest.
    let env = [
        ("GIT_SYNC_REPO", "https://h/test.git"),
        ("GIT_SYNC_DEST", "/git"),
        ("GIT_SYNC_BRANCH", "master"),
        ("GIT_SYNC_REV", "FETCH_HEAD"),
        ("GIT_SYNC_WAIT", "10"),
    ];
    let c = run(&[], &env).unwrap();
    assert_eq!(c.dest, Some(PathBuf::from("/git")));
    assert!(!c.root.starts_with("/git"), "{:?}", c.root);
    assert_eq!(c.git_ref, "master");
    assert_eq!(c.period, Duration::from_secs(10));
    // Git state never inside the served directory.
    let e = err(&["--state-dir=/git/.state"], &env);
    assert!(e.contains("--state-dir"), "{e}");
    // The same in an image that sets GITSYNC_ROOT=/git, as upstream's
    // does: a DEST that is the root (which upstream refuses) is served.
    let in_image = [&env[..], &[("GITSYNC_ROOT", "/git")]].concat();
    let c = run(&[], &in_image).unwrap();
    assert_eq!(c.dest, Some(PathBuf::from("/git")));
    assert!(!c.root.starts_with("/git"), "{:?}", c.root);
    let c = run(&["--repo=x", "--root=/git", "--dest=/git/"], &[]).unwrap();
    assert_eq!(c.dest, Some(PathBuf::from("/git")));
    // Any other DEST is the link's name there, as upstream's image.
    let c = run(&["--repo=x", "--dest=html"], &[("GITSYNC_ROOT", "/git")]).unwrap();
    assert_eq!((c.link, c.dest), (PathBuf::from("/git/html"), None));
    let c = run(&["--repo=x", "--link=html"], &[("GITSYNC_ROOT", "/git")]).unwrap();
    assert_eq!((c.link, c.dest), (PathBuf::from("/git/html"), None));
    // v4's --link is never the served directory.
    let e = err(&["--repo=x", "--root=/git", "--link=/git"], &[]);
    assert!(e.contains("must not be --root"), "{e}");
}

#[test]
fn an_ssh_command_wins_over_the_ssh_flags_as_openssh_keeps_first_values() {
    use super::ssh_command::HostChecking;
    let flags = [
        "--repo=x",
        "--root=/r",
        "--ssh-key-file=/flag/key",
        "--ssh-known-hosts-file=/flag/known",
    ];
    let c = run(&flags, &[]).unwrap();
    assert_eq!(
        c.auth.ssh.effective_key_files(),
        [PathBuf::from("/flag/key")]
    );
    assert_eq!(c.auth.ssh.host_checking(), HostChecking::Strict);
    let command = "ssh -i /cmd/key -o UserKnownHostsFile=/cmd/known -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes";
    let env = [("GIT_SSH_COMMAND", command), ("SSH_AUTH_SOCK", "/agent")];
    let c = run(&flags, &env).unwrap();
    let ssh = &c.auth.ssh;
    assert_eq!(
        ssh.effective_key_files(),
        [PathBuf::from("/cmd/key"), PathBuf::from("/flag/key")]
    );
    assert_eq!(
        ssh.effective_known_hosts_file(),
        PathBuf::from("/cmd/known")
    );
    assert_eq!(ssh.host_checking(), HostChecking::AcceptNew);
    assert!(ssh.agent && !ssh.offers_agent_keys());
    // From the git config when the environment has none; the environment
    // first, as in git.
    let mut with_config = flags.to_vec();
    with_config.push("--git-config=core.sshCommand:ssh -o StrictHostKeyChecking=no");
    let c = run(&with_config, &[]).unwrap();
    assert_eq!(c.auth.ssh.host_checking(), HostChecking::Off);
    let c = run(&with_config, &env).unwrap();
    assert_eq!(c.auth.ssh.host_checking(), HostChecking::AcceptNew);
}
