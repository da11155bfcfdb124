//! Which of a repository's refs `--ref` names, as `git ls-remote <repo>
//! <ref>` (upstream's lookup) matches it.

/// Why no single ref was picked.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRef {
    Missing,
    /// Several refs end in `/<ref>`; the full names, sorted.
    Ambiguous(Vec<String>),
}

/// The full name of the ref `git_ref` names. `HEAD` and full names
/// (`refs/...`) stand for themselves; a short name is a tag, else a branch
/// (upstream's order: `ls-remote` prints tags last and upstream takes the
/// last line); else the one ref ending in `/<git_ref>`, as `ls-remote`
/// matches: `pull/123/head` is GitHub's `refs/pull/123/head`,
/// `heads/main` is `refs/heads/main`. Several such refs are an error
/// rather than a guess.
///
/// `exists` answers for one name; `all` lists every ref, and is only
/// called when the first answers were no.
pub fn pick_ref(
    git_ref: &str,
    exists: impl Fn(&str) -> bool,
    all: impl FnOnce() -> Vec<String>,
) -> Result<String, NoRef> {
    if git_ref == "HEAD" || git_ref.starts_with("refs/") {
        return if exists(git_ref) {
            Ok(git_ref.to_string())
        } else {
            Err(NoRef::Missing)
        };
    }
    for name in [
        format!("refs/tags/{git_ref}"),
        format!("refs/heads/{git_ref}"),
    ] {
        if exists(&name) {
            return Ok(name);
        }
    }
    let suffix = format!("/{git_ref}");
    let mut found: Vec<String> = all()
        .into_iter()
        .filter(|n| n.starts_with("refs/") && n.ends_with(&suffix))
        .collect();
    found.sort();
    found.dedup();
    match found.len() {
        0 => Err(NoRef::Missing),
        1 => Ok(found.remove(0)),
        _ => Err(NoRef::Ambiguous(found)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(git_ref: &str, refs: &[&str]) -> Result<String, NoRef> {
        pick_ref(
            git_ref,
            |n| refs.contains(&n),
            || refs.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn names_resolve_as_ls_remote_matches_them() {
        let refs = [
            "HEAD",
            "refs/heads/main",
            "refs/heads/both",
            "refs/tags/both",
            "refs/tags/v1",
            "refs/tags/v1^{}",
            "refs/pull/12/head",
            "refs/pull/13/head",
            "refs/merge-requests/7/head",
        ];
        for (given, want) in [
            ("HEAD", "HEAD"),
            ("main", "refs/heads/main"),
            ("both", "refs/tags/both"),
            ("v1", "refs/tags/v1"),
            ("refs/heads/main", "refs/heads/main"),
            ("heads/main", "refs/heads/main"),
            ("tags/v1", "refs/tags/v1"),
            ("pull/12/head", "refs/pull/12/head"),
            ("merge-requests/7/head", "refs/merge-requests/7/head"),
        ] {
            assert_eq!(pick(given, &refs).as_deref(), Ok(want), "{given}");
        }
        assert_eq!(pick("nope", &refs), Err(NoRef::Missing));
        assert_eq!(pick("refs/heads/nope", &refs), Err(NoRef::Missing));
        assert_eq!(
            pick("ain", &refs),
            Err(NoRef::Missing),
            "whole components only"
        );
        assert_eq!(
            pick("head", &refs),
            Err(NoRef::Ambiguous(vec![
                "refs/merge-requests/7/head".into(),
                "refs/pull/12/head".into(),
                "refs/pull/13/head".into(),
            ]))
        );
    }

    #[test]
    fn the_full_list_is_not_read_when_a_tag_or_branch_matches() {
        let listed = std::cell::Cell::new(false);
        let got = pick_ref(
            "main",
            |n| n == "refs/heads/main",
            || {
                listed.set(true);
                Vec::new()
            },
        );
        assert_eq!(got.as_deref(), Ok("refs/heads/main"));
        assert!(!listed.get());
    }
}
