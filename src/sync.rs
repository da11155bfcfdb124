//! One sync pass, as the design's section 3 lists its steps:
//! ask the remote, skip if already published, fetch, materialise, publish,
//! then (separately) clean up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::auth::Submodules;
use crate::config::Config;
use crate::git::{
    parse_full_hash, Base, Cancel, ChangedPaths, GitError, GitRepo, Hash, Hold, Superproject,
    Target,
};
use crate::hooks::ExecHook;
use crate::layout::{remove_any, Layout, LayoutError};
use crate::publish::{DestPublisher, LinkPublisher, PublishError, Publisher};
use crate::root_lock::RootLock;
use crate::safe_to_empty;
use crate::sparse::SparsePatterns;

/// Why a pass failed. The published tree is untouched by every one of them.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sync cancelled")]
    Cancelled,
}

impl SyncError {
    /// A failure that trying again cannot mend: the process should stop.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SyncError::Layout(LayoutError::WillNotEmpty(_)))
    }
}

/// What a successful pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target was already published.
    Unchanged { hash: Hash },
    /// A new commit was published.
    Updated {
        hash: Hash,
        previous: Option<Hash>,
        fetched: bool,
        /// The pre-publish hook failed (the commit was published anyway).
        pre_publish_error: Option<String>,
    },
}

/// How the published tree stands to a commit (step 2 of a pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Published {
    /// It is that commit's, made as asked, intact: nothing to do.
    Current,
    /// Another commit (or none) is published.
    Not,
    /// That commit's, but not recorded as made whole (a crash mid-way).
    NoRecord,
    /// That commit's, made with other settings.
    RecipeChanged,
    /// That commit's, damaged behind our back.
    Damaged,
}

/// What steps 1 and 3 of a pass found for its target.
struct Found {
    state: Published,
    /// What the fetch brought, if one was made.
    got: Option<Hash>,
}

/// What step 4 made, for step 5.
struct Made {
    /// The paths that changed from the published tree, for a publisher
    /// that copies files, when known.
    changed: Option<ChangedPaths>,
    /// Where readers of a tree made again were sent meanwhile.
    stand_in: Option<PathBuf>,
    /// Held while readers see the tree being made again: a stop lets the
    /// pass reach the publish.
    _remaking_theirs: Option<Hold>,
}

/// Say why the published commit's tree is made again, if it is.
fn say_why_made_again(state: Published, hash: Hash) {
    match state {
        Published::Not | Published::Current => {}
        Published::NoRecord => {
            tracing::info!(%hash, "checking out again: no record that the published tree was made whole")
        }
        Published::RecipeChanged => {
            tracing::info!(%hash, "checking out again: --submodules, --group-write, GIT_LFS_SKIP_SMUDGE or the sparse-checkout patterns changed, or an older git-sync made the tree")
        }
        Published::Damaged => {
            tracing::warn!(%hash, "checking out again: the published tree was changed behind our back (files or its git files missing)")
        }
    }
}

/// How the published tree (`current`) stands to `hash` and `recipe`.
fn published_state(
    git: &GitRepo,
    layout: &Layout,
    current: Option<Hash>,
    recipe: &Recipe,
    hash: Hash,
) -> Published {
    if current != Some(hash) {
        return Published::Not;
    }
    let whole = recipe.sparse.is_none();
    match git.recipe_of(&hash.to_string()) {
        None => Published::NoRecord,
        Some(made) if made != recipe.text => Published::RecipeChanged,
        Some(_) if !git.worktree_intact(&layout.worktree(hash), hash, whole) => Published::Damaged,
        Some(_) => Published::Current,
    }
}

/// How worktrees are made, beyond their commit (see [`Syncer::recipe`]).
struct Recipe {
    /// The sparse-checkout patterns' text (parsed only for a checkout:
    /// most passes are polls that find the tree current).
    sparse: Option<String>,
    /// Everything that shapes the tree, as recorded with it.
    text: String,
}

