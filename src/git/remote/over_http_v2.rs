//! An HTTP(S) remote asked with git's protocol v2 by our own client: its
//! refs listed (`ls-refs`, see [`ls_refs`]) and, once it has answered
//! with v2, the commit fetched (`fetch`, see [`fetch_v2`]). Whatever this
//! does not handle is left to libgit2, which speaks v0.

use super::super::fetch_v2::{self, FetchError};
use super::super::ls_refs::{self, NoListing};
use super::super::{http_config, Cancel, GitError, GitRepo, Hash, HelperAsker};
use super::{Target, UrlSettings};
use crate::redact::redact;

/// What every request to one repository's server carries.
struct Place {
    /// The URL after `insteadOf`: what the server is known by.
    effective: String,
    /// The same without the credentials it may hold: what is asked.
    bare: String,
    known: ls_refs::Known,
    /// `http.extraHeader` values and cookies.
    headers: Vec<String>,
    /// Username and password.
    basic: Option<(String, String)>,
    /// The credential helpers, when `basic` is `None`.
    helpers: Option<HelperAsker>,
    /// Whether its TLS certificate is checked (`http.sslVerify`).
    verify_tls: bool,
    /// The URL of the proxy to go through, if any.
    proxy: Option<String>,
}

impl Place {
    fn request(&self) -> ls_refs::Request<'_> {
        ls_refs::Request {
            url: self.known.moved_to.as_deref().unwrap_or(&self.bare),
            settings_url: &self.effective,
            headers: &self.headers,
            basic: self.basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            basic_first: self.known.wants_credentials,
            helpers: self.helpers.as_ref(),
            known_v2: self.known.speaks_v2,
            verify_tls: self.verify_tls,
            proxy: self.proxy.as_deref(),
        }
    }
}

impl GitRepo {
    /// Where `url` is an HTTP(S) repository our client may ask (not left
    /// to libgit2 for now, nor by `protocol.version`), what it needs. Our
    /// client goes through a SOCKS proxy, and tunnels HTTPS through an
    /// HTTP proxy as git does; it leaves plain `http://` through an HTTP
    /// proxy (which git sends in absolute form, not tunnelled: a proxy may
    /// allow tunnels to port 443 only) and HTTPS proxies to libgit2.
    fn http_place(&self, url: &str) -> Option<Place> {
        let settings = self.url_settings(url);
        let tunnelled = |p: &super::super::proxy::Proxy| {
            p.kind.is_socks()
                || (p.kind == super::super::proxy::Kind::Http
                    && settings.effective.starts_with("https://"))
        };
        let proxy = match (&settings.proxy, settings.usable_proxy()) {
            (None, _) => None,
            (Some(_), Some(p)) if tunnelled(p) => Some(p.url.clone()),
            (Some(_), _) => return None,
        };
        let UrlSettings {
            effective,
            extra_headers: mut headers,
            v2,
            verify_tls,
            ..
        } = settings;
        let http = effective.starts_with("https://") || effective.starts_with("http://");
        let known = self
            .http_servers
            .borrow()
            .get(&effective)
            .cloned()
            .unwrap_or_default();
        if !http || !v2 || known.left_to_libgit2() {
            return None;
        }
        // A user alone (`https://org@dev.azure.com/...`, as Azure DevOps and
        // Bitbucket give them) is not sent: the credentials found for the
        // URL with that user are, as libgit2's callback would find them.
        let (bare, in_url) = match super::super::auth::credentials_in_url(&effective) {
            Some((bare, c)) => (bare, Some((c.username, c.password))),
            None => (
                super::super::auth::without_user(&effective).into_owned(),
                None,
            ),
        };
        // A CA file or client certificate rotated since the last request
        // is loaded now, and the client made again with it (a certificate
        // that cannot be used is for libgit2 to report).
        super::super::tls::before_connecting(&bare, None).ok()?;
        headers.extend(self.credentials.cookies.header_for(&bare));
        // An Authorization header of the config's is the one sent; else,
        // as git, the URL's credentials before any configured.
        let own_authorization = http_config::any_named(&headers, &["authorization"]);
        // A server that wanted credentials before gets them at once: a
        // credential helper's among them (asked once, then kept).
        let basic = in_url
            .or_else(|| {
                let c = match known.wants_credentials {
                    true => self.credentials.for_url_or_helpers(&effective).ok()?,
                    false => self.credentials.for_url(&effective)?.clone(),
                };
                Some((c.username, c.password))
            })
            .filter(|_| !own_authorization);
        let helpers = self
            .credentials
            .helpers
            .clone()
            .filter(|_| basic.is_none() && !own_authorization);
        Some(Place {
            effective,
            bare,
            known,
            headers,
            basic,
            helpers,
            verify_tls,
            proxy,
        })
    }

    /// The refs `git_ref` may name on an HTTP(S) remote, listed with
    /// protocol v2 where the server speaks it (see [`ls_refs`]); `None`
    /// leaves the listing to libgit2.
    pub(super) fn list_refs_over_http(
        &self,
        url: &str,
        git_ref: &str,
        cancel: &Cancel,
    ) -> Option<Vec<(String, Hash)>> {
        self.ask_http(url, &ls_refs::prefixes(git_ref), cancel)
    }

