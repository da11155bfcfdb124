//! Paths of a tree that git-sync writes itself (plain trees, large files
//! streamed from their pack, files shared with the previous worktree),
//! kept inside the worktree as libgit2's checkout keeps the rest.
//!
//! A tree is only bytes: one pushed to a server that does not check what
//! it receives can name `..` or `.git`, or hold a symlink `a` beside a
//! directory `a`. git refuses to check such paths out ("invalid path"); a
//! tree with a name that is not plainly safe here is left to libgit2, which
//! applies git's rules, and no directory is made or entered through a
//! symlink.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path};

use git2::Oid;

use super::GitError;

/// The mode libgit2's checkout creates directories with (less the umask);
/// ours are made alike.
const DIR_MODE: u32 = 0o755;

/// Whether `path` (`/`-separated, from a tree) is plainly safe to write
/// below a worktree: no empty, `.` or `..` part, and none that git or the
/// file systems it guards against would take for `.git` (any case,
/// trailing dots and spaces, the 8.3 short name `git~1`, an NTFS stream).
pub(super) fn is_plainly_safe(path: &[u8]) -> bool {
    !path.is_empty() && path.split(|&b| b == b'/').all(plain_name)
}

fn plain_name(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    let trimmed = lower
        .iter()
        .rposition(|&b| b != b'.' && b != b' ')
        .map_or(&lower[..0], |end| &lower[..=end]);
    !matches!(name, b"" | b"." | b"..")
        && trimmed != b".git"
        && trimmed != b"git~1"
        && !lower.starts_with(b".git:")
        && !name.contains(&b'\\')
}

/// A tree entry's mode for a symlink.
const SYMLINK: i32 = 0o120000;

/// Whether a symlink named `name` may be one of git's own files
/// (`.gitmodules` above all, which git and libgit2 refuse as a symlink,
/// whatever its case, NTFS short name or HFS ignored characters): such a
/// tree is left to libgit2 to judge.
fn may_be_git_file(name: &[u8]) -> bool {
    let ascii: Vec<u8> = name
        .iter()
        .filter(|b| b.is_ascii())
        .map(u8::to_ascii_lowercase)
        .collect();
    [b".git".as_slice(), b"gitmod~", b"gi7eba~"]
        .iter()
        .any(|prefix| ascii.starts_with(prefix))
}

/// The directories on the way to `paths` (`/`-separated, from a tree),
/// each ending in `/`: all a walk that looks for those paths enters (an
/// update that writes a few files of a large tree reads a few trees).
pub(super) fn dirs_on_the_way(paths: &[Vec<u8>]) -> HashSet<&[u8]> {
    paths
        .iter()
        .flat_map(|p| {
            let ends = p.iter().enumerate().filter(|&(_, &b)| b == b'/');
            ends.map(|(i, _)| &p[..=i])
        })
        .collect()
}

/// What the names of a tree tell before it is written.
pub(super) struct Survey {
    /// A path named twice in one directory (a symlink `a` beside a
    /// directory `a`), if any. Only a hand-made tree has one (git fsck calls
    /// it duplicateEntries), and libgit2 would check such a tree out making
    /// the directory's entries where the symlink points.
    pub named_twice: Option<String>,
    /// Whether every name is plainly safe (see [`is_plainly_safe`]) and a
    /// single path component, so that the whole tree may be written
    /// without libgit2's checks.
    pub all_plain: bool,
    /// Whether the tree holds a gitlink (a submodule's commit).
    pub gitlinks: bool,
    /// The trees found clean (see [`survey`]), for the next survey.
    pub clean: HashSet<Oid>,
}

/// Look at every directory of `tree` once, but those `clean` holds: trees
/// an earlier survey found clean (every name below plainly safe, none
/// twice, no gitlink, no `.gitattributes`), which cannot hold anything to
/// report. Memory: one directory's names at a time, the ids of the trees
/// already looked at (a directory repeated in the tree is looked at once),
/// and of those found clean ([`Survey::clean`]: an update that changes a
/// few files of a large tree then reads a few of its trees).
pub(super) fn survey(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    clean: &HashSet<Oid>,
) -> Survey {
    let mut found = Survey {
        named_twice: None,
        all_plain: true,
        gitlinks: false,
        clean: HashSet::new(),
    };
    let mut looked_at = HashSet::new();
    survey_below(repo, tree, "", (clean, &mut looked_at), &mut found);
    found
}

