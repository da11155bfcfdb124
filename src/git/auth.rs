//! Credentials for HTTP(S) remotes, handed to libgit2 through its
//! credential callback. Secrets never reach a log line or an error message.

use std::fmt;
use std::path::{Path, PathBuf};

use super::known_hosts::HostKeyError;
use super::proxy::http_origin;
use super::urlmatch::percent_decoded;
use crate::credentials::cookies::CookieJar;

/// Where the password comes from.
#[derive(Clone)]
pub enum Password {
    Value(String),
    /// Read again before every pass: rotated tokens need no restart.
    File(PathBuf),
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Value(_) => f.write_str("Value(***)"),
            Password::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// Username and password (or access token).
#[derive(Debug, Clone)]
pub struct Auth {
    pub username: String,
    pub password: Password,
}

/// Credentials resolved for one pass.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Auth {
    /// The credentials to use now (reads the password file).
    pub fn resolve(&self) -> std::io::Result<Credentials> {
        let password = match &self.password {
            Password::Value(v) => v.clone(),
            Password::File(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("read password file {}: {e}", p.display()),
                    )
                })?;
                text.trim_end_matches(['\n', '\r']).to_string()
            }
        };
        Ok(Credentials {
            username: self.username.clone(),
            password,
        })
    }
}

/// SSH authentication and host verification.
#[derive(Debug, Clone)]
pub struct SshAuth {
    /// Private keys, tried in order.
    pub key_files: Vec<PathBuf>,
    /// `None`: do not verify host keys.
    pub known_hosts: Option<PathBuf>,
    /// A host the file does not list (or no file) is accepted, a listed
    /// one's key must match (`StrictHostKeyChecking=accept-new`).
    pub accept_new_hosts: bool,
    /// The system's known_hosts files, read besides `known_hosts` (when
    /// host keys are checked), as OpenSSH reads them.
    pub global_known_hosts: Vec<PathBuf>,
    /// Offer the keys of the ssh-agent at `SSH_AUTH_SOCK` after the files.
    pub agent: bool,
    /// OpenSSH's client configuration, read for each SSH URL's host.
    pub client_config: SshClientConfig,
    /// `HostKeyAlias`: the name host keys are looked up by, instead of
    /// the host and port.
    pub host_key_alias: Option<String>,
}

/// OpenSSH's client configuration files (see `ssh_config.rs`), and what
/// the command line already decided, which they do not change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshClientConfig {
    /// Read in order; none for `-F none`.
    pub files: Vec<PathBuf>,
    /// `~` and `%d` in them.
    pub home: Option<PathBuf>,
    /// `IdentitiesOnly` was given on the command line.
    pub identities_only_given: bool,
    /// `GlobalKnownHostsFile` was given on the command line.
    pub global_known_hosts_given: bool,
    /// The command line's `HostName`, port (`-p`, `Port`) and user (`-l`,
    /// `User`), which win over the files' (and the port and user over the
    /// URL's: git's `-p` and `user@` come after the user's options, and
    /// ssh keeps the first value).
    pub host_name: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// The command line's `HostKeyAlias`.
    pub host_key_alias: Option<String>,
    /// The command line's `ProxyCommand` or `ProxyJump` (`-J`); `Some(None)`
    /// for `none`, which says the files' are not to be used either.
    pub proxy: Option<Option<super::SshProxy>>,
    /// The command line's `-F`, passed on to the `ssh` a `ProxyJump` runs.
    pub config_file: Option<PathBuf>,
}

impl SshAuth {
    /// These settings for a connection to `destination` (what the
    /// configuration files say of its host): its `IdentityFile`s tried
    /// after the keys given, its `IdentitiesOnly` and `GlobalKnownHostsFile`
    /// unless the command line gave them.
    pub(crate) fn for_destination(&self, destination: &super::ssh_config::Destination) -> SshAuth {
        let mut auth = self.clone();
        for key in &destination.identity_files {
            if !auth.key_files.contains(key) {
                auth.key_files.push(key.clone());
            }
        }
        let given = &self.client_config;
        if !given.identities_only_given && destination.identities_only == Some(true) {
            auth.agent = false;
        }
        if let Some(files) = destination
            .global_known_hosts
            .as_ref()
            .filter(|_| !given.global_known_hosts_given)
        {
            auth.global_known_hosts = files.clone();
        }
        auth.host_key_alias = destination.host_key_alias.clone();
        auth
    }

