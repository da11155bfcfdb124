//! Turns the command line into raw values, using clap built from the flag
//! table, with upstream's (Go pflag) syntax: `--flag=value`, `--flag value`,
//! bare booleans and `--flag=true|false`, `-v 6`.

use std::collections::HashMap;

use clap::error::{ContextKind, ContextValue};
use clap::{Arg, ArgAction, Command};

use super::flags::{Flag, Kind, FLAGS};

/// Prefix of the hidden flags that set an env-only option:
/// `--__env__GITSYNC_PASSWORD=secret`.
const ENV_FLAG_PREFIX: &str = "--__env__";

/// Values as the user wrote them, before any validation.
#[derive(Debug, Default, Clone)]
pub struct RawArgs {
    /// Flags given on the command line, by long name.
    pub flags: HashMap<String, Vec<String>>,
    /// Environment values set through `--__env__NAME=value`.
    pub env_overrides: HashMap<String, String>,
}

fn arg_for(flag: &Flag) -> Arg {
    let mut arg = Arg::new(flag.name)
        .long(flag.name)
        .help(help_text(flag))
        .hide(flag.deprecated.is_some());
    if let Some(c) = flag.short {
        arg = arg.short(c);
    }
    match flag.kind {
        Kind::Bool => arg
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .action(ArgAction::Set)
            .value_name("BOOL"),
        Kind::List => arg
            .num_args(1)
            .allow_hyphen_values(true)
            .action(ArgAction::Append)
            .value_name(flag.value_name),
        Kind::Int | Kind::Duration | Kind::Text => arg
            .num_args(1)
            .allow_hyphen_values(true)
            .action(ArgAction::Set)
            .value_name(flag.value_name),
    }
}

/// A flag's line in `--help`: its doc, then its default and its variable
/// as upstream's (pflag) help shows the default and clap shows both. A
/// boolean's `false` goes unsaid, as in pflag. Clap's own `default_value`
/// and `env` are not used: they would make an unset flag look given.
fn help_text(flag: &Flag) -> String {
    let mut text = flag.doc.to_string();
    let unsaid = flag.default.is_empty() || (flag.kind == Kind::Bool && flag.default == "false");
    if !unsaid {
        text.push_str(&format!(" [default: {}]", flag.default));
    }
    if flag.env && flag.deprecated.is_none() {
        text.push_str(&format!(
            " [env: {}]",
            super::flags::env_name("GITSYNC_", flag.name)
        ));
    }
    text
}

/// The clap command, built from the flag table.
pub fn command() -> Command {
    let mut cmd = Command::new("git-sync")
        .about("Keep a directory in sync with a git repository, publishing each commit atomically.")
        .after_help(
            "A variable is read when its flag is not given; the deprecated GIT_SYNC_<NAME> too. \
             The full manual, with the v3 names: git-sync --man",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        // As pflag: a repeated flag is not an error, the last one wins.
        .args_override_self(true)
        .dont_collapse_args_in_usage(true);
    for f in FLAGS {
        cmd = cmd.arg(arg_for(f));
    }
    cmd
}

/// Parse argv (without the program name) into raw values.
/// The error is one line naming the offending flag.
pub fn parse(args: &[String]) -> Result<RawArgs, String> {
    let mut raw = RawArgs::default();
    let mut rest = vec!["git-sync".to_string()];
    for a in args {
        if let Some(kv) = a.strip_prefix(ENV_FLAG_PREFIX) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("flag {a}: expected {ENV_FLAG_PREFIX}NAME=value"))?;
            raw.env_overrides.insert(k.to_string(), v.to_string());
        } else if a == "-?" {
            // Upstream's alias of -h.
            rest.push("-h".to_string());
        } else {
            rest.push(a.clone());
        }
    }
    let matches = command().try_get_matches_from(rest).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("invalid arguments").trim();
        let line = first.strip_prefix("error: ").unwrap_or(first);
        match e.get(ContextKind::InvalidArg).and_then(flag_meant) {
            Some(meant) => format!("{line} (--{meant}?)"),
            None => line.to_string(),
        }
    })?;
    for f in FLAGS {
        if matches.value_source(f.name) == Some(clap::parser::ValueSource::CommandLine) {
            let values: Vec<String> = matches
                .get_many::<String>(f.name)
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            raw.flags.insert(f.name.to_string(), values);
        }
    }
    Ok(raw)
}

/// The flag most likely meant by the unknown argument `given`
/// (`--reff=main`: `ref`), if one is close.
fn flag_meant(given: &ContextValue) -> Option<String> {
    let ContextValue::String(given) = given else {
        return None;
    };
    let name = given.trim_start_matches('-');
    let name = name.split_once('=').map_or(name, |(n, _)| n);
    let known: Vec<&str> = FLAGS
        .iter()
        .filter(|f| f.deprecated.is_none())
        .map(|f| f.name)
        .collect();
    super::spelling::closest(name, name, &known).map(str::to_string)
}

