//! Configuration: flags, environment layering and validation. Yields a plain
//! [`Config`]; nothing outside this module sees clap.
//!
//! Sources, highest first: command-line flag, `GITSYNC_<NAME>`, the deprecated
//! `GIT_SYNC_<NAME>` (and v3's other names), another tool's variable
//! (`AZURE_CLIENT_ID`), the default from the flag table.

pub mod auth;
mod cli;
pub mod env_names;
pub mod flags;
mod git_files;
mod git_values;
pub mod gitconfig;
mod legacy;
pub mod ops;
mod placement;
mod spelling;
pub mod ssh_command;
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
    /// The keys git-sync acts on from the system's and the user's git
    /// config files, read before `git_config` as git reads them (see
    /// `git_files`); not written into the store's config, where a git in
    /// a hook reads those files itself.
    pub user_git_config: gitconfig::Entries,
    /// What git reads: `user_git_config` with `git_config` over it (a
    /// `--git-config` key replacing the files' values).
    pub git_config_read: gitconfig::Entries,
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

/// A value git would refuse for a key read here (`protocol.version=3`,
/// `http.sslVerify=maybe`: see [`git_values`]), named with where it was
/// given: the flag that set it, git's environment, or a git config file.
fn check_git_config_values(
    src: &Sources,
    read: &gitconfig::Entries,
    from_env: &gitconfig::Entries,
) -> Result<(), ConfigError> {
    let Some((at, why)) = git_values::first_refused(read) else {
        return Ok(());
    };
    let entry = &read[at];
    let given = |flag: &'static str| {
        src.list(flag)
            .iter()
            .any(|s| values::parse_git_config(s).is_ok_and(|pairs| pairs.contains(entry)))
    };
    Err(if from_env.contains(entry) {
        ConfigError::Usage(format!(
            "invalid value in GIT_CONFIG_VALUE_<n> (env): {why}"
        ))
    } else if let Some(flag) = ["git-config-add", "git-config"]
        .into_iter()
        .find(|f| given(f))
    {
        src.out_of_range(flag, why)
    } else {
        ConfigError::Usage(format!(
            "invalid value in the system's or the user's git config file: {why}"
        ))
    })
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

/// `--git-gc`.
fn gc_mode(src: &Sources) -> Result<GcMode, ConfigError> {
    match src.text("git-gc")?.as_deref() {
        Some("auto") => Ok(GcMode::Auto),
        None | Some("always") => Ok(GcMode::Always),
        Some("aggressive") => Ok(GcMode::Aggressive),
        Some("off") => Ok(GcMode::Off),
        Some(other) => Err(src.out_of_range(
            "git-gc",
            format!("{other:?} is not one of auto, always, aggressive, off"),
        )),
    }
}

/// `--log-format`, if given.
fn log_format(src: &Sources) -> Result<Option<LogFormat>, ConfigError> {
    match src.text("log-format")?.as_deref() {
        None => Ok(None),
        Some("json") => Ok(Some(LogFormat::Json)),
        Some("text") => Ok(Some(LogFormat::Text)),
        Some(other) => {
            Err(src.out_of_range("log-format", format!("{other:?} is not json or text")))
        }
    }
}

/// The git config, in its layers.
struct GitConfigs {
    /// What the flags and git's env variables give.
    given: gitconfig::Entries,
    /// What the system's and the user's git config files hold.
    user: gitconfig::Entries,
    /// What git reads: the files' entries, then those given (upstream
    /// writes `--git-config` into its global file, over their values).
    read: gitconfig::Entries,
}

/// The git config from `--git-config`, `--git-config-add`, git's env
/// variables and the system's and user's files. Fails for a `repo`
/// whose scheme nothing here speaks, and for values git refuses.
fn git_configs(src: &Sources, repo: &str) -> Result<GitConfigs, ConfigError> {
    let env = |name: &str| src.env(name);
    let set_pairs = src
        .get("git-config", values::parse_git_config)?
        .unwrap_or_default();
    let mut added = Vec::new();
    for s in src.list("git-config-add") {
        added.extend(
            values::parse_git_config(&s).map_err(|e| src.out_of_range("git-config-add", e))?,
        );
    }
    let mut from_env = gitconfig::from_env(&env).map_err(ConfigError::Usage)?;
    // git-lfs's switch, as the config key it stands for.
    if auth::lfs_switch(src, "GIT_LFS_SKIP_DOWNLOAD_ERRORS")? {
        from_env.push(("lfs.skipdownloaderrors".into(), "true".into()));
    }
    let layered = |mut entries: gitconfig::Entries| {
        gitconfig::set(&mut entries, set_pairs.clone());
        entries.extend(added.iter().cloned());
        entries.extend(from_env.iter().cloned());
        entries
    };
    let user = git_files::entries(&git_files::files(&env), src.env("HOME").as_deref());
    let read = layered(user.clone());
    check_scheme(repo, &read)?;
    check_git_config_values(src, &read, &from_env)?;
    Ok(GitConfigs {
        given: layered(Vec::new()),
        user,
        read,
    })
}

/// What the git config `read` says of credentials and SSH, into `auth`.
fn auth_from_git_config(auth: &mut auth::AuthConfig, src: &Sources, read: &gitconfig::Entries) {
    let env = |name: &str| src.env(name);
    // As with git, `http.cookieFile` names the cookie file (and turns it on).
    if let Some((_, path)) = read
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("http.cookiefile"))
    {
        auth.cookie_file = Some(PathBuf::from(path));
    }
    auth.credential_stores = gitconfig::credential_store_files(read, &env);
    auth.credential_helpers = gitconfig::credential_helpers(read, &env);
    auth.credential_use_http_path = gitconfig::UseHttpPath::read(read);
    auth.ssh.command = gitconfig::ssh_command(read, &env)
        .and_then(|c| ssh_command::parse(&c))
        .map(|c| c.with_home(src.env("HOME").as_deref()));
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

    let git_gc = gc_mode(&src)?;
    let log_format = log_format(&src)?;

    let GitConfigs {
        given: git_config,
        user: user_git_config,
        read,
    } = git_configs(&src, &repo)?;
    let tls = gitconfig::Tls::new(&read, &|name| src.env(name));
    let mut auth = auth::parse(&src)?;
    auth_from_git_config(&mut auth, &src, &read);
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
        user_git_config,
        git_config_read: read,
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
mod tests;