    /// The name and port `host:port`'s keys are listed under in
    /// known_hosts files: the `HostKeyAlias` alone when there is one, as
    /// OpenSSH looks them up.
    pub fn host_key_name<'a>(&'a self, host: &'a str, port: u16) -> (&'a str, u16) {
        match &self.host_key_alias {
            Some(alias) => (alias, 22),
            None => (host, port),
        }
    }

    /// Whether `key` (an SSH public key blob) may be `host:port`'s: as
    /// OpenSSH decides, listed with that key in the known_hosts file or
    /// one of the system's, and refused when one lists the host with
    /// other keys only.
    pub fn check_host_key(&self, host: &str, port: u16, key: &[u8]) -> Result<(), HostKeyError> {
        let Some(file) = &self.known_hosts else {
            return Ok(());
        };
        let (host, port) = self.host_key_name(host, port);
        let verify = |f: &Path| super::known_hosts::verify(f, host, port, key);
        let ours = verify(file);
        // The system's files count where they are there.
        let theirs: Vec<_> = self
            .global_known_hosts
            .iter()
            .filter(|f| f.exists())
            .map(|f| verify(f))
            .collect();
        if ours.is_ok() || theirs.iter().any(Result::is_ok) {
            return Ok(());
        }
        let mismatch = std::iter::once(&ours).chain(&theirs).find_map(|r| match r {
            Err(HostKeyError::Mismatch(m)) => Some(m.clone()),
            _ => None,
        });
        if let Some(m) = mismatch {
            return Err(HostKeyError::Mismatch(m));
        }
        // Listed nowhere: what our file said (not there, or without it).
        match ours {
            Err(HostKeyError::Unknown(_)) if self.accept_new_hosts => Ok(()),
            Err(HostKeyError::Unreadable(_)) if self.accept_new_hosts && !file.exists() => Ok(()),
            ours => ours,
        }
    }

    /// The known_hosts files read, the user's first; none when host keys
    /// are not checked.
    pub fn known_hosts_files(&self) -> Vec<&Path> {
        let Some(file) = self.known_hosts.as_deref() else {
            return Vec::new();
        };
        let globals = self.global_known_hosts.iter().map(PathBuf::as_path);
        std::iter::once(file).chain(globals).collect()
    }
}

/// Everything a remote operation may need, resolved for one pass.
#[derive(Debug, Clone, Default)]
pub struct CredentialSet {
    /// For the repository's server without a more specific entry.
    pub default: Option<Credentials>,
    /// The repository's URL: `default` goes to its server only (scheme,
    /// host and port; HTTPS too when it is HTTP), not to a submodule's
    /// server nor one a redirect leads to, as git's credential helpers
    /// match by host. `None`: wherever asked.
    pub default_for: Option<String>,
    /// (URL prefix, credentials): the longest matching prefix wins.
    pub by_url: Vec<(String, Credentials)>,
    pub ssh: Option<SshAuth>,
    /// Cookies sent with HTTP requests they match.
    pub cookies: CookieJar,
    /// Logins by server, for HTTP(S) servers none of the above has
    /// credentials for: a `.netrc`'s (as curl under git uses them), then
    /// those of git's `store` credential helper. The first that fits wins.
    pub logins: Vec<HostLogin>,
    /// git's credential helpers, asked about a URL none of the above has
    /// credentials for once its server wants some, as git asks them.
    pub helpers: Option<HelperAsker>,
}

/// Asks git's credential helpers for the credentials of a URL.
pub trait AskHelpers: Send + Sync {
    /// The credentials the helpers give for `url`, or the names of those
    /// asked, which had none.
    fn ask(&self, url: &str) -> Result<Credentials, Vec<String>>;
    /// The server refused what they gave for `url`: ask them again next
    /// time.
    fn rejected(&self, url: &str);
}

/// A handle on the [`AskHelpers`] of a pass, shared by its clones.
#[derive(Clone)]
pub struct HelperAsker(pub std::sync::Arc<dyn AskHelpers>);

impl fmt::Debug for HelperAsker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HelperAsker")
    }
}

/// A login for the servers it names: an entry of a `.netrc` (any scheme
/// and port) or a line of a git credential store file.
#[derive(Debug, Clone)]
pub struct HostLogin {
    /// `None`: any (a `.netrc`).
    pub scheme: Option<String>,
    /// Lowercase; `None` for a `.netrc`'s `default` entry, which fits any.
    pub host: Option<String>,
    /// `None`: any (a `.netrc`).
    pub port: Option<u16>,
    pub credentials: Credentials,
}

