//! OpenSSH's client configuration, which upstream's `ssh` reads for each
//! connection: `~/.ssh/config`, then `/etc/ssh/ssh_config` (or only the
//! file `-F` names in `GIT_SSH_COMMAND`). SSH runs in process here, so what
//! they say of a repository's host is read here: `HostName`, `Port` and
//! `User` (the URL is rewritten to that destination, the URL's own port and
//! user winning as git's `-p` and `user@` win), `IdentityFile` (tried after
//! the keys of the command line and of --ssh-key-file, as ssh orders them),
//! `IdentitiesOnly`, `GlobalKnownHostsFile` and `HostKeyAlias` (the name
//! host keys are looked up by). Upstream gives ssh
//! `StrictHostKeyChecking` and `UserKnownHostsFile` on its command line,
//! which wins over these files: their values change nothing there, nor
//! here. What would change how the server is reached or proved and cannot
//! be done in process (`CertificateFile`, ...) is named. `ProxyCommand`
//! and `ProxyJump` are run as OpenSSH runs them (see `proxy_command`).
//!
//! As OpenSSH reads them: `Host` patterns (`*`, `?`, `!`) match the host as
//! the URL names it, the first value of an option wins (`IdentityFile`s add
//! up), `Include` reads more files (relative ones under `~/.ssh`, or
//! `/etc/ssh` from the system's file; `*` and `?` in the last component),
//! and `Match` evaluates `all`, `host` and `originalhost`; a `Match` on
//! anything else is taken as not matching, and named.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::known_hosts::{glob, host_matches};
use super::ssh_url::SshUrl;
use super::SshClientConfig;
use super::SshProxy;
use crate::file_stamp::FileStamp;

/// The system's file; `Include`s in it are relative to its directory.
pub const SYSTEM_FILE: &str = "/etc/ssh/ssh_config";

/// Nested `Include`s followed at most, as in OpenSSH.
const MAX_DEPTH: usize = 16;

/// Files read at most for one host: `Include`s that glob their own
/// directory would otherwise read it to the depth above, the number of
/// files to the 16th power.
const MAX_FILES: usize = 256;

/// Where an SSH URL leads once the configuration is applied, and what else
/// it says of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    /// The URL with the configuration's host, port and user; `None` when
    /// it changes none of them.
    pub url: Option<String>,
    /// `~` and `%` tokens expanded, in order.
    pub identity_files: Vec<PathBuf>,
    pub identities_only: Option<bool>,
    pub global_known_hosts: Option<Vec<PathBuf>>,
    /// `HostKeyAlias`: host keys are looked up under this name alone.
    pub host_key_alias: Option<String>,
    /// The command the server is reached over (`ProxyCommand`, or the
    /// `ssh -W` a `ProxyJump` makes), its tokens expanded.
    pub proxy_command: Option<String>,
    /// A `ProxyJump`'s hops (`[user@]host[:port]` or `ssh://` URIs,
    /// comma-separated), which are also made in process when no `ssh`
    /// program is there to run the command above (see `ssh_jump`).
    pub jump: Option<String>,
    /// What applies to the host and is not done here, with its file:
    /// `CertificateFile ~/.ssh/id-cert.pub (/home/me/.ssh/config)`.
    pub not_applied: Vec<String>,
    /// The files it was read from (or looked for), and the directories
    /// `Include` patterns listed, as they were then.
    pub sources: Sources,
}

impl Destination {
    /// Whether `other` says the same of the host (read from files that
    /// may have changed since).
    pub fn says_the_same_as(&self, other: &Destination) -> bool {
        let what = |d: &Destination| Destination {
            sources: Sources::default(),
            ..d.clone()
        };
        what(self) == what(other)
    }
}

/// Paths as they were when read: what changed since is seen by a `stat`
/// each, where `ssh` reads its configuration for each connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources(Vec<(PathBuf, Option<Stamp>)>);

/// A file's identity, size and time of change (an editor that writes a new
/// file and renames it over the old one changes the first), and whether
/// that time was too recent to tell a change made right after (the
/// kernel's clock for it ticks every few milliseconds; git calls such an
/// index entry "racily clean").
type Stamp = (FileStamp, bool);

