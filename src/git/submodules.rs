//! Submodules: each gitlink of a checked-out commit is fetched at its
//! recorded commit (same depth and credentials) into a private object store
//! under `.git/modules/`, and its files are checked out at its path in the
//! worktree; nested ones too when recursive.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::local::local_path;
use super::tree_path::{is_plainly_safe, make_dirs_within};
use super::{Base, Cancel, GitError, GitRepo, Hash, Target};
use crate::config::GcMode;
use crate::redact::redact;
use crate::sparse::SparsePatterns;

/// One `[submodule "name"]` of `.gitmodules`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Declared {
    name: String,
    path: String,
    url: String,
    /// `update = none`: git leaves it out.
    skipped: bool,
}

/// A checked-out commit whose submodules are wanted: its worktree `dir`,
/// registered under `admin`, the URL it was fetched from, and the sparse
/// patterns it was checked out with (a submodule they leave out is left
/// out, as git does). `base`: the same superproject in the previous tree
/// (its directory and admin name), whose submodules lend their unchanged
/// files. `lfs`: whether Git LFS files get their content (as the
/// superproject's do), each submodule's from its own LFS server.
pub struct Superproject<'a> {
    pub dir: &'a Path,
    pub admin: &'a str,
    pub commit: Hash,
    pub url: &'a str,
    pub sparse: Option<&'a SparsePatterns>,
    pub base: Option<(&'a Path, &'a str)>,
    pub lfs: bool,
}

/// Where the submodule `sub` goes in the tree at `parent_dir`, its
/// directories made. Its path must stay in the tree: a hostile one may
/// lead through a symlink of the superproject (git refuses those too).
fn submodule_dir(parent_dir: &Path, sub: &Declared) -> Result<PathBuf, GitError> {
    let stays_in = is_plainly_safe(sub.path.as_bytes())
        && make_dirs_within(parent_dir, Path::new(&sub.path)).is_ok();
    if !stays_in {
        return Err(GitError::Local {
            op: format!("checkout of submodule {:?}", sub.name),
            message: format!(
                "invalid path '{}': it leaves the tree or leads through a symlink",
                sub.path
            ),
        });
    }
    Ok(parent_dir.join(&sub.path))
}

/// Parse `.gitmodules` with libgit2's git config parser (quotes, escapes,
/// comments, keys in any case, continued lines), which reads files only:
/// `text` is written to `scratch` for it, and removed after. Submodules
/// come in the order they are first declared.
fn parse_gitmodules(text: &[u8], scratch: &Path) -> Result<Vec<Declared>, GitError> {
    let text = without_includes(text);
    std::fs::write(scratch, text).map_err(|e| GitError::io("write", scratch, e))?;
    let parsed = read_gitmodules(scratch);
    let _ = std::fs::remove_file(scratch);
    parsed.map_err(|e| GitError::local("parse .gitmodules", e))
}

/// `text` without its `[include]` and `[includeIf ...]` sections: git
/// reads no includes in `.gitmodules`, and libgit2 would follow them to
/// any file (`/dev/zero`, our own config).
fn without_includes(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut in_include = false;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let start = line.trim_ascii_start();
        if let Some(header) = start.strip_prefix(b"[") {
            let name = header.trim_ascii_start();
            in_include = name.len() >= 7 && name[..7].eq_ignore_ascii_case(b"include");
        }
        if !in_include {
            out.extend_from_slice(line);
        }
    }
    out
}

fn read_gitmodules(file: &Path) -> Result<Vec<Declared>, git2::Error> {
    let cfg = git2::Config::open(file)?;
    let mut out: Vec<Declared> = Vec::new();
    let mut entries = cfg.entries(Some(r"^submodule\..*\.(path|url|update)$"))?;
    while let Some(entry) = entries.next() {
        let entry = entry?;
        // submodule.<name>.<key>: the name may hold dots, the key not.
        let (Ok(name), Ok(value)) = (entry.name(), entry.value()) else {
            continue;
        };
        let Some((name, key)) = name
            .strip_prefix("submodule.")
            .and_then(|n| n.rsplit_once('.'))
        else {
            continue;
        };
        let at = match out.iter().position(|d| d.name == name) {
            Some(at) => at,
            None => {
                out.push(Declared {
                    name: name.to_string(),
                    path: String::new(),
                    url: String::new(),
                    skipped: false,
                });
                out.len() - 1
            }
        };
        let sub = &mut out[at];
        match key {
            "path" => sub.path = value.to_string(),
            "url" => sub.url = value.to_string(),
            _ => sub.skipped = value == "none",
        }
    }
    Ok(out)
}