impl HostLogin {
    /// A line of a git credential store file
    /// (`https://user:password@host[:port][/path]`, percent-encoded as git
    /// writes it); `None` for what is not one, as git passes it over.
    pub fn from_store_line(line: &str) -> Option<HostLogin> {
        let (bare, credentials) = credentials_in_url(line.trim())?;
        let (scheme, host, port) = http_origin(&bare)?;
        Some(HostLogin {
            scheme: Some(scheme.to_string()),
            host: Some(host),
            port: Some(port),
            credentials,
        })
    }

    /// `credentials` for the server of `url` (an HTTP(S) URL).
    pub fn for_server_of(url: &str, credentials: Credentials) -> Option<HostLogin> {
        let (scheme, host, port) = http_origin(url)?;
        Some(HostLogin {
            scheme: Some(scheme.to_string()),
            host: Some(host),
            port: Some(port),
            credentials,
        })
    }

    /// Whether this login is for `(scheme, host, port)` and `user`, the
    /// user named in the URL if any.
    fn fits(&self, (scheme, host, port): (&str, &str, u16), user: Option<&str>) -> bool {
        self.scheme.as_deref().map_or(true, |s| s == scheme)
            && self.host.as_deref().map_or(true, |h| h == host)
            && self.port.map_or(true, |p| p == port)
            && user.map_or(true, |u| self.credentials.username == u)
    }
}

/// `scheme://user:password@host/path` as the URL without its credentials,
/// and those, decoded as git decodes them (`%40` is `@`). `None` for a URL
/// without a password: a user alone is left to libgit2, which asks the
/// credential callback for the rest.
pub fn credentials_in_url(url: &str) -> Option<(String, Credentials)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (userinfo, host) = rest[..authority_end].rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    let bare = format!("{scheme}://{host}{}", &rest[authority_end..]);
    let credentials = Credentials {
        username: percent_decoded(user),
        password: percent_decoded(password),
    };
    Some((bare, credentials))
}

impl CredentialSet {
    /// The username/password for `url`.
    pub fn for_url(&self, url: &str) -> Option<&Credentials> {
        self.by_url
            .iter()
            .filter(|(prefix, _)| url_under(prefix, url))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, c)| c)
            .or(self.default.as_ref().filter(|_| self.default_goes_to(url)))
            .or_else(|| self.login_for(url))
    }

    /// The credentials for `url` as [`CredentialSet::for_url`] finds
    /// them, else what the credential helpers give for it (asked now, as
    /// git asks them once a server wants credentials); or the names of the
    /// helpers asked, which had none.
    pub fn for_url_or_helpers(&self, url: &str) -> Result<Credentials, Vec<String>> {
        match (self.for_url(url), &self.helpers) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(helpers)) => helpers.0.ask(url),
            (None, None) => Err(Vec::new()),
        }
    }

    /// The server refused the credentials given for `url`: a helper's
    /// answer is not used again without asking.
    pub fn rejected(&self, url: &str) {
        if let Some(helpers) = &self.helpers {
            helpers.0.rejected(url);
        }
    }

    /// The first of [`CredentialSet::logins`] for `url`'s server and the
    /// user it names, if it names one.
    fn login_for(&self, url: &str) -> Option<&Credentials> {
        let (scheme, host, port) = http_origin(url)?;
        let user = user_in(url);
        self.logins
            .iter()
            .find(|l| l.fits((scheme, &host, port), user.as_deref()))
            .map(|l| &l.credentials)
    }

    /// The server [`CredentialSet::default`] is for, as `scheme://host:port`.
    pub fn default_server(&self) -> Option<String> {
        let (scheme, host, port) = http_origin(self.default_for.as_deref()?)?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        Some(format!("{scheme}://{host}:{port}"))
    }

    /// Whether [`CredentialSet::default`] may be sent to `url`.
    pub fn default_goes_to(&self, url: &str) -> bool {
        let Some(repo) = &self.default_for else {
            return true;
        };
        match (http_origin(repo), http_origin(url)) {
            (Some((scheme, host, port)), Some((to_scheme, to_host, to_port))) => {
                host == to_host
                    && ((scheme, port) == (to_scheme, to_port)
                        || (scheme, to_scheme) == ("http", "https"))
            }
            _ => false,
        }
    }
}