/// How recent a time of change is too recent.
const RACY: Duration = Duration::from_secs(2);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    let racy = m
        .modified()
        .ok()
        .and_then(|at| at.elapsed().ok())
        .map_or(true, |age| age < RACY);
    Some((FileStamp::from(&m), racy))
}

impl Sources {
    fn of(paths: Vec<PathBuf>) -> Self {
        Sources(paths.into_iter().map(|p| (p.clone(), stamp(&p))).collect())
    }

    /// Whether one of them changed, appeared or went away since (or was
    /// changed too recently then to tell).
    pub fn changed(&self) -> bool {
        self.0.iter().any(|(path, then)| match then {
            Some((_, true)) => true,
            then => stamp(path).map(|(now, _)| now) != then.map(|(at, _)| at),
        })
    }
}

/// What the configuration (`config`'s files, after its command line's
/// options) says of the host of `url` (an SSH URL; `None` for another).
pub fn destination(url: &str, config: &SshClientConfig) -> Option<Destination> {
    let (files, home) = (&config.files, config.home.as_deref());
    let given = SshUrl::parse(url)?;
    let mut reading = Reading {
        host: given.host.to_ascii_lowercase(),
        home,
        found: Found::default(),
        noted: Vec::new(),
        read: 0,
        seen: Vec::new(),
    };
    for file in files {
        let base = match file == Path::new(SYSTEM_FILE) {
            true => PathBuf::from("/etc/ssh"),
            false => home.map(|h| h.join(".ssh")).unwrap_or_default(),
        };
        reading.file(file, &base, 0);
    }
    let Reading {
        found, host, seen, ..
    } = reading;
    let mut to = given.clone();
    if let Some(name) = config.host_name.as_ref().or(found.host_name.as_ref()) {
        // `%h`: the host as given, lowercased as ssh does.
        to.host = name.replace("%h", &host).replace("%%", "%");
    }
    to.port = config.port.or(given.port).or(found.port);
    to.user = config.user.clone().or(given.user.clone()).or(found.user);
    let mut not_applied = found.not_applied;
    let mut expand = |keyword: &str, value: &str| {
        let expanded = expand_tokens(value, &to, &given.host, home);
        if let Err(token) = &expanded {
            not_applied.push(format!(
                "{keyword} {value} (its {token} is not expanded here)"
            ));
        }
        expanded.ok()
    };
    let identity_files = found
        .identity_files
        .iter()
        .filter_map(|v| expand("IdentityFile", v))
        .collect();
    let global_known_hosts = found.global_known_hosts.map(|values| {
        values
            .iter()
            .filter_map(|v| expand("GlobalKnownHostsFile", v))
            .collect()
    });
    // (The command line's, as ssh keeps the first value given.)
    let proxy = config.proxy.clone().or(found.proxy).flatten();
    let jump = match &proxy {
        Some(SshProxy::Jump(hops)) => Some(hops.clone()),
        _ => None,
    };
    let proxy_command = proxy.and_then(|p| {
        let command = p.command(config.config_file.as_deref());
        let expanded = expand("ProxyCommand", &command)?;
        expanded.into_os_string().into_string().ok()
    });
    Some(Destination {
        url: (to.to_url() != given.to_url()).then(|| to.to_url()),
        proxy_command,
        jump,
        identity_files,
        identities_only: found.identities_only,
        global_known_hosts,
        host_key_alias: config.host_key_alias.clone().or(found.host_key_alias),
        not_applied,
        sources: Sources::of(seen),
    })
}

/// The values found, unexpanded.
#[derive(Default)]
struct Found {
    host_name: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_files: Vec<String>,
    identities_only: Option<bool>,
    global_known_hosts: Option<Vec<String>>,
    host_key_alias: Option<String>,
    /// `ProxyCommand` or `ProxyJump`, the first found; `Some(None)` for
    /// `none`.
    proxy: Option<Option<SshProxy>>,
    not_applied: Vec<String>,
}

struct Reading<'a> {
    /// As the URL names it, in lower case.
    host: String,
    home: Option<&'a Path>,
    found: Found,
    /// The options not applied that were named: only their first value
    /// counts.
    noted: Vec<String>,
    /// Files read so far (see [`MAX_FILES`]).
    read: usize,
    /// The files read or looked for, and the directories listed.
    seen: Vec<PathBuf>,
}

