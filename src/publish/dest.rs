//! Dest mode: the served directory itself mirrors the checked-out commit.
//!
//! The whole directory cannot be swapped atomically (it is a volume mount),
//! so every file is: a new or changed file is written under a temporary name
//! in its own directory and renamed into place; only then are removed files
//! and emptied directories deleted. A reader never sees a torn or missing
//! file that exists in both versions; between two commits it may briefly see
//! a mix of files. No git state is ever written into the served directory
//! (the worktree's `.git` file is not copied; a `.git` found there, as the
//! 2015 git-sync left, is removed).
//!
//! Which commit the directory holds is recorded in the private state
//! directory, and trusted only after this process has mirrored it once: at
//! start the directory is always reconciled, every file compared, which
//! repairs whatever happened to it meanwhile. From then on an update looks
//! at the paths the commit changed only (when the caller knows them): a
//! one-file commit to a 50,000-file site copies one file rather than
//! reading 100,000.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{err, PublishError, Publisher};
use crate::git::{ChangedPaths, Hash};
use crate::layout::remove_any;
use crate::safe_to_empty;

/// Suffix of the temporary names files are written under.
const TMP_SUFFIX: &str = ".git-sync-tmp";

/// Dest mode publisher.
#[derive(Debug)]
pub struct DestPublisher {
    dest: PathBuf,
    marker: PathBuf,
    /// Whether `dest` was reconciled by this process.
    verified: bool,
}

impl DestPublisher {
    /// `state_dir` is private: the marker of the mirrored hash lives there.
    pub fn new(dest: &Path, state_dir: &Path) -> Self {
        DestPublisher {
            dest: dest.to_path_buf(),
            marker: state_dir.join("dest-published"),
            verified: false,
        }
    }
}

impl Publisher for DestPublisher {
    fn current(&self) -> Option<Hash> {
        self.verified.then(|| self.last_published()).flatten()
    }

    fn uses_changes(&self) -> bool {
        true
    }

    fn readers_use_worktree(&self) -> bool {
        false
    }

    /// What the marker records, mirrored by this process or an earlier one.
    fn last_published(&self) -> Option<Hash> {
        fs::read_to_string(&self.marker).ok()?.trim().parse().ok()
    }

    fn publish(
        &mut self,
        hash: Hash,
        worktree: &Path,
        changed: Option<&ChangedPaths>,
    ) -> Result<(), PublishError> {
        // What changed since a commit this process mirrored, and the
        // directory holds as it left it; else every file.
        let scope = changed
            .filter(|c| self.current() == Some(c.from))
            .map(Scope::of);
        // Until this succeeds the directory may hold part of `hash` while
        // the marker names the commit before (a path changed there and
        // changed back next would be left as it is): a failure means every
        // file is compared next time.
        self.verified = false;
        fs::create_dir_all(&self.dest).map_err(err(&self.dest))?;
        let stats = mirror(worktree, &self.dest, scope.as_ref())?;
        tracing::debug!(
            written = stats.written,
            removed = stats.removed,
            unchanged = stats.unchanged,
            only_changed_paths = scope.is_some(),
            "dest directory updated"
        );
        let tmp = self.marker.with_extension("tmp");
        fs::write(&tmp, format!("{hash}\n")).map_err(err(&tmp))?;
        fs::rename(&tmp, &self.marker).map_err(err(&self.marker))?;
        self.verified = true;
        Ok(())
    }
}

/// What a mirror pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct MirrorStats {
    pub written: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// The paths a mirror pass looks at, when not all: those a commit changed
/// (each with all below it) and the directories on the way to them.
#[derive(Debug)]
pub struct Scope {
    whole: HashSet<PathBuf>,
    on_the_way: HashSet<PathBuf>,
}

impl Scope {
    fn of(changed: &ChangedPaths) -> Scope {
        let whole: HashSet<PathBuf> = changed.paths.iter().cloned().collect();
        let on_the_way = whole
            .iter()
            .flat_map(|p| p.ancestors().skip(1))
            .map(Path::to_path_buf)
            .collect();
        Scope { whole, on_the_way }
    }

