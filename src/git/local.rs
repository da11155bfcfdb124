//! Fetching from a repository on this machine (`file://` URLs and paths).
//!
//! libgit2's local transport refuses shallow fetches, so for local sources
//! we do the transfer ourselves, in process: open the source repository,
//! walk the target commit `depth` deep, and pack exactly the objects we do
//! not have into our pack directory, copying them as the source's packs
//! store them (`pack_copy`, as `git clone` of a local path does). The
//! boundary of the copied history goes into `.git/shallow`, as a shallow
//! fetch would write.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository};

use super::pack_index::PackIndex;
use super::reftable::{RefTable, Reftables};
use super::{pack_copy, ref_error, refs, Cancel, GitError, GitRepo, Hash, Target};
use crate::redact::redact;

/// The path of a local repository URL, or `None` for a network URL.
pub fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    if url.contains("://") {
        return None;
    }
    // scp-like `host:path` / `user@host:path` is SSH, unless the part
    // before the colon looks like a path.
    match url.split_once(':') {
        Some((host, _)) if !host.contains('/') => None,
        _ => Some(PathBuf::from(url)),
    }
}

/// The git directories holding the refs of a local repository URL, for
/// watching: the repository's, then, for a linked worktree (`git worktree
/// add`), its own, which holds its HEAD; `None` for network URLs or what is
/// not a repository.
pub fn local_refs_dirs(url: &str) -> Option<Vec<PathBuf>> {
    let path = local_path(url)?;
    if let Some(tables) = Reftables::find(&path) {
        return Some(tables.dirs());
    }
    let repo = Repository::open_ext(
        &path,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()?;
    let mut dirs = vec![repo.commondir().to_path_buf()];
    if repo.is_worktree() {
        dirs.push(repo.path().to_path_buf());
    }
    Some(dirs)
}

/// Whether the local repository at `url` names a commit in its HEAD: one
/// being cloned in place names none until its objects are all there.
pub fn local_head_resolves(url: &str) -> bool {
    let Some(path) = local_path(url) else {
        return false;
    };
    if let Some(tables) = Reftables::find(&path) {
        return tables.read().is_ok_and(|t| t.resolve("HEAD").is_some());
    }
    Repository::open_ext(
        &path,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .and_then(|repo| repo.head()?.peel_to_commit().map(|_| ()))
    .is_ok()
}

/// A local repository to fetch from: its objects through libgit2, its
/// refs through libgit2 too, or read from its reftables (which libgit2
/// cannot open as a repository; see `reftable.rs`).
struct Source {
    repo: Repository,
    gitdir: PathBuf,
    reftable: Option<RefTable>,
}

fn open_source(url: &str, path: &std::path::Path) -> Result<Source, GitError> {
    let remote_error = |message: String| GitError::Remote {
        op: "open",
        url: redact(url),
        message,
    };
    if let Some(tables) = Reftables::find(path) {
        let refs = tables.read().map_err(|e| remote_error(e.to_string()))?;
        let gitdir = tables.gitdir;
        let repo = git2::Odb::new()
            .and_then(|odb| {
                odb.add_disk_alternate(&gitdir.join("objects").to_string_lossy())?;
                Repository::from_odb(odb)
            })
            .map_err(|e| remote_error(e.message().to_string()))?;
        return Ok(Source {
            repo,
            gitdir,
            reftable: Some(refs),
        });
    }
    let repo = Repository::open_ext(
        path,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .map_err(|e| remote_error(open_failure(url, path, &e)))?;
    Ok(Source {
        gitdir: repo.commondir().to_path_buf(),
        repo,
        reftable: None,
    })
}

impl Source {
    /// What the ref `name` points at (not peeled), if it exists.
    fn target(&self, name: &str) -> Option<Oid> {
        match &self.reftable {
            Some(refs) => refs.resolve(name),
            None => self.repo.refname_to_id(name).ok(),
        }
    }

    /// Every ref name.
    fn ref_names(&self) -> Vec<String> {
        match &self.reftable {
            Some(refs) => refs.names(),
            None => self
                .repo
                .references()
                .map(|refs| {
                    refs.flatten()
                        .filter_map(|r| r.name().ok().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Why a local repository could not be opened, in plain words where the
/// path itself is the problem (libgit2 says "failed to resolve path" or
/// "could not find repository") or its object format is.
fn open_failure(url: &str, path: &std::path::Path, error: &git2::Error) -> String {
    let why = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such directory".to_string(),
        Ok(meta) if !meta.is_dir() => "not a directory".to_string(),
        Ok(_) if error.code() == git2::ErrorCode::NotFound => "not a git repository".to_string(),
        _ => format!(
            "{}{}",
            error.message(),
            super::object_format_hint(error.message()).unwrap_or_default()
        ),
    };
    format!("{why}{}", missing_path_hint(url, path))
}

/// For a local path that is not there but reads like a remote one
/// mistyped: a host name and a path without a scheme
/// (`github.com/org/site.git`), an SSH address with a '/' for its ':'
/// (`git@github.com/org/site.git`). (A scheme without its ':',
/// `https//github.com/...`, is refused at start: see `parse_repo`.)
fn missing_path_hint(url: &str, path: &std::path::Path) -> String {
    if path.exists() || url.starts_with(['/', '.', '~']) || url.starts_with("file://") {
        return String::new();
    }
    let hostlike = |s: &str| {
        s.contains('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
    };
    let Some((first, rest)) = url.split_once('/') else {
        return String::new();
    };
    match first.split_once('@') {
        Some((user, host)) if hostlike(host) && !user.contains(':') => {
            format!(" (an SSH address without a scheme has a ':' after the host: {first}:{rest})")
        }
        None if hostlike(first) => {
            format!(" (a remote repository needs its scheme: https://{url})")
        }
        _ => String::new(),
    }
}

impl GitRepo {
    /// Resolve `git_ref` in a local repository (no transport needed).
    pub(super) fn resolve_local(
        &self,
        url: &str,
        path: &std::path::Path,
        git_ref: &str,
    ) -> Result<Target, GitError> {
        let src = open_source(url, path)?;
        let name = refs::pick_ref(
            git_ref,
            |name| src.target(name).is_some(),
            || src.ref_names(),
        )
        .map_err(|e| ref_error(e, git_ref, url))?;
        // Peeled through any tags: what the ref finally names.
        let object = src
            .target(&name)
            .ok_or_else(|| git2::Error::from_str("the ref vanished"))
            .and_then(|id| src.repo.find_object(id, None))
            // (For a commit, peel(Any) would give its tree.)
            .and_then(|o| match o.kind() {
                Some(ObjectType::Tag) => o.peel(ObjectType::Any),
                _ => Ok(o),
            })
            .map_err(|e| GitError::Remote {
                op: "resolve",
                url: redact(url),
                message: format!("{name}: {}", e.message()),
            })?;
        if object.kind() != Some(ObjectType::Commit) {
            return Err(super::not_a_commit(&name, url, object.kind()));
        }
        Ok(Target {
            hash: object.id(),
            remote_ref: Some(name),
        })
    }

    /// Copy `hash`, `depth` commits deep (0: all), from a local repository.
    pub(super) fn fetch_local(
        &mut self,
        url: &str,
        path: &std::path::Path,
        hash: Hash,
        depth: u32,
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        let Source {
            repo: src, gitdir, ..
        } = open_source(url, path)?;
        let odb = self
            .repo
            .odb()
            .map_err(|e| GitError::local("open object database", e))?;
        let ours = Store::of(&self.gitdir.join("objects"), odb);
        let mut shallow = super::depth::read_shallow(self);
        // In a store without shallow commits, the history below any commit
        // it holds is complete; in a shallow one it may be cut further down
        // (all history asked for, after a smaller --depth): walk on.
        let complete_below_ours = shallow.is_empty();
        // A partial clone's filter leaves every blob to `fill_partial`,
        // which copies those a checkout reads.
        let blobs = self.filter_for(url, true).is_none();

        let mut wanted: Vec<Oid> = Vec::new();
        let mut seen: HashSet<Oid> = HashSet::new();
        let mut queue: VecDeque<(Oid, u32)> = VecDeque::from([(hash, 1)]);
        while let Some((id, level)) = queue.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            let have = ours.has(id);
            if have && complete_below_ours && depth == 0 {
                continue; // complete history below it is already here
            }
            let commit = src.find_commit(id).map_err(|e| match id == hash {
                true if e.code() == git2::ErrorCode::NotFound => GitError::Remote {
                    op: "fetch",
                    url: redact(url),
                    message: super::no_such_commit(hash),
                },
                _ => self.remote_error("fetch", url, e, cancel),
            })?;
            if !have {
                wanted.push(id);
                let mut into = Collected {
                    wanted: &mut wanted,
                    seen: &mut seen,
                    blobs,
                };
                collect_tree(&src, &ours, commit.tree_id(), &mut into)
                    .map_err(|e| self.remote_error("fetch", url, e, cancel))?;
            }
            let parents: Vec<Oid> = commit.parent_ids().collect();
            if depth != 0 && level >= depth {
                if !parents.is_empty() {
                    shallow.insert(id);
                }
                continue;
            }
            shallow.remove(&id);
            queue.extend(parents.into_iter().map(|p| (p, level + 1)));
        }

        // What the walk kept (a set of every object met: some MB for a
        // large tree) is freed before the copy, which needs its own.
        drop((ours, seen, queue));
        self.copy_objects(url, (&src, &gitdir), &wanted, cancel)?;
        super::depth::write_shallow(self, &shallow)?;
        self.reopen()
    }

    /// Copy `objects` (a partial clone's missing blobs) from the local
    /// repository at `path`.
    pub(super) fn fetch_objects_local(
        &mut self,
        url: &str,
        path: &std::path::Path,
        objects: &[Hash],
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        let Source {
            repo: src, gitdir, ..
        } = open_source(url, path)?;
        self.copy_objects(url, (&src, &gitdir), objects, cancel)
    }

    /// Copy `objects` from the local repository `src` (whose git
    /// directory is `gitdir`) into a new pack of ours, as it stores them.
    fn copy_objects(
        &self,
        url: &str,
        (src, gitdir): (&Repository, &Path),
        objects: &[Oid],
        cancel: &Cancel,
    ) -> Result<(), GitError> {
        let src_odb = src
            .odb()
            .map_err(|e| self.remote_error("fetch", url, e, cancel))?;
        pack_copy::write_pack(
            &src_odb,
            &source_pack_dirs(gitdir),
            objects,
            &self.gitdir.join("objects/pack"),
            cancel,
        )
        .map_err(|e| {
            e.into_git(|message| GitError::Remote {
                op: "fetch",
                url: redact(url),
                message: redact(&message),
            })
        })?;
        Ok(())
    }
}

/// Our object store, as asked "do we have this object?" once per object of
/// the walk. Our fetches write packs only; where the store is nothing else
/// (no loose object directory, no alternates), the packs' indexes, read
/// once, answer without a system call: libgit2 looks for a loose file on
/// every miss, an `access` per object of a first sync (50,000 for as many
/// files). Otherwise (a store an older git-sync or git left loose objects
/// in) libgit2 answers, without its rescan of the pack directory on every
/// miss (nothing else writes there meanwhile; with it, the misses of a
/// long history cost seconds).
enum Store<'r> {
    Packs(Vec<PackIndex>),
    Odb(git2::Odb<'r>),
}

impl<'r> Store<'r> {
    fn of(objects: &Path, odb: git2::Odb<'r>) -> Self {
        match packs_only(objects) {
            Some(packs) => Store::Packs(packs),
            None => Store::Odb(odb),
        }
    }

    fn has(&self, id: Oid) -> bool {
        match self {
            Store::Packs(packs) => packs.iter().any(|p| p.find(id).is_some()),
            Store::Odb(odb) => odb.exists_ext(id, git2::OdbLookupFlags::NO_REFRESH),
        }
    }
}

/// The indexes of every pack in `objects`, if packs are all it holds.
fn packs_only(objects: &Path) -> Option<Vec<PackIndex>> {
    if objects.join("info/alternates").exists() {
        return None;
    }
    let loose_dir = |name: &str| name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
    for entry in std::fs::read_dir(objects).ok()? {
        if loose_dir(&entry.ok()?.file_name().to_string_lossy()) {
            return None;
        }
    }
    let dir = objects.join("pack");
    let mut packs = Vec::new();
    for entry in std::fs::read_dir(&dir).ok()? {
        let name = entry.ok()?.file_name().to_string_lossy().into_owned();
        if let Some(base) = name.strip_suffix(".pack") {
            packs.push(PackIndex::read(&dir, base).ok()?);
        }
    }
    Some(packs)
}

/// The pack directories of a local repository: its own and its
/// alternates' (`objects/info/alternates`, paths relative to `objects`).
fn source_pack_dirs(gitdir: &std::path::Path) -> Vec<PathBuf> {
    let objects = gitdir.join("objects");
    let alternates = std::fs::read_to_string(objects.join("info/alternates")).unwrap_or_default();
    std::iter::once(objects.join("pack"))
        .chain(
            alternates
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| objects.join(l).join("pack")),
        )
        .collect()
}

/// The objects a walk collects to copy.
struct Collected<'a> {
    wanted: &'a mut Vec<Oid>,
    seen: &'a mut HashSet<Oid>,
    /// Whether blobs are copied (not for a partial clone).
    blobs: bool,
}

/// Add the objects of `tree` that `ours` lacks. A tree we have is complete
/// (but for the blobs a partial clone leaves out).
fn collect_tree(
    src: &Repository,
    ours: &Store<'_>,
    tree_id: Oid,
    into: &mut Collected<'_>,
) -> Result<(), git2::Error> {
    if !into.seen.insert(tree_id) || ours.has(tree_id) {
        return Ok(());
    }
    into.wanted.push(tree_id);
    let tree = src.find_tree(tree_id)?;
    for entry in tree.iter() {
        match entry.kind() {
            Some(ObjectType::Tree) => collect_tree(src, ours, entry.id(), into)?,
            Some(ObjectType::Blob)
                if into.blobs && into.seen.insert(entry.id()) && !ours.has(entry.id()) =>
            {
                into.wanted.push(entry.id());
            }
            // Submodule commits live in other repositories.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::local_path;
    use std::path::PathBuf;

    #[test]
    fn our_store_is_asked_through_its_pack_indexes_when_packs_are_all_it_holds() {
        use super::super::test_util::git;
        use super::super::{Cancel, GitRepo};
        use super::Store;
        let t = tempfile::TempDir::new().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir(&src).unwrap();
        git(&src, &["init", "-q"]);
        std::fs::write(src.join("f"), "one").unwrap();
        git(&src, &["add", "f"]);
        git(&src, &["commit", "-qm", "c"]);
        let hash: git2::Oid = git(&src, &["rev-parse", "HEAD"]).trim().parse().unwrap();
        let blob: git2::Oid = git(&src, &["rev-parse", "HEAD:f"]).trim().parse().unwrap();
        let url = src.display().to_string();
        let mut ours = GitRepo::init(&t.path().join("root")).unwrap();
        let objects = t.path().join("root/.git/objects");
        fn store<'r>(objects: &std::path::Path, repo: &'r GitRepo) -> Store<'r> {
            Store::of(objects, repo.repo.odb().unwrap())
        }

        // Empty: the (no) packs say so, and nothing is had.
        let empty = store(&objects, &ours);
        assert!(matches!(empty, Store::Packs(ref p) if p.is_empty()));
        assert!(!empty.has(hash));
        drop(empty);
        ours.fetch_local(&url, &src, hash, 1, &Cancel::new())
            .unwrap();
        let packed = store(&objects, &ours);
        assert!(matches!(packed, Store::Packs(ref p) if p.len() == 1));
        assert!(packed.has(hash) && packed.has(blob));
        assert!(!packed.has(git2::Oid::hash_object(git2::ObjectType::Blob, b"x").unwrap()));
        drop(packed);
        // A loose object (a store older tools wrote to): libgit2 answers.
        let loose = ours.repo.blob(b"loose").unwrap();
        let mixed = store(&objects, &ours);
        assert!(matches!(mixed, Store::Odb(_)));
        assert!(mixed.has(loose) && mixed.has(hash));
    }

    #[test]
    fn a_path_that_is_no_repository_is_said_to_be_missing_a_file_or_no_repository() {
        use super::open_source;
        let t = tempfile::TempDir::new().unwrap();
        let file = t.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let why = |path: &std::path::Path| {
            let url = path.display().to_string();
            match open_source(&url, path) {
                Ok(_) => panic!("{url} opened"),
                Err(e) => e.to_string(),
            }
        };
        let missing = t.path().join("missing");
        assert!(
            why(&missing).ends_with("failed: no such directory"),
            "{}",
            why(&missing)
        );
        assert!(
            why(&file).ends_with("failed: not a directory"),
            "{}",
            why(&file)
        );
        assert!(
            why(t.path()).ends_with("failed: not a git repository"),
            "{}",
            why(t.path())
        );
    }

    #[test]
    fn a_host_without_a_scheme_is_pointed_out() {
        use super::missing_path_hint;
        let hint = |u: &str| missing_path_hint(u, std::path::Path::new(u));
        assert!(hint("github.com/org/site.git").contains("https://github.com/org/site.git"));
        assert!(hint("git@github.com/org/site.git")
            .ends_with("a ':' after the host: git@github.com:org/site.git)"));
        for not_a_host in [
            "/srv/site.git",
            "./site.git",
            "site.git",
            "file:///x/y.git",
            "bot:pw@git.corp/site.git",
        ] {
            assert_eq!(hint(not_a_host), "", "{not_a_host}");
        }
    }

    #[test]
    fn which_urls_are_local() {
        assert_eq!(
            local_path("file:///srv/r.git"),
            Some(PathBuf::from("/srv/r.git"))
        );
        assert_eq!(local_path("/srv/r"), Some(PathBuf::from("/srv/r")));
        assert_eq!(local_path("./r"), Some(PathBuf::from("./r")));
        assert_eq!(local_path("https://h/r"), None);
        assert_eq!(local_path("git@host:org/r.git"), None);
    }
}
