//! Resolving credentials before each pass: the password (or its file, read
//! again every time), the askpass URL, per-URL `--credential` entries, a
//! GitHub App installation token or an Azure workload identity token
//! (either renewed before it expires), the logins of a `.netrc` and of
//! git's credential store files, git's other credential helpers (asked
//! when a server wants credentials), and the SSH settings. Nothing here
//! logs a secret.

mod askpass;
mod azure;
mod client_tls;
pub mod cookies;
mod github_app;
mod helper;
mod netrc;

pub use client_tls::RenewingAgent;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::auth::AuthConfig;
use crate::config::gitconfig::Tls;
use crate::config::ssh_command::HostChecking;
use crate::git::{CredentialSet, Credentials, HelperAsker, HostLogin, SshAuth};
use crate::metrics::Metrics;

/// A cached access token (GitHub App or Azure workload identity).
struct Token {
    credentials: Credentials,
    refresh_at: SystemTime,
}

/// The logins of the file at `path`, as `parse` reads its text; none when
/// it is missing or cannot be read, as curl takes a `.netrc` and git's
/// store helper its files.
fn logins_in(path: &Path, parse: impl Fn(&str) -> Vec<HostLogin>) -> Vec<HostLogin> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(file = %path.display(), error = %e, "credentials file not read");
            }
            Vec::new()
        }
    }
}

/// Resolves a [`CredentialSet`] for each pass.
pub struct Resolver {
    cfg: AuthConfig,
    agent: client_tls::RenewingAgent,
    token: Option<Token>,
    /// What the credential helpers answered, kept between passes.
    helper_answers: helper::Answers,
}

/// The User-Agent of git-sync's own requests to token endpoints.
const USER_AGENT: &str = concat!("git-sync/", env!("CARGO_PKG_VERSION"));

/// The status and body of a token endpoint's answer; a request that got no
/// answer is an error naming `what` and the (redacted) URL.
fn read_answer(
    what: &str,
    url: &str,
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), String> {
    use crate::redact::redact;
    let mut response =
        sent.map_err(|e| format!("{what} to {}: {}", redact(url), redact(&e.to_string())))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Ok((status, body))
}

/// A blocking HTTP client with a time limit, TLS through OpenSSL trusting
/// what git does (see `client_tls`): for token endpoints, askpass URLs
/// and webhooks. No proxy of its own: each request is given the one
/// [`proxy_for`] its URL.
pub fn http_agent(timeout: Duration, tls: &Tls) -> ureq::Agent {
    agent_config(timeout, tls).proxy(None).build().new_agent()
}

/// The proxy for a request of [`http_agent`]'s to `url`: the
/// environment's, as upstream's Go client takes it
/// (`git::go_client_proxy`), SOCKS ones spoken to by ureq (its
/// `socks-proxy` feature); or why the one named cannot be taken.
pub fn proxy_for(url: &str) -> Result<Option<ureq::Proxy>, String> {
    let why = |e: &str| format!("the proxy of the environment: {}", crate::redact::redact(e));
    match crate::git::go_client_proxy(url, |name| std::env::var(name).ok()) {
        None => Ok(None),
        Some(Err(e)) => Err(why(&e)),
        Some(Ok(p)) => ureq::Proxy::new(&p.url)
            .map(Some)
            .map_err(|e| why(&e.to_string())),
    }
}

/// The client that asks git servers for their refs (`git::ls_refs`): as
/// [`http_agent`], but following no redirect itself (credentials must not
/// go where one leads; `ls_refs` follows one within the server) and
/// through `proxy` if one is given, none of ureq's choosing.
pub fn git_http_agent(
    timeout: Duration,
    tls: &Tls,
    user_agent: &str,
    proxy: Option<&str>,
) -> Result<ureq::Agent, String> {
    server_agent(timeout, tls, user_agent, proxy, 0)
}

/// A client of a git or LFS server, through `proxy`, following up to
/// `redirects` redirects itself. A SOCKS proxy is spoken to as libgit2's
/// connections speak to it (`git::through_socks`), an HTTP(S) proxy by
/// ureq (CONNECT).
fn server_agent(
    timeout: Duration,
    tls: &Tls,
    user_agent: &str,
    proxy: Option<&str>,
    redirects: u32,
) -> Result<ureq::Agent, String> {
    // No proxy of ureq's choosing (it would read the environment's).
    let config = || {
        agent_config(timeout, tls)
            .max_redirects(redirects)
            .user_agent(user_agent)
            .proxy(None)
    };
    let Some(url) = proxy else {
        return Ok(config().build().new_agent());
    };
    if let Some(agent) = crate::git::through_socks(config().build(), url) {
        return agent.map_err(|why| format!("proxy: {why}"));
    }
    let proxy = ureq::Proxy::new(url).map_err(|e| format!("proxy: {e}"))?;
    Ok(config().proxy(Some(proxy)).build().new_agent())
}

