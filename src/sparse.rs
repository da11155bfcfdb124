//! Sparse checkout patterns, as git reads `.git/info/sparse-checkout`:
//! gitignore syntax (`!` negation, a trailing `/` for directories only, a
//! leading or inner `/` anchoring at the root, `*`, `?`, `[...]`, `**`), the
//! last pattern matching the path deciding, or else the last one matching
//! the nearest directory above it that any pattern matches. Cone-mode files (`/*`, `!/*/`, `/dir/`)
//! are a subset of that syntax with the same meaning, so both modes work.

/// One pattern line.
#[derive(Debug, Clone)]
struct Pattern {
    glob: String,
    negated: bool,
    dir_only: bool,
    /// Matched against the whole path, not only a name.
    anchored: bool,
}

/// A parsed sparse-checkout file.
#[derive(Debug, Clone, Default)]
pub struct SparsePatterns {
    patterns: Vec<Pattern>,
}

impl SparsePatterns {
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (negated, rest) = match line.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, line.strip_prefix('\\').unwrap_or(line)),
                };
                let dir_only = rest.ends_with('/');
                let rest = rest.trim_end_matches('/');
                let anchored = rest.contains('/');
                Pattern {
                    glob: rest.trim_start_matches('/').to_string(),
                    negated,
                    dir_only,
                    anchored,
                }
            })
            .collect();
        SparsePatterns { patterns }
    }

    /// Whether the file at `path` (slash-separated, relative) is checked out.
    pub fn includes(&self, path: &str) -> bool {
        self.includes_entry(path, false)
    }

    /// Whether the entry at `path` is checked out, `is_dir` saying whether
    /// it is matched as a directory (git matches a submodule so).
    ///
    /// As git decides: the path itself first, then each directory above
    /// it in turn, up to the first level some pattern matches, where the
    /// last pattern matching it decides; nothing matched, nothing checked
    /// out. So `*.md` then `!/docs/` keeps `docs/a.md` (its own name
    /// matches), and `!/docs/drafts/` then `/docs/` leaves the drafts out.
    pub fn includes_entry(&self, path: &str, is_dir: bool) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        for n in (1..=parts.len()).rev() {
            let is_dir = n < parts.len() || is_dir;
            let at = parts[..n].join("/");
            let last = self.patterns.iter().rev().find(|p| {
                (!p.dir_only || is_dir)
                    && if p.anchored {
                        glob_match(&p.glob, &at)
                    } else {
                        glob_match(&p.glob, parts[n - 1])
                    }
            });
            if let Some(p) = last {
                return !p.negated;
            }
        }
        false
    }
}

/// Match `text` against a glob where `*` and `?` stay within one path
/// component and `**` crosses components.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches(&g, &t)
}

