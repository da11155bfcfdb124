//! The `lfs.*` settings git-lfs reads for a commit: each from the git
//! config, else from the commit's `.lfsconfig` (a file of git's config
//! syntax at the top of the tree): where the LFS server is (`lfs.url`,
//! `remote.origin.lfsurl`), and which LFS files get their content
//! (`lfs.fetchinclude`, `lfs.fetchexclude`: comma-separated paths, matched
//! as gitignore(5) patterns; a file left out stays its pointer, as
//! git-lfs's smudge filter leaves it), and whether an object that cannot
//! be downloaded leaves its file a pointer rather than failing the pass
//! (`lfs.skipdownloaderrors`; git-sync's configuration turns git-lfs's
//! `GIT_LFS_SKIP_DOWNLOAD_ERRORS` into it).

use std::fs;
use std::path::Path;

use crate::sparse::SparsePatterns;

const URL_KEYS: [&str; 2] = ["lfs.url", "remote.origin.lfsurl"];
const INCLUDE: &str = "lfs.fetchinclude";
const EXCLUDE: &str = "lfs.fetchexclude";
const SKIP_ERRORS: &str = "lfs.skipdownloaderrors";

/// What git-lfs would read for one commit.
pub(super) struct LfsSettings {
    /// The LFS server named by configuration, if any.
    pub url: Option<String>,
    include: Option<SparsePatterns>,
    exclude: Option<SparsePatterns>,
    /// A file whose object cannot be had stays its pointer.
    pub skip_download_errors: bool,
}

impl LfsSettings {
    /// The settings of `repo`'s config, else of `commit`'s `.lfsconfig`
    /// (read through `scratch`, a file name of our own: libgit2 parses
    /// config files only).
    pub fn read(repo: &git2::Repository, commit: &git2::Commit<'_>, scratch: &Path) -> Self {
        let own = repo.config().ok();
        let committed = committed_config(repo, commit, scratch);
        let get = |keys: &[&str]| {
            [own.as_ref(), committed.as_ref()]
                .into_iter()
                .flatten()
                .find_map(|cfg| keys.iter().find_map(|k| cfg.get_string(k).ok()))
        };
        let skip_download_errors = [own.as_ref(), committed.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|cfg| cfg.get_bool(SKIP_ERRORS).ok())
            .unwrap_or(false);
        LfsSettings {
            url: get(&URL_KEYS),
            include: get(&[INCLUDE]).and_then(|v| patterns(&v)),
            exclude: get(&[EXCLUDE]).and_then(|v| patterns(&v)),
            skip_download_errors,
        }
    }

    /// Whether the LFS file at `path` (relative, `/`-separated) gets its
    /// content: it matches `lfs.fetchinclude`, when set, and not
    /// `lfs.fetchexclude`.
    pub fn fetches(&self, path: &str) -> bool {
        self.include.as_ref().map_or(true, |p| p.includes(path))
            && !self.exclude.as_ref().is_some_and(|p| p.includes(path))
    }
}

/// The fetch filter `repo`'s own config sets, as text (empty without
/// one): part of how a worktree is made, so a restart that changes it
/// checks the published commit out again.
pub(super) fn configured_filter(repo: &git2::Repository) -> String {
    let Ok(cfg) = repo.config() else {
        return String::new();
    };
    [INCLUDE, EXCLUDE]
        .iter()
        .filter_map(|k| cfg.get_string(k).ok().map(|v| format!("{k}={v}\n")))
        .collect()
}

/// The commit's `.lfsconfig`, if it has one git's config parser reads.
fn committed_config(
    repo: &git2::Repository,
    commit: &git2::Commit<'_>,
    scratch: &Path,
) -> Option<git2::Config> {
    let tree = commit.tree().ok()?;
    let blob = tree
        .get_name(".lfsconfig")?
        .to_object(repo)
        .ok()?
        .peel_to_blob()
        .ok()?;
    fs::create_dir_all(scratch.parent()?).ok()?;
    fs::write(scratch, blob.content()).ok()?;
    // A snapshot holds the values once the file is gone.
    let cfg = git2::Config::open(scratch).and_then(|mut c| c.snapshot());
    let _ = fs::remove_file(scratch);
    cfg.ok()
}

/// A comma-separated list of paths as gitignore patterns, each taken
/// literally at its start (no `!` negation, no `#` comment); `None` for
/// an empty list, which sets nothing (as in git-lfs).
fn patterns(list: &str) -> Option<SparsePatterns> {
    let lines: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("\\{p}"))
        .collect();
    (!lines.is_empty()).then(|| SparsePatterns::parse(&lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(include: Option<&str>, exclude: Option<&str>) -> LfsSettings {
        LfsSettings {
            url: None,
            include: include.and_then(patterns),
            exclude: exclude.and_then(patterns),
            skip_download_errors: false,
        }
    }

    #[test]
    fn include_and_exclude_lists_match_as_gitignore_patterns() {
        let all = settings(None, None);
        assert!(all.fetches("a/b.bin"));
        let s = settings(Some("textures, images/foo*"), None);
        assert!(s.fetches("textures/a.bin"));
        assert!(s.fetches("deep/textures/a.bin"));
        assert!(s.fetches("images/foo1.png"));
        assert!(!s.fetches("deep/images/foo1.png"));
        assert!(!s.fetches("images/bar.png"));
        let s = settings(None, Some("*.psd,media/big/"));
        assert!(!s.fetches("art/cover.psd"));
        assert!(!s.fetches("media/big/movie.bin"));
        assert!(s.fetches("media/small.bin"));
        let s = settings(Some("media"), Some("*.psd"));
        assert!(s.fetches("media/a.bin"));
        assert!(!s.fetches("media/a.psd"));
        assert!(!s.fetches("other.bin"));
        // Empty lists set nothing; a leading `!` or `#` is a name.
        assert!(settings(Some(" , "), Some("")).fetches("x.bin"));
        let s = settings(Some("!x.bin,#y.bin"), None);
        assert!(s.fetches("!x.bin") && s.fetches("#y.bin") && !s.fetches("x.bin"));
    }
}
