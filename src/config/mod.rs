//! Configuration: flags, environment layering and validation. Yields a plain
//! [`Config`]; nothing outside this module sees clap.
//!
//! Sources, highest first: command-line flag, `GITSYNC_<NAME>`, the deprecated
//! `GIT_SYNC_<NAME>` (and v3's other names), another tool's variable
//! (`AZURE_CLIENT_ID`), the default from the flag table.

pub mod auth;
mod cli;
pub mod flags;
pub mod gitconfig;
mod legacy;
pub mod ops;
mod placement;
pub mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use flags::{Flag, Kind, FLAGS};
use placement::{absolute, placement};

/// Invalid configuration. Displays as one line that names the flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Usage(String),
    #[error("invalid value for --{flag}{}: {reason}", in_parens(.source_name))]
    Invalid {
        flag: String,
        source_name: String,
        reason: String,
    },
    #[error("--{0} is required")]
    Missing(&'static str),
}

/// ` (flag)`, ` (env GITSYNC_X)`, or nothing when the check was not of one
/// source's value (flags that conflict, a default).
fn in_parens(source_name: &str) -> String {
    if source_name.is_empty() {
        String::new()
    } else {
        format!(" ({source_name})")
    }
}

/// When unreachable git objects are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcMode {
    Auto,
    Always,
    Aggressive,
    Off,
}

impl GcMode {
    /// The flag value that selects this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            GcMode::Auto => "auto",
            GcMode::Always => "always",
            GcMode::Aggressive => "aggressive",
            GcMode::Off => "off",
        }
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// What the program should do.
#[derive(Debug)]
pub enum Action {
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (help, version, manual).
    Print(String),
}

/// The validated configuration the program runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub repo: String,
    pub git_ref: String,
    /// Absolute path of the root directory.
    pub root: PathBuf,
    /// Absolute path of the published symlink.
    pub link: PathBuf,
    /// Dest mode: the directory readers serve, mirrored file by file. The
    /// git state then lives in `root` (the private state directory).
    pub dest: Option<PathBuf>,
    pub period: Duration,
    pub period_jitter: Duration,
    pub init_period: Duration,
    pub sync_timeout: Duration,
    pub one_time: bool,
    /// Negative: retry forever.
    pub max_failures: i64,
    pub init_max_failures: i64,
    /// 0: full history.
    pub depth: u32,
    pub touch_file: Option<PathBuf>,
    pub error_file: Option<PathBuf>,
    pub stale_worktree_timeout: Duration,
    pub stale_worktree_grace: Duration,
    pub git_gc: GcMode,
    /// `--git-config`, `--git-config-add` and git's `GIT_CONFIG_COUNT`
    /// entries, in order (see [`gitconfig`]).
    pub git_config: gitconfig::Entries,
    /// How TLS certificates are checked (config and `GIT_SSL_*`).
    pub tls: gitconfig::Tls,
    pub verbosity: u8,
    pub log_format: Option<LogFormat>,
    /// Hooks, HTTP endpoint and triggers.
    pub ops: ops::Ops,
    /// Every way of authenticating to the remote.
    pub auth: auth::AuthConfig,
    /// What is checked out, and how.
    pub checkout: auth::CheckoutConfig,
    /// Set when `--git` was given: it is accepted and ignored.
    pub git_binary_ignored: Option<String>,
    /// One setting given under two names with different values, and which
    /// one is used (a v3 name over its v4 name, see
    /// `Sources::old_name_won`; `GITSYNC_` over `GIT_SYNC_`): warnings for
    /// the start of the log.
    pub names_overridden: Vec<String>,
    /// Deprecated names in use, with what replaces each (see
    /// `Sources::deprecated_in_use`): said once at start.
    pub deprecated_names: Vec<String>,
}

/// Where a value came from, for error messages.
struct Found {
    values: Vec<String>,
    source_name: String,
}

struct Sources<'a> {
    raw: cli::RawArgs,
    env: &'a dyn Fn(&str) -> Option<String>,
    names_overridden: std::cell::RefCell<Vec<String>>,
}

