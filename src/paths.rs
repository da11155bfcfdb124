//! Path arithmetic shared by the parts that write paths into the volume
//! (the link, worktrees' `.git` files): relative, so they still resolve
//! when the volume is mounted elsewhere. And the cheap looks at what
//! readers see that the checks of a published tree share.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Whether the directory `dir` has an entry of each of `names`: one
/// directory read, not a stat per name. False when it cannot be read.
pub fn holds_all(dir: &Path, names: &[OsString]) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let there: HashSet<OsString> = entries.filter_map(|e| Some(e.ok()?.file_name())).collect();
    names.iter().all(|name| there.contains(name))
}

/// Whether the directory `dir` has any entry (not when it cannot be read).
pub fn holds_anything(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// The path of `to` relative to the directory `from`; both absolute and
/// free of symlinks.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::relative_path;
    use std::path::{Path, PathBuf};

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/r"), Path::new("/r/.worktrees/abc")),
            PathBuf::from(".worktrees/abc")
        );
        assert_eq!(
            relative_path(Path::new("/a/b/other"), Path::new("/r/.worktrees/abc")),
            PathBuf::from("../../../r/.worktrees/abc")
        );
    }
}
