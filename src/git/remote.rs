//! Talking to the remote: what does the target ref point at, and fetch it.

use git2::{AutotagOption, FetchOptions, ProxyOptions};

use super::local::local_path;
use super::ssh_home::SshHome;
use super::v2_session;
use super::{http_config, proxy, proxy_command, ref_error, refs, ssh_config, ssh_jump, stream};
use super::{Cancel, GitError, GitRepo, Hash, SshAuth};
use crate::redact::redact;
use callbacks::{callbacks, confinement};
use over_session::no_refs;

mod callbacks;
mod over_http_v2;
mod over_session;
mod v2_fetch;

/// Temporary ref a fetch writes to; deleted right after.
const FETCH_REF: &str = "refs/git-sync/fetch";

/// A ref no remote advertises: downloading it only lists the remote's refs.
const LIST_ONLY_REF: &str = "refs/git-sync/list-only";

/// What the target ref resolved to on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The commit to publish.
    pub hash: Hash,
    /// The remote ref to fetch it by (`refs/heads/main`, `HEAD`, ...), or
    /// `None` for a commit named by its hash.
    pub remote_ref: Option<String>,
}

/// What the git config and the environment say for one remote URL.
#[derive(Debug, Clone)]
pub(crate) struct UrlSettings {
    /// The URL after `url.<base>.insteadOf`: the one really reached, which
    /// the other settings, credentials and host checks are chosen for.
    pub(super) effective: String,
    /// The proxy git would go through, or why git would not take the one
    /// named (a scheme it does not know, a malformed URL).
    pub(super) proxy: Option<Result<proxy::Proxy, String>>,
    /// `http.extraHeader` values (see [`http_config::extra_headers`]).
    pub(super) extra_headers: Vec<String>,
    /// Whether git would speak protocol v2 to it: unless `protocol.version`
    /// says 0 or 1, which leaves listings and fetches to libgit2 (v0).
    v2: bool,
    /// Whether its TLS certificate is checked (`http.sslVerify`, for
    /// every server or this one's URL, see [`http_config::ssl_verify`]).
    pub(super) verify_tls: bool,
    /// For an SSH URL, what OpenSSH's configuration files say of its host
    /// (see [`ssh_config`]); `effective` is its destination.
    ssh: Option<ssh_config::Destination>,
}

impl UrlSettings {
    /// The proxy to go through, if one is named and usable.
    pub(super) fn usable_proxy(&self) -> Option<&proxy::Proxy> {
        self.proxy.as_ref()?.as_ref().ok()
    }
}

/// The port an SSH URL connects to (22 unless it names one).
fn ssh_port(url: &str) -> u16 {
    super::ssh_ls_refs::SshPlace::parse(url).map_or(22, |p| p.port)
}

/// What to add to libgit2's terse words for the failures people meet
/// first: a certificate from a private CA, a wrong URL, a web page or a
/// plain file server where a git server was expected.
fn hint(e: &git2::Error) -> Option<&'static str> {
    let message = e.message();
    if let Some(format) = super::object_format_hint(message) {
        return Some(format);
    }
    let tls_refused = e.code() == git2::ErrorCode::Certificate
        || (e.class() == git2::ErrorClass::Ssl && message.contains("certificate is invalid"));
    if tls_refused {
        return Some(
            " (no trusted CA signed the server's certificate, or it names another host: \
             a private CA is given with --git-config=http.sslCAInfo:<file> or SSL_CERT_FILE)",
        );
    }
    if e.class() != git2::ErrorClass::Http {
        return None;
    }
    if message.ends_with("status code: 404") {
        // Git hosts also answer 404 for a private repository the given
        // credentials may not read.
        return Some(
            " (no repository at this URL, or none the credentials given may read: check --repo \
             and what the credentials can access)",
        );
    }
    if message.ends_with("status code: 400") {
        // nginx answers so, after the handshake, when it wants a client
        // certificate and none came.
        return Some(
            " (the server refused the request; one that wants a client certificate answers so \
             without one: --git-config=http.sslCert:<file>,http.sslKey:<file>)",
        );
    }
    if message.ends_with("status code: 403") {
        return Some(
            " (the server refused access: the credentials given may not read this repository)",
        );
    }
    if message.starts_with("invalid content-type: 'text/html") {
        return Some(
            " (the server answered with a web page, not git: check that --repo is the repository's \
             clone URL and that no login page or proxy stands in the way)",
        );
    }
    if message.starts_with("invalid content-type") || message.starts_with("no content-type") {
        return Some(
            " (the server does not speak git's smart HTTP protocol: a plain file server (git's \
             \"dumb\" protocol) is not supported; serve the repository with git http-backend or a git host)",
        );
    }
    None
}

