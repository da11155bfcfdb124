//! The git config git-sync was given lives in a file of its own,
//! `.git/git-sync.config`, included from the repository's config and
//! written whole at every start: a key dropped from `--git-config` is gone
//! after a restart, as it is upstream (which writes a throw-away global
//! config).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::GitError;

/// The file's name, relative to the git directory (as `include.path`
/// resolves it).
pub const FILE: &str = "git-sync.config";

/// The file's permissions: read and written by its owner only.
const MODE: u32 = 0o600;

/// Whether the file at `path` is closed to the group and others (an
/// earlier version wrote it group-readable).
fn private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

/// Make `gitdir`'s config hold exactly `entries` (in order; a key may
/// repeat) through [`FILE`]. Unchanged content is not written again.
pub fn install(
    repo: &git2::Repository,
    gitdir: &Path,
    entries: &[(String, String)],
) -> Result<(), GitError> {
    let path = gitdir.join(FILE);
    let text = render(entries);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) || !private(&path) {
        let tmp = gitdir.join(format!("{FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        // Ours alone: values may be tokens (an Authorization extraHeader),
        // and in a Pod the web server shares the volume's group (fsGroup).
        // A container restarted under another UID cannot read it, drops it
        // and writes its own (see [`forget_if_unreadable`]).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| GitError::Local {
                op: format!("write {}", path.display()),
                message: e.to_string(),
            })?;
    }
    let mut local = repo
        .config()
        .and_then(|c| c.open_level(git2::ConfigLevel::Local))
        .map_err(|e| GitError::local("open repository config", e))?;
    let mut included = false;
    if let Ok(mut values) = local.multivar("include.path", None) {
        while let Some(Ok(v)) = values.next() {
            included |= v.value().ok() == Some(FILE);
        }
    }
    if !included {
        // A regex no value matches: add the value.
        local
            .set_multivar("include.path", "^$^", FILE)
            .map_err(|e| GitError::local("include git-sync.config", e))?;
    }
    Ok(())
}

/// Before the repository at `gitdir` is opened: libgit2 refuses to open
/// a repository whose config includes a file it may not read, and a root
/// taken over by another user (of another group) holds the previous
/// user's file. It is written again at every start anyway: drop it.
pub fn forget_if_unreadable(gitdir: &Path) {
    let path = gitdir.join(FILE);
    if let Err(e) = std::fs::File::open(&path) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            tracing::info!(file = %path.display(), "cannot read the previous user's git config file; writing it again");
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A git config file holding `entries`, every value quoted. Keys were
/// checked when the configuration was read: section and name are letters,
/// digits and `-`, a subsection has no newline.
fn render(entries: &[(String, String)]) -> String {
    let mut out = String::from("# Written by git-sync at every start; edits are lost.\n");
    for (key, value) in entries {
        let (section, rest) = key.split_once('.').unwrap_or((key, ""));
        let header = match rest.rsplit_once('.') {
            Some((sub, _)) => format!("[{section} \"{}\"]", escape(sub, false)),
            None => format!("[{section}]"),
        };
        let name = rest.rsplit_once('.').map_or(rest, |(_, n)| n);
        out.push_str(&format!(
            "{header}\n\t{name} = \"{}\"\n",
            escape(value, true)
        ));
    }
    out
}

fn escape(s: &str, value: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' if value => out.push_str("\\n"),
            '\t' if value => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn libgit2_reads_back_what_was_written_and_a_rewrite_drops_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let gitdir = dir.path().join(".git");
        let tricky = "a \"quoted\" \\ value\twith\nlines; # not a comment";
        install(
            &repo,
            &gitdir,
            &entries(&[
                ("http.https://h.example/a\"b\\c.extraHeader", "X: 1"),
                ("http.extraHeader", "A: 1"),
                ("http.extraHeader", "B: 2"),
                ("sect.key", tricky),
            ]),
        )
        .unwrap();
        let cfg = git2::Repository::open(dir.path())
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(cfg.get_string("sect.key").unwrap(), tricky);
        let mut headers = Vec::new();
        let mut it = cfg.multivar("http.extraheader", None).unwrap();
        while let Some(e) = it.next() {
            headers.push(e.unwrap().value().unwrap().to_string());
        }
        assert_eq!(headers, ["A: 1", "B: 2"]);
        assert_eq!(
            cfg.get_string("http.https://h.example/a\"b\\c.extraHeader")
                .unwrap(),
            "X: 1"
        );

        install(&repo, &gitdir, &entries(&[("sect.other", "v")])).unwrap();
        let cfg = git2::Repository::open(dir.path())
            .unwrap()
            .config()
            .unwrap();
        assert!(
            cfg.get_string("sect.key").is_err(),
            "a key no longer given is gone"
        );
        assert!(cfg.get_string("http.extraheader").is_err());
        assert_eq!(cfg.get_string("sect.other").unwrap(), "v");
        let local = std::fs::read_to_string(gitdir.join("config")).unwrap();
        assert_eq!(local.matches(FILE).count(), 1, "included once: {local}");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&gitdir.join(FILE)), 0o600);

        // A file an earlier version left group-readable is closed, even
        // when what it holds stays the same.
        let same = entries(&[("sect.other", "v")]);
        std::fs::set_permissions(gitdir.join(FILE), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        install(&repo, &gitdir, &same).unwrap();
        assert_eq!(mode(&gitdir.join(FILE)), 0o600);
    }
}