/// Runs passes against one root. Owns the repository handle.
pub struct Syncer {
    cfg: Config,
    layout: Layout,
    git: GitRepo,
    publisher: Box<dyn Publisher + Send>,
    pinned: Option<Hash>,
    pre_publish: Option<ExecHook>,
    /// The commit whose worktree this process made (or found exactly as
    /// made) last, and nothing but it wrote in since: one it may take over
    /// (see [`Syncer::make_tree`]).
    own_tree: Option<Hash>,
    /// Held as long as this process syncs the root.
    root_lock: Option<RootLock>,
    /// The git config's `lfs.fetchinclude`/`fetchexclude`, read once: a
    /// line of the recipe, which every pass computes.
    lfs_filter: String,
    /// When the store was last made afresh (see [`Syncer::remake_store`]).
    remade_at: Option<std::time::Instant>,
    /// The commit readers were left seeing by this process's last pass
    /// (None while a publish is under way or after it failed): when the
    /// publisher no longer vouches for it at the next, someone changed
    /// what readers see.
    shown: Option<Hash>,
}

/// How seldom the store is made afresh: a fresh store that fails again
/// soon is not the disk's fault but what it holds or how it is read, and
/// making it again would fetch everything at every pass.
const REMAKE_AT_MOST_EVERY: Duration = Duration::from_secs(3600);

fn check(cancel: &Cancel) -> Result<(), SyncError> {
    if cancel.is_cancelled() {
        Err(SyncError::Cancelled)
    } else {
        Ok(())
    }
}

/// Enter a section a stop lets finish, unless the pass was left behind.
fn hold(cancel: &Cancel) -> Result<Hold, SyncError> {
    cancel.hold().ok_or(SyncError::Cancelled)
}

/// Prepare the root (create, adopt or reset it) and open our repository
/// with the configured git config.
fn open_repository(
    cfg: &Config,
    layout: &Layout,
    publisher: &(dyn Publisher + Send),
) -> Result<GitRepo, SyncError> {
    // Should the root have to be emptied, readers keep the published tree
    // until the next publish.
    let keep = match publisher.served_name() {
        Some(name) => vec![layout.worktree_named(&name), cfg.link.clone()],
        None => Vec::new(),
    };
    let mut git = layout.prepare(&keep, &cfg.repo)?;
    git.apply_config(&cfg.git_config)?;
    if cfg.checkout.sparse_checkout_file.is_some() {
        // Tells a git binary (in hooks) that worktrees are sparse.
        git.apply_config(&[("core.sparseCheckout".into(), "true".into())])?;
        // Without sparse patterns every file's content is checked out:
        // a filter would only split the fetch in two.
        git.set_filter(cfg.checkout.filter.clone());
    }
    if let Err(e) = git.name_origin(&cfg.repo) {
        // Only a git binary in a hook needs it, not the sync.
        tracing::warn!(error = %e, "cannot name the origin remote: a git in a hook will not find it");
    }
    Ok(git)
}

impl Syncer {
    /// Prepare the root (create, adopt or reset it) and open the repository.
    pub fn new(cfg: Config) -> Result<Self, SyncError> {
        // In dest mode the root is the private state directory.
        let flag = if cfg.dest.is_some() {
            "--state-dir"
        } else {
            "--root"
        };
        let layout = Layout::new(&cfg.root, flag);
        let publisher: Box<dyn Publisher + Send> = match &cfg.dest {
            Some(dest) => Box::new(DestPublisher::new(dest, &cfg.root)),
            None => Box::new(LinkPublisher::new(&cfg.link)),
        };
        let root_lock = layout.lock()?;
        if let Some(dest) = &cfg.dest {
            // Dest mode makes the directory hold exactly the commit.
            if crate::paths::holds_anything(dest) {
                safe_to_empty::check(dest, "--dest", &cfg.repo, true).map_err(LayoutError::from)?;
            }
        }
        let git = open_repository(&cfg, &layout, publisher.as_ref())?;
        let pre_publish = cfg.ops.pre_publish_hook.as_ref().map(|h| {
            let l = layout.clone();
            ExecHook::new("pre-publish-exechook", &h.command, h.timeout, move |hash| {
                l.worktree_named(hash)
            })
            .with_git_env(&cfg.auth.ssh)
        });
        Ok(Syncer {
            pre_publish,
            own_tree: None,
            lfs_filter: git.lfs_fetch_filter(),
            pinned: parse_full_hash(&cfg.git_ref),
            cfg,
            layout,
            git,
            publisher,
            root_lock,
            remade_at: None,
            shown: None,
        })
    }