    /// How to treat the entry `rel` of a directory in scope: `None` to
    /// leave it, `Some(None)` for all of it, `Some(Some(self))` to look
    /// into it for what changed.
    fn below(&self, rel: &Path) -> Option<Option<&Scope>> {
        if self.whole.contains(rel) {
            Some(None)
        } else if self.on_the_way.contains(rel) {
            Some(Some(self))
        } else {
            None
        }
    }
}

/// Make `dst` hold exactly what `src` holds, but any `.git`: every path
/// compared, or (with `scope`) those a commit changed, the rest of `dst`
/// being as `src` holds it already.
pub fn mirror(src: &Path, dst: &Path, scope: Option<&Scope>) -> Result<MirrorStats, PublishError> {
    let mut stats = MirrorStats::default();
    let top = Path::new("");
    let Some(scope) = scope.map_or(Some(None), |s| s.below(top)) else {
        return Ok(stats);
    };
    copy_dir(src, dst, top, scope, &mut stats)?;
    prune_dir(src, dst, top, scope, &mut stats)?;
    Ok(stats)
}

/// Where to go for the entry `rel` of a directory mirrored in `scope`:
/// `None` to leave it.
fn enter<'a>(scope: Option<&'a Scope>, rel: &Path) -> Option<Option<&'a Scope>> {
    scope.map_or(Some(None), |s| s.below(rel))
}

/// Entries of `dir`, sorted, without `.git`: the worktree's link to our
/// state at the top, a submodule's below (git never tracks a `.git`).
fn entries(dir: &Path) -> Result<Vec<fs::DirEntry>, PublishError> {
    let mut v: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(err(dir))?
        .collect::<Result<_, _>>()
        .map_err(err(dir))?;
    v.retain(|e| e.file_name() != ".git");
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

fn tmp_name(dir: &Path, name: &OsString) -> PathBuf {
    let mut n = OsString::from(".");
    n.push(name);
    n.push(TMP_SUFFIX);
    dir.join(n)
}

/// Whether two regular files have the same bytes and executable bit.
fn same_file(a: &Path, a_meta: &fs::Metadata, b: &Path) -> io::Result<bool> {
    let b_meta = match fs::symlink_metadata(b) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if a_meta.len() != b_meta.len()
        || a_meta.permissions().mode() & 0o111 != b_meta.permissions().mode() & 0o111
    {
        return Ok(false);
    }
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Put `tmp` in place of `target`, which may be of another type.
fn replace(tmp: &Path, target: &Path) -> Result<(), PublishError> {
    if fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        remove_any(target).map_err(err(target))?;
    }
    fs::rename(tmp, target).map_err(err(target))
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    rel: &Path,
    scope: Option<&Scope>,
    stats: &mut MirrorStats,
) -> Result<(), PublishError> {
    for e in entries(src)? {
        let name = e.file_name();
        let rel = rel.join(&name);
        let Some(scope) = enter(scope, &rel) else {
            continue;
        };
        let (from, to) = (e.path(), dst.join(&name));
        let meta = fs::symlink_metadata(&from).map_err(err(&from))?;
        if meta.is_dir() {
            match fs::symlink_metadata(&to) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_any(&to).map_err(err(&to))?;
                    fs::create_dir(&to).map_err(err(&to))?;
                }
                Err(_) => fs::create_dir(&to).map_err(err(&to))?,
            }
            copy_dir(&from, &to, &rel, scope, stats)?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&from).map_err(err(&from))?;
            if fs::read_link(&to).ok().as_ref() == Some(&target) {
                stats.unchanged += 1;
                continue;
            }
            let tmp = tmp_name(dst, &name);
            remove_any(&tmp).map_err(err(&tmp))?;
            std::os::unix::fs::symlink(&target, &tmp).map_err(err(&tmp))?;
            replace(&tmp, &to)?;
            stats.written += 1;
        } else {
            if same_file(&from, &meta, &to).map_err(err(&to))? {
                stats.unchanged += 1;
                continue;
            }
            let tmp = tmp_name(dst, &name);
            remove_any(&tmp).map_err(err(&tmp))?;
            // fs::copy copies the permission bits too.
            fs::copy(&from, &tmp).map_err(err(&tmp))?;
            replace(&tmp, &to)?;
            stats.written += 1;
        }
    }
    Ok(())
}

