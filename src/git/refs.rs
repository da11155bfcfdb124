//! Which of a repository's refs `--ref` names, as `git ls-remote <repo>
//! <ref>` (upstream's lookup) matches it.

/// Why no single ref was picked.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRef {
    /// None is named so. For a misspelt name, the names near it (see
    /// [`near`]); for a missing `HEAD`, some of the branches there are.
    Missing(Vec<String>),
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
            Err(NoRef::Missing(near(git_ref, &all())))
        };
    }
    let (tag, branch) = (
        format!("refs/tags/{git_ref}"),
        format!("refs/heads/{git_ref}"),
    );
    if exists(&tag) {
        if exists(&branch) {
            warn_tag_over_branch_once(git_ref);
        }
        return Ok(tag);
    }
    if exists(&branch) {
        return Ok(branch);
    }
    let all = all();
    let suffix = format!("/{git_ref}");
    let mut found: Vec<String> = all
        .iter()
        .filter(|n| n.starts_with("refs/") && n.ends_with(&suffix))
        .cloned()
        .collect();
    found.sort();
    found.dedup();
    match found.len() {
        0 => Err(NoRef::Missing(near(git_ref, &all))),
        1 => Ok(found.remove(0)),
        _ => Err(NoRef::Ambiguous(found)),
    }
}

/// Says, once a process, that `git_ref` names both a tag and a branch and
/// the tag is synced (as `git` and upstream pick it; `git` warns too): a
/// tag made later with a branch's name would otherwise change silently
/// what a daemon publishes.
fn warn_tag_over_branch_once(git_ref: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            git_ref,
            tag = %format!("refs/tags/{git_ref}"),
            branch = %format!("refs/heads/{git_ref}"),
            "the ref names both a tag and a branch: syncing the tag, as git does; give the full name (refs/heads/...) to sync the branch"
        );
    }
}

/// At most this many names are offered in a "did you mean".
const OFFERED: usize = 3;

/// What to offer for a `git_ref` that names nothing in `all`: for `HEAD`
/// (the remote's HEAD names no branch), some of its branches (`main`,
/// `master`, `trunk`, `develop` first); else the
/// branches and tags whose names are a typo away from it (a letter
/// missed, added, changed or two swapped, ignoring case; more letters in a
/// longer name), nearest first, and `main` for `master` and the other way
/// round. A short name is offered short, a full one (`refs/...`) full.
pub fn near(git_ref: &str, all: &[String]) -> Vec<String> {
    let short = |n: &str| {
        n.strip_prefix("refs/heads/")
            .or_else(|| n.strip_prefix("refs/tags/"))
            .map(str::to_string)
    };
    let mut named: Vec<String> = if git_ref == "HEAD" {
        let mut branches: Vec<String> = all
            .iter()
            .filter_map(|n| n.strip_prefix("refs/heads/").map(str::to_string))
            .collect();
        // The names default branches usually have first, then the others
        // in order.
        let usual = |b: &String| {
            ["main", "master", "trunk", "develop"]
                .iter()
                .position(|u| u == b)
                .unwrap_or(usize::MAX)
        };
        branches.sort_by(|a, b| usual(a).cmp(&usual(b)).then_with(|| a.cmp(b)));
        branches
    } else {
        let full = git_ref.starts_with("refs/");
        let mut scored: Vec<(usize, String)> = all
            .iter()
            .filter(|n| !n.ends_with("^{}"))
            .filter_map(|n| if full { Some(n.clone()) } else { short(n) })
            .filter_map(|n| typos(git_ref, &n).map(|d| (d, n)))
            .collect();
        scored.sort();
        scored.into_iter().map(|(_, n)| n).collect()
    };
    named.dedup();
    named.truncate(OFFERED);
    named
}

/// How many typos make `given` of `name`, if few enough to be a typo of
/// it: the edits (a letter inserted, deleted, changed, or two neighbours
/// swapped) between them, case aside; 1 allowed up to 5 letters, 2 up to
/// 11, then 3 (letters of the name's part after `refs/heads/` and the
/// like). `master` and `main`, each named for the other, count 1.
fn typos(given: &str, name: &str) -> Option<usize> {
    let (base_given, base_name) = (last_part(given), last_part(name));
    let (head_given, head_name) = (
        &given[..given.len() - base_given.len()],
        &name[..name.len() - base_name.len()],
    );
    if head_given == head_name
        && matches!(
            (base_given, base_name),
            ("master", "main") | ("main", "master")
        )
    {
        return Some(1);
    }
    let (a, b): (Vec<char>, Vec<char>) = (
        given.to_lowercase().chars().collect(),
        name.to_lowercase().chars().collect(),
    );
    // (Of a full name, the part after `refs/heads/` and the like counts.)
    let counted = ["refs/heads/", "refs/tags/", "refs/"]
        .iter()
        .find_map(|p| given.strip_prefix(p))
        .unwrap_or(given);
    let allowed = match counted.chars().count() {
        0..=5 => 1,
        6..=11 => 2,
        _ => 3,
    };
    if a.len().abs_diff(b.len()) > allowed {
        return None;
    }
    // Optimal string alignment distance, row by row (two rows back for
    // a swap).
    let mut before: Vec<usize> = Vec::new();
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let change = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + change);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    let edits = last[b.len()];
    (edits <= allowed).then_some(edits)
}

/// The part of a ref name after its last `/`.
fn last_part(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
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
        assert_eq!(pick("nope", &refs), Err(NoRef::Missing(vec![])));
        assert_eq!(pick("refs/heads/nope", &refs), Err(NoRef::Missing(vec![])));
        assert_eq!(
            pick("ain", &refs),
            Err(NoRef::Missing(vec!["main".into()])),
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

    #[test]
    fn a_misspelt_name_is_offered_the_names_near_it() {
        let refs: Vec<String> = [
            "HEAD",
            "refs/heads/main",
            "refs/heads/develop",
            "refs/heads/release/1.2",
            "refs/heads/Feature-X",
            "refs/tags/v1.2.3",
            "refs/tags/v1.2.3^{}",
            "refs/pull/7/head",
        ]
        .map(String::from)
        .to_vec();
        let near = |given: &str| near(given, &refs);
        assert_eq!(near("mian"), ["main"], "two letters swapped");
        assert_eq!(near("MAIN"), ["main"], "case");
        assert_eq!(near("devlop"), ["develop"], "a letter missed");
        assert_eq!(near("master"), ["main"]);
        assert_eq!(near("relase/1.2"), ["release/1.2"]);
        assert_eq!(near("feature-x"), ["Feature-X"]);
        assert_eq!(near("v1.2.4"), ["v1.2.3"], "a tag, once, unpeeled");
        assert_eq!(
            near("refs/heads/mian"),
            ["refs/heads/main"],
            "full stays full"
        );
        assert_eq!(near("refs/heads/master"), ["refs/heads/main"]);
        assert!(near("refs/tags/master").is_empty(), "main is a branch");
        assert!(near("production").is_empty(), "nothing near");
        assert!(near("dev").is_empty(), "a short name takes one typo");
        assert!(near("pull/7/hed").is_empty(), "branches and tags only");
        // A HEAD that names no branch: the branches there are.
        assert_eq!(near("HEAD"), ["main", "develop", "Feature-X"]);
        // Nearest first, at most three.
        let many: Vec<String> = ["mister", "mastery", "master", "maste"]
            .map(|b| format!("refs/heads/{b}"))
            .to_vec();
        assert_eq!(super::near("mastre", &many), ["maste", "master", "mastery"]);
    }
}
