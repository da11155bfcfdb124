//! Which version of a file is there: a file rewritten, or swapped through
//! a symlink as the kubelet updates a mounted Secret or ConfigMap, has
//! another. What tells a renewed CA bundle, client certificate or config
//! file from the one read before, at the cost of a `stat`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file's device, inode, size and time of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    /// The stamp of the file `path` names (through symlinks); `None` if
    /// there is none.
    pub fn of(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path).ok().map(|m| FileStamp::from(&m))
    }
}

impl From<&std::fs::Metadata> for FileStamp {
    fn from(m: &std::fs::Metadata) -> Self {
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_swapped_through_a_symlink_has_another_stamp() {
        let dir = tempfile::TempDir::new().unwrap();
        let (a, b, link) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("l"),
        );
        std::fs::write(&a, "same").unwrap();
        std::fs::write(&b, "same").unwrap();
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let before = FileStamp::of(&link);
        assert!(before.is_some());
        assert_eq!(FileStamp::of(&link), before);
        let staged = dir.path().join("l.new");
        std::os::unix::fs::symlink(&b, &staged).unwrap();
        std::fs::rename(&staged, &link).unwrap();
        assert_ne!(FileStamp::of(&link), before);
        assert_eq!(FileStamp::of(&dir.path().join("none")), None);
    }
}
