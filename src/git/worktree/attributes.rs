//! Whether a checkout may write a file otherwise than as its blob.
//!
//! git and libgit2 change a file's content on checkout only through their
//! filters, and libgit2 has two (no external filter drivers: a file under
//! `filter=lfs` is written as its pointer blob, as by git without git-lfs):
//! - line endings, converted to CRLF only where the output end of line is
//!   CRLF: the `eol=crlf` attribute, or `core.eol=crlf` / `core.autocrlf`
//!   in the config (`text`, `text=auto`, `eol=lf` leave a blob as it is on
//!   Linux, where the native end of line is LF);
//! - `ident`, which expands `$Id$`.
//!
//! When none can apply, the blob is the file and the tree is written
//! without libgit2's checkout (`plain.rs`), which spends a third of its
//! time loading filter lists otherwise.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The attribute files libgit2 reads beside a repository's own: the
/// system's (`<system config dir>/gitattributes`) and the user's
/// (`<XDG config dir>/attributes`), found once at start.
static GLOBAL_FILES: OnceLock<Vec<PathBuf>> = OnceLock::new();

/// Find the global attribute files' paths.
///
/// # Safety
/// As `git2::opts::get_search_path`: no other thread may use libgit2 (call
/// it from `init_globals`).
pub(crate) unsafe fn find_global_files() {
    use git2::ConfigLevel;
    let mut files = Vec::new();
    for (level, name) in [
        (ConfigLevel::System, "gitattributes"),
        (ConfigLevel::XDG, "attributes"),
    ] {
        // SAFETY: as this function's contract says.
        if let Ok(dirs) = unsafe { git2::opts::get_search_path(level) } {
            let dirs = dirs.to_string_lossy().into_owned();
            let dirs = std::env::split_paths(&dirs).filter(|d| d.is_absolute());
            files.extend(dirs.map(|d| d.join(name)));
        }
    }
    tracing::debug!(?files, "attribute files beside the repositories'");
    let _ = GLOBAL_FILES.set(files);
}

/// Whether the repository itself may make checkout convert content: it
/// has attributes beside its trees' (its own `info/attributes`, a
/// `core.attributesFile`, the system's or the user's) or converts line
/// endings in its config.
pub(super) fn repository_filters(repo: &git2::Repository) -> bool {
    if repo.commondir().join("info/attributes").exists()
        || GLOBAL_FILES
            .get()
            .is_some_and(|f| f.iter().any(|p| p.exists()))
    {
        return true;
    }
    let Ok(cfg) = repo.config() else { return true };
    // As libgit2 reads it: `input`, or a boolean in any of git's words.
    let autocrlf = cfg.get_string("core.autocrlf").unwrap_or_default();
    autocrlf.eq_ignore_ascii_case("input")
        || crate::config::values::parse_git_bool(&autocrlf) == Some(true)
        || cfg.get_string("core.eol").is_ok()
        || cfg.get_path("core.attributesFile").is_ok()
}

/// The `.gitattributes` files of `commit`'s tree (path and blob), which
/// decide with [`repository_filters`] whether checkout may convert content.
/// Trees in `clean` are not entered: a survey found none below them (see
/// `tree_path.rs`). `None` when the tree cannot be read.
pub(in crate::git) fn attribute_files(
    commit: &git2::Commit<'_>,
    clean: &HashSet<git2::Oid>,
) -> Option<Vec<(String, git2::Oid)>> {
    let tree = commit.tree().ok()?;
    let mut found = Vec::new();
    let walked = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if clean.contains(&entry.id()) && entry.kind() == Some(git2::ObjectType::Tree) {
            return git2::TreeWalkResult::Skip;
        }
        if entry.name_bytes() == b".gitattributes" {
            found.push((dir.to_string(), entry.id()));
        }
        git2::TreeWalkResult::Ok
    });
    walked.ok().map(|()| found)
}