/// The full manual, generated from the flag table.
pub fn manual() -> String {
    let mut out = String::from(
        "GIT-SYNC(1)\n\nNAME\n    git-sync - keep a directory in sync with a git repository\n\n\
         SYNOPSIS\n    git-sync --repo=<url> --root=<dir> [OPTIONS]\n\n\
         DESCRIPTION\n    git-sync polls a remote git repository, fetches only the commit the \
         target ref points at,\n    checks it out into <root>/.worktrees/<hash> and publishes it by \
         atomically swapping the\n    relative symlink <root>/<link>. Readers never see a \
         half-updated tree.\n\n\
         OPTIONS\n    Every flag may also be set through the environment variable \
         GITSYNC_<NAME> (upper case,\n    dashes as underscores), or the deprecated GIT_SYNC_<NAME>. \
         The command line wins, then\n    GITSYNC_<NAME>; two variables of one flag \
         set to different values are reported at start.\n\n",
    );
    for f in FLAGS.iter().filter(|f| f.deprecated.is_none()) {
        let short = f.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = match f.kind {
            Kind::Bool => String::new(),
            _ => format!(" <{}>", f.value_name),
        };
        out.push_str(&format!("    {short}--{}{value}\n", f.name));
        if f.env {
            out.push_str(&format!(
                "        env: {}\n",
                super::flags::env_name("GITSYNC_", f.name)
            ));
        }
        if !f.default.is_empty() && f.kind != Kind::Bool {
            out.push_str(&format!("        default: {}\n", f.default));
        }
        for line in wrap(f.doc, 72) {
            out.push_str(&format!("        {line}\n"));
        }
        out.push('\n');
    }
    out.push_str(
        "DEPRECATED v3 FLAGS (still accepted; given together with its new name, the old\n    \
         name wins, as in upstream v4, and a different value is warned about at start)\n",
    );
    for f in FLAGS.iter().filter(|f| f.deprecated.is_some()) {
        let env: Vec<&str> = f.extra_env.to_vec();
        let env = if env.is_empty() {
            String::new()
        } else {
            format!(" (env {})", env.join(", "))
        };
        out.push_str(&format!("    --{}{env}: {}\n", f.name, f.doc));
    }
    out.push_str(
        "\nENVIRONMENT (beside the flags')\n    \
         GIT_LFS_SKIP_SMUDGE=1\n        Publish Git LFS files as their pointers, not their \
         content (git-lfs's switch).\n    \
         GIT_LFS_SKIP_DOWNLOAD_ERRORS=1\n        A Git LFS object that cannot be \
         downloaded leaves its file a pointer, rather than failing the sync \
         (lfs.skipdownloaderrors).\n    \
         http_proxy, https_proxy, all_proxy, no_proxy\n        Proxies, as git uses them \
         (http.proxy in --git-config wins): http://, https://, socks4://, socks4a://, \
         socks5:// and socks5h:// URLs, port 1080 unless given.\n    \
         GIT_CONFIG_COUNT, GIT_CONFIG_KEY_<n>, GIT_CONFIG_VALUE_<n>, GIT_SSL_*\n        \
         git config, as git reads it.\n    \
         SSH_AUTH_SOCK\n        The keys of this ssh-agent are offered after those of \
         --ssh-key-file.\n",
    );
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("lines is never empty");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<RawArgs, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn pflag_syntax() {
        let r = p(&[
            "--repo",
            "x",
            "--root=/r",
            "--one-time",
            "-v",
            "6",
            "--max-failures",
            "-1",
        ])
        .unwrap();
        assert_eq!(r.flags["repo"], vec!["x"]);
        assert_eq!(r.flags["root"], vec!["/r"]);
        assert_eq!(r.flags["one-time"], vec!["true"]);
        assert_eq!(r.flags["verbose"], vec!["6"]);
        assert_eq!(r.flags["max-failures"], vec!["-1"]);
        let r = p(&["--one-time=false", "-v=3", "--period=1s", "--period=2s"]).unwrap();
        assert_eq!(r.flags["period"], vec!["2s"]);
        assert_eq!(r.flags["one-time"], vec!["false"]);
        assert_eq!(r.flags["verbose"], vec!["3"]);
        assert_eq!(p(&["-?"]).unwrap().flags["help"], vec!["true"]);
    }

    #[test]
    fn unknown_flag_is_one_line_naming_it() {
        let e = p(&["--no-such-flag"]).unwrap_err();
        assert!(e.contains("--no-such-flag"), "{e}");
        assert!(!e.contains('\n'));
        assert!(!e.contains('?'), "{e}");
        // With the flag meant, when one is close.
        for (given, meant) in [
            ("--reff=main", "(--ref?)"),
            ("--perid", "(--period?)"),
            ("--sync-timout=1s", "(--sync-timeout?)"),
        ] {
            let e = p(&[given]).unwrap_err();
            assert!(e.ends_with(meant) && !e.contains('\n'), "{given}: {e}");
        }
    }

    #[test]
    fn help_shows_each_flags_default_and_variable() {
        let cmd = command();
        let entry = |name: &str| {
            let arg = cmd.get_arguments().find(|a| a.get_id() == name).unwrap();
            arg.get_help().map(ToString::to_string).unwrap_or_default()
        };
        let period = entry("period");
        assert!(
            period.ends_with("[default: 10s] [env: GITSYNC_PERIOD]"),
            "{period}"
        );
        let repo = entry("repo");
        assert!(!repo.contains("[default"), "{repo}");
        assert!(repo.ends_with("[env: GITSYNC_REPO]"), "{repo}");
        // A boolean off by default says no default; one on by default does.
        assert!(!entry("one-time").contains("[default"));
        assert!(entry("ssh-known-hosts").contains("[default: true]"));
        assert!(!entry("help").contains("[env"));
        // As rendered, wrapped to whatever width.
        let help = command().render_help().to_string();
        let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("at least 10ms. [default: 10s] [env: GITSYNC_PERIOD]"));
        assert!(words.ends_with("git-sync --man"), "{help}");
    }

    #[test]
    fn env_flags() {
        let r = p(&["--__env__GITSYNC_PASSWORD=s3cret"]).unwrap();
        assert_eq!(r.env_overrides["GITSYNC_PASSWORD"], "s3cret");
    }
}
