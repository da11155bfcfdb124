//! Configuration of authentication (basic, askpass, per-URL credentials,
//! GitHub App, Azure workload identity, SSH) and of what is checked out (submodules, sparse
//! checkout, permissions).

use std::path::{Path, PathBuf};

use super::ssh_command::{HostChecking, SshCommand};
use super::{invalid, ConfigError, Sources};
use crate::git::{Auth, Password, SshClientConfig, SSH_SYSTEM_CONFIG};

/// Where upstream (and so its Secrets) put the cookie file.
pub const DEFAULT_COOKIE_FILE: &str = "/etc/git-secret/cookie_file";

/// A credential for URLs starting with `url`.
#[derive(Debug, Clone)]
pub struct UrlCredential {
    pub url: String,
    pub auth: Auth,
}

/// GitHub App authentication.
#[derive(Debug, Clone)]
pub struct GithubApp {
    /// PEM text or a file holding it.
    pub private_key: Password,
    /// The JWT issuer: the app ID or the client ID.
    pub issuer: String,
    pub installation_id: u64,
    pub base_url: String,
}

/// Azure workload identity: the Pod's federated token exchanged for a
/// Microsoft Entra access token.
#[derive(Debug, Clone)]
pub struct AzureIdentity {
    pub client_id: String,
    pub tenant_id: String,
    /// Read again for every exchange: kubelet rotates it.
    pub token_file: PathBuf,
    /// `https://login.microsoftonline.com/`, ending in `/`.
    pub authority_host: String,
    pub scope: String,
}

/// SSH settings.
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub key_files: Vec<PathBuf>,
    pub known_hosts: bool,
    pub known_hosts_file: PathBuf,
    /// `SSH_AUTH_SOCK` is set: the keys of that ssh-agent are offered
    /// after the key files, as OpenSSH (upstream's `ssh`) offers them.
    pub agent: bool,
    /// What `GIT_SSH_COMMAND` or `core.sshCommand` says, which wins over
    /// the flags (set from the git config and the environment).
    pub command: Option<SshCommand>,
    /// `$HOME`: where `~/.ssh/config` is.
    pub home: Option<PathBuf>,
}

impl SshConfig {
    /// The key files to try, in order: the command's, then the flags'.
    pub fn effective_key_files(&self) -> Vec<PathBuf> {
        let command = self.command.iter().flat_map(|c| c.key_files.iter());
        command.chain(&self.key_files).cloned().collect()
    }

    /// How host keys are checked: the command's `StrictHostKeyChecking`,
    /// else `--ssh-known-hosts`.
    pub fn host_checking(&self) -> HostChecking {
        let flag = match self.known_hosts {
            true => HostChecking::Strict,
            false => HostChecking::Off,
        };
        self.command
            .as_ref()
            .and_then(|c| c.host_checking)
            .unwrap_or(flag)
    }

    /// The known_hosts file: the command's `UserKnownHostsFile`, else
    /// `--ssh-known-hosts-file`.
    pub fn effective_known_hosts_file(&self) -> PathBuf {
        let command = self
            .command
            .as_ref()
            .and_then(|c| c.known_hosts_file.clone());
        command.unwrap_or_else(|| self.known_hosts_file.clone())
    }

    /// The system's known_hosts files, which OpenSSH reads besides the
    /// user's: the command's `GlobalKnownHostsFile`, else OpenSSH's
    /// defaults.
    pub fn effective_global_known_hosts(&self) -> Vec<PathBuf> {
        let command = self.command.as_ref();
        match command.and_then(|c| c.global_known_hosts_files.clone()) {
            Some(files) => files,
            None => GLOBAL_KNOWN_HOSTS.iter().map(PathBuf::from).collect(),
        }
    }