/// Whether `url` lies under the `--credential` URL `prefix`: a prefix of
/// it, the user in `url` aside, ending where the server's name does when
/// it has no path (`https://b.example` is not a prefix of
/// `https://b.example.evil.example/` nor of `https://b.example:8443/`).
fn url_under(prefix: &str, url: &str) -> bool {
    let url = without_user(url);
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    let has_path = prefix
        .split_once("://")
        .is_some_and(|(_, after)| after.contains('/'));
    has_path || rest.is_empty() || rest.starts_with('/')
}

/// The user named in `url`'s authority, decoded.
fn user_in(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let user = userinfo.split(':').next().unwrap_or_default();
    Some(percent_decoded(user))
}

/// `url` without the `user[:password]@` of its authority.
pub(crate) fn without_user(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]).into(),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn credentials_in_a_url_are_taken_out_and_decoded() {
        let split =
            |url: &str| credentials_in_url(url).map(|(bare, c)| (bare, c.username, c.password));
        assert_eq!(
            split("https://bot:p%40ss%2Fw@h:8443/o/r.git?x=1"),
            Some((
                "https://h:8443/o/r.git?x=1".into(),
                "bot".into(),
                "p@ss/w".into()
            ))
        );
        assert_eq!(
            split("http://u%20x:@h/r"),
            Some(("http://h/r".into(), "u x".into(), String::new()))
        );
        assert_eq!(split("https://token@h/r"), None);
        assert_eq!(split("https://h/a@b:c"), None);
        assert_eq!(split("https://h/r"), None);
    }

    use super::*;

    #[test]
    fn the_repositorys_credentials_go_to_its_server_only() {
        let creds = |repo: Option<&str>| CredentialSet {
            default: Some(Credentials {
                username: "bot".into(),
                password: "pw".into(),
            }),
            default_for: repo.map(str::to_string),
            ..CredentialSet::default()
        };
        let set = creds(Some("http://Git.Example.com/org/site.git"));
        for (url, goes) in [
            ("http://git.example.com/org/lib.git", true),
            ("http://git.example.com:80/other", true),
            // Upgraded to HTTPS by a redirect: same server.
            ("https://git.example.com/org/site.git", true),
            ("http://git.example.com:8080/org/site.git", false),
            ("http://other.example.com/org/site.git", false),
            ("http://git.example.com.evil.example/org/site.git", false),
            ("ssh://git.example.com/org/site.git", false),
        ] {
            assert_eq!(set.for_url(url).is_some(), goes, "{url}");
        }
        let set = creds(Some("https://git.example.com/r"));
        assert!(set.for_url("http://git.example.com/r").is_none());
        assert_eq!(
            set.default_server().as_deref(),
            Some("https://git.example.com:443")
        );
        // A --credential entry counts wherever it matches.
        let mut set = creds(Some("https://a.example/r"));
        set.by_url.push((
            "https://b.example/".into(),
            Credentials {
                username: "b".into(),
                password: "b".into(),
            },
        ));
        assert_eq!(set.for_url("https://b.example/x").unwrap().username, "b");
        assert!(creds(None).for_url("https://anywhere.example/").is_some());
    }

    #[test]
    fn a_login_is_for_its_server_and_user_after_every_other_credential() {
        let entry = |host: Option<&str>, user: &str| HostLogin {
            scheme: None,
            host: host.map(str::to_string),
            port: None,
            credentials: Credentials {
                username: user.into(),
                password: format!("{}-{user}", host.unwrap_or("any")),
            },
        };
        let stored =
            HostLogin::from_store_line("https://st%40re:pw%2F1@Stored.Example:8443/some/path\n");
        let mut set = CredentialSet {
            logins: vec![
                entry(Some("git.example.com"), "bot"),
                entry(Some("git.example.com"), "other"),
                entry(Some("b.example"), "b"),
                stored.clone().unwrap(),
                entry(None, "anon"),
            ],
            ..CredentialSet::default()
        };
        let password =
            |set: &CredentialSet, url: &str| set.for_url(url).map(|c| c.password.clone());
        for (url, want) in [
            (
                "https://Git.Example.com:8443/r",
                Some("git.example.com-bot"),
            ),
            (
                "http://other@git.example.com/r",
                Some("git.example.com-other"),
            ),
            ("https://b.example/r", Some("b.example-b")),
            ("https://elsewhere.example/r", Some("any-anon")),
            // A user in the URL: only a login of theirs.
            ("https://nobody@b.example/r", None),
            ("https://anon@b.example/r", Some("any-anon")),
            ("ssh://git.example.com/r", None),
            // A stored line is for its scheme, host and port, any path.
            ("https://stored.example:8443/other", Some("pw/1")),
            ("https://stored.example/other", Some("any-anon")),
            ("http://stored.example:8443/r", Some("any-anon")),
        ] {
            assert_eq!(password(&set, url).as_deref(), want, "{url}");
        }
        assert_eq!(stored.unwrap().credentials.username, "st@re");
        for not_a_login in [
            "",
            "# comment",
            "https://h/r",
            "https://user@h/r",
            "ssh://u:p@h/r",
        ] {
            assert!(
                HostLogin::from_store_line(not_a_login).is_none(),
                "{not_a_login}"
            );
        }
        // git-sync's own credentials come first.
        set.default = Some(Credentials {
            username: "bot".into(),
            password: "flag".into(),
        });
        set.default_for = Some("https://git.example.com/r".into());
        assert_eq!(
            password(&set, "https://git.example.com/r").as_deref(),
            Some("flag")
        );
        assert_eq!(
            password(&set, "https://b.example/r").as_deref(),
            Some("b.example-b")
        );
    }

    #[test]
    fn a_host_key_is_checked_against_the_users_file_and_the_systems_as_openssh_does() {
        let blob = |fill: u8| {
            let mut b = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20".to_vec();
            b.extend([fill; 32]);
            b
        };
        let (right, wrong) = (blob(1), blob(2));
        let t = tempfile::TempDir::new().unwrap();
        let file = |name: &str, key: Option<&[u8]>| {
            let path = t.path().join(name);
            let line = key.map(|k| {
                format!(
                    "[h]:2222 ssh-ed25519 {}\n",
                    openssl::base64::encode_block(k)
                )
            });
            std::fs::write(&path, line.unwrap_or_default()).unwrap();
            path
        };
        let (listed, other, empty) = (
            file("listed", Some(&right)),
            file("other", Some(&wrong)),
            file("empty", None),
        );
        let missing = t.path().join("missing");
        let check = |user: &Path, globals: &[&Path], accept_new: bool| {
            let auth = SshAuth {
                key_files: Vec::new(),
                known_hosts: Some(user.to_path_buf()),
                accept_new_hosts: accept_new,
                global_known_hosts: globals.iter().map(|g| g.to_path_buf()).collect(),
                agent: false,
                client_config: Default::default(),
                host_key_alias: None,
            };
            match auth.check_host_key("h", 2222, &right) {
                Ok(()) => "ok",
                Err(HostKeyError::Mismatch(_)) => "mismatch",
                Err(HostKeyError::Unknown(_)) => "unknown",
                Err(HostKeyError::Unreadable(_)) => "unreadable",
            }
        };
        assert_eq!(check(&missing, &[&missing, &listed], false), "ok");
        assert_eq!(check(&other, &[&listed], false), "ok");
        assert_eq!(check(&other, &[&missing], false), "mismatch");
        assert_eq!(check(&empty, &[&other], false), "mismatch");
        assert_eq!(check(&empty, &[&other], true), "mismatch");
        assert_eq!(check(&empty, &[&missing], false), "unknown");
        assert_eq!(check(&empty, &[&missing], true), "ok");
        assert_eq!(check(&missing, &[], false), "unreadable");
        assert_eq!(check(&missing, &[], true), "ok");
    }

    #[test]
    fn a_credential_for_a_server_is_for_that_server_only() {
        let entry = |prefix: &str| CredentialSet {
            by_url: vec![(
                prefix.into(),
                Credentials {
                    username: "b".into(),
                    password: "b".into(),
                },
            )],
            ..CredentialSet::default()
        };
        let host = entry("https://b.example");
        for (url, matches) in [
            ("https://b.example/vendor/lib.git", true),
            ("https://b.example", true),
            // The user in the URL libgit2 asks for does not count.
            ("https://me@b.example/vendor/lib.git", true),
            ("https://b.example.evil.example/x", false),
            ("https://b.example:8443/x", false),
            ("http://b.example/x", false),
        ] {
            assert_eq!(host.for_url(url).is_some(), matches, "{url}");
        }
        let path = entry("https://b.example/vendor");
        assert!(path.for_url("https://b.example/vendor/lib.git").is_some());
        assert!(path.for_url("https://b.example/other/lib.git").is_none());
    }
}
