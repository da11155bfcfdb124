//! `GIT_SSH_COMMAND` (or `core.sshCommand`, or the program `GIT_SSH`
//! names): upstream's git runs it, upstream's own `-i` and `-o` options
//! after the user's. No ssh program runs here (SSH is in process), but
//! what OpenSSH would take from such a command is taken: its keys (`-i`,
//! `IdentityFile`), its host key checks (`StrictHostKeyChecking`,
//! `UserKnownHostsFile`, `GlobalKnownHostsFile`), `IdentitiesOnly`, the
//! destination (`-p`/`Port`, `-l`/`User`, `HostName`), the way there
//! (`ProxyCommand`, `ProxyJump`/`-J`: see `git::proxy_command`) and the
//! configuration file `-F` names. As OpenSSH keeps the first value of an
//! option, these win over git-sync's flags and the configuration files, as
//! with upstream.
//! A `ssh -i /keys/id -o StrictHostKeyChecking=no` written for upstream
//! (a common idiom in Deployments) keeps working.

use std::path::PathBuf;

use super::values::under_home;
use crate::git::SshProxy;

/// How the server's host key is checked (`StrictHostKeyChecking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostChecking {
    /// `yes`/`ask`: it must be listed, with that key.
    Strict,
    /// `accept-new`: a host not listed is accepted; a listed host's key
    /// must match.
    AcceptNew,
    /// `no`/`off`: not checked.
    Off,
}

/// What an ssh command line says that git-sync honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshCommand {
    /// `-i` and `IdentityFile`, in order: tried before `--ssh-key-file`.
    pub key_files: Vec<PathBuf>,
    pub host_checking: Option<HostChecking>,
    pub known_hosts_file: Option<PathBuf>,
    /// `GlobalKnownHostsFile`: the system's known_hosts files instead of
    /// OpenSSH's defaults.
    pub global_known_hosts_files: Option<Vec<PathBuf>>,
    /// `IdentitiesOnly=yes`: no ssh-agent's keys.
    pub identities_only: bool,
    /// Whether `IdentitiesOnly` was given (its first value counts).
    pub identities_only_given: bool,
    /// `-F`: the only configuration file OpenSSH reads (`none`: none).
    pub config_file: Option<PathBuf>,
    /// `-p` or `Port`: wins over the URL's port (git's `-p` comes after)
    /// and the configuration files'.
    pub port: Option<u16>,
    /// `-l` or `User`: wins over the URL's user and the files'.
    pub user: Option<String>,
    /// `HostName`: wins over the files'.
    pub host_name: Option<String>,
    /// `HostKeyAlias`: wins over the files'.
    pub host_key_alias: Option<String>,
    /// `ProxyCommand`, `ProxyJump` or `-J` (the first of them): wins over
    /// the files'. `Some(None)` for `none`.
    pub proxy: Option<Option<SshProxy>>,
    /// Options that would change how the server is reached and are not
    /// honoured (`-o CertificateFile`, `-D`, ...): named in a warning.
    pub unsupported: Vec<String>,
}

/// Options that change nothing git-sync does (logging, timeouts, batch
/// mode, connection sharing, keep-alives, agent forwarding, ...).
const HARMLESS: &[&str] = &[
    "addkeystoagent",
    "batchmode",
    "checkhostip",
    "compression",
    "connectionattempts",
    "connecttimeout",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "forwardagent",
    "forwardx11",
    "hashknownhosts",
    "loglevel",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "preferredauthentications",
    "pubkeyauthentication",
    "requesttty",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "tcpkeepalive",
    "updatehostkeys",
    "visualhostkey",
];

