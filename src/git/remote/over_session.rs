//! An SSH or git:// remote asked with protocol v2 on a session of our own
//! (see [`v2_session`]): its refs listed, and the commit or a partial
//! clone's missing contents fetched on that session. Used for a server
//! that showed libgit2 many refs, or any with `--filter`; what this does
//! not handle is left to libgit2, which speaks v0 there.

use super::super::{daemon_ls_refs, ls_refs, ssh_ls_refs, v2_session};
use super::super::{Cancel, GitError, GitRepo, Hash};
use super::UrlSettings;
use crate::redact::redact;

impl GitRepo {
    /// The refs `git_ref` may name on an SSH or git:// remote, and the
    /// session that listed them, open for a fetch (see
    /// [`GitRepo::v2_session_with`]).
    pub(super) fn list_refs_over_ssh_or_git(
        &self,
        url: &str,
        git_ref: &str,
        cancel: &Cancel,
    ) -> Option<(Vec<(String, Hash)>, v2_session::Session)> {
        self.v2_session_with(url, &ls_refs::prefixes(git_ref), cancel)
    }

    /// A session of ours with the SSH or git:// server of `url`, when it
    /// showed libgit2 many refs (or, with `--filter`, any; see
    /// [`v2_session`]): with protocol v2 the refs under `prefixes`, with
    /// version 0 (a server that does not pass `GIT_PROTOCOL` on) every
    /// ref; and the session, open for a fetch. `None` leaves the listing
    /// and the fetch to libgit2.
    pub(super) fn v2_session_with(
        &self,
        url: &str,
        prefixes: &[String],
        cancel: &Cancel,
    ) -> Option<(Vec<(String, Hash)>, v2_session::Session)> {
        let settings = self.url_settings(url);
        let key = v2_session::saved::key(&settings.effective);
        let known = self.v2_servers.borrow().get(&key).cloned();
        // Only our fetch takes a partial clone's filter.
        let wanted = known.as_ref().map_or(self.filter.is_some(), |k| {
            k.worth_listing() || (self.filter.is_some() && !k.left())
        });
        if !settings.v2 || !wanted || cancel.is_cancelled() {
            return None;
        }
        let listed = self.open_session(&settings, prefixes)?;
        match listed {
            Ok((heads, session)) => {
                let protocol = session.version();
                tracing::debug!(url = %redact(url), protocol, refs = heads.len(), "refs listed");
                Some((heads, session))
            }
            Err(e) => {
                let why = e.reason();
                tracing::debug!(url = %redact(url), reason = %redact(&why), "refs listed by libgit2 for the next 10 minutes");
                let mut servers = self.v2_servers.borrow_mut();
                servers.entry(key).or_default().left_at = Some(std::time::Instant::now());
                v2_session::saved::save(&self.gitdir, &servers);
                None
            }
        }
    }

    /// A protocol v2 session of ours with the SSH or git:// server of
    /// `effective` (a URL after `insteadOf`), listing the refs under
    /// `prefixes`; `None` for another kind of URL, or SSH without
    /// credentials of ours.
    fn open_session(
        &self,
        settings: &UrlSettings,
        prefixes: &[String],
    ) -> Option<v2_session::Listed> {
        let timeout = ls_refs::timeout();
        let effective = &settings.effective;
        Some(match daemon_ls_refs::DaemonPlace::parse(effective) {
            Some(place) => daemon_ls_refs::list(&place, prefixes, timeout),
            None => {
                let place = ssh_ls_refs::SshPlace::parse(effective)?;
                let auth = self.ssh_auth(settings)?;
                ssh_ls_refs::list(&place, &auth, prefixes, timeout)
            }
        })
    }

    /// What `git-lfs-authenticate` says on the SSH server of `url` (see
    /// [`ssh_ls_refs::lfs_authenticate`]); `None` for another kind of URL,
    /// or without SSH credentials of ours.
    pub(in crate::git) fn lfs_authenticate(&self, url: &str) -> Option<Result<String, String>> {
        let settings = self.url_settings(url);
        let place = ssh_ls_refs::SshPlace::parse(&settings.effective)?;
        let auth = self.ssh_auth(&settings)?;
        Some(ssh_ls_refs::lfs_authenticate(
            &place,
            &auth,
            ls_refs::timeout(),
        ))
    }

    /// Fetch `objects` alone (see [`GitRepo::fetch_objects_with_v2`]) on
    /// a session of ours with `url`'s SSH or git:// server; `None` if
    /// there can be none.
    pub(in crate::git) fn fetch_objects_over_session(
        &self,
        url: &str,
        objects: &[Hash],
        cancel: &Cancel,
    ) -> Option<Result<(), GitError>> {
        let settings = self.url_settings(url);
        if !settings.v2 {
            return None;
        }
        Some(match self.open_session(&settings, &no_refs())? {
            Ok((_, session)) => self.fetch_objects_with_v2(url, objects, |want, pack| {
                session.fetch(want, pack, cancel)
            }),
            Err(e) => Err(GitError::Remote {
                op: "fetch",
                url: redact(url),
                message: redact(&e.reason()),
            }),
        })
    }

    /// After libgit2 listed `count` refs of `url`: over SSH or git://,
    /// whether they are many enough to be listed with protocol v2 from now
    /// on.
    pub(super) fn note_many_refs(&self, url: &str, count: usize) {
        if count < v2_session::MANY_REFS {
            return;
        }
        let effective = self.url_settings(url).effective;
        if ssh_ls_refs::SshPlace::parse(&effective).is_some()
            || daemon_ls_refs::DaemonPlace::parse(&effective).is_some()
        {
            let mut servers = self.v2_servers.borrow_mut();
            let known = servers
                .entry(v2_session::saved::key(&effective))
                .or_default();
            if !known.many_refs {
                known.many_refs = true;
                v2_session::saved::save(&self.gitdir, &servers);
            }
        }
    }
}

/// The prefixes of a listing that lists nothing: no ref has it.
pub(super) fn no_refs() -> [String; 1] {
    ["refs/git-sync/none/".to_string()]
}