impl Sources<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.raw
            .env_overrides
            .get(name)
            .cloned()
            .or_else(|| (self.env)(name))
    }

    fn lookup(&self, flag: &Flag) -> Option<Found> {
        if let Some(v) = self.raw.flags.get(flag.name) {
            return Some(Found {
                values: v.clone(),
                source_name: "flag".into(),
            });
        }
        let (name, v) = self.env_values(flag).into_iter().next().or_else(|| {
            flag.fallback_env
                .iter()
                .find_map(|n| self.env(n).map(|v| (n.to_string(), v)))
        })?;
        let values = match (flag.kind, flag.name) {
            (Kind::List, "credential") => vec![v],
            (Kind::List, "ssh-key-file") => v.split(':').map(str::to_string).collect(),
            (Kind::List, _) => v.split(',').map(str::to_string).collect(),
            _ => vec![v],
        };
        Some(Found {
            values,
            source_name: format!("env {name}"),
        })
    }

    /// The flag's own environment variables that are set, with their
    /// values, highest first: `GITSYNC_<NAME>`, then the deprecated names
    /// (the design's order, and upstream v4's until its `env.go` began to
    /// keep the last one found).
    fn env_values(&self, flag: &Flag) -> Vec<(String, String)> {
        let standard = [
            flags::env_name("GITSYNC_", flag.name),
            flags::env_name("GIT_SYNC_", flag.name),
        ];
        standard
            .into_iter()
            .filter(|_| flag.env)
            .chain(flag.extra_env.iter().map(|n| n.to_string()))
            .filter_map(|n| self.env(&n).map(|v| (n, v)))
            .collect()
    }

    /// The error for a value of `--name` that parses but is out of range,
    /// naming where it was set, as for a value that does not parse.
    fn out_of_range(&self, name: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            flag: name.to_string(),
            source_name: self
                .lookup(known_flag(name))
                .map(|found| found.source_name)
                .unwrap_or_default(),
            reason: reason.into(),
        }
    }

    /// `--name`, and where it was set: `--branch (env GIT_SYNC_BRANCH)`.
    fn described(&self, name: &'static str) -> String {
        let flag = known_flag(name);
        match self.lookup(flag) {
            Some(found) => format!("--{name} ({})", found.source_name),
            None => format!("--{name}"),
        }
    }

    /// Both v3's `old` and its v4 name `new` were given, with other values,
    /// and `old`'s (`used`) is the one used, as upstream v4 uses it
    /// ("for backwards compatibility, --dest will be used if it is
    /// specified"). Charts that set both names rely on that: Apache
    /// Airflow's sets `GIT_SYNC_BRANCH` with `GITSYNC_REF`,
    /// `GIT_SYNC_DEST` with `GITSYNC_LINK`, `GIT_SYNC_WAIT` with
    /// `GITSYNC_PERIOD`. Upstream says nothing; we warn at start.
    fn old_name_won(&self, old: &'static str, used: &str, new: &'static str, ignored: &str) {
        self.names_overridden.borrow_mut().push(format!(
            "{} {used:?} is used, not {} {ignored:?}: as in upstream v4, a deprecated v3 name \
             wins over its v4 name; set only one",
            self.described(old),
            self.described(new)
        ));
    }

    /// Two environment names of one flag set to different values (and the
    /// command line not setting it): say at start which one is used (upstream
    /// says "env $X was overridden by $Y", and its newest releases use the
    /// older name there). Values that may hold a secret are not shown.
    fn env_names_disagree(&self) {
        const SECRET: [&str; 3] = ["password", "github-app-private-key", "credential"];
        for flag in FLAGS
            .iter()
            .filter(|f| !self.raw.flags.contains_key(f.name))
        {
            let mut set = self.env_values(flag).into_iter();
            let Some((used_name, used)) = set.next() else {
                continue;
            };
            let shown = |v: &str| match SECRET.contains(&flag.name) {
                true => "(value not shown)".to_string(),
                false => format!("{:?}", crate::redact::redact(v)),
            };
            for (name, value) in set.filter(|(_, v)| *v != used) {
                self.names_overridden.borrow_mut().push(format!(
                    "env {used_name} {} is used, not env {name} {}: the newer name wins \
                     (upstream's newest releases take the older one); set only one",
                    shown(&used),
                    shown(&value)
                ));
            }
        }
    }

    /// The deprecated names this configuration is given by, each with what
    /// replaces it, as upstream says at start ("setting --ref from
    /// deprecated --branch", "env $GIT_SYNC_REPO has been deprecated, use
    /// $GITSYNC_REPO instead"). A v3 flag at its zero value (`--wait=0`)
    /// sets nothing, as upstream; dest mode's `--dest` is a mode of its
    /// own here, not a name to replace.
    fn deprecated_in_use(&self, dest_mode: bool) -> Vec<String> {
        let mut out = Vec::new();
        for flag in FLAGS {
            let Some(found) = self.lookup(flag) else {
                continue;
            };
            let from_flag = found.source_name == "flag";
            let named = match from_flag {
                true => format!("--{}", flag.name),
                false => format!("--{} ({})", flag.name, found.source_name),
            };
            if let Some(instead) = flag.deprecated {
                let zero = found.values.iter().all(|v| {
                    let v = v.trim();
                    v.is_empty()
                        || values::parse_int(v) == Ok(0)
                        || values::parse_bool(v) == Ok(false)
                });
                let is_a_mode = dest_mode && flag.name == "dest";
                if !(zero || is_a_mode) {
                    out.push(format!("{named}: {instead}"));
                }
            } else if from_flag && flag.name == "password" {
                out.push(
                    "--password: use env GITSYNC_PASSWORD or --password-file (a flag shows in \
                     the process list)"
                        .into(),
                );
            } else if let Some(env) = found.source_name.strip_prefix("env ") {
                let new = flags::env_name("GITSYNC_", flag.name);
                if !env.starts_with("GITSYNC_") && !flag.fallback_env.contains(&env) {
                    out.push(format!("env {env}: use {new}"));
                }
            }
        }
        out
    }

    /// Whether the flag was given at all (command line or environment).
    fn given(&self, name: &'static str) -> bool {
        let flag = known_flag(name);
        self.lookup(flag).is_some()
    }

    /// The effective single value of a flag, parsed by `parse`, or its default.
    fn get<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let flag = known_flag(name);
        let (value, source_name) = match self.lookup(flag) {
            Some(found) => (
                found.values.last().cloned().unwrap_or_default(),
                found.source_name,
            ),
            None if flag.default.is_empty() => return Ok(None),
            None => (flag.default.to_string(), "default".to_string()),
        };
        parse(&value)
            .map(Some)
            .map_err(|reason| ConfigError::Invalid {
                flag: name.to_string(),
                source_name,
                reason,
            })
    }

    fn text(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .get(name, |s| Ok(s.to_string()))?
            .filter(|s| !s.is_empty()))
    }

    /// An http(s) URL; empty is unset.
    fn http_url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        let parse = |s: &str| match s {
            "" => Ok(None),
            url => values::parse_http_url(url).map(Some),
        };
        Ok(self.get(name, parse)?.flatten())
    }

    fn bool(&self, name: &'static str) -> Result<bool, ConfigError> {
        Ok(self.get(name, values::parse_bool)?.unwrap_or(false))
    }

    fn int(&self, name: &'static str) -> Result<Option<i64>, ConfigError> {
        self.get(name, values::parse_int)
    }

    fn duration(&self, name: &'static str) -> Result<Option<Duration>, ConfigError> {
        self.get(name, values::parse_duration)
    }

    /// Every boolean, integer and duration given must parse, also when
    /// the feature it belongs to is off (`--webhook-success-status=abc`
    /// without a webhook), as upstream's flag parser sees to.
    fn check_types(&self) -> Result<(), ConfigError> {
        for flag in flags::FLAGS.iter().filter(|f| self.lookup(f).is_some()) {
            match flag.kind {
                Kind::Bool => self.get(flag.name, values::parse_bool).map(drop)?,
                Kind::Int => self.get(flag.name, values::parse_int).map(drop)?,
                Kind::Duration => self.get(flag.name, values::parse_duration).map(drop)?,
                Kind::Text | Kind::List => {}
            }
        }
        Ok(())
    }

    fn list(&self, name: &'static str) -> Vec<String> {
        let flag = known_flag(name);
        self.lookup(flag).map(|f| f.values).unwrap_or_default()
    }
}

