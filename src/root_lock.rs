//! One git-sync per root: an exclusive `flock` on the root directory, held
//! for the life of the process. The kernel drops it when the process ends,
//! also by `kill -9`, so a restart never finds a stale lock.
//!
//! Two processes syncing into one root would remove each other's git lock
//! files (taken for a crash's leftovers), worktrees in the making and
//! freshly fetched objects, and flip the link between their commits: the
//! second one is stopped before it touches anything.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The lock; dropped (closed) when the process no longer syncs the root.
#[derive(Debug)]
pub struct RootLock {
    dir: File,
}

impl RootLock {
    /// Whether `root` is still the directory locked: one removed and made
    /// again (by hand, or by another git-sync) is another inode, unlocked.
    pub fn is_of(&self, root: &Path) -> bool {
        match (self.dir.metadata(), std::fs::metadata(root)) {
            (Ok(held), Ok(now)) => (held.dev(), held.ino()) == (now.dev(), now.ino()),
            _ => false,
        }
    }
}

/// Another process holds the root: its pid, when this process can see it.
#[derive(Debug)]
pub struct Held(pub Option<u32>);

/// Lock `root` (an existing directory) for this process. `Ok(None)` where
/// it cannot be locked (a filesystem without such locks, as some network
/// filesystems; a root we may write in but not read): warned about, and
/// the sync goes on as before.
pub fn lock(root: &Path) -> Result<Option<RootLock>, Held> {
    let unlocked = |e: io::Error| {
        tracing::warn!(root = %root.display(), error = %e,
            "cannot lock the root: make sure no other git-sync uses it");
        Ok(None)
    };
    let dir = match File::open(root) {
        Ok(dir) => dir,
        Err(e) => return unlocked(e),
    };
    // SAFETY: flock on a descriptor we own, kept open in the result.
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(RootLock { dir }));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        return Err(Held(holder(&dir)));
    }
    unlocked(e)
}

/// The pid holding a `flock` on `file`, from `/proc/locks`, whose lines read
/// `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF` (device as hex
/// major:minor, then the inode). 0 (a process outside our pid namespace)
/// counts as unknown.
fn holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(&locks, &id)
}

fn holder_in(locks: &str, id: &str) -> Option<u32> {
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Waiting requests are listed as `1: -> FLOCK ...`: not holders.
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&id))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
            .filter(|&pid| pid != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_root_is_refused_naming_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let first = lock(tmp.path()).unwrap();
        assert!(first.is_some(), "tmpfs and local disks have flock");
        // A second open file description conflicts, as another process's.
        match lock(tmp.path()) {
            Err(Held(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("second lock: {other:?}"),
        }
        drop(first);
        assert!(lock(tmp.path()).unwrap().is_some(), "free once dropped");
    }

    #[test]
    fn holder_lines() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4242 00:2f:77 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 5151 00:2f:77 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 6161 00:2f:78 0 EOF\n";
        assert_eq!(holder_in(locks, "00:2f:77"), Some(4242));
        assert_eq!(holder_in(locks, "00:2f:78"), None);
        assert_eq!(
            holder_in("1: FLOCK ADVISORY WRITE 0 00:2f:77 0 EOF", "00:2f:77"),
            None
        );
    }
}