    /// OpenSSH's client configuration as upstream's `ssh` reads it: the
    /// command's `-F` file alone (none for `-F none`), else
    /// `~/.ssh/config` then the system's file.
    pub fn client_config(&self) -> SshClientConfig {
        let command = self.command.as_ref();
        let files = match command.and_then(|c| c.config_file.clone()) {
            Some(file) if file == Path::new("none") => Vec::new(),
            Some(file) => vec![file],
            None => {
                let user = self.home.as_ref().map(|h| h.join(".ssh/config"));
                user.into_iter()
                    .chain([PathBuf::from(SSH_SYSTEM_CONFIG)])
                    .collect()
            }
        };
        SshClientConfig {
            files,
            home: self.home.clone(),
            identities_only_given: command.is_some_and(|c| c.identities_only_given),
            global_known_hosts_given: command.is_some_and(|c| c.global_known_hosts_files.is_some()),
            host_name: command.and_then(|c| c.host_name.clone()),
            port: command.and_then(|c| c.port),
            user: command.and_then(|c| c.user.clone()),
            host_key_alias: command.and_then(|c| c.host_key_alias.clone()),
            proxy: command.and_then(|c| c.proxy.clone()),
            config_file: command.and_then(|c| c.config_file.clone()),
        }
    }

    /// Whether an ssh-agent's keys are offered: one is there, and the
    /// command does not say `IdentitiesOnly=yes`.
    pub fn offers_agent_keys(&self) -> bool {
        self.agent && !self.command.as_ref().is_some_and(|c| c.identities_only)
    }
}

/// OpenSSH's `GlobalKnownHostsFile` by default.
const GLOBAL_KNOWN_HOSTS: [&str; 2] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// Every way of authenticating.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub basic: Option<Auth>,
    pub askpass_url: Option<String>,
    pub credentials: Vec<UrlCredential>,
    pub github_app: Option<GithubApp>,
    pub azure: Option<AzureIdentity>,
    pub ssh: SshConfig,
    /// A Netscape cookie file whose matching cookies go with each HTTP
    /// request (`--cookie-file`, or `http.cookieFile` in --git-config).
    pub cookie_file: Option<PathBuf>,
    /// The `.netrc` to read before each pass: `$NETRC`, else
    /// `$HOME/.netrc`, as curl (under git) reads it.
    pub netrc: Option<PathBuf>,
    /// The files of git's `store` credential helper, when
    /// `credential.helper` names it (set from the git config).
    pub credential_stores: Vec<PathBuf>,
    /// The other credential helpers git would run, in order (set from the
    /// git config).
    pub credential_helpers: Vec<super::gitconfig::CredentialHelper>,
    /// `credential.useHttpPath` (and per URL): which URLs' paths go to
    /// the helpers too.
    pub credential_use_http_path: super::gitconfig::UseHttpPath,
}

/// Submodule handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submodules {
    Recursive,
    Shallow,
    Off,
}

/// What is checked out, and how.
#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    pub submodules: Submodules,
    pub sparse_checkout_file: Option<PathBuf>,
    pub group_write: bool,
    pub add_user: bool,
    pub filter: Option<String>,
    /// Whether Git LFS files are published with their content (unless
    /// `GIT_LFS_SKIP_SMUDGE`, git-lfs's own switch, says not to).
    pub lfs: bool,
}

/// A username or password as git (upstream's engine) takes it: through the
/// credential protocol, one `key=value` line each, so a value ends at its
/// line's end. The newline that a Secret made with `echo ... | base64` or a
/// file ending in one carries is not part of the value.
fn as_git_reads_it(mut value: String) -> String {
    let len = value.trim_end_matches(['\n', '\r']).len();
    value.truncate(len);
    value
}

/// Whether `repo` is a URL with a user (and maybe a password) in it:
/// `https://bot:token@host/org/repo`.
fn names_a_user(repo: &str) -> bool {
    repo.split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .is_some_and(|authority| authority.contains('@'))
}