    /// [`GitRepo::list_refs_over_http`] of the refs under `prefixes`
    /// (none: whether the server speaks v2 is found out), and what the
    /// server was found to be noted for the next requests.
    fn ask_http(
        &self,
        url: &str,
        prefixes: &[String],
        cancel: &Cancel,
    ) -> Option<Vec<(String, Hash)>> {
        let place = self.http_place(url)?;
        let listed = ls_refs::list(&place.request(), prefixes, cancel);
        let mut servers = self.http_servers.borrow_mut();
        let known = servers.entry(place.effective).or_default();
        match listed {
            Ok(listing) => {
                known.wants_credentials |= listing.authenticated;
                known.speaks_v2 = listing.version == 2;
                known.filters = listing.filters.unwrap_or(known.filters && known.speaks_v2);
                known.left_at = None;
                if listing.moved_to.is_some() {
                    known.moved_to = listing.moved_to;
                }
                tracing::debug!(url = %redact(url), protocol = listing.version, refs = listing.heads.len(), "refs listed");
                Some(listing.heads)
            }
            Err(NoListing::Unsupported(why)) => {
                tracing::debug!(url = %redact(url), reason = %redact(&why), "refs listed by libgit2 for the next 10 minutes");
                known.left_at = Some((std::time::Instant::now(), super::super::tls::generation()));
                known.moved_to = None;
                None
            }
            Err(NoListing::Skipped(why)) => {
                // (Asked where it moved last time, the URL itself next.)
                known.moved_to = None;
                tracing::debug!(url = %redact(url), reason = %redact(&why), "refs listed by libgit2 this time");
                None
            }
        }
    }

    /// Where `url`'s HTTP(S) server is to be fetched from with protocol
    /// v2 (it answered our listing with v2), if it is.
    fn v2_fetch_place(&self, url: &str, cancel: &Cancel) -> Option<Place> {
        let place = self.http_place(url)?;
        let place = if self.http_servers.borrow().contains_key(&place.effective) {
            place
        } else {
            // Never asked (a commit named by its hash, a submodule's): what
            // it speaks is found out first, a small answer from a v2
            // server, where libgit2's v0 fetch has every ref listed.
            self.ask_http(url, &[], cancel);
            self.http_place(url)?
        };
        Some(place).filter(|p| p.known.fetches_v2())
    }

    /// Fetch `target.hash`, `depth` commits deep, from an HTTP(S) server
    /// that answered our listing with protocol v2: one request, which the
    /// server answers with the pack, where libgit2 would have every ref
    /// listed first (see [`GitRepo::fetch_with_v2`]). A server whose
    /// answer broke off or made no sense (not one that refused the commit)
    /// is left to libgit2's fetch for a while.
    pub(super) fn fetch_over_http_v2(
        &mut self,
        url: &str,
        target: &Target,
        depth: u32,
        cancel: &Cancel,
    ) -> Option<Result<Vec<Hash>, GitError>> {
        let place = self.v2_fetch_place(url, cancel)?;
        let mut broken = false;
        let filters = place.known.filters;
        let fetched = self.fetch_with_v2(url, target, depth, (filters, 2), |want, pack| {
            let answer = send_fetch(&place, want, pack, cancel);
            broken = matches!(
                answer,
                Err(FetchError::Io(_) | FetchError::Protocol(_) | FetchError::Transport(_))
            );
            answer
        });
        if broken {
            let mut servers = self.http_servers.borrow_mut();
            let known = servers.entry(place.effective).or_default();
            known.fetch_left_at = Some(std::time::Instant::now());
        }
        fetched
    }

    /// Fetch `objects` alone (see [`GitRepo::fetch_objects_with_v2`]) from
    /// an HTTP(S) server that speaks protocol v2; `None` if it is not one.
    pub(in crate::git) fn fetch_objects_over_http_v2(
        &self,
        url: &str,
        objects: &[Hash],
        cancel: &Cancel,
    ) -> Option<Result<(), GitError>> {
        let place = self.v2_fetch_place(url, cancel)?;
        Some(self.fetch_objects_with_v2(url, objects, |want, pack| {
            send_fetch(&place, want, pack, cancel)
        }))
    }
}

/// Send v2's `fetch` of `want` to the server at `place`, and read its
/// answer, the pack into `pack`.
fn send_fetch(
    place: &Place,
    want: &fetch_v2::Want<'_>,
    pack: &mut dyn std::io::Write,
    cancel: &Cancel,
) -> Result<fetch_v2::ShallowInfo, FetchError> {
    let read = |reader: &mut dyn std::io::Read| fetch_v2::read_answer(reader, pack, cancel);
    let body = fetch_v2::request(want);
    ls_refs::command(&place.request(), &body, cancel, read).unwrap_or_else(
        |(NoListing::Unsupported(why) | NoListing::Skipped(why))| Err(FetchError::Transport(why)),
    )
}
