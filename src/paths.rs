//! Path arithmetic shared by the parts that write paths into the volume
//! (the link, worktrees' `.git` files): relative, so they still resolve
//! when the volume is mounted elsewhere.

use std::path::{Component, Path, PathBuf};

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