impl Reading<'_> {
    /// The lines of `file`, active from its start (a top-level file, or
    /// one included where the including file was active).
    fn file(&mut self, file: &Path, base: &Path, depth: usize) {
        if self.read == MAX_FILES {
            return;
        }
        self.read += 1;
        self.seen.push(file.to_path_buf());
        let Ok(text) = std::fs::read_to_string(file) else {
            return;
        };
        let mut active = true;
        for line in text.lines() {
            let Some((keyword, args)) = split_line(line) else {
                continue;
            };
            match keyword.to_ascii_lowercase().as_str() {
                // OpenSSH's patterns, as in known_hosts files.
                "host" => active = host_matches(&args.join(","), &self.host),
                "match" => active = self.matches(&args, file),
                _ if !active => {}
                "include" if depth < MAX_DEPTH => {
                    for pattern in &args {
                        for included in self.included(pattern, base) {
                            self.file(&included, base, depth + 1);
                        }
                    }
                }
                // The rest of the line as written, as OpenSSH takes it.
                "proxycommand" => {
                    let rest = line.trim_start()[keyword.len()..]
                        .trim_start_matches(|c: char| c == '=' || c.is_whitespace())
                        .trim_end();
                    self.proxy(SshProxy::from_option("proxycommand", rest));
                }
                "proxyjump" => {
                    let value = args.first().map(String::as_str).unwrap_or_default();
                    self.proxy(SshProxy::from_option("proxyjump", value));
                }
                lower => self.option(lower, &keyword, &args, file),
            }
        }
    }

    /// The files an `Include` pattern names, sorted as OpenSSH's glob
    /// sorts them.
    fn included(&mut self, pattern: &str, base: &Path) -> Vec<PathBuf> {
        let path = match (pattern.strip_prefix("~/"), self.home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => base.join(pattern),
        };
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Vec::new();
        };
        let name = name.to_string_lossy();
        if !name.contains(['*', '?']) {
            return vec![path.clone()];
        }
        self.seen.push(dir.to_path_buf());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                !n.starts_with('.') && glob(name.as_bytes(), n.as_bytes())
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        files
    }

    /// Whether a `Match` line's criteria all hold. `host` is matched
    /// against the `HostName` found so far, as OpenSSH does.
    fn matches(&mut self, args: &[String], file: &Path) -> bool {
        let host_name = self.found.host_name.as_deref().map(|name| {
            name.replace("%h", &self.host)
                .replace("%%", "%")
                .to_ascii_lowercase()
        });
        let target = host_name.as_deref().unwrap_or(&self.host);
        let mut unknown = false;
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let lower = word.to_ascii_lowercase();
            let (negated, criterion) = match lower.strip_prefix('!') {
                Some(c) => (true, c),
                None => (false, lower.as_str()),
            };
            let holds = match criterion {
                "all" => true,
                "host" | "originalhost" => {
                    let list = words.next().map(String::as_str).unwrap_or_default();
                    let name = if criterion == "host" {
                        target
                    } else {
                        self.host.as_str()
                    };
                    host_matches(list, name)
                }
                _ => {
                    unknown = true;
                    if !matches!(criterion, "canonical" | "final") {
                        words.next();
                    }
                    continue;
                }
            };
            if holds == negated {
                return false;
            }
        }
        if unknown {
            self.found.not_applied.push(format!(
                "Match {} ({}; not evaluated)",
                args.join(" "),
                file.display()
            ));
        }
        !unknown
    }

    /// `ProxyCommand` or `ProxyJump`: whichever comes first counts.
    fn proxy(&mut self, proxy: Option<Option<SshProxy>>) {
        if let Some(proxy) = proxy {
            self.found.proxy.get_or_insert(proxy);
        }
    }

    /// An option of an active block; `keyword` as written.
    fn option(&mut self, lower: &str, keyword: &str, args: &[String], file: &Path) {
        let Some(value) = args.first() else {
            return;
        };
        let found = &mut self.found;
        match lower {
            "hostname" => {
                found.host_name.get_or_insert_with(|| value.clone());
            }
            "user" => {
                found.user.get_or_insert_with(|| value.clone());
            }
            "port" if found.port.is_none() => match value.parse() {
                Ok(port) => found.port = Some(port),
                Err(_) => found.not_applied.push(format!(
                    "{keyword} {value} ({}; not a port)",
                    file.display()
                )),
            },
            "identityfile" if !value.eq_ignore_ascii_case("none") => {
                found.identity_files.push(value.clone());
            }
            "identitiesonly" => {
                found.identities_only.get_or_insert_with(|| {
                    matches!(value.to_ascii_lowercase().as_str(), "yes" | "true")
                });
            }
            "globalknownhostsfile" => {
                found
                    .global_known_hosts
                    .get_or_insert_with(|| args.to_vec());
            }
            "hostkeyalias" => {
                found.host_key_alias.get_or_insert_with(|| value.clone());
            }
            _ => {
                let not_done = match lower {
                    "certificatefile" | "pkcs11provider" | "securitykeyprovider" => {
                        !value.eq_ignore_ascii_case("none")
                    }
                    "identityagent" => {
                        !matches!(value.as_str(), "none" | "SSH_AUTH_SOCK" | "$SSH_AUTH_SOCK")
                    }
                    "canonicalizehostname" => {
                        matches!(value.to_ascii_lowercase().as_str(), "yes" | "always")
                    }
                    _ => false,
                };
                if not_done && !self.noted.iter().any(|n| n == lower) {
                    found.not_applied.push(format!(
                        "{keyword} {} ({})",
                        args.join(" "),
                        file.display()
                    ));
                    self.noted.push(lower.to_string());
                }
            }
        }
    }
}