/// Read `command` as OpenSSH would read its options; `None` when it is not
/// a plain `ssh` command line (a wrapper script, shell syntax), which is
/// then not honoured at all.
pub fn parse(command: &str) -> Option<SshCommand> {
    let words = shell_words(command)?;
    let (program, args) = words.split_first()?;
    if program.rsplit('/').next() != Some("ssh") {
        return None;
    }
    let mut cmd = SshCommand::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            // A host or a command: git gives those itself.
            cmd.unsupported.push(arg.clone());
            continue;
        };
        let first = flag.chars().next().map_or(0, char::len_utf8);
        let (letter, attached) = flag.split_at(first);
        // `-ivalue` or `-i value`.
        let mut value = || -> Option<String> {
            match attached {
                "" => args.next().cloned(),
                _ => Some(attached.to_string()),
            }
        };
        match letter {
            "i" => cmd.key_files.push(PathBuf::from(value()?)),
            "o" => cmd.option(&value()?),
            "p" => cmd.port(&value()?, "-p"),
            "l" => {
                let user = value()?;
                cmd.user.get_or_insert(user);
            }
            // Verbosity, address family, no tty, compression, agent
            // forwarding: nothing here.
            "v" | "q" | "T" | "t" | "4" | "6" | "A" | "a" | "C" | "x" | "X" | "n" | "N" => {}
            // The last -F counts, as in OpenSSH.
            "F" => cmd.config_file = Some(PathBuf::from(value()?)),
            "J" => {
                let jump = value()?;
                cmd.proxy
                    .get_or_insert(SshProxy::from_option("proxyjump", &jump)?);
            }
            // Ciphers, MACs, a log file.
            "c" | "m" | "E" => {
                value()?;
            }
            _ => {
                if "BbDeILOQRSWw".contains(letter) {
                    value();
                }
                cmd.unsupported.push(format!("-{letter}"));
            }
        }
    }
    Some(cmd)
}

impl SshCommand {
    /// With `~/` at the start of its paths made `home`'s, as the shell
    /// expands it in `-i ~/.ssh/id` and OpenSSH in its options.
    pub fn with_home(mut self, home: Option<&str>) -> Self {
        let expand = |path: &mut PathBuf| *path = under_home(path, home);
        self.key_files.iter_mut().for_each(expand);
        self.known_hosts_file.iter_mut().for_each(expand);
        self.config_file.iter_mut().for_each(expand);
        self.global_known_hosts_files
            .iter_mut()
            .flatten()
            .for_each(expand);
        self
    }

