//! Which host key an SSH server shows us.
//!
//! A server with several host keys (ed25519, ECDSA, RSA) shows the one the
//! client prefers. OpenSSH prefers the types its known_hosts lists for the
//! host, so a file holding only the server's RSA key works; libssh2 on its
//! own prefers ed25519, and we would refuse a genuine server as an impostor.
//! libgit2 does what OpenSSH does, but reads `~/.ssh/known_hosts` for it,
//! and fails the connection if libssh2 cannot parse a line of that file
//! (OpenSSH passes over such a line). So while we talk to an SSH remote,
//! libgit2's home directory is one of ours whose `.ssh/known_hosts` holds
//! the lines of `--ssh-known-hosts-file` libssh2 reads, or nothing when
//! host keys are not checked (the user's own `~/.ssh/known_hosts` is never
//! read); the host key is still checked against the whole file by our own
//! callback.

use std::path::Path;

use super::local::local_path;

/// Whether `url` reaches its server over SSH.
fn is_ssh(url: &str) -> bool {
    match url.split_once("://") {
        Some((scheme, _)) => matches!(scheme, "ssh" | "git+ssh" | "ssh+git"),
        None => local_path(url).is_none(),
    }
}

/// libgit2's home directory pointed at a directory of ours for as long as
/// it lives (see the module documentation); a no-op when not needed.
pub struct SshHome {
    active: bool,
}

impl SshHome {
    /// For `url`, with host keys checked against the `known_hosts` files
    /// (none when not checked; under `alias`, a `HostKeyAlias`, when
    /// given): write what libssh2 reads of them to
    /// `state/ssh-home/.ssh/known_hosts` and point libgit2 there. Best
    /// effort: without it the server's preferred key type is asked for.
    pub fn enter(state: &Path, url: &str, known_hosts: &[&Path], alias: Option<&str>) -> SshHome {
        if !is_ssh(url) {
            return SshHome { active: false };
        }
        let home = state.join("ssh-home");
        // Read again each time: a rotated Secret is seen at once.
        let text: String = known_hosts
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .map(|text| text + "\n")
            .collect();
        let mut readable = super::known_hosts::readable_by_libssh2(&text);
        let place = super::ssh_ls_refs::SshPlace::parse(url);
        if let (Some(alias), Some(place)) = (alias, place) {
            let again =
                super::known_hosts::listed_again_for(&readable, alias, &place.host, place.port);
            readable.push_str(&again);
        }
        match write_known_hosts(&home, &readable).and_then(|()| set_homedir(Some(&home))) {
            Ok(()) => SshHome { active: true },
            Err(e) => {
                tracing::debug!(error = %e, "cannot order SSH host key types by the known_hosts file");
                SshHome { active: false }
            }
        }
    }
}

impl Drop for SshHome {
    fn drop(&mut self) {
        if self.active {
            // Back to libgit2's own guess ($HOME), for `~` in git config.
            let _ = set_homedir(None);
        }
    }
}

/// Make `home/.ssh/known_hosts` hold `text` (replaced whole, and only
/// when it differs: polls write nothing).
fn write_known_hosts(home: &Path, text: &str) -> std::io::Result<()> {
    let ssh = home.join(".ssh");
    let file = ssh.join("known_hosts");
    // (A symlink an earlier version made is read through, and replaced.)
    if std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file())
        && std::fs::read_to_string(&file).is_ok_and(|t| t == text)
    {
        return Ok(());
    }
    std::fs::create_dir_all(&ssh)?;
    let tmp = ssh.join(".known_hosts.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &file)
}

/// Set libgit2's home directory; `None` restores its default ($HOME).
fn set_homedir(dir: Option<&Path>) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = dir
        .map(|d| std::ffi::CString::new(d.as_os_str().as_bytes()))
        .transpose()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let ptr = path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
    // SAFETY: GIT_OPT_SET_HOMEDIR takes one `const char *` (NULL resets it)
    // and copies it; `path` outlives the call. libgit2 runs on one thread
    // at a time here (one sync pass at a time), so no other call reads the
    // home directory while it changes.
    let rc = unsafe {
        libgit2_sys::git_libgit2_opts(libgit2_sys::GIT_OPT_SET_HOMEDIR as libc::c_int, ptr)
    };
    if rc < 0 {
        return Err(std::io::Error::other(
            "git_libgit2_opts(GIT_OPT_SET_HOMEDIR) failed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_ssh;

    #[test]
    fn ssh_urls() {
        assert!(is_ssh("ssh://git@h/r.git"));
        assert!(is_ssh("git+ssh://h/r"));
        assert!(is_ssh("git@github.com:org/r.git"));
        assert!(!is_ssh("https://h/r"));
        assert!(!is_ssh("file:///srv/r"));
        assert!(!is_ssh("/srv/r"));
    }
}