fn matches(g: &[char], t: &[char]) -> bool {
    match g.first() {
        None => t.is_empty(),
        Some('*') if g.get(1) == Some(&'*') => {
            // `**/` matches zero or more directories; `**` alone anything.
            let rest = if g.get(2) == Some(&'/') {
                &g[3..]
            } else {
                &g[2..]
            };
            (0..=t.len())
                .any(|i| (i == 0 || t[i - 1] == '/' || rest.is_empty()) && matches(rest, &t[i..]))
        }
        Some('*') => (0..=t.len())
            .take_while(|&i| i == 0 || t[i - 1] != '/')
            .any(|i| matches(&g[1..], &t[i..])),
        Some('?') => t.first().is_some_and(|c| *c != '/') && matches(&g[1..], &t[1..]),
        Some('[') => {
            let Some(end) = g.iter().skip(1).position(|c| *c == ']').map(|p| p + 1) else {
                return t.first() == Some(&'[') && matches(&g[1..], &t[1..]);
            };
            let Some(c) = t.first() else { return false };
            let class = &g[1..end];
            let (negate, class) = match class.first() {
                Some('!') | Some('^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= *c && *c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == *c;
                    i += 1;
                }
            }
            hit != negate && *c != '/' && matches(&g[end + 1..], &t[1..])
        }
        Some('\\') if g.len() > 1 => t.first() == Some(&g[1]) && matches(&g[2..], &t[1..]),
        Some(c) => t.first() == Some(c) && matches(&g[1..], &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.md", "a.md"));
        assert!(!glob_match("*.md", "d/a.md"));
        assert!(glob_match("docs/**", "docs/a/b.md"));
        assert!(glob_match("**/b.md", "docs/a/b.md"));
        assert!(glob_match("**/b.md", "b.md"));
        assert!(glob_match("a/**/z", "a/z"));
        assert!(glob_match("a/**/z", "a/b/c/z"));
        assert!(glob_match("f[0-9].txt", "f7.txt"));
        assert!(!glob_match("f[!0-9].txt", "f7.txt"));
        assert!(glob_match("?.txt", "x.txt"));
    }

    #[test]
    fn non_cone_patterns() {
        let p = SparsePatterns::parse("# docs only\n/docs/\n!/docs/drafts/\n*.keep\n");
        assert!(p.includes("docs/a.md"));
        assert!(p.includes("docs/api/b.md"));
        assert!(!p.includes("docs/drafts/c.md"));
        assert!(p.includes("src/x.keep"));
        assert!(!p.includes("src/main.rs"));
        assert!(!p.includes("README.md"));
    }

    #[test]
    fn the_files_git_checks_out_are_the_files_included() {
        use crate::git::test_util::git;
        let t = tempfile::TempDir::new().unwrap();
        let src = t.path().join("src");
        let files = [
            "README.md",
            "a.md",
            "docs/a.md",
            "docs/b.txt",
            "docs/drafts/c.md",
            "docs/api/v1/d.md",
            "src/x.md",
            "src/main.rs",
            "src/docs/e.txt",
        ];
        for f in files {
            let p = src.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        git(t.path(), &["init", "-q", "-b", "main", "src"]);
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-qm", "c"]);
        let pattern_files = [
            "*.md\n!/docs/\n",
            "!/docs/drafts/\n/docs/\n",
            "/docs/\n!*.md\n",
            "/*\n!/docs/\n/docs/drafts/\n",
            "docs/\n!drafts/\n",
            "/*\n!/*/\n/docs/\n!/docs/*/\n/docs/api/\n",
            "**/docs/**\n!*.txt\n",
            "src\n!src/*.rs\n",
            "/a.md\n",
            "/docs/*\n",
            "docs/*/\n",
            "*.t?t\n/src/[m]*\n",
            "!*.md\n/*\n",
            "docs/api/**\n/*.md\n",
            "/docs/**/*.md\n",
            "v1/\n!docs/\n",
        ];
        for (i, patterns) in pattern_files.iter().enumerate() {
            let name = format!("clone{i}");
            let clone = t.path().join(&name);
            git(t.path(), &["clone", "-q", "--no-checkout", "src", &name]);
            git(&clone, &["sparse-checkout", "init", "--no-cone"]);
            std::fs::write(clone.join(".git/info/sparse-checkout"), patterns).unwrap();
            git(&clone, &["checkout", "-q", "main"]);
            let theirs: Vec<&str> = files
                .iter()
                .copied()
                .filter(|f| clone.join(f).exists())
                .collect();
            let p = SparsePatterns::parse(patterns);
            let ours: Vec<&str> = files.iter().copied().filter(|f| p.includes(f)).collect();
            assert_eq!(ours, theirs, "{patterns:?}");
        }
    }

    #[test]
    fn cone_patterns() {
        let p = SparsePatterns::parse("/*\n!/*/\n/docs/\n!/docs/*/\n/docs/api/\n");
        assert!(p.includes("README.md"));
        assert!(p.includes("docs/index.md"));
        assert!(p.includes("docs/api/x.md"));
        assert!(!p.includes("docs/guide/y.md"));
        assert!(!p.includes("src/main.rs"));
        // A submodule is matched as a directory, as git matches it.
        assert!(!p.includes_entry("vendored", true));
        assert!(p.includes_entry("docs/api/vendored", true));
        assert!(!p.includes_entry("docs/vendored", true));
    }
}