    /// The source repository's URL after `insteadOf` rewrites (fixed
    /// from the start), when it is on this machine: what to watch.
    pub fn local_source(&self) -> Option<String> {
        let url = self.git.effective_url(&self.cfg.repo);
        crate::git::local_path(&url).map(|_| url)
    }

    /// Use these credentials from the next remote operation on; the
    /// repository's own go to its server only.
    pub fn set_credentials(&mut self, mut credentials: crate::git::CredentialSet) {
        credentials.default_for = Some(self.git.effective_url(&self.cfg.repo));
        self.git.set_credentials(credentials);
    }

    /// The credentials in use (the repository's own go to its server
    /// only).
    pub fn credentials(&self) -> &crate::git::CredentialSet {
        self.git.credentials()
    }

    /// The hash readers currently see.
    pub fn published(&self) -> Option<Hash> {
        self.publisher.current()
    }

    /// The hash readers see at start, published by an earlier run.
    pub fn served_from_before(&self) -> Option<Hash> {
        self.publisher.served_from_before()
    }

    /// How this pass makes a worktree, beyond its commit: the submodule
    /// mode, group-write, LFS content (and the git config's fetch filter
    /// for it) and the sparse-checkout patterns (their file is
    /// read again at every pass). A worktree made another way (before a
    /// restart with other settings, or an edit of the patterns) is made
    /// again; one whose making was cut short has no record at all.
    fn recipe(&self) -> Result<Recipe, SyncError> {
        let sparse = match &self.cfg.checkout.sparse_checkout_file {
            None => None,
            Some(file) => Some(
                std::fs::read_to_string(file).map_err(|source| SyncError::Io {
                    op: "read sparse-checkout file",
                    path: file.clone(),
                    source,
                })?,
            ),
        };
        let text = format!(
            "submodules={:?}\ngroup-write={}\nlfs={}\n{}sparse-checkout={}\n",
            self.cfg.checkout.submodules,
            self.cfg.checkout.group_write,
            if self.cfg.checkout.lfs {
                "objects"
            } else {
                "pointers"
            },
            match self.cfg.checkout.lfs {
                true => self.lfs_filter.as_str(),
                false => "",
            },
            sparse.as_deref().unwrap_or("(all)\n"),
        );
        Ok(Recipe { sparse, text })
    }

    /// The worktree of `hash`, where hooks run.
    pub fn worktree(&self, hash: &str) -> std::path::PathBuf {
        self.layout.worktree_named(hash)
    }

    /// Step 4 of a pass: check `hash` out into `worktree` (which does not
    /// exist), with its submodules, group-writable if asked; sharing the
    /// unchanged files of the worktree of `base` (made by the same recipe).
    fn materialise(
        &mut self,
        hash: Hash,
        worktree: &std::path::Path,
        recipe: &Recipe,
        (base, yours): (Option<Hash>, Option<&ChangedPaths>),
        cancel: &Cancel,
    ) -> Result<(), SyncError> {
        let t = std::time::Instant::now();
        let patterns = recipe.sparse.as_deref().map(SparsePatterns::parse);
        let sparse = patterns.as_ref().zip(recipe.sparse.as_deref());
        let name = hash.to_string();
        let base_dir = base.map(|b| self.layout.worktree(b));
        let base_name = base.map(|b| b.to_string());
        let base = base.zip(base_dir.as_deref()).zip(base_name.as_deref());
        let base = base.map(|((hash, dir), admin)| Base {
            dir,
            admin,
            hash,
            yours,
        });
        self.git
            .create_worktree(hash, worktree, &name, sparse, base, cancel)?;
        if self.cfg.checkout.lfs {
            self.git
                .fetch_lfs_files(hash, worktree, &self.cfg.repo, cancel)?;
        }
        if self.cfg.checkout.submodules != Submodules::Off {
            let recursive = self.cfg.checkout.submodules == Submodules::Recursive;
            let parent = Superproject {
                dir: worktree,
                admin: &name,
                commit: hash,
                url: &self.cfg.repo,
                sparse: sparse.map(|(patterns, _)| patterns),
                base: base.map(|b| (b.dir, b.admin)),
                lfs: self.cfg.checkout.lfs,
            };
            self.git
                .checkout_submodules(&parent, recursive, self.cfg.depth, cancel)?;
        }
        if self.cfg.checkout.group_write {
            let made = crate::user::add_group_write(worktree).map_err(|source| SyncError::Io {
                op: "make group-writable",
                path: worktree.to_path_buf(),
                source,
            })?;
            tracing::debug!(entries = made, "made group-writable");
        }
        check(cancel)?;
        self.git.record_recipe(&name, &recipe.text)?;
        tracing::debug!(%hash, ms = t.elapsed().as_millis() as u64, "checked out");
        Ok(())
    }