impl GitRepo {
    /// Options for `op` (named in errors) on `url`: callbacks (credentials,
    /// host checks, cancellation), proxy, extra headers and cookies; no
    /// tags, no FETCH_HEAD. Fails if the TLS settings cannot be applied.
    fn fetch_options<'a>(
        &'a self,
        op: &'static str,
        url: &'a str,
        cancel: &'a Cancel,
    ) -> Result<FetchOptions<'a>, GitError> {
        let mut settings = self.url_settings(url);
        // (Taken out, not copied: the rest borrows the settings.)
        let mut headers = std::mem::take(&mut settings.extra_headers);
        let failed = |message| GitError::Remote {
            op,
            url: redact(url),
            message,
        };
        if let Some(Err(why)) = &settings.proxy {
            return Err(failed(format!(
                "http.proxy (or the environment's https_proxy, http_proxy, all_proxy) names {why}"
            )));
        }
        let proxied = settings.usable_proxy();
        // libgit2 sends a plain `http://` request to an HTTP proxy on a
        // connection to the server, which our stream leads to the proxy; to
        // an HTTPS proxy it cannot be led (TLS to the proxy is libgit2's):
        // the request would go straight to the server, around the proxy.
        let plain = proxy::http_origin(&settings.effective).is_some_and(|(s, _, _)| s == "http");
        if plain && proxied.is_some_and(|p| p.kind == proxy::Kind::Https) {
            return Err(failed(
                "an HTTPS proxy (https://) for a plain http:// remote is not supported here: \
                 give the proxy as http://, or the remote as https://"
                    .into(),
            ));
        }
        super::tls::before_connecting(&settings.effective, proxied.map(|p| p.url.as_str()))
            .map_err(failed)?;
        let mut proxy = ProxyOptions::new();
        if let Some(url) = proxied.and_then(|p| p.for_libgit2()) {
            proxy.url(url);
        }
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks(
            cancel,
            &self.credentials,
            self.ssh_auth(&settings),
            ssh_port(&settings.effective),
            settings.verify_tls,
            &self.hostkey_error,
        ))
        .download_tags(AutotagOption::None)
        .update_fetchhead(false)
        .proxy_options(proxy);
        headers.extend(self.credentials.cookies.header_for(&settings.effective));
        super::stream::confine(confinement(&settings.effective, proxied, &headers));
        if !headers.is_empty() {
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            opts.custom_headers(&headers);
        }
        Ok(opts)
    }

    /// For the duration of an SSH exchange with `url`: libgit2 asks for
    /// the host key types our known_hosts file lists.
    fn ssh_home(&self, url: &str) -> SshHome {
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
    fn ssh_auth(&self, settings: &UrlSettings) -> Option<SshAuth> {
        let auth = self.credentials.ssh.as_ref()?;
        Some(match &settings.ssh {
            Some(destination) => auth.for_destination(destination),
            None => auth.clone(),
        })
    }

    /// The URL libgit2 is given for `url`: as is (libgit2 applies
    /// `insteadOf` itself), unless OpenSSH's configuration leads it to
    /// another host, port or user.
    fn libgit2_url(&self, url: &str) -> String {
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
    pub(super) fn url_settings(&self, url: &str) -> UrlSettings {
        self.per_url
            .borrow_mut()
            .entry(url.to_string())
            .or_insert_with(|| self.decide_url_settings(url, None))
            .clone()
    }

    /// Decide again the settings of the SSH URLs whose OpenSSH
    /// configuration files changed (or may have) since they were read.
    pub(super) fn reread_changed_ssh_config(&self) {
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
        let mut entries = Vec::new();
        if let Ok(cfg) = self.repo.config() {
            let keys = r"^(http\.(.+\.)?(proxy|extraheader|sslverify)|url\..+\.insteadof|protocol\.version|core\.gitproxy)$";
            if let Ok(mut it) = cfg.entries(Some(keys)) {
                while let Some(Ok(e)) = it.next() {
                    if let (Ok(k), Ok(v)) = (e.name(), e.value()) {
                        entries.push((k.to_string(), v.to_string()));
                    }
                }
            }
        }
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
        // An SSH server's proxy command, for libgit2's connections and
        // ours; a jump host's channel when there is no ssh to run one.
        if let Some(destination) = &ssh {
            if let Some(to) = super::ssh_url::SshUrl::parse(url) {
                let route = match &destination.jump {
                    Some(hops) if !ssh_jump::ssh_program_found() => {
                        Some(self.jump_route(url, hops))
                    }
                    _ => destination
                        .proxy_command
                        .clone()
                        .map(stream::Route::Command),
                };
                let origin = (to.host.to_ascii_lowercase(), to.port.unwrap_or(22));
                stream::route(origin, route);
            }
        }
        // A git daemon's proxy program (`core.gitProxy`), likewise.
        if let Some(place) = super::daemon_ls_refs::DaemonPlace::parse(url) {
            let values = entries
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("core.gitproxy"))
                .map(|(_, v)| v.as_str());
            let program = proxy_command::git_proxy(
                &place.host,
                std::env::var("GIT_PROXY_COMMAND").ok(),
                values,
            );
            if let Some(program) = &program {
                tracing::debug!(url = %redact(url), program = %redact(program), "through core.gitProxy");
            }
            let origin = (place.host.to_ascii_lowercase(), place.port);
            stream::route(origin, program.map(stream::Route::GitProxy));
        }
        let verify_tls = http_config::ssl_verify(url, &entries, |k| std::env::var(k).ok());
        let Some((scheme, host, port)) = proxy::http_origin(url) else {
            return UrlSettings {
                effective,
                proxy: None,
                extra_headers: Vec::new(),
                v2,
                verify_tls,
                ssh,
            };
        };
        if !verify_tls && super::tls::verify() {
            tracing::warn!(url = %redact(url), "TLS certificates are not verified for this URL (http.<url>.sslVerify=false)");
        }
        // The proxy as git would pick it (see [`super::proxy`]), with the
        // stream routed through it for plain `http://` and for SOCKS.
        let chosen = proxy::for_url(url, &entries, |k| std::env::var(k).ok());
        let usable = chosen.as_ref().and_then(|p| p.as_ref().ok());
        let route = usable.and_then(|p| match p.kind.is_socks() {
            true => Some(stream::Route::Socks(
                (p.host.clone(), p.port),
                super::socks::Socks {
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
        UrlSettings {
            extra_headers: http_config::extra_headers(url, &entries),
            proxy: chosen,
            effective,
            v2,
            verify_tls,
            ssh: None,
        }
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

    pub(super) fn remote_error(
        &self,
        op: &'static str,
        url: &str,
        e: git2::Error,
        cancel: &Cancel,
    ) -> GitError {
        if cancel.is_cancelled() {
            return GitError::Cancelled;
        }
        if let Some(message) = self.hostkey_error.borrow_mut().take() {
            return GitError::Remote {
                op,
                url: redact(url),
                message,
            };
        }
        let mut message = redact(e.message());
        if let Some(hint) = hint(&e) {
            message.push_str(hint);
        }
        // libgit2 names the host it could not reach, not the port nor
        // where the URL was rewritten to.
        let settings = self.url_settings(url);
        let effective = settings.effective;
        if effective != url {
            message.push_str(&format!(" (the URL led to {})", redact(&effective)));
        }
        // The connection was a command's: it may have failed, and said why
        // on its standard error, which is logged.
        let place = super::ssh_url::SshUrl::parse(&effective)
            .map(|to| (to.host, to.port.unwrap_or(22)))
            .or_else(|| {
                super::daemon_ls_refs::DaemonPlace::parse(&effective).map(|d| (d.host, d.port))
            });
        if let Some(command) = place.and_then(|(host, port)| stream::command_of(&host, port)) {
            message.push_str(&format!(
                " (through the proxy command {}: see what it said, logged above)",
                redact(&command)
            ));
        }
        GitError::Remote {
            op,
            url: redact(url),
            message,
        }
    }

    /// Step 1 of a pass, then step 3 if `decide` (given what step 1
    /// found) says so, on one connection: ask the remote what `git_ref`
    /// points at (`HEAD`, a branch, a tag or a full ref name; annotated
    /// tags peeled to their commit), then fetch it `depth` deep (0: all
    /// history) as [`GitRepo::fetch`] does. Returns the target, what
    /// `decide` said, and what the fetch brought, if one was made.
    ///
    /// One connection, not two (as `ls-remote` then `fetch`): over SSH a
    /// session, with its handshake, fewer; over HTTP one listing of the
    /// refs fewer. If that fetch fails (over HTTP a force-push since the
    /// listing makes the server refuse the commit listed), it is made
    /// again on a connection of its own, as [`GitRepo::fetch`] makes it.
    pub fn resolve_then_fetch<D>(
        &mut self,
        url: &str,
        git_ref: &str,
        depth: u32,
        cancel: &Cancel,
        decide: impl FnOnce(&GitRepo, &Target) -> (D, bool),
    ) -> Result<(Target, D, Option<Hash>), GitError> {
        if let Some(path) = local_path(&self.effective_url(url)) {
            let target = self.resolve_local(url, &path, git_ref)?;
            let (decided, got) = self.fetch_if(url, &target, depth, cancel, decide)?;
            return Ok((target, decided, got));
        }
        // Over HTTP(S), the refs asked for only, when the server can; a
        // name they do not resolve is looked up among all, below.
        // Over SSH and git://, a session of our own that stays open for
        // the fetch.
        let listed = match self.list_refs_over_http(url, git_ref, cancel) {
            Some(heads) => Some((heads, None)),
            None => self
                .list_refs_over_ssh_or_git(url, git_ref, cancel)
                .map(|(heads, session)| (heads, Some(session))),
        };
        let picked = listed.and_then(|(heads, session)| {
            pick_target(&heads, git_ref, url)
                .ok()
                .map(|target| (target, session))
        });
        if let Some((target, mut session)) = picked {
            let (decided, fetch) = decide(self, &target);
            if !fetch {
                return Ok((target, decided, None));
            }
            // A fetch over HTTP is a request of its own: a push in between
            // (a force-push, the server's gc after it) may leave the
            // commit listed gone. Again, then (twice: on a busy repository
            // it happens twice in a row), by libgit2, whose listing shows
            // where the ref moved.
            let mut attempt = 1;
            let got = loop {
                match self.fetch_listed(url, &target, depth, cancel, session.take()) {
                    Err(e) if attempt < 3 && !cancel.is_cancelled() => {
                        tracing::debug!(url = %redact(url), error = %e, attempt, "fetch failed; fetching again");
                        attempt += 1;
                    }
                    got => break got?,
                }
            };
            return Ok((target, decided, Some(got)));
        }
        // (A listing that ran out of time leaves none to libgit2.)
        if cancel.is_cancelled() {
            return Err(GitError::Cancelled);
        }
        let mut remote = self
            .repo
            .remote_anonymous(&self.libgit2_url(url))
            .map_err(|e| self.remote_error("ls-remote", url, e, cancel))?;
        // A download of a ref no server has wants nothing: it connects,
        // lists the refs and stops, i.e. one `ls-remote` round trip, and
        // stays connected. Unlike a bare connect it sends our custom
        // headers (cookies). (Without a refspec libgit2 would want the
        // remote's HEAD.)
        let mut opts = self.fetch_options("ls-remote", url, cancel)?;
        let home = self.ssh_home(url);
        remote
            .download(&[LIST_ONLY_REF], Some(&mut opts))
            .map_err(|e| self.remote_error("ls-remote", url, e, cancel))?;
        let heads: Vec<(String, Hash)> = remote
            .list()
            .map_err(|e| self.remote_error("ls-remote", url, e, cancel))?
            .iter()
            .map(|h| (h.name().to_string(), h.oid()))
            .collect();
        self.note_many_refs(url, heads.len());
        let target = pick_target(&heads, git_ref, url)?;
        let (decided, fetch) = decide(self, &target);
        if !fetch {
            drop(remote); // (before the callbacks it may call)
            return Ok((target, decided, None));
        }
        let before = self.before_fetch();
        let refspecs = fetch_refspecs_for(&target);
        let result = self.fetch_on(&mut remote, url, &refspecs, depth, cancel);
        drop(remote);
        drop(opts);
        drop(home);
        let got = match result {
            Err(e) if !cancel.is_cancelled() => {
                tracing::debug!(url = %redact(url), error = %e, "fetch on the listing's connection failed; fetching on a new one");
                // It may have left objects: what the store holds is no
                // longer known.
                drop(std::mem::take(&mut self.known));
                self.fetch(url, &target, depth, cancel)?
            }
            result => self.after_remote_fetch(url, &target, result, true, before, depth)?,
        };
        Ok((target, decided, Some(got)))
    }

    /// [`GitRepo::fetch`] of a target known without asking the remote (a
    /// pinned hash, a local repository's ref), if `decide` says so; what
    /// it said, and what the fetch brought.
    pub fn fetch_if<D>(
        &mut self,
        url: &str,
        target: &Target,
        depth: u32,
        cancel: &Cancel,
        decide: impl FnOnce(&GitRepo, &Target) -> (D, bool),
    ) -> Result<(D, Option<Hash>), GitError> {
        let (decided, fetch) = decide(self, target);
        let got = if fetch {
            Some(self.fetch(url, target, depth, cancel)?)
        } else {
            None
        };
        Ok((decided, got))
    }

    /// Run one fetch of `refspecs` into temporary refs, then drop the refs;
    /// what they pointed at (every object fetched is reachable from them).
    fn fetch_refspecs(
        &self,
        url: &str,
        refspecs: &[String],
        depth: u32,
        cancel: &Cancel,
    ) -> Result<Vec<Hash>, GitError> {
        let mut remote = self
            .repo
            .remote_anonymous(&self.libgit2_url(url))
            .map_err(|e| self.remote_error("fetch", url, e, cancel))?;
        let _home = self.ssh_home(url);
        self.fetch_on(&mut remote, url, refspecs, depth, cancel)
    }

    /// [`GitRepo::fetch_refspecs`] with `remote`, connected or not.
    fn fetch_on(
        &self,
        remote: &mut git2::Remote<'_>,
        url: &str,
        refspecs: &[String],
        depth: u32,
        cancel: &Cancel,
    ) -> Result<Vec<Hash>, GitError> {
        let result = {
            let mut opts = self.fetch_options("fetch", url, cancel)?;
            if depth > 0 {
                opts.depth(i32::try_from(depth).unwrap_or(i32::MAX));
            } else if self.repo.is_shallow() {
                // All history into a shallow store: libgit2's
                // GIT_FETCH_DEPTH_UNSHALLOW, git's `fetch --unshallow`.
                // Without it the server stops at our shallow commits.
                opts.depth(i32::MAX);
            }
            remote.fetch(refspecs, Some(&mut opts), None)
        };
        // The temporary refs only carried the objects in; they are not kept.
        let mut tips = Vec::new();
        if let Ok(refs) = self.repo.references_glob(&format!("{FETCH_REF}*")) {
            let names: Vec<String> = refs
                .flatten()
                .filter_map(|r| r.name().ok().map(str::to_string))
                .collect();
            for name in names {
                if let Ok(mut r) = self.repo.find_reference(&name) {
                    tips.extend(r.target());
                    let _ = r.delete();
                }
            }
        }
        result
            .map(|()| tips)
            .map_err(|e| self.remote_error("fetch", url, e, cancel))
    }

    /// What a fetch must note before the store changes (see
    /// [`GitRepo::after_remote_fetch`]).
    fn before_fetch(&self) -> BeforeFetch {
        // Forgotten unless the fetch succeeds: a failed one may leave objects.
        self.forget_saved_tips();
        BeforeFetch {
            was_empty: self.store_is_empty(),
            shallow: super::depth::read_shallow(self),
        }
    }

    /// Fetch the target commit, `depth` commits deep (0: all history).
    /// Returns the commit now in the store for it: `target.hash`, or, when
    /// its branch or tag moved between the question and this fetch (a push
    /// landed in between) and the old commit did not come with the new one
    /// (at depth 1, or rewritten), the commit the ref moved to.
    pub fn fetch(
        &mut self,
        url: &str,
        target: &Target,
        depth: u32,
        cancel: &Cancel,
    ) -> Result<Hash, GitError> {
        // Over SSH or git://, on a session of ours where one is worth it
        // (`--filter`, many refs): with nothing to list, it lists nothing.
        let session = self
            .v2_session_with(url, &no_refs(), cancel)
            .map(|(_, session)| session);
        self.fetch_listed(url, target, depth, cancel, session)
    }

    /// [`GitRepo::fetch`], on the SSH or git:// `session` that listed the
    /// refs when there is one.
    fn fetch_listed(
        &mut self,
        url: &str,
        target: &Target,
        depth: u32,
        cancel: &Cancel,
        session: Option<v2_session::Session>,
    ) -> Result<Hash, GitError> {
        let before = self.before_fetch();
        if let Some(path) = local_path(&self.effective_url(url)) {
            let known = std::mem::take(&mut self.known);
            // (It opens the repository afresh itself.)
            self.fetch_local(url, &path, target.hash, depth, cancel)?;
            let brought = [target.hash];
            self.after_fetch(known, before.was_empty, Some(&brought), target.hash, depth);
            return Ok(target.hash);
        }
        let refspecs = fetch_refspecs_for(target);
        let over_v2 = match session {
            Some(session) => self.fetch_on_session(url, target, depth, cancel, session),
            None => self.fetch_over_http_v2(url, target, depth, cancel),
        };
        let result = match over_v2 {
            Some(result) => result,
            None => self.fetch_refspecs(url, &refspecs, depth, cancel),
        };
        let mut exact = true;
        let result = match result {
            // Servers speaking protocol v0 without uploadpack.allowAnySHA1InWant
            // refuse a hash nobody advertises: fetch every branch and tag with
            // full history instead, and look for the commit there.
            Err(GitError::Remote { .. }) if target.remote_ref.is_none() => {
                tracing::info!(hash = %target.hash, "the server refused a fetch by hash; fetching all branches and tags");
                exact = false;
                let all = vec![
                    format!("+refs/heads/*:{FETCH_REF}/heads/*"),
                    format!("+refs/tags/*:{FETCH_REF}/tags/*"),
                ];
                self.fetch_refspecs(url, &all, 0, cancel)
            }
            other => other,
        };
        self.after_remote_fetch(url, target, result, exact, before, depth)
    }

    /// The store after a fetch for `target` that brought `result` (the
    /// tips of what it fetched; `exact`: only what `target` asked for):
    /// the commit now there for `target` (see [`GitRepo::fetch`]).
    fn after_remote_fetch(
        &mut self,
        url: &str,
        target: &Target,
        result: Result<Vec<Hash>, GitError>,
        exact: bool,
        before: BeforeFetch,
        depth: u32,
    ) -> Result<Hash, GitError> {
        // Forgotten unless the fetch succeeded: a failed one may leave objects.
        let known = std::mem::take(&mut self.known);
        let tips = result?;
        self.reopen_if_deepened(&before.shallow)?;
        let mut got = target.hash;
        if !self.has_commit(target.hash) {
            if let (Ok(object), Some(name)) =
                (self.repo.find_object(target.hash, None), &target.remote_ref)
            {
                return Err(super::not_a_commit(name, url, object.kind()));
            }
            // The ref moved between ls-remote and fetch: what it points at
            // now came instead (a tag's object peeled to its commit).
            let moved_to = match (&target.remote_ref, &tips[..]) {
                (Some(_), [tip]) if exact => self
                    .repo
                    .find_object(*tip, None)
                    .and_then(|o| o.peel_to_commit())
                    .ok()
                    .map(|c| c.id()),
                _ => None,
            };
            got = moved_to.ok_or_else(|| GitError::Remote {
                op: "fetch",
                url: redact(url),
                message: match &target.remote_ref {
                    Some(_) => format!("commit {} was not received", target.hash),
                    None => super::no_such_commit(target.hash),
                },
            })?;
        }
        let brought = exact.then_some(&tips[..]);
        self.after_fetch(known, before.was_empty, brought, got, depth);
        Ok(got)
    }
}

/// The state of the store a fetch changes, noted before it.
struct BeforeFetch {
    was_empty: bool,
    shallow: std::collections::BTreeSet<git2::Oid>,
}

/// The refspec that fetches `target` into our temporary ref: its ref by
/// name, or the bare hash.
fn fetch_refspecs_for(target: &Target) -> Vec<String> {
    match &target.remote_ref {
        Some(r) => vec![format!("+{r}:{FETCH_REF}")],
        None => vec![format!("+{}:{FETCH_REF}", target.hash)],
    }
}

/// Which of the advertised `heads` `git_ref` names, and its commit (an
/// annotated tag is advertised peeled as well).
fn pick_target(heads: &[(String, Hash)], git_ref: &str, url: &str) -> Result<Target, GitError> {
    let advertised = |name: &str| heads.iter().find(|(n, _)| n == name).map(|(_, h)| *h);
    let name = refs::pick_ref(
        git_ref,
        |name| advertised(name).is_some(),
        || heads.iter().map(|(n, _)| n.clone()).collect(),
    )
    .map_err(|e| ref_error(e, git_ref, url))?;
    let hash = advertised(&format!("{name}^{{}}"))
        .or_else(|| advertised(&name))
        .ok_or_else(|| ref_error(refs::NoRef::Missing(Vec::new()), git_ref, url))?;
    Ok(Target {
        hash,
        remote_ref: Some(name),
    })
}