    /// One `-o` option: `Name=value` or `Name value`. The first value of
    /// each wins, as in OpenSSH.
    fn option(&mut self, option: &str) {
        let option = option.trim();
        let (name, value) = option
            .split_once(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or((option, ""));
        let name = name.to_ascii_lowercase();
        let value = value.trim_start_matches(|c: char| c == '=' || c.is_whitespace());
        match name.as_str() {
            "identityfile" => self.key_files.push(PathBuf::from(value)),
            "stricthostkeychecking" if self.host_checking.is_none() => {
                self.host_checking = match value.to_ascii_lowercase().as_str() {
                    "no" | "off" => Some(HostChecking::Off),
                    "accept-new" => Some(HostChecking::AcceptNew),
                    _ => Some(HostChecking::Strict),
                };
            }
            "userknownhostsfile" if self.known_hosts_file.is_none() => {
                // A list of files: the first is the one read here.
                let first = value.split_whitespace().next().unwrap_or_default();
                self.known_hosts_file = Some(PathBuf::from(first.trim_matches('"')));
            }
            "globalknownhostsfile" if self.global_known_hosts_files.is_none() => {
                let files = value
                    .split_whitespace()
                    .map(|f| PathBuf::from(f.trim_matches('"')));
                self.global_known_hosts_files = Some(files.collect());
            }
            "identitiesonly" if !self.identities_only_given => {
                self.identities_only_given = true;
                self.identities_only =
                    matches!(value.to_ascii_lowercase().as_str(), "yes" | "true");
            }
            "port" => self.port(value, "-o Port"),
            "user" => {
                self.user.get_or_insert_with(|| value.to_string());
            }
            "hostname" => {
                self.host_name.get_or_insert_with(|| value.to_string());
            }
            "hostkeyalias" => {
                self.host_key_alias.get_or_insert_with(|| value.to_string());
            }
            "proxycommand" | "proxyjump" => {
                if let Some(proxy) = SshProxy::from_option(&name, value) {
                    self.proxy.get_or_insert(proxy);
                }
            }
            "stricthostkeychecking"
            | "userknownhostsfile"
            | "globalknownhostsfile"
            | "identitiesonly" => {}
            name if HARMLESS.contains(&name) => {}
            _ => self.unsupported.push(format!("-o {option}")),
        }
    }

    /// `-p` or `-o Port`: the first one given counts, as in OpenSSH; one
    /// that is no port is named.
    fn port(&mut self, value: &str, option: &str) {
        match value.parse::<u16>() {
            Ok(port) if port > 0 => {
                self.port.get_or_insert(port);
            }
            _ => self.unsupported.push(format!("{option} {value}")),
        }
    }
}

/// `text` split into words as a POSIX shell would (quotes, backslashes);
/// `None` if it uses more of the shell than that (variables, pipes, ...).
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        '$' | '`' => return None,
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?),
            '$' | '`' | ';' | '|' | '&' | '<' | '>' | '(' | ')' => return None,
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idioms_of_deployments_written_for_upstream() {
        let c = parse("ssh -i /keys/id -o StrictHostKeyChecking=no").unwrap();
        assert_eq!(c.key_files, [PathBuf::from("/keys/id")]);
        assert_eq!(c.host_checking, Some(HostChecking::Off));
        assert!(c.unsupported.is_empty());

        let c = parse(
            "/usr/bin/ssh -i/ssh/id_ed25519 -o IdentitiesOnly=yes \
             -o UserKnownHostsFile=/ssh/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes",
        )
        .unwrap();
        assert_eq!(c.key_files, [PathBuf::from("/ssh/id_ed25519")]);
        assert_eq!(c.known_hosts_file, Some(PathBuf::from("/ssh/known_hosts")));
        assert_eq!(c.host_checking, Some(HostChecking::Strict));
        assert!(c.identities_only && c.unsupported.is_empty());

        // Quoted "Name value" options, accept-new, the first value winning.
        let c = parse(
            r#"ssh -o "StrictHostKeyChecking accept-new" -oStrictHostKeyChecking=no -o 'UserKnownHostsFile=/dev/null /other' -o IdentityFile="/a b/key""#,
        )
        .unwrap();
        assert_eq!(c.host_checking, Some(HostChecking::AcceptNew));
        assert!(
            !parse("ssh -o IdentitiesOnly=no -o IdentitiesOnly=yes")
                .unwrap()
                .identities_only
        );
        assert_eq!(c.known_hosts_file, Some(PathBuf::from("/dev/null")));
        assert_eq!(c.key_files, [PathBuf::from("/a b/key")]);
        let c = parse("ssh -o 'GlobalKnownHostsFile /g1 /g2'").unwrap();
        let globals = [PathBuf::from("/g1"), PathBuf::from("/g2")];
        assert_eq!(c.global_known_hosts_files.as_deref(), Some(&globals[..]));
    }

    #[test]
    fn a_tilde_is_the_home_directory() {
        let c = parse("ssh -i ~/.ssh/id -o UserKnownHostsFile=~/.ssh/known_hosts -i ~other/k")
            .unwrap()
            .with_home(Some("/home/me"));
        assert_eq!(
            c.key_files,
            [PathBuf::from("/home/me/.ssh/id"), PathBuf::from("~other/k")]
        );
        assert_eq!(
            c.known_hosts_file,
            Some(PathBuf::from("/home/me/.ssh/known_hosts"))
        );
    }

    #[test]
    fn the_destination_options_first_given_count() {
        let c = parse(
            "ssh -p 2222 -o Port=1 -l deploy -o User=other -o HostName=h.example \
             -o HostKeyAlias=k -o HostKeyAlias=other",
        )
        .unwrap();
        assert_eq!(c.host_key_alias.as_deref(), Some("k"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(c.user.as_deref(), Some("deploy"));
        assert_eq!(c.host_name.as_deref(), Some("h.example"));
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
        assert_eq!(parse("ssh -o 'Port 2200' -p 1").unwrap().port, Some(2200));
    }

    #[test]
    fn the_configuration_file_is_the_last_f_given() {
        let c = parse("ssh -F /a -F ~/.ssh/b")
            .unwrap()
            .with_home(Some("/home/me"));
        assert_eq!(c.config_file, Some(PathBuf::from("/home/me/.ssh/b")));
        assert_eq!(parse("ssh -i k").unwrap().config_file, None);
    }

    #[test]
    fn what_is_not_honoured_is_named_and_what_is_not_ssh_is_left_alone() {
        let c = parse(
            "ssh -p x -v -o 'ProxyCommand=nc %h %p' -J b -F /dev/null -o ConnectTimeout=5 -é",
        )
        .unwrap();
        assert_eq!(c.unsupported, ["-p x", "-é"]);
        assert_eq!(
            c.proxy,
            Some(Some(SshProxy::Command("nc %h %p".into()))),
            "the first wins"
        );
        let c = parse("ssh -J me@b -o ProxyCommand=none").unwrap();
        assert_eq!(c.proxy, Some(Some(SshProxy::Jump("me@b".into()))));
        let c = parse("ssh -o ProxyJump=none -J b").unwrap();
        assert_eq!(c.proxy, Some(None), "none: the files' are not used either");
        for not_ssh in [
            "/usr/local/bin/my-ssh -i k",
            "ssh -i $KEY",
            "ssh -i k; rm x",
            "ssh 'open",
            "",
        ] {
            assert_eq!(parse(not_ssh), None, "{not_ssh}");
        }
    }
}
