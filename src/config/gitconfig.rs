//! The git config git-sync runs with: `--git-config` (set), then
//! `--git-config-add` (add), then the git CLI's own environment
//! (`GIT_CONFIG_COUNT`, `GIT_SSL_*`), which git gives the last word.

use std::path::{Path, PathBuf};

use super::values::{check_config_key, under_home};

/// The effective git config entries, in order: a later entry of a key
/// wins where the key takes one value; multi-valued keys
/// (`http.extraHeader`) keep them all.
pub type Entries = Vec<(String, String)>;

/// Add `--git-config` pairs: each replaces the values its key has so far,
/// as `git config KEY VALUE` does.
pub fn set(entries: &mut Entries, pairs: Vec<(String, String)>) {
    for (k, v) in pairs {
        entries.retain(|(old, _)| !same_key(old, &k));
        entries.push((k, v));
    }
}

/// Whether two config keys name the same variable: the section and the
/// name are case-insensitive, a subsection is not.
pub fn same_key(a: &str, b: &str) -> bool {
    fn parts(k: &str) -> (String, &str, String) {
        let (section, rest) = k.split_once('.').unwrap_or((k, ""));
        let (middle, name) = rest.rsplit_once('.').unwrap_or(("", rest));
        (
            section.to_ascii_lowercase(),
            middle,
            name.to_ascii_lowercase(),
        )
    }
    parts(a) == parts(b)
}

/// The keys of `entries` nothing here reads (the git CLI does:
/// `safe.directory`, `http.postBuffer`, ...), for one line in the log.
pub fn without_effect(entries: &Entries) -> Vec<String> {
    let mut keys: Vec<String> = entries
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !has_effect(k))
        .collect();
    keys.dedup();
    keys
}

/// A config key as git reads it, lower-cased: `section.name` or
/// `section.<subsection>.name` (the subsection may hold dots: a URL).
struct Key {
    section: String,
    sub: Option<String>,
    name: String,
}

impl Key {
    fn of(key: &str) -> Self {
        let lower = key.to_ascii_lowercase();
        let (section, rest) = lower.split_once('.').unwrap_or((&lower, ""));
        let (sub, name) = match rest.rsplit_once('.') {
            Some((sub, name)) => (Some(sub.to_string()), name),
            None => (None, rest),
        };
        Key {
            section: section.to_string(),
            sub,
            name: name.to_string(),
        }
    }
}

/// What the git CLI would do with config or environment we do not act on
/// and whose absence changes how a remote is reached: a sync that worked
/// with upstream's image may fail here, so each is said as a warning with
/// what to use instead.
pub fn unsupported_consequences(
    entries: &Entries,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let keys: Vec<Key> = entries.iter().map(|(k, _)| Key::of(k)).collect();
    // In any scope (`http.name`, `http.<url>.name`).
    let has =
        |section: &str, name: &str| keys.iter().any(|k| k.section == section && k.name == name);
    let mut said = Vec::new();
    if has("http", "sslcertpasswordprotected") || env("GIT_SSL_CERT_PASSWORD_PROTECTED").is_some() {
        said.push(
            "http.sslCertPasswordProtected: a client key protected by a password cannot be \
             used; give http.sslKey a key without one"
                .into(),
        );
    }
    if let Some(command) = ssh_command(entries, env) {
        match super::ssh_command::parse(&command) {
            None => said.push(
                "core.sshCommand/GIT_SSH_COMMAND: SSH runs in process (libssh2) and this command \
                 is no plain ssh command line, so nothing of it is used; keys and host checks \
                 come from --ssh-key-file and --ssh-known-hosts-file (a git in an exec hook \
                 gets GIT_SSH_COMMAND with those added)"
                    .into(),
            ),
            Some(c) if !c.unsupported.is_empty() => said.push(format!(
                "core.sshCommand/GIT_SSH_COMMAND: SSH runs in process (libssh2); its keys, \
                 host key and destination options are used, not {}",
                c.unsupported.join(", ")
            )),
            Some(_) => {}
        }
    }
    said
}

/// The ssh command git would run, as git chooses it: `GIT_SSH_COMMAND`,
/// else `core.sshCommand`, else the program `GIT_SSH` names.
pub fn ssh_command(entries: &Entries, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    set("GIT_SSH_COMMAND")
        .or_else(|| {
            entries
                .iter()
                .rev()
                .find(|(k, _)| same_key(k, "core.sshCommand"))
                .map(|(_, v)| v.clone())
        })
        .or_else(|| set("GIT_SSH").map(|program| format!("'{}'", program.replace('\'', "'\\''"))))
}

