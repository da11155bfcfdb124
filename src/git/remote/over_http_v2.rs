//! An HTTP(S) remote asked with git's protocol v2 by our own client: its
//! refs listed (`ls-refs`, see [`ls_refs`]) and, once it has answered
//! with v2, the commit fetched (`fetch`, see [`fetch_v2`]). Whatever this
//! does not handle is left to libgit2, which speaks v0.

use std::collections::BTreeSet;

use super::super::ls_refs::{self, NoListing};
use super::super::{depth, fetch_v2, http_config, Cancel, GitError, GitRepo, Hash};
use super::{Target, UrlSettings};
use crate::redact::redact;

/// What every request to one repository's server carries.
struct Place<'a> {
    /// The URL after `insteadOf`.
    effective: String,
    known: ls_refs::Known,
    /// `http.extraHeader` values and cookies.
    headers: Vec<String>,
    basic: Option<(&'a str, &'a str)>,
}

impl Place<'_> {
    fn request(&self) -> ls_refs::Request<'_> {
        ls_refs::Request {
            url: self.known.moved_to.as_deref().unwrap_or(&self.effective),
            headers: &self.headers,
            basic: self.basic,
            basic_first: self.known.wants_credentials,
            known_v2: self.known.speaks_v2,
        }
    }
}

impl GitRepo {
    /// Where `url` is an HTTP(S) repository our client may ask (not
    /// through a proxy, not left to libgit2 for now), what it needs.
    fn http_place(&self, url: &str) -> Option<Place<'_>> {
        let UrlSettings {
            effective,
            proxy,
            extra_headers: mut headers,
        } = self.url_settings(url);
        let http = effective.starts_with("https://") || effective.starts_with("http://");
        let known = self
            .http_servers
            .borrow()
            .get(&effective)
            .cloned()
            .unwrap_or_default();
        if !http || proxy.is_some() || known.left_to_libgit2() {
            return None;
        }
        // A CA file or client certificate rotated since the last request
        // is loaded now, and the client made again with it (a certificate
        // that cannot be used is for libgit2 to report).
        super::super::tls::before_connecting(&effective, None).ok()?;
        headers.extend(self.credentials.cookies.header_for(&effective));
        // An Authorization header of the config's is the one sent.
        let own_authorization = http_config::any_named(&headers, &["authorization"]);
        let basic = self
            .credentials
            .for_url(&effective)
            .filter(|_| !own_authorization)
            .map(|c| (c.username.as_str(), c.password.as_str()));
        Some(Place {
            effective,
            known,
            headers,
            basic,
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
        let place = self.http_place(url)?;
        let listed = ls_refs::list(&place.request(), &ls_refs::prefixes(git_ref), cancel);
        let mut servers = self.http_servers.borrow_mut();
        let known = servers.entry(place.effective).or_default();
        match listed {
            Ok(listing) => {
                known.wants_credentials |= listing.authenticated;
                known.speaks_v2 = listing.version == 2;
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

    /// Fetch `target.hash`, `depth` commits deep, from an HTTP(S) server
    /// that answered our listing with protocol v2: one request, which the
    /// server answers with the pack, where libgit2 would have every ref
    /// listed first. What the fetch brought (`target.hash`), or `None`
    /// when it was not made or failed before the store changed: libgit2
    /// fetches then, and reports what is wrong in its words.
    pub(super) fn fetch_over_http_v2(
        &mut self,
        url: &str,
        target: &Target,
        depth: u32,
        cancel: &Cancel,
    ) -> Option<Result<Vec<Hash>, GitError>> {
        let shallow = depth::read_shallow(self);
        let haves = self.tips_held();
        let body = fetch_v2::request(&fetch_v2::Want {
            commit: target.hash,
            depth,
            shallow: &shallow,
            haves: &haves,
        });
        let info = {
            let place = self.http_place(url).filter(|p| p.known.speaks_v2)?;
            let odb = self.repo.odb().ok()?;
            let mut pack = odb.packwriter().ok()?;
            let answer = ls_refs::command(&place.request(), &body, cancel, |reader| {
                let mut reader = std::io::BufReader::with_capacity(64 << 10, reader);
                fetch_v2::read_answer(&mut reader, &mut pack, cancel)
            });
            let why = match answer {
                Ok(Ok(info)) => match pack.commit() {
                    Ok(_) => Ok(info),
                    Err(e) => Err(e.message().to_string()),
                },
                Ok(Err(fetch_v2::FetchError::Cancelled)) => return Some(Err(GitError::Cancelled)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(NoListing::Unsupported(why) | NoListing::Skipped(why)) => Err(why),
            };
            // (A pack not committed is removed as its writer is dropped.)
            match why {
                Ok(info) => info,
                Err(why) => {
                    tracing::debug!(url = %redact(url), reason = %redact(&why), "fetching with libgit2");
                    return None;
                }
            }
        };
        tracing::debug!(url = %redact(url), protocol = 2, "fetched");
        let written =
            depth::write_shallow(self, &info.apply(&shallow)).and_then(|()| self.reopen());
        Some(written.map(|()| vec![target.hash]))
    }

    /// The commits the store's refs point at: what the server need not
    /// send again.
    fn tips_held(&self) -> Vec<Hash> {
        let mut tips = BTreeSet::new();
        if let Ok(refs) = self.repo.references() {
            for r in refs.flatten() {
                tips.extend(r.peel_to_commit().ok().map(|c| c.id()));
            }
        }
        tips.into_iter().collect()
    }
}