fn basic(src: &Sources<'_>) -> Result<Option<Auth>, ConfigError> {
    let username = src.text("username")?.map(as_git_reads_it);
    if username.is_some() && src.text("repo")?.is_some_and(|r| names_a_user(&r)) {
        // As upstream: which of the two would be meant is anyone's guess.
        return Err(invalid(
            "username",
            "credentials may not be given in --repo as well (user@ in the URL)",
        ));
    }
    let password = src.text("password")?.map(as_git_reads_it);
    let password_file = src.text("password-file")?;
    let password = match (password, password_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "password-file",
                "only one of --password (GITSYNC_PASSWORD) and --password-file may be set",
            ))
        }
        (Some(p), None) => Some(Password::Value(p)),
        (None, Some(f)) => Some(Password::File(PathBuf::from(f))),
        (None, None) => None,
    };
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(Auth { username, password })),
        (Some(_), None) => Err(invalid(
            "username",
            "needs a password: set GITSYNC_PASSWORD or --password-file",
        )),
        (None, Some(_)) => Err(invalid("username", "must be set when a password is given")),
        (None, None) => Ok(None),
    }
}

/// The keys of a `--credential` object.
const CREDENTIAL_KEYS: [&str; 4] = ["url", "username", "password", "password-file"];

/// `{"url": ..., "username": ..., "password": ... | "password-file": ...}`
/// or a list of them; blank: none. As upstream decodes them (Go's
/// encoding/json, unknown fields disallowed): keys match case-insensitively
/// and any other key is an error, named (never its value) so that a typo
/// such as `password_file` does not go unnoticed.
fn parse_credentials(text: &str) -> Result<Vec<UrlCredential>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => return Err("expected a JSON object or a list of objects".into()),
    };
    items.iter().map(parse_credential).collect()
}

fn parse_credential(item: &serde_json::Value) -> Result<UrlCredential, String> {
    let object = item
        .as_object()
        .ok_or("expected a JSON object or a list of objects")?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !CREDENTIAL_KEYS.iter().any(|c| c.eq_ignore_ascii_case(k)))
    {
        return Err(format!(
            "unknown field {unknown:?} (known: {})",
            CREDENTIAL_KEYS.join(", ")
        ));
    }
    let field = |key: &str| {
        object
            .get(key)
            .or_else(|| {
                let mut folded = object.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key));
                folded.next().map(|(_, v)| v)
            })
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let url = field("url").ok_or("each credential needs \"url\"")?;
    let username = field("username")
        .map(as_git_reads_it)
        .ok_or_else(|| format!("credential for {url} needs \"username\""))?;
    let password = match (field("password"), field("password-file")) {
        (Some(p), None) => Password::Value(as_git_reads_it(p)),
        (None, Some(f)) => Password::File(PathBuf::from(f)),
        _ => {
            return Err(format!(
                "credential for {url} needs one of \"password\" or \"password-file\""
            ))
        }
    };
    Ok(UrlCredential {
        url,
        auth: Auth { username, password },
    })
}

/// An endpoint's base URL from `flag` (or `default`), ending in `/` so that
/// paths are appended to it.
fn base_url(src: &Sources<'_>, flag: &'static str, default: &str) -> Result<String, ConfigError> {
    let mut url = src.http_url(flag)?.unwrap_or_else(|| default.into());
    if !url.ends_with('/') {
        url.push('/');
    }
    Ok(url)
}

fn github_app(src: &Sources<'_>) -> Result<Option<GithubApp>, ConfigError> {
    let key = match (
        src.text("github-app-private-key")?,
        src.text("github-app-private-key-file")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "github-app-private-key-file",
                "only one of it and GITSYNC_GITHUB_APP_PRIVATE_KEY may be set",
            ))
        }
        (Some(k), None) => Some(Password::Value(k)),
        (None, Some(f)) => Some(Password::File(PathBuf::from(f))),
        (None, None) => None,
    };
    let app_id = src.int("github-app-application-id")?;
    let client_id = src.text("github-app-client-id")?;
    let installation = src.int("github-app-installation-id")?;
    let Some(private_key) = key else {
        if app_id.is_some() || client_id.is_some() || installation.is_some() {
            return Err(invalid(
                "github-app-private-key-file",
                "GitHub App auth needs the app's private key",
            ));
        }
        return Ok(None);
    };
    let issuer = match (app_id, client_id) {
        (Some(id), None) => id.to_string(),
        (None, Some(c)) => c,
        _ => {
            return Err(invalid(
                "github-app-application-id",
                "GitHub App auth needs exactly one of --github-app-application-id and --github-app-client-id",
            ))
        }
    };
    let installation_id = installation
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| {
            invalid(
                "github-app-installation-id",
                "GitHub App auth needs the installation ID",
            )
        })?;
    let base_url = base_url(src, "github-base-url", "https://api.github.com/")?;
    Ok(Some(GithubApp {
        private_key,
        issuer,
        installation_id,
        base_url,
    }))
}

