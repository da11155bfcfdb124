//! Talking to the remote: what does the target ref point at, and fetch it.

use git2::{AutotagOption, FetchOptions, ProxyOptions};

use super::local::local_path;
use super::v2_session;
use super::{proxy, ref_error, refs, stream};
use super::{Cancel, GitError, GitRepo, Hash};
use crate::redact::redact;
use callbacks::{callbacks, confinement};
use over_session::no_refs;

mod callbacks;
mod over_http_v2;
mod over_session;
mod url_settings;
mod v2_fetch;

pub(crate) use url_settings::UrlSettings;

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
        self.resolve_then_fetch_by_libgit2(url, git_ref, depth, cancel, decide)
    }

    /// [`GitRepo::resolve_then_fetch`] where our own listing could not be
    /// made or did not name the ref: libgit2 lists the refs (v0), then
    /// fetches on the same connection, or on a new one if that fails.
    fn resolve_then_fetch_by_libgit2<D>(
        &mut self,
        url: &str,
        git_ref: &str,
        depth: u32,
        cancel: &Cancel,
        decide: impl FnOnce(&GitRepo, &Target) -> (D, bool),
    ) -> Result<(Target, D, Option<Hash>), GitError> {
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
