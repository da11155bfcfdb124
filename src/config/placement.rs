//! Where things go on disk: the root, the link (or dest mode's served
//! directory and private state), all made absolute and free of symlinks
//! the way upstream resolves them.

use std::path::{Path, PathBuf};

use super::{invalid, ConfigError, Sources};

/// Where things go on disk.
pub(super) struct Placement {
    pub root: PathBuf,
    pub link: PathBuf,
    pub dest: Option<PathBuf>,
}

/// Link mode (`--root`, `--link` or v3's `--dest` as the link name), or dest
/// mode (`--dest` without any root: the 2015 git-sync's contract).
pub(super) fn placement(
    src: &Sources<'_>,
    repo: &str,
    cwd: &Path,
) -> Result<Placement, ConfigError> {
    let dest = src.text("dest")?;
    let Some(root_text) = src.text("root")? else {
        let Some(dest) = dest else {
            return Err(ConfigError::Missing("root"));
        };
        return dest_mode(src, absolute(cwd, Path::new(&dest)), cwd);
    };
    let root = without_symlinks(&absolute(cwd, Path::new(&root_text)));
    // And the name of the flag it came from, for errors.
    let (link_text, named) = match (src.text("link")?, dest) {
        (Some(link), Some(dest)) => {
            if link != dest {
                src.old_name_won("dest", &dest, "link", &link);
            }
            (dest, "dest")
        }
        (Some(l), None) => (l, "link"),
        (None, Some(d)) => (d, "dest"),
        (None, None) => default_link_name(repo)
            .or_else(|| local_directory_name(repo, cwd))
            .map(|l| (l, "link"))
            .ok_or_else(|| {
                invalid(
                    "link",
                    format!(
                        "cannot derive a name from --repo {:?}; set --link",
                        crate::redact::redact(repo)
                    ),
                )
            })?,
    };
    // As upstream: names like `.git` or `.worktrees` are ours.
    let hidden = Path::new(&link_text)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    if hidden {
        return Err(src.out_of_range(named, "must not start with '.'"));
    }
    let link = absolute(&root, Path::new(&link_text));
    // Its directory resolved like the root (not the link itself: it is
    // ours), so that a link named through a symlink to the root is known
    // as inside it.
    let link = match (link.parent(), link.file_name()) {
        (Some(dir), Some(name)) => without_symlinks(dir).join(name),
        _ => link,
    };
    if link == root || root.starts_with(&link) {
        // The 2015 manifest (GIT_SYNC_DEST=/git) in an image that sets
        // GITSYNC_ROOT=/git, as upstream's does: upstream refuses a link
        // that is the root; the old name means the directory to serve.
        if named == "dest" {
            return dest_mode(src, link, cwd);
        }
        return Err(src.out_of_range(named, "must not be --root or one of its parents"));
    }
    // Below a hidden directory of the root (`.worktrees/x`): the cleanup
    // removes what it does not know there, the link with it, at every pass.
    if link.strip_prefix(&root).is_ok_and(|inside| {
        inside
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    }) {
        return Err(src.out_of_range(
            named,
            "must not be inside a directory of --root whose name starts with '.' \
             (.git and .worktrees are git-sync's)",
        ));
    }
    Ok(Placement {
        root,
        link,
        dest: None,
    })
}

/// Dest mode: `dest` is the directory served; the git state lives in a
/// private directory outside it.
fn dest_mode(src: &Sources<'_>, dest: PathBuf, cwd: &Path) -> Result<Placement, ConfigError> {
    let state = match src.text("state-dir")? {
        Some(s) => absolute(cwd, Path::new(&s)),
        None => {
            let name = dest.to_string_lossy().trim_matches('/').replace('/', "_");
            std::env::temp_dir()
                .join("git-sync")
                .join(if name.is_empty() { "root".into() } else { name })
        }
    };
    if state.starts_with(&dest) || dest.starts_with(&state) {
        return Err(invalid(
            "state-dir",
            "must be outside the served --dest directory (and not contain it)",
        ));
    }
    Ok(Placement {
        link: state.join("current"),
        root: state,
        dest: Some(dest),
    })
}

/// `base/p` unless `p` is absolute; `.` and `..` resolved lexically.
pub(super) fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = base.join(p);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` with the symlinks of its longest existing prefix resolved, as
/// upstream resolves `--root`: a root reached through a symlink (even one
/// that lives inside the root, and would go when a root that is not ours is
/// emptied) is the real directory, and paths relative to it stay valid.
/// Falls back to `path` as given when the prefix cannot be resolved.
fn without_symlinks(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The last `/`-separated element of a repository URL, exactly as
/// upstream names the link: `https://host/org/site.git` gives `site.git`
/// (a Deployment written for upstream serves that name). A name starting
/// with `.` is refused, as upstream refuses it.
pub(super) fn default_link_name(repo: &str) -> Option<String> {
    let last = repo.trim_matches('/').rsplit('/').next()?;
    (!last.is_empty() && !last.starts_with('.')).then(|| last.to_string())
}

/// For a local repository that names no link itself (`.`, `..`, `../..`,
/// `file:///src/site/.git`), the name of the directory it leads to, or of
/// the working tree whose `.git` it is: `git-sync --repo=.` in a clone of
/// `site` links `site`, where upstream refuses to start (and upstream's
/// link `.git` for a repository's `.git` would be its own store).
pub(super) fn local_directory_name(repo: &str, cwd: &Path) -> Option<String> {
    let path = match repo.strip_prefix("file://") {
        Some(path) if path.starts_with('/') => path,
        Some(_) => return None,
        None if repo.contains("://") => return None,
        None => repo,
    };
    let dir = std::fs::canonicalize(absolute(cwd, Path::new(path))).ok()?;
    let dir = match dir.file_name()? {
        name if name == ".git" => dir.parent()?,
        _ => &dir,
    };
    default_link_name(dir.file_name()?.to_str()?)
}