/// The files git's `store` credential helper reads, in the order it reads
/// them, for the `credential.helper` entries that are `store` (an empty
/// value drops the helpers before it, as in git): its `--file`, else
/// `~/.git-credentials` then `$XDG_CONFIG_HOME/git/credentials`.
pub fn credential_store_files(
    entries: &Entries,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (_, value) in entries
        .iter()
        .filter(|(k, _)| same_key(k, "credential.helper"))
    {
        if value.is_empty() {
            files.clear();
        } else if let Some(file) = store_helper_file(value, env) {
            files.extend(file);
        }
    }
    files.dedup();
    files
}

/// A credential helper git would run: `credential.helper` (for every
/// server), or `credential.<url>.helper` (for the URLs under `<url>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHelper {
    pub scope: Option<String>,
    /// `name [args]` (`git-credential-<name>`), `/path/to/program
    /// [args]`, or `!shell snippet`.
    pub command: String,
}

/// The helpers to run, in order, as git would: all but `store` for every
/// server, whose files are read in process (see
/// [`credential_store_files`]); an empty value drops the helpers before it.
pub fn credential_helpers(
    entries: &Entries,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<CredentialHelper> {
    let mut helpers = Vec::new();
    for (k, value) in entries {
        let key = Key::of(k);
        if key.section != "credential" || key.name != "helper" {
            continue;
        }
        if value.is_empty() {
            helpers.clear();
            continue;
        }
        let scope = subsection_as_written(k).map(str::to_string);
        if scope.is_none() && store_helper_file(value, env).is_some() {
            continue;
        }
        helpers.push(CredentialHelper {
            scope,
            command: value.clone(),
        });
    }
    helpers
}

/// The subsection of `section.<subsection>.name` as written (a URL's path
/// keeps its case); `None` for `section.name`.
fn subsection_as_written(key: &str) -> Option<&str> {
    let (_, rest) = key.split_once('.')?;
    rest.rsplit_once('.').map(|(sub, _)| sub)
}

/// Whether `url` is one a credential setting scoped to `scope`
/// (`credential.<scope>.*`) is for, as git matches it (see
/// `git::url_matches`).
pub fn credential_scope_fits(scope: &str, url: &str) -> bool {
    crate::git::url_matches(scope, url)
}

/// `credential.useHttpPath` and `credential.<url>.useHttpPath`: (scope,
/// value), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UseHttpPath(Vec<(Option<String>, bool)>);

impl UseHttpPath {
    pub fn read(entries: &Entries) -> Self {
        let settings = entries.iter().filter_map(|(k, value)| {
            let key = Key::of(k);
            let ours = key.section == "credential" && key.name == "usehttppath";
            let value = super::values::parse_git_bool(value).unwrap_or(false);
            ours.then(|| (subsection_as_written(k).map(str::to_string), value))
        });
        UseHttpPath(settings.collect())
    }

    /// Whether git would send `url`'s path to credential helpers: the
    /// last value that applies to it.
    pub fn for_url(&self, url: &str) -> bool {
        let applies = |scope: &Option<String>| {
            scope
                .as_deref()
                .map_or(true, |scope| credential_scope_fits(scope, url))
        };
        let mut settings = self.0.iter().rev();
        settings
            .find(|(scope, _)| applies(scope))
            .is_some_and(|(_, v)| *v)
    }
}

/// For a helper that is `store` (`store`, `store --file=<path>`,
/// `store --file <path>`), the files it reads; `None` for another helper.
fn store_helper_file(helper: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Vec<PathBuf>> {
    let mut words = helper.split_whitespace();
    if words.next() != Some("store") {
        return None;
    }
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let home_text = set("HOME");
    let home = home_text.as_ref().map(PathBuf::from);
    let expand = |path: &str| under_home(Path::new(path), home_text.as_deref());
    let mut file = None;
    while let Some(word) = words.next() {
        if let Some(path) = word.strip_prefix("--file=") {
            file = Some(expand(path));
        } else if word == "--file" {
            file = Some(expand(words.next()?));
        }
    }
    if let Some(file) = file {
        return Some(vec![file]);
    }
    let xdg = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let defaults = [
        home.map(|h| h.join(".git-credentials")),
        xdg.map(|x| x.join("git/credentials")),
    ];
    Some(defaults.into_iter().flatten().collect())
}

/// Whether git-sync or libgit2 reads `key`.
fn has_effect(key: &str) -> bool {
    let Key { section, sub, name } = Key::of(key);
    let scoped = sub.is_some();
    let name = name.as_str();
    match section.as_str() {
        "http" if scoped => matches!(
            name,
            "proxy"
                | "extraheader"
                | "sslverify"
                | "sslcainfo"
                | "sslcapath"
                | "sslcert"
                | "sslkey"
        ),
        "http" => matches!(
            name,
            "proxy"
                | "extraheader"
                | "sslcainfo"
                | "sslcapath"
                | "sslverify"
                | "sslcert"
                | "sslkey"
                | "cookiefile"
                | "followredirects"
        ),
        "url" => scoped && name == "insteadof",
        "protocol" => match sub.as_deref() {
            Some("file") => name == "allow",
            // 0 or 1: our own v2 requests are not made.
            None => name == "version",
            Some(_) => false,
        },
        // libgit2's pack writer (our gc) reads these three.
        "pack" => matches!(name, "windowmemory" | "deltacachesize" | "deltacachelimit"),
        // libgit2 reads most of core (line endings, symlinks, file modes);
        // of core.sshCommand, git-sync reads the ssh options.
        "core" => true,
        // Read when it is git's store helper; warned about otherwise.
        "credential" => !scoped && name == "helper",
        // git-lfs's, read by the built-in LFS client (src/git/lfs).
        "lfs" => match sub.as_deref() {
            None => matches!(
                name,
                "url"
                    | "fetchinclude"
                    | "fetchexclude"
                    | "concurrenttransfers"
                    | "skipdownloaderrors"
            ),
            Some("transfer") => matches!(name, "maxretries" | "maxretrydelay"),
            Some(_) => false,
        },
        "remote" => sub.as_deref() == Some("origin") && name == "lfsurl",
        _ => false,
    }
}

/// `GIT_CONFIG_COUNT` with `GIT_CONFIG_KEY_<n>` and `GIT_CONFIG_VALUE_<n>`:
/// config given to git through the environment, as git reads it.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Entries, String> {
    let Some(count) = env("GIT_CONFIG_COUNT").filter(|c| !c.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| format!("invalid GIT_CONFIG_COUNT (env): {count:?} is not a count"))?;
    (0..count)
        .map(|i| {
            let key = env(&format!("GIT_CONFIG_KEY_{i}")).ok_or_else(|| {
                format!("GIT_CONFIG_COUNT is {count} but GIT_CONFIG_KEY_{i} is not set")
            })?;
            check_config_key(&key).map_err(|e| format!("invalid GIT_CONFIG_KEY_{i} (env): {e}"))?;
            let value = env(&format!("GIT_CONFIG_VALUE_{i}")).ok_or_else(|| {
                format!("GIT_CONFIG_COUNT is {count} but GIT_CONFIG_VALUE_{i} is not set")
            })?;
            Ok((key, value))
        })
        .collect()
}

/// How TLS certificates are checked. libgit2 holds these process-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// A CA bundle file (`http.sslCAInfo`, `GIT_SSL_CAINFO`).
    pub ca_file: Option<String>,
    /// A directory of CA certificates (`http.sslCAPath`, `GIT_SSL_CAPATH`).
    pub ca_dir: Option<String>,
    /// False with `http.sslVerify=false` or `GIT_SSL_NO_VERIFY` set.
    pub verify: bool,
    /// A client certificate (chain) to present to servers that ask for
    /// one (`http.sslCert`, `GIT_SSL_CERT`), and its key (`http.sslKey`,
    /// `GIT_SSL_KEY`; as with git, the certificate's file when not given).
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    /// The `http.<url>.sslCAInfo`, `.sslCAPath`, `.sslCert` and `.sslKey`
    /// entries, in their order (as `http.<url>.<name>`, name in lower
    /// case): settings for the servers they match only, over the ones
    /// above (see `git::tls::for_url`). None of a name an environment
    /// variable sets: that one counts for every server, as in git.
    pub scoped: Vec<(String, String)>,
}