/// The keyword of a line and its arguments (quotes removed, a `#` word
/// ending them); `None` for a blank line or a comment.
fn split_line(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    Some((keyword.to_string(), words(rest)))
}

/// OpenSSH's argument splitting: blanks separate, double or single quotes
/// keep blanks, a backslash escapes, an unquoted word starting with `#`
/// begins a comment.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return words,
            _ => {}
        }
        let mut word = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => word.extend(chars.next()),
                (q, None) if q == '"' || q == '\'' => quote = Some(q),
                (q, Some(open)) if q == open => quote = None,
                (c, None) if c.is_whitespace() => break,
                (c, _) => word.push(c),
            }
        }
        words.push(word);
    }
}

/// A file name of the configuration with `~/` and OpenSSH's tokens
/// expanded for the destination `to` (`%h` its host, `%p` its port, `%r`
/// its user, `%n` the host as given, `%d` the home directory, `%i` the
/// user ID, `%%`); the first other token when there is one.
fn expand_tokens(
    value: &str,
    to: &SshUrl,
    given_host: &str,
    home: Option<&Path>,
) -> Result<PathBuf, String> {
    let home_text = home.map(|h| h.to_string_lossy().into_owned());
    let mut out = String::new();
    let mut rest = value;
    if let (Some(after), Some(home)) = (value.strip_prefix('~'), &home_text) {
        if after.is_empty() || after.starts_with('/') {
            out.push_str(home);
            rest = after;
        }
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(&to.host),
            Some('n') => out.push_str(given_host),
            Some('p') => out.push_str(&to.port.unwrap_or(22).to_string()),
            Some('r') => out.push_str(to.user.as_deref().unwrap_or("git")),
            Some('i') => out.push_str(&crate::user::effective_ids().0.to_string()),
            Some('d') if home_text.is_some() => {
                out.push_str(home_text.as_deref().unwrap_or_default())
            }
            other => return Err(format!("%{}", other.map(String::from).unwrap_or_default())),
        }
    }
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `files` (name, text) written under a temporary home's `.ssh`.
    fn home_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let home = tempfile::TempDir::new().unwrap();
        for (name, text) in files {
            let path = home.path().join(".ssh").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        home
    }

    fn resolve(home: &Path, url: &str) -> Destination {
        let config = SshClientConfig {
            files: vec![home.join(".ssh/config")],
            home: Some(home.to_path_buf()),
            ..Default::default()
        };
        destination(url, &config).unwrap()
    }

    #[test]
    fn a_host_alias_becomes_its_destination_in_the_urls_own_form() {
        let home = home_with(&[(
            "config",
            "# mine\n\
             Host work-gh\n  HostName github.com\n  IdentityFile ~/.ssh/work\n\
             Host mirror !gist.*\n  HostName=%h.internal\n  Port 2222\n  User deploy\n  IdentityFile \"%d/.ssh/id %r@%h:%p\"\n\
             Host *\n  Port 22\n  IdentityFile ~/.ssh/id_ed25519\n  User nobody\n",
        )]);
        let home = home.path();
        let d = resolve(home, "git@work-gh:org/site.git");
        assert_eq!(d.url.as_deref(), Some("git@github.com:org/site.git"));
        assert_eq!(
            d.identity_files,
            [home.join(".ssh/work"), home.join(".ssh/id_ed25519")]
        );
        let d = resolve(home, "mirror:org/site.git");
        assert_eq!(
            d.url.as_deref(),
            Some("[deploy@mirror.internal:2222]:org/site.git")
        );
        assert_eq!(
            d.identity_files[0],
            home.join(".ssh/id deploy@mirror.internal:2222")
        );
        // The URL's own port and user win, as git's -p and user@ do.
        let d = resolve(home, "ssh://me@Mirror:2200/srv/site.git");
        assert_eq!(
            d.url.as_deref(),
            Some("ssh://me@mirror.internal:2200/srv/site.git")
        );
        // Only `Host *` applies: its User is all it changes.
        let d = resolve(home, "ssh://git@other.example/r.git");
        assert_eq!(d.url, None);
        assert_eq!(d.identity_files, [home.join(".ssh/id_ed25519")]);
        assert!(d.not_applied.is_empty(), "{:?}", d.not_applied);
        assert_eq!(
            destination("https://h/r", &SshClientConfig::default()),
            None
        );
        // The command line's options win over the files', and its port
        // and user over the URL's, as ssh keeps the first value.
        let command = SshClientConfig {
            files: vec![home.join(".ssh/config")],
            host_name: Some("cmd.example".into()),
            port: Some(2200),
            user: Some("cmd".into()),
            ..Default::default()
        };
        let d = destination("me@mirror:r.git", &command).unwrap();
        assert_eq!(d.url.as_deref(), Some("[cmd@cmd.example:2200]:r.git"));
    }

    #[test]
    fn includes_and_match_blocks_as_openssh_reads_them() {
        let home = home_with(&[
            (
                "config",
                "Include config.d/*\n\
                 Match originalhost alias exec \"test -e /x\"\n  Port 1\n\
                 Match host real.example\n  IdentitiesOnly yes\n  GlobalKnownHostsFile ~/g1 /g2\n\
                 Host other\n  Include never\n\
                 Match host pct.internal\n  User matched\n",
            ),
            (
                "config.d/10-alias",
                "Host alias\n  HostName real.example\n  ProxyJump bastion\n\
                 Host pct\n  HostName %h.internal\n",
            ),
            (
                "config.d/20-late",
                "Host alias\n  HostName late.example\n  ProxyCommand nc %h %p\n",
            ),
            ("config.d/.hidden", "Host *\n  HostName hidden.example\n"),
            ("never", "HostName never.example\n"),
        ]);
        let home = home.path();
        let d = resolve(home, "alias:r.git");
        assert_eq!(d.url.as_deref(), Some("real.example:r.git"));
        assert_eq!(d.identities_only, Some(true));
        assert_eq!(
            d.global_known_hosts,
            Some(vec![home.join("g1"), PathBuf::from("/g2")])
        );
        let config = home.join(".ssh/config");
        assert_eq!(
            d.not_applied,
            [format!(
                "Match originalhost alias exec test -e /x ({}; not evaluated)",
                config.display()
            )]
        );
        // The first of ProxyJump and ProxyCommand, its tokens those of the
        // destination.
        assert_eq!(
            d.proxy_command.as_deref(),
            Some("ssh -W '[real.example]:22' bastion")
        );
        // `Match host` sees the HostName found so far, `%h` expanded.
        let d = resolve(home, "pct:r.git");
        assert_eq!(d.url.as_deref(), Some("matched@pct.internal:r.git"));
        // A Match whose known criteria fail is not named.
        let d = resolve(home, "elsewhere:r.git");
        assert!(d.says_the_same_as(&Destination::default()), "{d:?}");
    }

    #[test]
    fn a_proxy_command_is_the_rest_of_its_line_with_the_destinations_tokens() {
        let home = home_with(&[(
            "config",
            "Host direct.inner\n  ProxyCommand none\nHost *.inner\n  User me\n  Port 2222\n  \
             ProxyCommand=sh -c \"nc %h %p\" # %r@%n, 100%%\n",
        )]);
        let d = resolve(home.path(), "git.inner:r.git");
        assert_eq!(
            d.proxy_command.as_deref(),
            Some("sh -c \"nc git.inner 2222\" # me@git.inner, 100%")
        );
        assert_eq!(
            resolve(home.path(), "direct.inner:r.git").proxy_command,
            None
        );
        // The command line's comes first; its `none` says none.
        let command = |proxy| SshClientConfig {
            files: vec![home.path().join(".ssh/config")],
            proxy,
            ..Default::default()
        };
        let jump = Some(Some(SshProxy::Jump("b".into())));
        let d = destination("git.inner:r.git", &command(jump)).unwrap();
        assert_eq!(
            d.proxy_command.as_deref(),
            Some("ssh -W '[git.inner]:2222' b")
        );
        let d = destination("git.inner:r.git", &command(Some(None))).unwrap();
        assert_eq!(d.proxy_command, None);
    }

    #[test]
    fn includes_that_include_each_other_stop() {
        let home = home_with(&[
            ("config", "Include d/*\n"),
            ("d/a", "Include d/*\nIdentityFile ~/a\n"),
            ("d/b", "Include d/*\nIdentityFile ~/b\n"),
        ]);
        let d = resolve(home.path(), "h:r");
        // (Without a bound, 2^16 files.)
        assert_eq!(d.identity_files.len(), MAX_FILES - 1);
    }

    #[test]
    fn the_files_read_are_watched_for_a_change() {
        let home = home_with(&[("config", "Include config.d/*\n")]);
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(ssh.join("config.d")).unwrap();
        // Changed a while ago, or it is too recent to tell.
        let age = || {
            let then = std::time::SystemTime::now() - Duration::from_secs(10);
            for p in [".ssh/config", ".ssh/config.d", ".ssh/config.d/a"] {
                if let Ok(f) = std::fs::File::open(home.path().join(p)) {
                    f.set_modified(then).unwrap();
                }
            }
        };
        let read = || resolve(home.path(), "h:r.git").sources;
        let racy = read();
        assert!(racy.changed(), "written just now");
        age();
        let sources = read();
        assert!(!sources.changed());
        std::fs::write(ssh.join("config.d/a"), "Host h\n  Port 2\n").unwrap();
        assert!(sources.changed(), "a file added where Include looks");
        age();
        let sources = read();
        assert!(!sources.changed());
        std::fs::write(ssh.join("config.d/a"), "Host h\n  Port 22\n").unwrap();
        assert!(sources.changed(), "an edited file");
        age();
        let sources = read();
        std::fs::remove_file(ssh.join("config")).unwrap();
        assert!(sources.changed(), "a file gone");
    }

    #[test]
    fn lines_are_split_as_openssh_splits_them() {
        assert_eq!(split_line("  # comment"), None);
        assert_eq!(
            split_line("IdentityFile = \"/a b/k\" 'c d' e\\ f # rest"),
            Some((
                "IdentityFile".into(),
                vec!["/a b/k".into(), "c d".into(), "e f".into()]
            ))
        );
        assert_eq!(
            split_line("Port=2222"),
            Some(("Port".into(), vec!["2222".into()]))
        );
        let to = SshUrl::parse("git@h:r").unwrap();
        assert_eq!(
            expand_tokens("~/k_%n_%%", &to, "alias", Some(Path::new("/home/me"))),
            Ok(PathBuf::from("/home/me/k_alias_%"))
        );
        assert_eq!(expand_tokens("/k/%C", &to, "h", None), Err("%C".into()));
    }
}