    /// Our repository was removed behind our back (the root wiped while
    /// we run): set the root up again as at start, so this pass succeeds
    /// instead of failing until a restart. A root removed and made again
    /// is set up again too, whatever it holds: a `.git/HEAD` there may be
    /// the last writes of a pass cut short by the removal, over a store
    /// that is gone, and the new root is not locked.
    fn repair_if_gone(&mut self) -> Result<(), SyncError> {
        let replaced = self
            .root_lock
            .as_ref()
            .is_some_and(|l| !l.is_of(&self.cfg.root));
        if !replaced && self.git.gitdir().join("HEAD").is_file() {
            return Ok(());
        }
        let said = match replaced {
            true => "the root was removed and made again; setting it up again",
            false => "our repository is gone from the root; setting it up again",
        };
        tracing::warn!(root = %self.cfg.root.display(), "{said}");
        self.set_up_again()
    }

    /// Set the root up as at start, our repository being gone.
    fn set_up_again(&mut self) -> Result<(), SyncError> {
        // The root itself removed and made again: lock the new one before
        // touching it, so that a git-sync started on it meanwhile keeps it
        // (this one fails, as it would have at start).
        if self
            .root_lock
            .as_ref()
            .is_some_and(|l| !l.is_of(&self.cfg.root))
        {
            self.root_lock = self.layout.lock()?;
        }
        let mut git = open_repository(&self.cfg, &self.layout, self.publisher.as_ref())?;
        git.set_credentials(self.git.credentials().clone());
        self.git = git;
        Ok(())
    }

    /// Whether the store may be made afresh now (see
    /// [`REMAKE_AT_MOST_EVERY`]).
    fn may_remake_store(&self) -> bool {
        self.remade_at
            .map_or(true, |at| at.elapsed() >= REMAKE_AT_MOST_EVERY)
    }

    /// Our object store could not give what it holds (see
    /// [`GitError::Store`]): remove it, and set the root up again as at
    /// start. The published tree stays; the next fetch is a first one.
    fn remake_store(&mut self, why: &GitError) -> Result<(), SyncError> {
        self.remade_at = Some(std::time::Instant::now());
        let gitdir = self.git.gitdir().to_path_buf();
        tracing::warn!(store = %gitdir.display(), error = %why, "our repository store is damaged; making it afresh (the published tree stays)");
        remove_any(&gitdir).map_err(|source| SyncError::Io {
            op: "remove the damaged store",
            path: gitdir,
            source,
        })?;
        self.set_up_again()
    }

    /// One pass: make the published tree the commit `--ref` names. A store
    /// found damaged on the way is made afresh and the pass tried again,
    /// once: a restart would find it as damaged, and at the default
    /// --max-failures=0 the container would never come up again.
    pub fn pass(&mut self, cancel: &Cancel) -> Result<Outcome, SyncError> {
        match self.pass_once(cancel) {
            Err(SyncError::Git(e @ GitError::Store { .. })) if self.may_remake_store() => {
                self.remake_store(&e)?;
                self.pass_once(cancel)
            }
            result => result,
        }
    }