/// A submodule URL relative to its parent's (`../x.git`, `./x`).
pub fn resolve_url(parent: &str, url: &str) -> String {
    if !(url.starts_with("../") || url.starts_with("./")) {
        return url.to_string();
    }
    let mut base = parent.strip_suffix('/').unwrap_or(parent).to_string();
    // As git: `../` drops the last path element, or, with no `/` left,
    // what follows the colon of an scp-like URL (`host:repo.git`), which
    // the rest is then joined to with a colon.
    let mut colon = false;
    let mut rest = url;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
            if let Some(i) = base.rfind('/') {
                base.truncate(i);
            } else if let Some(i) = base.rfind(':') {
                base.truncate(i);
                colon = true;
            } else {
                base = ".".into();
            }
        } else {
            break;
        }
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    format!("{base}{}{rest}", if colon { ':' } else { '/' })
}

/// A file-system-safe name for a submodule's object store, one per name:
/// letters, digits and `-` as they are, any other byte as `_` and two hex
/// digits (`libs/sub` is `libs_2fsub`).
fn store_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

impl GitRepo {
    /// The bare object store `modules/<dir>` under our git directory (made
    /// if missing); `dir` is a [`store_name`].
    fn submodule_store(&self, dir: &str) -> Result<GitRepo, GitError> {
        let path = self.gitdir.join("modules").join(dir);
        let repo = match git2::Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => git2::Repository::init_opts(
                &path,
                git2::RepositoryInitOptions::new()
                    .bare(true)
                    .external_template(false),
            )
            .map_err(|e| GitError::local(format!("init {}", path.display()), e))?,
        };
        let mut store = GitRepo::assemble(repo, path, self.credentials.clone(), Vec::new());
        // Proxies and other http.* settings apply to submodules as well.
        store.apply_config(&self.applied_config)?;
        Ok(store)
    }

    /// Record submodule `name` as active in our config, as `git submodule
    /// init` would (without its URL, which may carry credentials), so that
    /// `git submodule status` in a worktree shows it checked out.
    fn mark_active(&self, name: &str) -> Result<(), GitError> {
        let key = format!("submodule.{name}.active");
        let mut cfg = self
            .repo
            .config()
            .and_then(|c| c.open_level(git2::ConfigLevel::Local))
            .map_err(|e| GitError::local("open the repository config", e))?;
        if cfg.get_bool(&key).unwrap_or(false) {
            return Ok(());
        }
        cfg.set_bool(&key, true)
            .map_err(|e| GitError::local(format!("set {key}"), e))
    }

    /// Whether submodules may come from this machine: git's
    /// `protocol.file.allow` (else `protocol.allow`) is `always`; its
    /// default, `user`, refuses them.
    fn file_protocol_allowed(&self) -> bool {
        let Ok(cfg) = self.repo.config() else {
            return false;
        };
        let value = cfg
            .get_string("protocol.file.allow")
            .or_else(|_| cfg.get_string("protocol.allow"));
        value.is_ok_and(|v| v.eq_ignore_ascii_case("always"))
    }

    /// The submodules recorded in `commit`: each declared one whose path
    /// holds a gitlink, with the commit it records.
    fn gitlinks(&self, commit: Hash) -> Result<Vec<(Declared, Hash)>, GitError> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::local(format!("read tree of {commit}"), e))?;
        let Ok(entry) = tree.get_path(Path::new(".gitmodules")) else {
            return Ok(Vec::new());
        };
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(|e| GitError::local("read .gitmodules", e))?;
        let scratch = self.gitdir.join("git-sync-gitmodules");
        Ok(parse_gitmodules(blob.content(), &scratch)?
            .into_iter()
            .filter_map(|sub| {
                let link = tree.get_path(Path::new(&sub.path)).ok()?;
                (link.kind() == Some(git2::ObjectType::Commit)).then(|| (sub, link.id()))
            })
            .collect())
    }

    /// Check out the submodules of a checked-out commit into its worktree,
    /// each `depth` deep; nested ones too when `recursive`.
    pub fn checkout_submodules(
        &mut self,
        parent: &Superproject<'_>,
        recursive: bool,
        depth: u32,
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        for (sub, hash) in self.gitlinks(parent.commit)? {
            if cancel.is_cancelled() {
                return Err(GitError::Cancelled);
            }
            let sparse_out = parent
                .sparse
                .is_some_and(|p| !p.includes_entry(&sub.path, true));
            if sub.skipped || sparse_out {
                continue;
            }
            let sub_url = self.submodule_url(&sub, parent.url)?;
            let mut store = self.submodule_store(&store_name(&sub.name))?;
            // Also for a commit it holds with less history than --depth
            // asks (a restart with a larger one).
            if !store.has_commit(hash) || store.history_short_of(hash, depth) {
                tracing::debug!(submodule = %sub.name, %hash, "fetching submodule");
                let target = Target {
                    hash,
                    remote_ref: None,
                };
                store.fetch(&sub_url, &target, depth, cancel)?;
            }
            // As git's own submodule clone: for a git in a hook.
            if let Err(e) = store.name_origin(&sub_url) {
                tracing::debug!(submodule = %sub.name, error = %e, "submodule's origin not named");
            }
            // A linked worktree of the store, registered under the name of
            // the top-level worktree, so that git (where one exists) sees a
            // submodule checked out at its recorded commit.
            let dir = submodule_dir(parent.dir, &sub)?;
            // The submodule as the previous tree has it, at whatever commit.
            let old_dir = parent.base.map(|(dir, _)| dir.join(&sub.path));
            let old = parent
                .base
                .zip(old_dir.as_deref())
                .and_then(|((_, admin), dir)| {
                    let hash = store.worktree_head(admin)?;
                    Some(Base {
                        dir,
                        admin,
                        hash,
                        yours: None,
                    })
                });
            store.create_worktree(hash, &dir, parent.admin, None, old, cancel)?;
            // As git-lfs smudges in each submodule git checks out: the
            // objects come from the submodule's own LFS server (or its
            // .lfsconfig's) and live in its store, pruned by its gc.
            if parent.lfs {
                store.fetch_lfs_files(hash, &dir, &sub_url, cancel)?;
            }
            self.mark_active(&sub.name)?;
            if recursive {
                let child = Superproject {
                    dir: &dir,
                    admin: parent.admin,
                    commit: hash,
                    url: &sub_url,
                    sparse: None,
                    base: old.map(|b| (b.dir, b.admin)),
                    lfs: parent.lfs,
                };
                store.checkout_submodules(&child, true, depth, cancel)?;
            }
        }
        Ok(())
    }

    /// The URL to fetch the submodule `sub` of the repository at
    /// `parent_url` from (a relative one resolved against it). Fails for
    /// a submodule without one, and for one on this machine unless
    /// `protocol.file.allow` allows it, as git does.
    fn submodule_url(&self, sub: &Declared, parent_url: &str) -> Result<String, GitError> {
        if sub.url.is_empty() {
            return Err(GitError::Local {
                op: format!("fetch of submodule {:?}", sub.name),
                message: format!(
                    "no url found for submodule path {:?} in .gitmodules",
                    sub.path
                ),
            });
        }
        let sub_url = resolve_url(parent_url, &sub.url);
        if local_path(&self.effective_url(&sub_url)).is_some() && !self.file_protocol_allowed() {
            return Err(GitError::Local {
                op: format!("fetch of submodule {:?}", sub.name),
                message: format!(
                    "{} is on this machine, and git refuses such submodules by default \
                     (a repository could copy another local repository into the published \
                     tree); allow it with --git-config=protocol.file.allow:always",
                    redact(&sub_url)
                ),
            });
        }
        Ok(sub_url)
    }

    /// Forget the submodule worktrees registered under a name for which
    /// `live` is false (their top-level worktree is gone), in every store,
    /// nested ones included.
    pub fn forget_submodule_worktrees(&self, live: impl Fn(&str) -> bool) -> Result<(), GitError> {
        let mut stores = vec![self.gitdir.join("modules")];
        while let Some(dir) = stores.pop() {
            for store in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let store = store.path();
                let admins = store.join("worktrees");
                for admin in std::fs::read_dir(&admins).into_iter().flatten().flatten() {
                    if !live(&admin.file_name().to_string_lossy()) {
                        let path = admin.path();
                        std::fs::remove_dir_all(&path)
                            .map_err(|e| GitError::io("remove", &path, e))?;
                    }
                }
                stores.push(store.join("modules"));
            }
        }
        Ok(())
    }

    /// Garbage-collect the submodule stores: keep in each only what the
    /// `kept` commits record (recursively); drop stores none of them uses.
    pub fn gc_submodules(
        &mut self,
        mode: GcMode,
        kept: &[Hash],
        depth: u32,
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        let modules = self.gitdir.join("modules");
        let Ok(entries) = std::fs::read_dir(&modules) else {
            return Ok(());
        };
        let mut wanted: BTreeMap<String, Vec<Hash>> = BTreeMap::new();
        for commit in kept {
            for (sub, hash) in self.gitlinks(*commit)? {
                wanted.entry(store_name(&sub.name)).or_default().push(hash);
            }
        }
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let present = match wanted.get(&name) {
                Some(hashes) => {
                    let mut store = self.submodule_store(&name)?;
                    let present: Vec<Hash> = hashes
                        .iter()
                        .copied()
                        .filter(|h| store.has_commit(*h))
                        .collect();
                    store.gc_submodules(mode, &present, depth, cancel)?;
                    store.gc(mode, &present, depth, cancel)?;
                    !present.is_empty()
                }
                None => false,
            };
            if !present && mode != GcMode::Off {
                let path = entry.path();
                std::fs::remove_dir_all(&path).map_err(|e| GitError::io("remove", &path, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submodule_path_must_stay_in_the_tree() {
        let t = tempfile::TempDir::new().unwrap();
        let (tree, outside) = (t.path().join("tree"), t.path().join("outside"));
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        let at = |path: &str| {
            let sub = Declared {
                name: "s".into(),
                path: path.into(),
                url: "https://h/s".into(),
                skipped: false,
            };
            submodule_dir(&tree, &sub)
        };
        assert_eq!(at("vendor/lib").unwrap(), tree.join("vendor/lib"));
        assert!(tree.join("vendor").is_dir());
        for hostile in [
            "link/sub",
            "../outside/sub",
            ".git/hooks",
            "a/.GIT./x",
            "",
            "a//b",
        ] {
            let err = at(hostile).unwrap_err().to_string();
            assert!(
                err.contains("leaves the tree or leads through a symlink"),
                "{hostile}: {err}"
            );
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(!tree.join(".git").exists() && !tree.join("a").exists());
    }

    #[test]
    fn gitmodules_and_relative_urls() {
        let t = tempfile::TempDir::new().unwrap();
        let parse = |text: &str| parse_gitmodules(text.as_bytes(), &t.path().join("m")).unwrap();
        let subs = parse(
            "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n[submodule \"x\"]\n\tpath = x\n\turl = https://h/x\n\tupdate = none\n",
        );
        assert_eq!(store_name("libs/sub"), "libs_2fsub");
        assert_ne!(store_name("libs/sub"), store_name("libs_sub"));
        assert_eq!(subs.len(), 2);
        assert!(!subs[0].skipped && subs[1].skipped);
        assert_eq!(subs[0].path, "vendor/lib");
        assert!(!t.path().join("m").exists(), "the scratch file is removed");

        // Written by hand: git config syntax as git reads it.
        let by_hand = parse(concat!(
            "# vendored code\n",
            "[Submodule \"a.b\"]\n",
            "  PATH = \"with space\" ; where it goes\n",
            "  Url = https://h/a.git # upstream\n",
            "[core]\n",
            "  url = not-a-submodule\n",
            "[submodule \"c\"] path = c\n",
            "  url = \"https://h/c;x\"\n",
            "[submodule \"a.b\"]\n",
            "  update = none\n",
        ));
        let got: Vec<_> = by_hand
            .iter()
            .map(|d| (d.name.as_str(), d.path.as_str(), d.url.as_str(), d.skipped))
            .collect();
        assert_eq!(
            got,
            [
                ("a.b", "with space", "https://h/a.git", true),
                ("c", "c", "https://h/c;x", false),
            ]
        );
        assert!(parse_gitmodules(b"[submodule \"x\"\n", &t.path().join("m")).is_err());

        // Includes are not followed (git reads none in .gitmodules).
        let other = t.path().join("other");
        std::fs::write(
            &other,
            "[submodule \"evil\"]\npath = e\nurl = https://e/e\n",
        )
        .unwrap();
        let text = format!(
            "[include]\npath = {0}\n[ IncludeIf \"gitdir:/\"] path = {0}\n[submodule \"c\"]\npath = c\nurl = u\n",
            other.display()
        );
        let names: Vec<_> = parse(&text).into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["c"]);
        // (which libgit2 alone would do)
        let unfiltered = t.path().join("unfiltered");
        std::fs::write(
            &unfiltered,
            format!("[include]\npath = {}\n", other.display()),
        )
        .unwrap();
        let names: Vec<_> = read_gitmodules(&unfiltered).unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(
            resolve_url("https://h/org/main.git", &subs[0].url),
            "https://h/org/lib.git"
        );
        assert_eq!(
            resolve_url("https://h/org/main", "./sub"),
            "https://h/org/main/sub"
        );
        assert_eq!(
            resolve_url("https://h/org/main", "https://o/x"),
            "https://o/x"
        );
        // As `git submodule init` resolves them (git 2.47).
        for (parent, url, git) in [
            ("git@host:repo.git", "../lib.git", "git@host:lib.git"),
            ("git@host:org/repo.git", "../../lib.git", "git@host:lib.git"),
            (
                "git@host:org/repo.git",
                "../lib.git",
                "git@host:org/lib.git",
            ),
            ("git@host:repo", "./sub", "git@host:repo/sub"),
            ("https://h/org/repo.git/", "../lib", "https://h/org/lib"),
            ("https://h/repo", "../../lib", "https://lib"),
            ("ssh://git@h:22/repo.git", "../lib", "ssh://git@h:22/lib"),
            ("file:///srv/repo", "../lib/", "file:///srv/lib"),
            ("/srv/repo", "../lib", "/srv/lib"),
        ] {
            assert_eq!(resolve_url(parent, url), git, "{parent} + {url}");
        }
    }
}