/// A `scheme://` URL must be one we speak, unless `url.<base>.insteadOf`
/// rewrites it (git allows made-up prefixes there): a typo such as
/// `htps://` is said at start, not as libgit2's "invalid argument: 'port'"
/// at every pass.
fn check_scheme(repo: &str, git_config: &gitconfig::Entries) -> Result<(), ConfigError> {
    const SCHEMES: [&str; 7] = ["https", "http", "ssh", "git", "file", "git+ssh", "ssh+git"];
    let Some((scheme, _)) = repo.split_once("://") else {
        return Ok(());
    };
    let rewritten = git_config.iter().any(|(k, v)| {
        let lower = k.to_ascii_lowercase();
        lower.starts_with("url.") && lower.ends_with(".insteadof") && repo.starts_with(v.as_str())
    });
    if rewritten || SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    Err(invalid(
        "repo",
        format!(
            "unknown URL scheme {scheme:?}: give https://, http://, ssh://, git://, file://, \
             user@host:path or a local path"
        ),
    ))
}

/// `protocol.version` (its last value, the one git reads) must be 0, 1 or
/// 2: git stops at any other, which would otherwise pass here for 2.
fn check_protocol_version(git_config: &gitconfig::Entries) -> Result<(), ConfigError> {
    let last = git_config
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("protocol.version"));
    match last {
        Some((_, v)) if !matches!(v.trim(), "0" | "1" | "2") => Err(invalid(
            "git-config",
            format!("protocol.version {v:?} is not 0, 1 or 2"),
        )),
        _ => Ok(()),
    }
}