    fn pass_once(&mut self, cancel: &Cancel) -> Result<Outcome, SyncError> {
        self.repair_if_gone()?;
        let current = self.publisher.current();
        if let Some(shown) = self.shown.take().filter(|s| current != Some(*s)) {
            tracing::warn!(place = %self.publisher.place().display(), hash = %shown,
                "what readers see was changed behind our back (the link removed or pointed elsewhere, files at the top of the dest directory removed): publishing again");
        }
        let recipe = self.recipe()?;
        let depth = self.cfg.depth;
        // 1. What should be published? (A full hash needs no question.)
        // 3. Fetch it if the store lacks it, or lacks history below it
        // that --depth asks for (a restart with a larger one); also when
        // the tree is current (step 2), which is then left as it is. On
        // the connection step 1 used.
        let (layout, git_ref) = (&self.layout, &self.cfg.git_ref);
        let fetch_started = std::cell::Cell::new(None);
        let decide = |git: &GitRepo, target: &Target| {
            let hash = target.hash;
            let state = published_state(git, layout, current, &recipe, hash);
            let fetch = match state {
                Published::Current => {
                    let short = git.history_short_of(hash, depth);
                    if short {
                        tracing::info!(%hash, depth, "fetching the history --depth asks for");
                    }
                    short
                }
                _ => !git.has_commit(hash) || git.history_short_of(hash, depth),
            };
            if fetch {
                tracing::debug!(%hash, %git_ref, "fetching");
                fetch_started.set(Some(std::time::Instant::now()));
            }
            (state, fetch)
        };
        let (target, state, got) = match self.pinned {
            Some(hash) => {
                let target = Target {
                    hash,
                    remote_ref: None,
                };
                let (state, got) =
                    self.git
                        .fetch_if(&self.cfg.repo, &target, depth, cancel, decide)?;
                (target, state, got)
            }
            None => self.git.resolve_then_fetch(
                &self.cfg.repo,
                &self.cfg.git_ref,
                depth,
                cancel,
                decide,
            )?,
        };
        if let Some(t) = fetch_started.get() {
            tracing::debug!(hash = %target.hash, git_ref = %self.cfg.git_ref, ms = t.elapsed().as_millis() as u64, "fetched");
        }
        let found = Found { state, got };
        self.publish_target(target, found, current, &recipe, false, cancel)
    }

    /// Steps 2 to 5 for `target`, as steps 1 and 3 `found` it, `current`
    /// being published. `moved`: `target` is where the ref moved while
    /// this pass fetched what step 1 found.
    fn publish_target(
        &mut self,
        target: Target,
        found: Found,
        current: Option<Hash>,
        recipe: &Recipe,
        moved: bool,
        cancel: &Cancel,
    ) -> Result<Outcome, SyncError> {
        let (hash, Found { state, got }) = (target.hash, found);
        let depth = self.cfg.depth;
        let worktree = self.layout.worktree(hash);

        // 2. Already published, intact and made as asked: nothing to do
        // (but the history fetched below it).
        if state == Published::Current {
            if got.is_some() && self.git.history_short_of(hash, depth) {
                tracing::warn!(%hash, depth, "the remote sent less history than --depth asks for; going on with it");
                self.git.settle_depth(hash, depth);
            }
            self.shown = Some(hash);
            return Ok(Outcome::Unchanged { hash });
        }
        say_why_made_again(state, hash);
        check(cancel)?;

        // 3. The fetch is done. If a push landed since step 1, it brought
        // the newer commit: publish that rather than fail (which at
        // --max-failures=0 would end the process). Once: a ref that keeps
        // moving waits for the next pass.
        if let Some(got) = got.filter(|g| *g != hash) {
            if moved {
                return Err(GitError::Remote {
                    op: "fetch",
                    url: crate::redact::redact(&self.cfg.repo),
                    message: format!("{} moved again while it was fetched", self.cfg.git_ref),
                }
                .into());
            }
            tracing::info!(asked = %hash, hash = %got, git_ref = %self.cfg.git_ref, "the ref moved while it was fetched: publishing where it moved");
            let moved_to = Target {
                hash: got,
                remote_ref: target.remote_ref,
            };
            let state = published_state(&self.git, &self.layout, current, recipe, got);
            let again = if self.git.history_short_of(got, depth) {
                Some(self.git.fetch(&self.cfg.repo, &moved_to, depth, cancel)?)
            } else {
                None
            };
            let found = Found { state, got: again };
            return self.publish_target(moved_to, found, current, recipe, true, cancel);
        }
        let fetched = got.is_some() || moved;
        check(cancel)?;

        // 4. Materialise into a fresh directory.
        let made = self.make_tree_to_publish(hash, &worktree, current, recipe, cancel)?;

        // The pre-publish hook runs in the new tree, told the hash published
        // until now. As upstream, its failure does not stop the publish.
        let pre_publish_error = self.pre_publish.as_ref().and_then(|hook| {
            let previous = current.map(|h| h.to_string()).unwrap_or_default();
            hook.run_in(&hash.to_string(), &previous).err()
        });
        if let Some(e) = &pre_publish_error {
            tracing::error!(hook = "pre-publish-exechook", %hash, error = %e, "hook failed");
        }
        check(cancel)?;

        // 5. Publish atomically, then tell the world. A stop lets it finish.
        let _publishing = hold(cancel)?;
        self.publisher
            .publish(hash, &worktree, made.changed.as_ref())?;
        self.shown = Some(hash);
        if let Some(copy) = &made.stand_in {
            self.layout.mark_retired(copy);
        }
        if let Some(prev) = current.filter(|p| *p != hash) {
            self.layout.mark_retired(&self.layout.worktree(prev));
        }
        self.git.set_sync_branch(hash)?;
        Ok(Outcome::Updated {
            hash,
            previous: current,
            fetched,
            pre_publish_error,
        })
    }