/// Whether the attribute `files` (as [`attribute_files`] lists them) may
/// set a converting attribute on some path: any mention of `eol=crlf` or
/// `ident`, wherever it is (a macro, a comment: on doubt, yes). A file
/// that cannot be read counts as one that does.
pub(super) fn may_convert(repo: &git2::Repository, files: &[(String, git2::Oid)]) -> bool {
    files.iter().any(|(_, id)| {
        repo.find_blob(*id)
            .map_or(true, |blob| mentions_converting(blob.content()))
    })
}

/// Whether the attribute `files` mention `working-tree-encoding`, which
/// git applies on checkout (a UTF-8 blob written as UTF-16, say) and
/// libgit2 does not: such files are published as stored.
pub(super) fn asks_for_encoding(repo: &git2::Repository, files: &[(String, git2::Oid)]) -> bool {
    files.iter().any(|(_, id)| {
        repo.find_blob(*id).is_ok_and(|blob| {
            any_token(blob.content(), |t| t.starts_with(b"working-tree-encoding="))
        })
    })
}

/// Whether an attribute file's `text` may put some path under
/// `filter=lfs` (a mention anywhere: on doubt, yes).
pub(in crate::git) fn mentions_lfs(text: &[u8]) -> bool {
    any_token(text, |t| t == b"filter=lfs")
}

fn mentions_converting(text: &[u8]) -> bool {
    any_token(text, |t| {
        t == b"eol=crlf" || t == b"ident" || t.starts_with(b"ident=")
    })
}

/// Whether a whitespace-separated token of `text`, lowercased, is one `wanted`.
fn any_token(text: &[u8], wanted: impl Fn(&[u8]) -> bool) -> bool {
    text.split(|b| b.is_ascii_whitespace())
        .any(|token| wanted(&token.to_ascii_lowercase()))
}

/// Whether an attribute of `path` in the worktree `wt` may make checkout
/// write it otherwise than its blob (line endings, `ident`, a filter
/// driver, an encoding); on doubt, yes.
pub(super) fn may_filter(wt: &git2::Repository, path: &[u8]) -> bool {
    const FILTERING: [&str; 6] = [
        "text",
        "eol",
        "crlf",
        "ident",
        "filter",
        "working-tree-encoding",
    ];
    let path = Path::new(std::ffi::OsStr::from_bytes(path));
    FILTERING.iter().any(|attr| {
        match wt.get_attr(path, attr, git2::AttrCheckFlags::FILE_THEN_INDEX) {
            Ok(value) => !matches!(
                git2::AttrValue::from_string(value),
                git2::AttrValue::Unspecified | git2::AttrValue::False
            ),
            Err(_) => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_crlf_output_and_ident_convert() {
        let converting = [
            "*.txt text eol=crlf\n",
            "*.bat eol=CRLF\n",
            "*.c ident\n",
            "[attr]windows text eol=crlf\n*.cmd windows\n",
            "# eol=crlf once, now a comment\n",
        ];
        for text in converting {
            assert!(mentions_converting(text.as_bytes()), "{text}");
        }
        let plain = [
            "* text=auto\n",
            "*.sh text eol=lf\n*.png binary\n",
            "*.bin filter=lfs diff=lfs merge=lfs -text\n",
            "docs/** linguist-documentation export-ignore\n*.c -ident !eol\n",
            "identity.txt diff\n",
            "",
        ];
        for text in plain {
            assert!(!mentions_converting(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn core_autocrlf_converts_in_any_of_gits_words() {
        let t = tempfile::TempDir::new().unwrap();
        let repo = git2::Repository::init_bare(t.path()).unwrap();
        let mut cfg = repo.config().unwrap();
        for (value, converts) in [
            ("yes", true),
            ("On", true),
            ("input", true),
            ("false", false),
        ] {
            cfg.set_str("core.autocrlf", value).unwrap();
            assert_eq!(repository_filters(&repo), converts, "{value}");
        }
    }
}