impl Tls {
    /// From the config entries, then the environment variables git reads
    /// for the same settings (set at all, `GIT_SSL_NO_VERIFY` turns
    /// verification off, whatever its value, as in git).
    pub fn new(entries: &Entries, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let last = |key: &str| {
            entries
                .iter()
                .rev()
                .find(|(k, _)| same_key(k, key))
                .map(|(_, v)| v.clone())
        };
        let set_in_env = |name: &str| env(name).filter(|v| !v.is_empty());
        let verify = env("GIT_SSL_NO_VERIFY").is_none()
            && !matches!(
                last("http.sslVerify")
                    .map(|v| v.to_ascii_lowercase())
                    .as_deref(),
                Some("false" | "0" | "no" | "off")
            );
        let client_cert = set_in_env("GIT_SSL_CERT").or_else(|| last("http.sslCert"));
        let client_key = set_in_env("GIT_SSL_KEY")
            .or_else(|| last("http.sslKey"))
            .or_else(|| client_cert.clone());
        let scoped = entries
            .iter()
            .filter_map(|(key, value)| {
                let Key { section, sub, name } = Key::of(key);
                let var = match name.as_str() {
                    "sslcainfo" => "GIT_SSL_CAINFO",
                    "sslcapath" => "GIT_SSL_CAPATH",
                    "sslcert" => "GIT_SSL_CERT",
                    "sslkey" => "GIT_SSL_KEY",
                    _ => return None,
                };
                let sub = sub.filter(|_| section == "http" && set_in_env(var).is_none())?;
                // (The URL as written: matched as git matches it.)
                let url = &key[key.find('.')? + 1..key.rfind('.')?];
                debug_assert_eq!(url.to_ascii_lowercase(), sub);
                Some((format!("http.{url}.{name}"), value.clone()))
            })
            .collect();
        Tls {
            scoped,
            ca_file: set_in_env("GIT_SSL_CAINFO").or_else(|| last("http.sslCAInfo")),
            ca_dir: set_in_env("GIT_SSL_CAPATH").or_else(|| last("http.sslCAPath")),
            verify,
            client_key: client_cert.as_ref().and(client_key),
            client_cert,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn pairs(list: &[(&str, &str)]) -> Entries {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn env_of(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn set_replaces_the_same_key_whatever_its_case_but_not_another_subsection() {
        let mut e = pairs(&[("http.extraHeader", "A: 1"), ("http.extraHeader", "B: 2")]);
        e.push(("http.https://a/.proxy".into(), "p1".into()));
        set(
            &mut e,
            pairs(&[
                ("HTTP.EXTRAHEADER", "C: 3"),
                ("http.https://A/.proxy", "p2"),
            ]),
        );
        assert_eq!(
            e,
            pairs(&[
                ("http.https://a/.proxy", "p1"),
                ("HTTP.EXTRAHEADER", "C: 3"),
                ("http.https://A/.proxy", "p2"),
            ])
        );
    }

    #[test]
    fn env_config_is_read_as_git_reads_it() {
        let env = env_of(&[
            ("GIT_CONFIG_COUNT", "2"),
            ("GIT_CONFIG_KEY_0", "safe.directory"),
            ("GIT_CONFIG_VALUE_0", "*"),
            ("GIT_CONFIG_KEY_1", "http.proxy"),
            ("GIT_CONFIG_VALUE_1", "http://p:3128"),
        ]);
        assert_eq!(
            from_env(&env).unwrap(),
            pairs(&[("safe.directory", "*"), ("http.proxy", "http://p:3128")])
        );
        assert_eq!(from_env(&env_of(&[])).unwrap(), Vec::new());
        for (bad, says) in [
            (env_of(&[("GIT_CONFIG_COUNT", "x")]), "GIT_CONFIG_COUNT"),
            (env_of(&[("GIT_CONFIG_COUNT", "1")]), "GIT_CONFIG_KEY_0"),
            (
                env_of(&[("GIT_CONFIG_COUNT", "1"), ("GIT_CONFIG_KEY_0", "a.b")]),
                "GIT_CONFIG_VALUE_0",
            ),
            (
                env_of(&[
                    ("GIT_CONFIG_COUNT", "1"),
                    ("GIT_CONFIG_KEY_0", "nodot"),
                    ("GIT_CONFIG_VALUE_0", "v"),
                ]),
                "GIT_CONFIG_KEY_0",
            ),
        ] {
            let e = from_env(&bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn keys_without_effect_are_named() {
        let e = pairs(&[
            ("http.proxy", "p"),
            ("http.https://h/.extraHeader", "X: 1"),
            ("http.sslVerify", "false"),
            ("url.https://m/.insteadOf", "https://g/"),
            ("protocol.file.allow", "always"),
            ("core.autocrlf", "true"),
            ("safe.directory", "*"),
            ("http.postBuffer", "1048576"),
            ("http.https://h/.sslVerify", "false"),
            ("http.https://h/.postBuffer", "1"),
            ("core.sshCommand", "ssh -v"),
            ("protocol.allow", "always"),
            ("protocol.version", "0"),
            // git-lfs's, read by the built-in LFS client.
            ("lfs.url", "https://lfs/"),
            ("remote.origin.lfsurl", "https://lfs/"),
            ("lfs.fetchInclude", "a"),
            ("lfs.fetchexclude", "b"),
            ("lfs.concurrenttransfers", "4"),
            ("lfs.skipDownloadErrors", "true"),
            ("lfs.transfer.maxRetries", "2"),
            ("lfs.transfer.maxretrydelay", "1"),
            ("lfs.locksverify", "false"),
            ("lfs.transfer.enablehrefrewrite", "true"),
            ("remote.origin.url", "https://h/r"),
        ]);
        assert_eq!(
            without_effect(&e),
            [
                "safe.directory",
                "http.postBuffer",
                "http.https://h/.postBuffer",
                "protocol.allow",
                "lfs.locksverify",
                "lfs.transfer.enablehrefrewrite",
                "remote.origin.url"
            ]
        );
    }

    #[test]
    fn tls_environment_overrides_the_config() {
        let cfg = pairs(&[
            ("http.sslCAInfo", "/cfg/ca.pem"),
            ("http.sslverify", "true"),
        ]);
        let t = Tls::new(&cfg, &env_of(&[]));
        assert_eq!(t.ca_file.as_deref(), Some("/cfg/ca.pem"));
        assert!(t.verify);
        let t = Tls::new(
            &cfg,
            &env_of(&[
                ("GIT_SSL_CAINFO", "/env/ca.pem"),
                ("GIT_SSL_CAPATH", "/env/certs"),
                ("GIT_SSL_NO_VERIFY", "false"),
            ]),
        );
        assert_eq!(t.ca_file.as_deref(), Some("/env/ca.pem"));
        assert_eq!(t.ca_dir.as_deref(), Some("/env/certs"));
        assert!(!t.verify, "git turns verification off whatever the value");
        let off = pairs(&[("http.sslVerify", "true"), ("http.sslVerify", "off")]);
        assert!(!Tls::new(&off, &env_of(&[])).verify);
    }

    #[test]
    fn what_changes_how_a_remote_is_reached_is_warned_about() {
        let entries = |keys: &[&str]| -> Entries {
            keys.iter()
                .map(|k| (k.to_string(), "x".to_string()))
                .collect()
        };
        let none = |_: &str| None;
        assert!(
            unsupported_consequences(&entries(&["http.postBuffer", "gc.auto"]), &none).is_empty()
        );
        let said = unsupported_consequences(
            &entries(&[
                "http.https://h/.sslKey",
                "core.sshCommand",
                "credential.https://h.helper",
                "http.https://h/.sslCAInfo",
            ]),
            &none,
        );
        // (Credential helpers are run, and CAs and client certificates
        // for some servers only used for them: no warning.)
        assert_eq!(said.len(), 1, "{said:?}");
        // A plain ssh command line is read; beyond its keys and host
        // checks, or when it is not one, it is warned about.
        for (command, warnings) in [
            ("ssh -v -i k -p 2222", 0),
            ("ssh -J bastion", 0),
            ("ssh -o CertificateFile=c", 1),
            ("my-ssh", 1),
        ] {
            let ssh_env = |k: &str| (k == "GIT_SSH_COMMAND").then(|| command.to_string());
            let said = unsupported_consequences(&entries(&[]), &ssh_env);
            assert_eq!(said.len(), warnings, "{command}: {said:?}");
        }
    }

    #[test]
    fn the_store_helper_names_its_files_and_only_other_helpers_are_warned_about() {
        let home = env_of(&[("HOME", "/home/me")]);
        let files = |helpers: &[&str], env: &dyn Fn(&str) -> Option<String>| {
            let e: Vec<(&str, &str)> = helpers.iter().map(|h| ("credential.helper", *h)).collect();
            credential_store_files(&pairs(&e), env)
        };
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            files(&["store"], &home),
            vec![
                p("/home/me/.git-credentials"),
                p("/home/me/.config/git/credentials")
            ]
        );
        let xdg = env_of(&[("HOME", "/home/me"), ("XDG_CONFIG_HOME", "/xdg")]);
        assert_eq!(files(&["store"], &xdg)[1], p("/xdg/git/credentials"));
        assert_eq!(
            files(
                &["store --file=/a", "cache --timeout=60", "store --file ~/b"],
                &home
            ),
            vec![p("/a"), p("/home/me/b")]
        );
        // An empty value drops the helpers before it, as in git.
        assert_eq!(
            files(&["store --file=/a", "", "store --file=/c"], &home),
            vec![p("/c")]
        );
        assert!(files(&["storex", "/usr/bin/store", "!store"], &home).is_empty());

        // The helpers that are run: all but `store` for every server.
        let run = |helpers: &[(&str, &str)]| credential_helpers(&pairs(helpers), &home);
        let helper = |scope: Option<&str>, command: &str| CredentialHelper {
            scope: scope.map(str::to_string),
            command: command.to_string(),
        };
        assert_eq!(
            run(&[
                ("credential.helper", "cache"),
                ("credential.helper", ""),
                ("credential.helper", "store --file=/a"),
                ("credential.https://H/Path.helper", "store"),
                ("credential.helper", "!f() { echo password=x; }; f"),
            ]),
            [
                helper(Some("https://H/Path"), "store"),
                helper(None, "!f() { echo password=x; }; f")
            ]
        );
        assert!(
            unsupported_consequences(&pairs(&[("credential.helper", "cache")]), &home).is_empty()
        );
        assert!(without_effect(&pairs(&[("credential.helper", "store")])).is_empty());
        // useHttpPath: the last value that applies to the URL.
        let url = "https://git.example/org/r.git";
        let use_path = |e: &[(&str, &str)]| UseHttpPath::read(&pairs(e)).for_url(url);
        assert!(use_path(&[("credential.useHttpPath", "true")]));
        assert!(!use_path(&[
            ("credential.useHttpPath", "true"),
            ("credential.https://GIT.example/org.useHttpPath", "false"),
            ("credential.https://other.example.useHttpPath", "true"),
        ]));
        assert!(!use_path(&[]));
        assert!(use_path(&[
            ("credential.https://other.example.useHttpPath", "false"),
            ("credential.https://git.example.useHttpPath", "yes"),
        ]));
    }

    #[test]
    fn a_client_certificate_from_config_or_env_its_key_defaulting_to_its_file() {
        let cfg = pairs(&[("http.sslCert", "/c.pem")]);
        let t = Tls::new(&cfg, &env_of(&[]));
        assert_eq!(t.client_cert.as_deref(), Some("/c.pem"));
        assert_eq!(t.client_key.as_deref(), Some("/c.pem"));
        let cfg = pairs(&[("http.sslCert", "/c.pem"), ("http.sslKey", "/k.pem")]);
        let t = Tls::new(&cfg, &env_of(&[("GIT_SSL_KEY", "/env.key")]));
        assert_eq!(t.client_key.as_deref(), Some("/env.key"));
        // A key alone presents nothing.
        let t = Tls::new(&pairs(&[("http.sslKey", "/k.pem")]), &env_of(&[]));
        assert_eq!((t.client_cert, t.client_key), (None, None));
        // Settings for some servers only, as written (the URL's case too),
        // but none of a name the environment sets for every server.
        let cfg = pairs(&[
            ("HTTP.https://H/Org.sslCAInfo", "/ca.pem"),
            ("http.https://h.sslCert", "/h.crt"),
            ("http.https://h.sslVerify", "false"),
            ("http.sslCAInfo", "/all.pem"),
        ]);
        let t = Tls::new(&cfg, &env_of(&[("GIT_SSL_CERT", "/env.crt")]));
        assert_eq!(
            t.scoped,
            [(
                "http.https://H/Org.sslcainfo".to_string(),
                "/ca.pem".to_string()
            )]
        );
        assert_eq!(t.client_cert.as_deref(), Some("/env.crt"));
    }
}