    /// Step 4: make the tree of `hash` in `worktree`, a fresh directory,
    /// unless a tree made for this commit the same way is there exactly as
    /// made (kept since it was current, or made before a restart: dest
    /// mode's private tree): it is published again as it is. Anything else
    /// there is broken or not what readers see: start it again. If readers
    /// do see it (its repository was rebuilt), they are sent to a
    /// hard-linked stand-in first, so the tree never disappears under them.
    fn make_tree_to_publish(
        &mut self,
        hash: Hash,
        worktree: &Path,
        current: Option<Hash>,
        recipe: &Recipe,
        cancel: &Cancel,
    ) -> Result<Made, SyncError> {
        let readers_in_it = self.publisher.served_name() == Some(hash.to_string());
        // A publisher that copies files is told which paths changed, if the
        // tree published is another commit's, made the same way (the same
        // commit made again, or made another way, may hold other files),
        // and no pre-publish hook may have written others. (Found before
        // the tree is made: making it may take the published one's place.)
        let changed = current
            .filter(|c| {
                *c != hash
                    && self.publisher.uses_changes()
                    && self.pre_publish.is_none()
                    && self.git.recipe_of(&c.to_string()).as_ref() == Some(&recipe.text)
            })
            .and_then(|c| self.git.changed_paths(c, hash));
        let name = hash.to_string();
        // (Not for a pre-publish hook: it may share files with others.)
        let reusable = !readers_in_it
            && self.pre_publish.is_none()
            && worktree.is_dir()
            && self.git.recipe_of(&name).as_ref() == Some(&recipe.text)
            && self.git.worktree_unchanged(worktree, &name);
        // Readers see what follows, up to the publish: a stop lets it finish.
        let remaking_theirs = match readers_in_it {
            true => Some(hold(cancel)?),
            false => None,
        };
        let stand_in = if reusable {
            tracing::debug!(%hash, "the tree made for this commit is intact: publishing it again");
            self.own_tree = Some(hash);
            None
        } else {
            // In a partial clone, the contents the checkout reads, before
            // anything readers see is touched: a server that cannot send
            // them fails the pass here.
            let patterns = recipe.sparse.as_deref().map(SparsePatterns::parse);
            self.git
                .fill_partial(&self.cfg.repo, hash, patterns.as_ref(), cancel)?;
            let stand_in = (readers_in_it && worktree.is_dir())
                .then(|| self.send_readers_to_stand_in(hash, worktree))
                .flatten();
            let lender = self.publisher.last_published();
            let from = (lender, changed.as_ref());
            self.make_tree(hash, worktree, recipe, from, readers_in_it, cancel)?;
            stand_in
        };
        Ok(Made {
            changed,
            stand_in,
            _remaking_theirs: remaking_theirs,
        })
    }