/// The client that downloads Git LFS objects (`git::lfs`): as
/// [`git_http_agent`], through `proxy` if one is given, following a
/// download's redirects (to a storage service: ureq sends no
/// `Authorization` header after one).
pub fn lfs_http_agent(
    timeout: Duration,
    tls: &Tls,
    user_agent: &str,
    proxy: Option<&str>,
) -> Result<ureq::Agent, String> {
    server_agent(timeout, tls, user_agent, proxy, 5)
}

fn agent_config(
    timeout: Duration,
    tls: &Tls,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(client_tls::client_tls(tls))
}

impl Resolver {
    pub fn new(cfg: AuthConfig, tls: &Tls) -> Self {
        Resolver {
            cfg,
            agent: client_tls::RenewingAgent::new(Duration::from_secs(30), tls),
            token: None,
            helper_answers: helper::Answers::default(),
        }
    }

    /// The credentials for this pass.
    pub fn resolve(&mut self, metrics: &Metrics) -> Result<CredentialSet, String> {
        let default = if let Some(app) = self.cfg.github_app.clone() {
            Some(self.cached_token(&app.base_url, |agent| {
                let exchanged = github_app::installation_token(agent, &app);
                metrics.github_token(exchanged.is_ok());
                let (token, expires_at) = exchanged?;
                tracing::info!(
                    installation = app.installation_id,
                    "got a GitHub App installation token"
                );
                Ok((credentials("x-access-token", token), expires_at))
            })?)
        } else if let Some(id) = self.cfg.azure.clone() {
            Some(self.cached_token(&id.authority_host, |agent| {
                let (token, expires_at) = azure::access_token(agent, &id)?;
                tracing::info!(client_id = %id.client_id, "got a Microsoft Entra access token (Azure workload identity)");
                // Azure DevOps reads the token from the password; any
                // user name will do.
                Ok((credentials("git-sync", token), expires_at))
            })?)
        } else if let Some(url) = &self.cfg.askpass_url {
            let result = askpass::query(&self.agent.get(url), url);
            metrics.askpass(result.is_ok());
            Some(result?)
        } else if let Some(basic) = &self.cfg.basic {
            Some(basic.resolve().map_err(|e| e.to_string())?)
        } else {
            None
        };
        let mut by_url = Vec::new();
        for c in &self.cfg.credentials {
            let creds = c
                .auth
                .resolve()
                .map_err(|e| format!("credential for {}: {e}", c.url))?;
            by_url.push((c.url.clone(), creds));
        }
        let cookies = match &self.cfg.cookie_file {
            Some(file) => cookies::CookieJar::read(file)?,
            None => cookies::CookieJar::default(),
        };
        let mut logins = match &self.cfg.netrc {
            Some(file) => logins_in(file, netrc::parse),
            None => Vec::new(),
        };
        for file in &self.cfg.credential_stores {
            logins.extend(logins_in(file, |text| {
                text.lines()
                    .filter_map(HostLogin::from_store_line)
                    .collect()
            }));
        }
        let ssh = &self.cfg.ssh;
        Ok(CredentialSet {
            cookies,
            logins,
            default,
            // Set by the syncer, which knows the repository's URL as
            // rewritten by `insteadOf`.
            default_for: None,
            by_url,
            helpers: (!self.cfg.credential_helpers.is_empty()).then(|| {
                HelperAsker(Arc::new(helper::Asker::new(
                    self.cfg.credential_helpers.clone(),
                    self.cfg.credential_use_http_path.clone(),
                    self.helper_answers.clone(),
                )))
            }),
            ssh: Some(SshAuth {
                key_files: ssh.effective_key_files(),
                known_hosts: (ssh.host_checking() != HostChecking::Off)
                    .then(|| ssh.effective_known_hosts_file()),
                accept_new_hosts: ssh.host_checking() == HostChecking::AcceptNew,
                global_known_hosts: ssh.effective_global_known_hosts(),
                agent: ssh.offers_agent_keys(),
                client_config: ssh.client_config(),
                host_key_alias: None,
            }),
        })
    }

    /// The cached token's credentials, or new ones from `exchange` (its
    /// requests to `url`), renewed five minutes before they expire
    /// (tokens last an hour).
    fn cached_token(
        &mut self,
        url: &str,
        exchange: impl FnOnce(&ureq::Agent) -> Result<(Credentials, SystemTime), String>,
    ) -> Result<Credentials, String> {
        if let Some(t) = self
            .token
            .as_ref()
            .filter(|t| SystemTime::now() < t.refresh_at)
        {
            return Ok(t.credentials.clone());
        }
        let (credentials, expires_at) = exchange(&self.agent.get(url))?;
        let refresh_at = expires_at
            .checked_sub(Duration::from_secs(300))
            .unwrap_or_else(SystemTime::now);
        self.token = Some(Token {
            credentials: credentials.clone(),
            refresh_at,
        });
        Ok(credentials)
    }
}

fn credentials(username: &str, password: String) -> Credentials {
    Credentials {
        username: username.into(),
        password,
    }
}