fn azure(src: &Sources<'_>) -> Result<Option<AzureIdentity>, ConfigError> {
    if !src.bool("azure-workload-identity")? {
        return Ok(None);
    }
    let (Some(client_id), Some(tenant_id), Some(token_file)) = (
        src.text("azure-client-id")?,
        src.text("azure-tenant-id")?,
        src.text("azure-federated-token-file")?,
    ) else {
        return Err(invalid(
            "azure-workload-identity",
            "requires --azure-client-id, --azure-tenant-id, and --azure-federated-token-file \
             (the azure-workload-identity webhook sets AZURE_CLIENT_ID, AZURE_TENANT_ID and \
             AZURE_FEDERATED_TOKEN_FILE in Pods labelled azure.workload.identity/use)",
        ));
    };
    for other in [
        "username",
        "password",
        "password-file",
        "askpass-url",
        "github-app-private-key-file",
        "github-app-private-key",
    ] {
        if src.text(other)?.is_some() {
            return Err(invalid(
                other,
                "cannot be combined with --azure-workload-identity",
            ));
        }
    }
    let authority_host = base_url(
        src,
        "azure-authority-host",
        "https://login.microsoftonline.com/",
    )?;
    Ok(Some(AzureIdentity {
        client_id,
        tenant_id,
        token_file: PathBuf::from(token_file),
        authority_host,
        scope: src
            .text("azure-scope")?
            .unwrap_or_else(|| "499b84ac-1321-427f-aa17-267ca6975798/.default".into()),
    }))
}

fn netrc_path(src: &Sources<'_>) -> Option<PathBuf> {
    let set = |name: &str| src.env(name).filter(|v| !v.is_empty());
    set("NETRC")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| Path::new(&home).join(".netrc")))
}

