//! What the git config, the environment and OpenSSH's configuration
//! files say for one remote URL (its `insteadOf` rewrite, proxy, extra
//! headers, TLS checks, protocol version, SSH destination), decided once
//! per URL, and how connections to its server are routed.

use crate::git::ssh_home::SshHome;
use crate::git::{daemon_ls_refs, socks, ssh_url, tls};
use crate::git::{http_config, proxy, proxy_command, ssh_config, ssh_jump, stream};
use crate::git::{GitRepo, SshAuth};
use crate::redact::redact;

/// What the git config and the environment say for one remote URL.
#[derive(Debug, Clone)]
pub(crate) struct UrlSettings {
    /// The URL after `url.<base>.insteadOf`: the one really reached, which
    /// the other settings, credentials and host checks are chosen for.
    pub(in crate::git) effective: String,
    /// The proxy git would go through, or why git would not take the one
    /// named (a scheme it does not know, a malformed URL).
    pub(in crate::git) proxy: Option<Result<proxy::Proxy, String>>,
    /// `http.extraHeader` values (see [`http_config::extra_headers`]).
    pub(in crate::git) extra_headers: Vec<String>,
    /// Whether git would speak protocol v2 to it: unless `protocol.version`
    /// says 0 or 1, which leaves listings and fetches to libgit2 (v0).
    pub(super) v2: bool,
    /// Whether its TLS certificate is checked (`http.sslVerify`, for
    /// every server or this one's URL, see [`http_config::ssl_verify`]).
    pub(in crate::git) verify_tls: bool,
    /// For an SSH URL, what OpenSSH's configuration files say of its host
    /// (see [`ssh_config`]); `effective` is its destination.
    pub(super) ssh: Option<ssh_config::Destination>,
}

impl UrlSettings {
    /// The proxy to go through, if one is named and usable.
    pub(in crate::git) fn usable_proxy(&self) -> Option<&proxy::Proxy> {
        self.proxy.as_ref()?.as_ref().ok()
    }
}

impl GitRepo {
    /// For the duration of an SSH exchange with `url`: libgit2 asks for
    /// the host key types our known_hosts file lists.
    pub(super) fn ssh_home(&self, url: &str) -> SshHome {
        let settings = self.url_settings(url);
        let auth = self.ssh_auth(&settings);
        let files = match &auth {
            Some(ssh) => ssh.known_hosts_files(),
            None => Vec::new(),
        };
        let alias = auth.as_ref().and_then(|a| a.host_key_alias.as_deref());
        SshHome::enter(&self.gitdir, &settings.effective, &files, alias)
    }

    /// The SSH settings for connections to the URL of `settings`: the
    /// configuration files' for its host added (see [`ssh_config`]).
    pub(super) fn ssh_auth(&self, settings: &UrlSettings) -> Option<SshAuth> {
        let auth = self.credentials.ssh.as_ref()?;
        Some(match &settings.ssh {
            Some(destination) => auth.for_destination(destination),
            None => auth.clone(),
        })
    }

    /// The URL libgit2 is given for `url`: as is (libgit2 applies
    /// `insteadOf` itself), unless OpenSSH's configuration leads it to
    /// another host, port or user.
    pub(super) fn libgit2_url(&self, url: &str) -> String {
        let settings = self.url_settings(url);
        match settings.ssh.is_some_and(|d| d.url.is_some()) {
            true => settings.effective,
            false => url.to_string(),
        }
    }

    /// `url` after the config's `url.<base>.insteadOf` rewrites.
    pub fn effective_url(&self, url: &str) -> String {
        self.url_settings(url).effective
    }

    /// The proxy and extra headers for `url`. Decided once per URL: the
    /// config was written at start and the environment is fixed, so polls
    /// do not read them again; the OpenSSH configuration, which `ssh` reads
    /// at each connection, is looked at again once a pass (see
    /// [`GitRepo::reread_changed_ssh_config`]).
    pub(in crate::git) fn url_settings(&self, url: &str) -> UrlSettings {
        self.per_url
            .borrow_mut()
            .entry(url.to_string())
            .or_insert_with(|| self.decide_url_settings(url, None))
            .clone()
    }