/// Delete what is in `dst` but not in `src` (after all writes); at the
/// top, a volume's `lost+found` stays.
fn prune_dir(
    src: &Path,
    dst: &Path,
    rel: &Path,
    scope: Option<&Scope>,
    stats: &mut MirrorStats,
) -> Result<(), PublishError> {
    let top = rel.as_os_str().is_empty();
    let wanted: HashSet<OsString> = entries(src)?.iter().map(|e| e.file_name()).collect();
    for e in fs::read_dir(dst).map_err(err(dst))? {
        let e = e.map_err(err(dst))?;
        let name = e.file_name();
        let path = e.path();
        if !wanted.contains(&name) {
            if top && safe_to_empty::is_lost_and_found(&path) {
                continue;
            }
            remove_any(&path).map_err(err(&path))?;
            stats.removed += 1;
        } else if e.file_type().is_ok_and(|t| t.is_dir()) {
            let rel = rel.join(&name);
            if let Some(scope) = enter(scope, &rel) {
                prune_dir(&src.join(&name), &path, &rel, scope, stats)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_writes_changes_removes_leftovers_and_skips_git() {
        let t = tempfile::TempDir::new().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(src.join("a/b")).unwrap();
        fs::write(src.join(".git"), "gitdir: /x").unwrap();
        fs::write(src.join("index.html"), "new").unwrap();
        fs::write(src.join("a/b/c.txt"), "c").unwrap();
        fs::write(src.join("a/.git"), "gitdir: /x/modules/a").unwrap();
        fs::write(src.join("same.txt"), "same").unwrap();
        std::os::unix::fs::symlink("a/b/c.txt", src.join("link")).unwrap();
        fs::create_dir_all(dst.join(".git")).unwrap();
        fs::write(dst.join(".git/config"), "[core]").unwrap();
        fs::write(dst.join("index.html"), "old").unwrap();
        fs::write(dst.join("same.txt"), "same").unwrap();
        fs::create_dir_all(dst.join("gone/deep")).unwrap();
        fs::write(dst.join("a"), "was a file").unwrap();

        let s = mirror(&src, &dst, None).unwrap();
        assert_eq!(fs::read_to_string(dst.join("index.html")).unwrap(), "new");
        assert_eq!(fs::read_to_string(dst.join("a/b/c.txt")).unwrap(), "c");
        assert_eq!(fs::read_to_string(dst.join("link")).unwrap(), "c");
        assert!(!dst.join(".git").exists());
        assert!(!dst.join("a/.git").exists(), "a submodule's link");
        assert!(!dst.join("gone").exists());
        assert_eq!(s.unchanged, 1);
        let again = mirror(&src, &dst, None).unwrap();
        assert_eq!((again.written, again.removed), (0, 0));
    }

    #[test]
    fn after_a_failed_publish_every_file_is_compared_again() {
        let t = tempfile::TempDir::new().unwrap();
        let (dest, state) = (t.path().join("dest"), t.path().join("state"));
        fs::create_dir_all(&state).unwrap();
        let tree = |name: &str, text: &str| {
            let dir = t.path().join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("page.html"), text).unwrap();
            dir
        };
        let hash = |n: u8| Hash::from_bytes(&[n; 20]).unwrap();
        let (a, b, c) = (hash(1), hash(2), hash(3));
        let mut p = DestPublisher::new(&dest, &state);
        p.publish(a, &tree("a", "A"), None).unwrap();
        assert_eq!(p.current(), Some(a));

        // B is mirrored, but its marker cannot be written.
        let marker = state.join("dest-published");
        fs::remove_file(&marker).unwrap();
        fs::create_dir_all(marker.join("in-the-way")).unwrap();
        let a_to_b = ChangedPaths {
            from: a,
            paths: vec!["page.html".into()],
        };
        assert!(p.publish(b, &tree("b", "B"), Some(&a_to_b)).is_err());
        assert_eq!(fs::read_to_string(dest.join("page.html")).unwrap(), "B");
        fs::remove_dir_all(&marker).unwrap();
        fs::write(&marker, format!("{a}\n")).unwrap();

        // C holds what A holds: nothing changed from A, but the directory
        // is not A's.
        let a_to_c = ChangedPaths {
            from: a,
            paths: vec![],
        };
        p.publish(c, &tree("c", "A"), Some(&a_to_c)).unwrap();
        assert_eq!(fs::read_to_string(dest.join("page.html")).unwrap(), "A");
        assert_eq!(p.current(), Some(c));
    }
}
