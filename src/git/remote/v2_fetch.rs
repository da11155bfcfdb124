//! One commit fetched into the store with protocol v2's `fetch` command
//! (`fetch_v2.rs`), over whichever transport carries it: our HTTP(S)
//! client (`over_http_v2.rs`), or the SSH or git:// session that listed
//! the refs (`v2_session.rs`).

use std::collections::BTreeSet;
use std::io::Write;

use super::super::fetch_v2::{self, FetchError, ShallowInfo, Want};
use super::super::v2_session::Session;
use super::super::{depth, Cancel, GitError, GitRepo, Hash};
use super::Target;
use crate::redact::redact;

impl GitRepo {
    /// Fetch `target.hash`, `depth` commits deep (0: all history), by v2's
    /// `fetch` (or, on a session whose server speaks version 0, v0's), from
    /// a server whose fetch takes a filter or not (`filters`) and speaks
    /// `protocol`: `send` sends the request for what it is given and reads
    /// the answer, its pack into the writer it is given (libgit2's, which
    /// completes a thin pack from the store). What the fetch brought
    /// (`target.hash`), or `None` when it failed before the store changed:
    /// libgit2 fetches then, and reports what is wrong in its words.
    pub(super) fn fetch_with_v2(
        &mut self,
        url: &str,
        target: &Target,
        depth: u32,
        (filters, protocol): (bool, u8),
        send: impl FnOnce(&Want<'_>, &mut dyn Write) -> Result<ShallowInfo, FetchError>,
    ) -> Option<Result<Vec<Hash>, GitError>> {
        let shallow = depth::read_shallow(self);
        let haves = self.tips_held();
        let want = Want {
            objects: &[target.hash],
            depth,
            shallow: &shallow,
            haves: &haves,
            filter: self.filter_for(url, filters),
        };
        let info = match self.receive(&want, send) {
            Ok(info) => info,
            Err(FetchError::Cancelled) => return Some(Err(GitError::Cancelled)),
            Err(e) => {
                let why = e.to_string();
                if let FetchError::Server(said) = &e {
                    self.note_filter_refused(url, said);
                }
                tracing::debug!(url = %redact(url), reason = %redact(&why), "fetching with libgit2");
                return None;
            }
        };
        tracing::debug!(url = %redact(url), protocol, "fetched");
        let written =
            depth::write_shallow(self, &info.apply(&shallow)).and_then(|()| self.reopen());
        Some(written.map(|()| vec![target.hash]))
    }

    /// Send `request` with `send`, the pack it answers with into the
    /// store (through libgit2's pack writer, which completes a thin pack
    /// from the store); what the answer says of shallow commits. A pack
    /// not received whole is not kept.
    fn receive(
        &self,
        want: &Want<'_>,
        send: impl FnOnce(&Want<'_>, &mut dyn Write) -> Result<ShallowInfo, FetchError>,
    ) -> Result<ShallowInfo, FetchError> {
        let writer = |e: git2::Error| FetchError::Transport(e.message().to_string());
        let odb = self.repo.odb().map_err(writer)?;
        let mut pack = odb.packwriter().map_err(writer)?;
        let info = send(want, &mut pack)?;
        // (A pack not committed is removed as its writer is dropped.)
        pack.commit().map_err(writer)?;
        Ok(info)
    }

    /// Fetch `objects` (a partial clone's missing blobs) alone, over a v2
    /// `send`.
    pub(super) fn fetch_objects_with_v2(
        &self,
        url: &str,
        objects: &[Hash],
        send: impl FnOnce(&Want<'_>, &mut dyn Write) -> Result<ShallowInfo, FetchError>,
    ) -> Result<(), GitError> {
        match self.receive(&fetch_v2::objects_want(objects), send) {
            Ok(_) => Ok(()),
            Err(FetchError::Cancelled) => Err(GitError::Cancelled),
            Err(e) => Err(GitError::Remote {
                op: "fetch",
                url: redact(url),
                message: redact(&e.to_string()),
            }),
        }
    }

    /// [`GitRepo::fetch_with_v2`] on the SSH or git:// `session` that
    /// listed the refs.
    pub(super) fn fetch_on_session(
        &mut self,
        url: &str,
        target: &Target,
        depth: u32,
        cancel: &Cancel,
        session: Session,
    ) -> Option<Result<Vec<Hash>, GitError>> {
        let speaks = (session.filters(), session.version());
        self.fetch_with_v2(url, target, depth, speaks, |want, pack| {
            session.fetch(want, pack, cancel)
        })
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