    /// Step 4 proper: make `worktree` anew for `hash`, sharing what it can
    /// with the tree last published, `lender`, or taking that tree over
    /// when no one else may read or write it: readers are served a copy
    /// (dest mode), no hook runs in it, no stale worktree is to be kept,
    /// and this process made it (a restart looks at its files once,
    /// sharing them); `changed` then says what to write again. A failure
    /// leaves nothing half made, unless readers are in it
    /// (`readers_in_it`).
    fn make_tree(
        &mut self,
        hash: Hash,
        worktree: &Path,
        recipe: &Recipe,
        (lender, changed): (Option<Hash>, Option<&ChangedPaths>),
        readers_in_it: bool,
        cancel: &Cancel,
    ) -> Result<(), SyncError> {
        let own_tree = self.own_tree.take();
        remove_any(worktree).map_err(|source| SyncError::Io {
            op: "remove",
            path: worktree.to_path_buf(),
            source,
        })?;
        // The published tree lends its unchanged files, if made the same
        // way. Not to a tree a pre-publish hook is about to work in: a file
        // it edited in place would change under the published tree's readers.
        let base = lender.filter(|c| {
            *c != hash
                && self.pre_publish.is_none()
                && self.git.recipe_of(&c.to_string()).as_ref() == Some(&recipe.text)
        });
        let yours = changed.filter(|c| {
            Some(c.from) == base
                && own_tree == base
                && !self.publisher.readers_use_worktree()
                && self.cfg.ops.exechook.is_none()
                && self.cfg.stale_worktree_timeout.is_zero()
        });
        let made = self.materialise(hash, worktree, recipe, (base, yours), cancel);
        if made.is_ok() {
            self.own_tree = Some(hash);
        }
        // A half-made tree readers do not see only takes space (and a full
        // disk may be why it failed): drop it now.
        if made.is_err() && !readers_in_it {
            let _ = remove_any(worktree);
        }
        made
    }

    /// Publish a copy of the published `worktree` (broken as a worktree,
    /// whole as a tree), so it can be checked out again under readers' feet.
    /// Best effort: without a stand-in the tree is missing for a moment.
    fn send_readers_to_stand_in(&mut self, hash: Hash, worktree: &Path) -> Option<PathBuf> {
        let copy = self.layout.stand_in(hash);
        let made = remove_any(&copy)
            .and_then(|()| crate::layout::hardlink_copy(worktree, &copy))
            .map_err(|e| e.to_string())
            .and_then(|()| {
                self.publisher
                    .publish(hash, &copy, None)
                    .map_err(|e| e.to_string())
            });
        match made {
            Ok(()) => Some(copy),
            Err(e) => {
                tracing::warn!(%hash, error = %e, "no stand-in for the published tree while it is checked out again");
                let _ = remove_any(&copy);
                None
            }
        }
    }