    /// Decide again the settings of the SSH URLs whose OpenSSH
    /// configuration files changed (or may have) since they were read.
    pub(in crate::git) fn reread_changed_ssh_config(&self) {
        let outdated: Vec<(String, ssh_config::Destination)> = self
            .per_url
            .borrow()
            .iter()
            .filter_map(|(url, s)| Some((url.clone(), s.ssh.clone()?)))
            .filter(|(_, d)| d.sources.changed())
            .collect();
        for (url, before) in outdated {
            tracing::debug!(url = %redact(&url), "the OpenSSH configuration changed (or may have): read again");
            let settings = self.decide_url_settings(&url, Some(&before));
            self.per_url.borrow_mut().insert(url, settings);
        }
    }

    /// `url`'s settings; `before`, what the OpenSSH configuration said of
    /// its host when last read.
    fn decide_url_settings(
        &self,
        url: &str,
        before: Option<&ssh_config::Destination>,
    ) -> UrlSettings {
        let entries = self.url_config_entries();
        let mut effective = http_config::rewrite_url(url, &entries);
        if effective != url {
            tracing::debug!(url = %redact(url), effective = %redact(&effective), "rewritten by url.<base>.insteadOf");
        }
        let ssh = self.ssh_destination(&effective, before);
        if let Some(to) = ssh.as_ref().and_then(|d| d.url.clone()) {
            effective = to;
        }
        // (The last value given wins, as in git.)
        let v2 = !entries
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("protocol.version"))
            .is_some_and(|(_, v)| v.trim() == "0" || v.trim() == "1");
        if !v2 {
            tracing::debug!(url = %redact(&effective), "protocol.version asks for version 0: libgit2 lists and fetches");
        }
        let url = effective.as_str();
        if let Some(destination) = &ssh {
            self.route_ssh(url, destination);
        }
        route_git_daemon(url, &entries);
        let verify_tls = http_config::ssl_verify(url, &entries, |k| std::env::var(k).ok());
        let Some(origin) = proxy::http_origin(url) else {
            return UrlSettings {
                effective,
                proxy: None,
                extra_headers: Vec::new(),
                v2,
                verify_tls,
                ssh,
            };
        };
        if !verify_tls && tls::verify() {
            tracing::warn!(url = %redact(url), "TLS certificates are not verified for this URL (http.<url>.sslVerify=false)");
        }
        UrlSettings {
            extra_headers: http_config::extra_headers(url, &entries),
            proxy: route_http(url, origin, &entries),
            effective,
            v2,
            verify_tls,
            ssh: None,
        }
    }

    /// The git config entries that decide a URL's settings.
    fn url_config_entries(&self) -> Vec<(String, String)> {
        let mut entries = Vec::new();
        let Ok(cfg) = self.repo.config() else {
            return entries;
        };
        let keys = r"^(http\.(.+\.)?(proxy|extraheader|sslverify)|url\..+\.insteadof|protocol\.version|core\.gitproxy)$";
        if let Ok(mut it) = cfg.entries(Some(keys)) {
            while let Some(Ok(e)) = it.next() {
                if let (Ok(k), Ok(v)) = (e.name(), e.value()) {
                    entries.push((k.to_string(), v.to_string()));
                }
            }
        }
        entries
    }

    /// Route connections to the SSH server of `url` through its proxy
    /// command, for libgit2's connections and ours; through a jump host's
    /// channel when there is no ssh to run one.
    fn route_ssh(&self, url: &str, destination: &ssh_config::Destination) {
        let Some(to) = ssh_url::SshUrl::parse(url) else {
            return;
        };
        let route = match &destination.jump {
            Some(hops) if !ssh_jump::ssh_program_found() => Some(self.jump_route(url, hops)),
            _ => destination
                .proxy_command
                .clone()
                .map(stream::Route::Command),
        };
        let origin = (to.host.to_ascii_lowercase(), to.port.unwrap_or(22));
        stream::route(origin, route);
    }

    /// What OpenSSH's configuration files say of the host of `url`, an
    /// SSH URL (`None` for another): said once (and again when it differs
    /// from what they said `before`), at info level when they lead it
    /// elsewhere, in a warning for what is not done here.
    fn ssh_destination(
        &self,
        url: &str,
        before: Option<&ssh_config::Destination>,
    ) -> Option<ssh_config::Destination> {
        let config = &self.credentials.ssh.as_ref()?.client_config;
        let destination = ssh_config::destination(url, config)?;
        if before.is_some_and(|b| b.says_the_same_as(&destination)) {
            return Some(destination);
        }
        if let Some(to) = &destination.url {
            tracing::info!(url = %redact(url), to = %redact(to), "SSH destination from the OpenSSH configuration or the ssh command line (HostName, Port, User)");
        }
        // (A jump made in process is said as its route is set.)
        let in_process = destination.jump.is_some() && !ssh_jump::ssh_program_found();
        if let Some(command) = destination.proxy_command.as_ref().filter(|_| !in_process) {
            tracing::info!(url = %redact(url), command = %redact(command), "SSH connections through a proxy command (ProxyCommand or ProxyJump of the OpenSSH configuration or the ssh command line)");
        }
        if !destination.not_applied.is_empty() {
            tracing::warn!(
                url = %redact(url),
                options = %destination.not_applied.join("; "),
                "not supported here: SSH runs in process, and these options of the OpenSSH configuration \
                 for this host are not applied"
            );
        }
        Some(destination)
    }

    /// How connections to the server of `url` go through the jump hosts
    /// `hops` (a `ProxyJump`'s), made in process: each one logged in to
    /// as the OpenSSH configuration says of it, with git-sync's keys and
    /// host key checks; said once. A `ProxyJump` that cannot be made
    /// refuses the connections, saying why: nothing goes around it.
    fn jump_route(&self, url: &str, hops: &str) -> stream::Route {
        let Some(auth) = self.credentials.ssh.as_ref() else {
            return stream::Route::Refused("ProxyJump: no SSH settings".into());
        };
        match ssh_jump::jump_hosts(hops, auth) {
            Ok(hosts) => {
                let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
                tracing::info!(url = %redact(url), jump_host = %names.join(","), "SSH connections through the jump host, in process (ProxyJump; no ssh program to run it with)");
                stream::Route::Jump(hosts)
            }
            Err(why) => {
                tracing::error!(url = %redact(url), proxy_jump = %redact(hops), "{why}");
                stream::Route::Refused(why)
            }
        }
    }
}