pub(super) fn parse(src: &Sources<'_>) -> Result<AuthConfig, ConfigError> {
    let mut credentials = Vec::new();
    for text in src.list("credential") {
        credentials
            .extend(parse_credentials(&text).map_err(|e| src.out_of_range("credential", e))?);
    }
    let mut key_files: Vec<PathBuf> = src
        .list("ssh-key-file")
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if key_files.is_empty() {
        key_files.push(PathBuf::from("/etc/git-secret/ssh"));
    }
    Ok(AuthConfig {
        basic: basic(src)?,
        askpass_url: src.http_url("askpass-url")?,
        credentials,
        github_app: github_app(src)?,
        azure: azure(src)?,
        ssh: SshConfig {
            key_files,
            known_hosts: src
                .get("ssh-known-hosts", super::values::parse_bool)?
                .unwrap_or(true),
            known_hosts_file: PathBuf::from(
                src.text("ssh-known-hosts-file")?
                    .unwrap_or_else(|| "/etc/git-secret/known_hosts".into()),
            ),
            agent: src.env("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()),
            command: None,
            home: src.env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
        },
        cookie_file: src
            .bool("cookie-file")?
            .then(|| PathBuf::from(DEFAULT_COOKIE_FILE)),
        netrc: netrc_path(src),
        credential_stores: Vec::new(),
        credential_helpers: Vec::new(),
        credential_use_http_path: Default::default(),
    })
}

/// A git-lfs switch set in the environment (`name`), as git-lfs reads
/// it: unset or empty is false; a value that is no boolean, an error.
pub(super) fn lfs_switch(src: &Sources<'_>, name: &str) -> Result<bool, ConfigError> {
    match src.env(name).filter(|v| !v.is_empty()) {
        None => Ok(false),
        Some(v) => super::values::parse_git_bool(&v).ok_or_else(|| {
            ConfigError::Usage(format!(
                "invalid value for env {name}: {v:?} is not a boolean (1, true, 0, false...)"
            ))
        }),
    }
}

pub(super) fn parse_checkout(src: &Sources<'_>) -> Result<CheckoutConfig, ConfigError> {
    let skip_lfs = lfs_switch(src, "GIT_LFS_SKIP_SMUDGE")?;
    let submodules = match src.text("submodules")?.as_deref() {
        None | Some("recursive") => Submodules::Recursive,
        Some("shallow") => Submodules::Shallow,
        Some("off") => Submodules::Off,
        Some(other) => {
            return Err(src.out_of_range(
                "submodules",
                format!("{other:?} is not one of recursive, shallow, off"),
            ))
        }
    };
    Ok(CheckoutConfig {
        submodules,
        sparse_checkout_file: src.text("sparse-checkout-file")?.map(PathBuf::from),
        group_write: src.bool("group-write")?,
        add_user: src.bool("add-user")?,
        filter: src.text("filter")?,
        lfs: !skip_lfs,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_credentials;

    #[test]
    fn credential_json() {
        let one =
            parse_credentials(r#"{"url":"https://h/org","username":"u","password":"p"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].url, "https://h/org");
        let two = parse_credentials(
            r#"[{"url":"https://a","username":"u","password-file":"/f"},{"url":"https://b","username":"v","password":"q"}]"#,
        )
        .unwrap();
        assert_eq!(two.len(), 2);
        assert!(parse_credentials(r#"{"url":"x","username":"u"}"#).is_err());
        assert!(parse_credentials(r#"{"username":"u","password":"p"}"#).is_err());
        assert!(parse_credentials("nope").is_err());
        // Secrets never in the message.
        let e = parse_credentials(r#"{"url":"x","password":"s3cret"}"#).unwrap_err();
        assert!(!e.contains("s3cret"));
    }

    #[test]
    fn a_trailing_newline_is_not_part_of_a_credential_as_with_git() {
        let c = parse_credentials(r#"{"url":"https://h","username":"u\n","password":"p\r\n"}"#)
            .unwrap();
        assert_eq!(c[0].auth.username, "u");
        assert!(matches!(&c[0].auth.password, crate::git::Password::Value(p) if p == "p"));
        // Inside a value, a newline stays (and fails as the server says).
        let c =
            parse_credentials(r#"{"url":"https://h","username":"u","password":"p\nq"}"#).unwrap();
        assert!(matches!(&c[0].auth.password, crate::git::Password::Value(p) if p == "p\nq"));
    }

    #[test]
    fn credential_keys_as_upstream_decodes_them() {
        // Go's encoding/json matches keys case-insensitively.
        let c = parse_credentials(r#"{"URL":"https://h","Username":"u","Password-File":"/f"}"#)
            .unwrap();
        assert_eq!(c[0].url, "https://h");
        assert_eq!(c[0].auth.username, "u");
        assert!(matches!(&c[0].auth.password, super::Password::File(f) if f.as_os_str() == "/f"));
        // An exact key wins over a folded one.
        let c = parse_credentials(
            r#"{"URL":"https://a","url":"https://b","username":"u","password":"p"}"#,
        )
        .unwrap();
        assert_eq!(c[0].url, "https://b");
        // Unknown fields are an error naming the field, never a value.
        let e = parse_credentials(
            r#"[{"url":"https://h","username":"u","password":"s3cret","password_file":"/f"}]"#,
        )
        .unwrap_err();
        assert!(e.contains("\"password_file\""), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("/f\""), "{e}");
        // A list holds objects only.
        assert!(parse_credentials(r#"["https://h"]"#).is_err());
        // Blank: no credentials (as an empty GITSYNC_CREDENTIAL).
        assert!(parse_credentials("  ").unwrap().is_empty());
    }
}