/// The table's entry for a flag this module reads by name. The names are
/// literals of this module, each in the table (`flags::FLAGS`): one that
/// is not would panic the first test whose configuration reaches it.
fn known_flag(name: &str) -> &'static Flag {
    flags::find(name).expect("every flag read by config is in the table")
}

fn invalid(flag: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag: flag.to_string(),
        source_name: String::new(),
        reason: reason.into(),
    }
}

/// Parse the process's arguments and environment.
pub fn from_env_and_args(args: &[String]) -> Result<Action, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    parse(args, &env, &cwd)
}

/// Parse `args` (without the program name) with `env` as the environment.
pub fn parse(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<Action, ConfigError> {
    let raw = cli::parse(args).map_err(ConfigError::Usage)?;
    let src = Sources {
        raw,
        env,
        names_overridden: Default::default(),
    };

    if src.bool("help")? {
        return Ok(Action::Print(cli::command().render_help().to_string()));
    }
    if src.bool("version")? {
        return Ok(Action::Print(format!("{}\n", crate::VERSION)));
    }
    if src.bool("man")? {
        return Ok(Action::Print(cli::manual()));
    }

    src.check_types()?;
    let repo = src
        .get("repo", values::parse_repo)?
        .filter(|r| !r.is_empty())
        .ok_or(ConfigError::Missing("repo"))?;
    legacy::check_removed(&src)?;
    let place = placement(&src, &repo, cwd)?;

    let min = Duration::from_millis(10);
    let (period, named) = legacy::period(&src)?;
    if period < min {
        return Err(src.out_of_range(named, "must be at least 10ms"));
    }
    let (sync_timeout, named) = legacy::sync_timeout(&src)?;
    if sync_timeout < min {
        return Err(src.out_of_range(named, "must be at least 10ms"));
    }
    let init_period = src.duration("init-period")?.unwrap_or(period);
    if init_period < min {
        return Err(src.out_of_range("init-period", "must be at least 10ms"));
    }
    let max_failures = legacy::max_failures(&src)?;
    let init_max_failures = src.int("init-max-failures")?.unwrap_or(max_failures);
    let depth = src.int("depth")?.unwrap_or(1);
    let depth = u32::try_from(depth).map_err(|_| src.out_of_range("depth", "must be 0 or more"))?;
    let verbosity = legacy::verbosity(&src)?;
    let verbosity = u8::try_from(verbosity.min(255))
        .map_err(|_| src.out_of_range("verbose", "must be 0 or more"))?;

    let git_gc = match src.text("git-gc")?.as_deref() {
        Some("auto") => GcMode::Auto,
        None | Some("always") => GcMode::Always,
        Some("aggressive") => GcMode::Aggressive,
        Some("off") => GcMode::Off,
        Some(other) => {
            return Err(src.out_of_range(
                "git-gc",
                format!("{other:?} is not one of auto, always, aggressive, off"),
            ))
        }
    };
    let log_format = match src.text("log-format")?.as_deref() {
        None => None,
        Some("json") => Some(LogFormat::Json),
        Some("text") => Some(LogFormat::Text),
        Some(other) => {
            return Err(src.out_of_range("log-format", format!("{other:?} is not json or text")))
        }
    };

    let mut git_config = gitconfig::Entries::new();
    gitconfig::set(
        &mut git_config,
        src.get("git-config", values::parse_git_config)?
            .unwrap_or_default(),
    );
    for s in src.list("git-config-add") {
        git_config.extend(
            values::parse_git_config(&s).map_err(|e| src.out_of_range("git-config-add", e))?,
        );
    }
    let env = |name: &str| src.env(name);
    git_config.extend(gitconfig::from_env(&env).map_err(ConfigError::Usage)?);
    let tls = gitconfig::Tls::new(&git_config, &env);
    check_scheme(&repo, &git_config)?;
    check_protocol_version(&git_config)?;

    let mut auth = auth::parse(&src)?;
    // As with git, `http.cookieFile` names the cookie file (and turns it on).
    if let Some((_, path)) = git_config
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("http.cookiefile"))
    {
        auth.cookie_file = Some(PathBuf::from(path));
    }
    let checkout = auth::parse_checkout(&src)?;
    let ops = ops::parse(&src)?;
    let git_binary_ignored = src
        .lookup(known_flag("git"))
        .and_then(|f| f.values.last().cloned());

    let git_ref = legacy::target_ref(&src)?;
    src.env_names_disagree();
    let deprecated_names = src.deprecated_in_use(place.dest.is_some());
    Ok(Action::Run(Box::new(Config {
        repo,
        git_ref,
        touch_file: src
            .text("touch-file")?
            .map(|p| absolute(&place.root, Path::new(&p))),
        error_file: src
            .text("error-file")?
            .map(|p| absolute(&place.root, Path::new(&p))),
        link: place.link,
        root: place.root,
        dest: place.dest,
        period,
        period_jitter: src.duration("period-jitter")?.unwrap_or_default(),
        init_period,
        sync_timeout,
        one_time: src.bool("one-time")?,
        max_failures,
        init_max_failures,
        depth,
        stale_worktree_timeout: src.duration("stale-worktree-timeout")?.unwrap_or_default(),
        stale_worktree_grace: src
            .duration("stale-worktree-grace")?
            .unwrap_or(Duration::from_secs(5)),
        git_gc,
        git_config,
        tls,
        verbosity,
        log_format,
        auth,
        checkout,
        ops,
        git_binary_ignored,
        names_overridden: src.names_overridden.take(),
        deprecated_names,
    })))
}

#[cfg(test)]
mod tests {
    use super::placement::default_link_name;
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
}
