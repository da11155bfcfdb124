//! `--add-user` and `--group-write`: fitting in where the running UID is
//! arbitrary (OpenShift-style) and a group shares the volume.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Append `git-sync:x:UID:GID::HOME:/sbin/nologin` to `passwd` unless the
/// UID already has an entry. Harmless when the file is not writable.
pub fn add_user_to(passwd: &Path, uid: u32, gid: u32, home: &str) -> io::Result<bool> {
    let text = fs::read_to_string(passwd).unwrap_or_default();
    let known = text
        .lines()
        .any(|l| l.split(':').nth(2).is_some_and(|u| u == uid.to_string()));
    if known {
        return Ok(false);
    }
    let mut f = fs::OpenOptions::new().append(true).open(passwd)?;
    writeln!(f, "git-sync:x:{uid}:{gid}::{home}:/sbin/nologin")?;
    Ok(true)
}

/// The effective UID and GID of this process: who files are checked
/// against (said in permission errors).
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// `--add-user` for the running process.
pub fn add_user(home: &Path) {
    // SAFETY: getuid and getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    match add_user_to(Path::new("/etc/passwd"), uid, gid, &home.to_string_lossy()) {
        Ok(true) => tracing::info!(uid, gid, "added a passwd entry for the running user"),
        Ok(false) => tracing::debug!(uid, "the running user already has a passwd entry"),
        Err(e) => {
            tracing::info!(uid, error = %e, "--add-user: cannot add a passwd entry (harmless)")
        }
    }
}

/// The umask git-sync works under, whatever it inherited (as upstream):
/// the published tree is readable by everyone (a web server runs as
/// another user), and with `--group-write` writable by the group too.
pub fn set_umask(group_write: bool) {
    let mask = if group_write { 0o002 } else { 0o022 };
    // SAFETY: umask has no preconditions.
    unsafe {
        libc::umask(mask);
    }
}

/// Make everything under `dir` group-writable (checkout writes blobs 0644);
/// how many entries were not. One already so is left alone: most files of
/// an update are shared with (or moved from) the tree before, made so
/// then, and a chmod would cost a system call each and change their ctime.
pub fn add_group_write(dir: &Path) -> io::Result<usize> {
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(0);
    }
    let mut perm = meta.permissions();
    let mut changed = 0;
    if perm.mode() & 0o020 == 0 {
        perm.set_mode(perm.mode() | 0o020);
        fs::set_permissions(dir, perm)?;
        changed += 1;
    }
    if meta.is_dir() {
        for e in fs::read_dir(dir)? {
            changed += add_group_write(&e?.path())?;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_a_missing_user_once() {
        let t = tempfile::TempDir::new().unwrap();
        let p = t.path().join("passwd");
        fs::write(&p, "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        assert!(add_user_to(&p, 1234, 5, "/git").unwrap());
        assert!(!add_user_to(&p, 1234, 5, "/git").unwrap());
        assert!(!add_user_to(&p, 0, 0, "/git").unwrap());
        let text = fs::read_to_string(&p).unwrap();
        assert!(
            text.ends_with("git-sync:x:1234:5::/git:/sbin/nologin\n"),
            "{text}"
        );
    }

    #[test]
    fn group_write_everywhere() {
        let t = tempfile::TempDir::new().unwrap();
        fs::create_dir_all(t.path().join("a/b")).unwrap();
        fs::write(t.path().join("a/b/f"), "x").unwrap();
        fs::set_permissions(t.path().join("a/b/f"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(t.path().join("a"), fs::Permissions::from_mode(0o775)).unwrap();
        // The top, a/b and a/b/f lacked it; a had it.
        assert_eq!(add_group_write(t.path()).unwrap(), 3);
        let mode = fs::metadata(t.path().join("a/b/f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o020, 0o020);
        assert_eq!(add_group_write(t.path()).unwrap(), 0, "nothing to change");
    }
}