/// Route connections to the git daemon of `url` (a `git://` URL) through
/// its proxy program (`core.gitProxy`, `GIT_PROXY_COMMAND`), if any.
fn route_git_daemon(url: &str, entries: &[(String, String)]) {
    let Some(place) = daemon_ls_refs::DaemonPlace::parse(url) else {
        return;
    };
    let values = entries
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("core.gitproxy"))
        .map(|(_, v)| v.as_str());
    let program =
        proxy_command::git_proxy(&place.host, std::env::var("GIT_PROXY_COMMAND").ok(), values);
    if let Some(program) = &program {
        tracing::debug!(url = %redact(url), program = %redact(program), "through core.gitProxy");
    }
    let origin = (place.host.to_ascii_lowercase(), place.port);
    stream::route(origin, program.map(stream::Route::GitProxy));
}

/// The proxy for `url`, an HTTP(S) URL whose server is `origin`, as git
/// would pick it (see [`proxy`]), or why git would not take the one
/// named; the stream is routed through it for plain `http://` and SOCKS.
fn route_http(
    url: &str,
    (scheme, host, port): (&str, String, u16),
    entries: &[(String, String)],
) -> Option<Result<proxy::Proxy, String>> {
    let chosen = proxy::for_url(url, entries, |k| std::env::var(k).ok());
    let usable = chosen.as_ref().and_then(|p| p.as_ref().ok());
    let route = usable.and_then(|p| match p.kind.is_socks() {
        true => Some(stream::Route::Socks(
            (p.host.clone(), p.port),
            socks::Socks {
                kind: p.kind,
                login: p.login.clone(),
            },
        )),
        false if scheme == "http" => p.plain_http_address().map(stream::Route::HttpProxy),
        false => None,
    });
    // A redirect from `http://` to HTTPS on the same host (which libgit2
    // follows) goes through a SOCKS proxy too.
    if let Some(socks @ stream::Route::Socks(..)) = &route {
        if scheme == "http" && port != 443 {
            stream::route((host.clone(), 443), Some(socks.clone()));
        }
    }
    stream::route((host, port), route);
    if let Some(p) = usable {
        tracing::debug!(url = %redact(url), proxy = %redact(&p.url), "through a proxy");
    }
    chosen
}