/// The path named twice in one directory of `tree`, if any (see
/// [`Survey::named_twice`]).
#[cfg(test)]
pub(super) fn named_twice(repo: &git2::Repository, tree: &git2::Tree<'_>) -> Option<String> {
    survey(repo, tree, &HashSet::new()).named_twice
}

/// Survey `tree` at `dir` into `found`; whether it is clean.
fn survey_below(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    dir: &str,
    (clean_before, looked_at): (&HashSet<Oid>, &mut HashSet<Oid>),
    found: &mut Survey,
) -> bool {
    let id = tree.id();
    if clean_before.contains(&id) {
        found.clean.insert(id);
        return true;
    }
    if !looked_at.insert(id) {
        return found.clean.contains(&id);
    }
    let mut names: Vec<Vec<u8>> = tree.iter().map(|e| e.name_bytes().to_vec()).collect();
    let plain = names.iter().all(|n| plain_name(n) && !n.contains(&b'/'))
        && !tree
            .iter()
            .any(|e| e.filemode() == SYMLINK && may_be_git_file(e.name_bytes()));
    found.all_plain &= plain;
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
        found.named_twice = Some(format!("{dir}{}", String::from_utf8_lossy(&pair[0])));
        return false;
    }
    let mut clean = plain && !names.iter().any(|n| n == b".gitattributes");
    for entry in tree.iter() {
        if entry.kind() == Some(git2::ObjectType::Commit) {
            found.gitlinks = true;
            clean = false;
        }
        if entry.kind() != Some(git2::ObjectType::Tree) {
            continue;
        }
        // An unreadable subtree is for the checkout to report.
        let Ok(sub) = repo.find_tree(entry.id()) else {
            found.all_plain = false;
            clean = false;
            continue;
        };
        let below = format!("{dir}{}/", String::from_utf8_lossy(entry.name_bytes()));
        clean &= survey_below(repo, &sub, &below, (clean_before, looked_at), found);
        if found.named_twice.is_some() {
            return false;
        }
    }
    if clean {
        found.clean.insert(id);
    }
    clean
}