    /// Step 7: remove stale worktrees (but those `in_use` by a hook) and
    /// unreachable objects. Returns how long until a kept worktree becomes
    /// removable, if any is waiting.
    pub fn clean(
        &mut self,
        cancel: &Cancel,
        in_use: &[Hash],
    ) -> Result<Option<Duration>, SyncError> {
        // The grace is for readers that resolved the link just before a
        // swap: in dest mode none read our trees (hooks in them are in use).
        let grace = match self.publisher.readers_use_worktree() {
            true => self.cfg.stale_worktree_grace,
            false => Duration::ZERO,
        };
        let keep_for = self.cfg.stale_worktree_timeout.max(grace);
        let current = self.publisher.current();
        let served = self.publisher.served_name();
        let (kept, next_due) =
            self.layout
                .clean_worktrees(&self.git, current, served.as_deref(), in_use, keep_for)?;
        let started = std::time::Instant::now();
        let gc = match self.git.gc(self.cfg.git_gc, &kept, self.cfg.depth, cancel) {
            // What the store lacks now, the next pass fetches (the
            // published tree's git files going with it, that tree is made
            // again then, readers kept on a copy meanwhile).
            Err(e @ GitError::Store { .. }) if self.may_remake_store() => {
                self.remake_store(&e)?;
                return Ok(next_due);
            }
            gc => gc?,
        };
        if let Some(stats) = gc {
            let duration_ms = started.elapsed().as_millis() as u64;
            let (objects, packs, loose) =
                (stats.objects_kept, stats.packs_removed, stats.loose_removed);
            // A repack of a big store is where the CPU of an update goes:
            // a long one shows at the default verbosity.
            if duration_ms >= 1000 {
                tracing::info!(
                    duration_ms,
                    objects_kept = objects,
                    packs_removed = packs,
                    loose_removed = loose,
                    "git gc done"
                );
            } else {
                tracing::debug!(
                    duration_ms,
                    objects_kept = objects,
                    packs_removed = packs,
                    loose_removed = loose,
                    "git gc done"
                );
            }
        }
        self.git
            .gc_submodules(self.cfg.git_gc, &kept, self.cfg.depth, cancel)?;
        self.git.release_caches();
        Ok(next_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Action};
    use crate::git::test_util::git;

    /// A syncer of a new repository with one commit, in link mode or
    /// (`dest`) dest mode; the published link's or directory's path.
    fn syncer(tmp: &Path, dest: bool) -> (Syncer, PathBuf) {
        let source = tmp.join("source");
        std::fs::create_dir(&source).unwrap();
        git(&source, &["init", "-q", "-b", "main"]);
        std::fs::write(source.join("index.html"), "v1").unwrap();
        git(&source, &["add", "index.html"]);
        git(&source, &["commit", "-qm", "v1"]);
        let published = tmp.join("published");
        let place = match dest {
            true => format!("--dest={}", published.display()),
            false => format!("--link={}", published.display()),
        };
        let args = [
            format!("--repo={}", source.display()),
            format!("--root={}", tmp.join("root").display()),
            place,
        ];
        let env = |_: &str| None;
        let Ok(Action::Run(cfg)) = config::parse(&args, &env, tmp) else {
            panic!("a configuration to run");
        };
        (Syncer::new(*cfg).unwrap(), published)
    }

    #[test]
    fn a_pass_left_behind_by_a_stop_publishes_nothing() {
        for dest in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let (mut s, published) = syncer(tmp.path(), dest);
            let cancel = Cancel::new();
            assert!(cancel.leave_behind());
            let e = s.pass(&cancel).expect_err("a pass left behind");
            assert!(matches!(e, SyncError::Cancelled), "{e}");
            assert!(!published.exists(), "dest mode {dest}: published anyway");
            assert_eq!(s.published(), None);
            // The same pass, not left behind, publishes: the test can fail.
            s.pass(&Cancel::new()).unwrap();
            assert!(published.join("index.html").is_file());
        }
    }

    #[test]
    fn a_damaged_store_is_made_afresh_at_most_once_an_hour() {
        for dest in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let (mut s, published) = syncer(tmp.path(), dest);
            s.pass(&Cancel::new()).unwrap();
            // Packs truncated, and the trees gone: the next tree is made
            // from the store alone.
            let damage = |s: &Syncer| {
                let packs = s.git.gitdir().join("objects/pack");
                for pack in std::fs::read_dir(packs).unwrap() {
                    let pack = pack.unwrap().path();
                    if pack.extension() == Some("pack".as_ref()) {
                        let file = std::fs::OpenOptions::new().write(true).open(&pack);
                        file.unwrap().set_len(40).unwrap();
                    }
                }
                std::fs::remove_dir_all(s.layout.worktree(s.published().unwrap())).unwrap();
            };
            let commit = |n: &str| {
                let source = tmp.path().join("source");
                std::fs::write(source.join("other.html"), n).unwrap();
                git(&source, &["add", "other.html"]);
                git(&source, &["commit", "-qm", n]);
            };
            damage(&s);
            commit("1");
            s.pass(&Cancel::new()).unwrap();
            assert_eq!(
                std::fs::read_to_string(published.join("index.html")).unwrap(),
                "v1"
            );
            // Soon after, the store is not made again: the pass fails.
            let before = s.published();
            damage(&s);
            commit("2");
            let e = s
                .pass(&Cancel::new())
                .expect_err("no second remake within the hour");
            assert!(matches!(e, SyncError::Git(GitError::Store { .. })), "{e}");
            assert_eq!(s.published(), before);
            // An hour later it is.
            s.remade_at = s.remade_at.map(|at| at - REMAKE_AT_MOST_EVERY);
            s.pass(&Cancel::new()).unwrap();
            assert_eq!(
                std::fs::read_to_string(published.join("other.html")).unwrap(),
                "2"
            );
            assert_eq!(
                std::fs::read_to_string(published.join("index.html")).unwrap(),
                "v1"
            );
        }
    }
}