/// Make the directories of `rel` below `top`, as libgit2's checkout makes
/// them ([`DIR_MODE`]), entering none that is a symlink: with `a` a symlink
/// that a hostile tree also uses as a directory, `a/b` fails rather than
/// land where `a` points.
pub(super) fn make_dirs_within(top: &Path, rel: &Path) -> Result<(), GitError> {
    let mut dir = top.to_path_buf();
    for part in rel.components() {
        let Component::Normal(name) = part else {
            return Err(GitError::Local {
                op: format!("create {}", top.join(rel).display()),
                message: format!("invalid path: '{}'", rel.display()),
            });
        };
        dir.push(name);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                let e = io::Error::from_raw_os_error(libc::ENOTDIR);
                return Err(GitError::io("create", &dir, e));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
                .mode(DIR_MODE)
                .create(&dir)
                .map_err(|e| GitError::io("create", &dir, e))?,
            Err(e) => return Err(GitError::io("stat", &dir, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_util::raw_tree;

    #[test]
    fn only_plain_paths_are_plainly_safe() {
        for ok in [
            "a",
            "media/big.bin",
            ".github/x",
            ".gitignore",
            "a.git/b",
            "git~2",
            "...x",
        ] {
            assert!(is_plainly_safe(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            ".",
            "a/./b",
            "..",
            "sub/../../x",
            ".git/config",
            "x/.GIT/y",
            ".git. . /y",
            "GIT~1/y",
            ".git::$INDEX_ALLOCATION/y",
            "a\\..\\b",
        ] {
            assert!(!is_plainly_safe(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn symlinks_that_may_be_gits_own_files_are_told() {
        for name in [
            ".gitmodules",
            ".GITMODULES",
            ".gitmodules ",
            "gitmod~1",
            "GI7EBA~2",
        ] {
            assert!(may_be_git_file(name.as_bytes()), "{name}");
        }
        // HFS+ ignores zero-width characters in names.
        assert!(may_be_git_file(".git\u{200c}modules".as_bytes()));
        for name in ["index.html", "gitmodules", "a.gitmodules", "docs"] {
            assert!(!may_be_git_file(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn a_survey_skips_the_trees_an_earlier_one_found_clean() {
        let t = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(t.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let raw_tree = |entries: &[(&str, &str, git2::Oid)]| raw_tree(&repo, entries);
        let clean = raw_tree(&[("100644", "f", blob)]);
        let deep = raw_tree(&[("40000", "c", clean)]);
        let attrs = raw_tree(&[("100644", ".gitattributes", blob), ("40000", "c", clean)]);
        let top = raw_tree(&[("40000", "a", deep), ("40000", "b", attrs)]);
        let first = survey(&repo, &repo.find_tree(top).unwrap(), &HashSet::new());
        assert!(first.all_plain);
        // Found clean: the trees with nothing below to report.
        let expected: HashSet<Oid> = [clean, deep].into();
        assert_eq!(first.clean, expected);

        // A tree taken for clean is not looked into again: one with a name
        // to report (put there by hand) shows it no longer.
        let bad = raw_tree(&[("100644", "..", blob)]);
        let top = raw_tree(&[("40000", "a", deep), ("40000", "bad", bad)]);
        let top = repo.find_tree(top).unwrap();
        assert!(!survey(&repo, &top, &first.clean).all_plain);
        let assumed: HashSet<Oid> = [bad].into();
        let again = survey(&repo, &top, &assumed);
        assert!(again.all_plain);
        assert!(again.clean.contains(&bad) && again.clean.contains(&deep));
    }

    #[test]
    fn a_name_twice_in_any_directory_is_found() {
        let t = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(t.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let raw_tree = |entries: &[(&str, &str, git2::Oid)]| raw_tree(&repo, entries);
        let twice = raw_tree(&[("100644", "f", blob), ("100644", "f", blob)]);
        let once = raw_tree(&[("100644", "f", blob), ("100644", "g", blob)]);
        let top = raw_tree(&[
            ("40000", "clean", once),
            ("40000", "deep", twice),
            ("100644", "index.html", blob),
        ]);
        let top = repo.find_tree(top).unwrap();
        assert_eq!(named_twice(&repo, &top).as_deref(), Some("deep/f"));
        let fine = raw_tree(&[("40000", "a", once), ("40000", "b", once)]);
        let fine = survey(&repo, &repo.find_tree(fine).unwrap(), &HashSet::new());
        assert_eq!(fine.named_twice, None);
        assert!(fine.all_plain);
        assert!(!fine.gitlinks);
        let module = raw_tree(&[("160000", "module", blob)]);
        let deep = raw_tree(&[("40000", "a", once), ("40000", "vendor", module)]);
        assert!(survey(&repo, &repo.find_tree(deep).unwrap(), &HashSet::new()).gitlinks);
        for name in [".GIT", "a/b", ".."] {
            let below = raw_tree(&[("100644", name, blob)]);
            let top = raw_tree(&[("40000", "clean", once), ("40000", "d", below)]);
            let found = survey(&repo, &repo.find_tree(top).unwrap(), &HashSet::new());
            assert!(!found.all_plain, "{name}");
            assert_eq!(found.named_twice, None);
        }
    }

    #[test]
    fn directories_are_made_but_never_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let (top, outside) = (t.path().join("wt"), t.path().join("outside"));
        fs::create_dir_all(&top).unwrap();
        fs::create_dir_all(&outside).unwrap();
        make_dirs_within(&top, Path::new("a/b/c")).unwrap();
        assert!(top.join("a/b/c").is_dir());
        make_dirs_within(&top, Path::new("a/b")).unwrap();

        std::os::unix::fs::symlink(&outside, top.join("link")).unwrap();
        let err = make_dirs_within(&top, Path::new("link/d")).unwrap_err();
        assert!(err.to_string().contains("link: Not a directory"), "{err}");
        fs::write(top.join("file"), "").unwrap();
        assert!(make_dirs_within(&top, Path::new("file/d")).is_err());
        assert!(make_dirs_within(&top, Path::new("../escaped")).is_err());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert!(!t.path().join("escaped").exists());
    }
}
