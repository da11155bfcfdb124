//! Reading the refs of a local repository that keeps them in git's
//! reftable format (`git init --ref-format=reftable`, git 2.45 and later;
//! the default of git 3). libgit2 refuses to open such a repository
//! (`extensions.refstorage`), so git-sync reads its refs itself and its
//! objects through an object database opened on its `objects` directory.
//!
//! The format (git's `Documentation/technical/reftable`): `reftable/
//! tables.list` names a stack of tables, oldest first; a newer table's
//! record for a name replaces an older one's, and a deletion record
//! removes it. A table is a header, blocks and a footer; its ref blocks
//! come first, each a type byte `r`, a 24-bit length, prefix-compressed
//! records, and a restart table we have no use for when reading them all.
//! Only what a fetch needs is read: names and what they point at (log
//! blocks, indexes and object blocks are skipped). A linked worktree has a
//! stack of its own (`.git/worktrees/<name>/reftable`) for its HEAD and
//! other per-worktree refs, read over the main one's.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The refs of a reftable repository, the stack merged.
#[derive(Debug)]
pub struct RefTable {
    refs: BTreeMap<String, Value>,
}

#[derive(Debug)]
enum Value {
    Object(git2::Oid),
    Symbolic(String),
}

/// Why a reftable could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReftableError {
    #[error("read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },
}

/// Where a local repository keeps its reftables: its git directory (the
/// main one, holding the objects and the shared refs) and, for a linked
/// worktree (`git worktree add`), that worktree's own directory, whose
/// stack holds its HEAD and other per-worktree refs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reftables {
    pub gitdir: PathBuf,
    worktree: Option<PathBuf>,
}

impl Reftables {
    /// The reftables of the repository at `path` (a work tree holding
    /// `.git`, a bare repository, or a linked worktree whose `.git` file
    /// names its directory), if it keeps its refs in them.
    pub fn find(path: &Path) -> Option<Self> {
        let has_tables = |dir: &Path| dir.join("reftable/tables.list").is_file();
        if let Some(gitdir) = [path.join(".git"), path.to_path_buf()]
            .into_iter()
            .find(|dir| has_tables(dir))
        {
            return Some(Reftables {
                gitdir,
                worktree: None,
            });
        }
        // `gitdir: <main>/.git/worktrees/<name>`, possibly relative.
        let file = fs::read_to_string(path.join(".git")).ok()?;
        let own = path.join(file.strip_prefix("gitdir:")?.trim());
        let common = fs::read_to_string(own.join("commondir")).ok()?;
        let gitdir = fs::canonicalize(own.join(common.trim())).ok()?;
        (has_tables(&gitdir) && has_tables(&own)).then_some(Reftables {
            gitdir,
            worktree: Some(own),
        })
    }

    /// The directories holding the tables: the repository's, then a
    /// linked worktree's own (its HEAD).
    pub fn dirs(self) -> Vec<PathBuf> {
        std::iter::once(self.gitdir).chain(self.worktree).collect()
    }

    /// The refs as the repository (or linked worktree) at the path sees
    /// them: its own per-worktree refs over the shared ones.
    pub fn read(&self) -> Result<RefTable, ReftableError> {
        let mut table = RefTable::read(&self.gitdir)?;
        if let Some(own) = &self.worktree {
            let own = RefTable::read(own)?;
            table.refs.retain(|name, _| !per_worktree(name));
            table.refs.extend(own.refs);
        }
        Ok(table)
    }
}

/// Whether each worktree keeps ref `name` for itself (git's
/// `gitrepository-layout`): HEAD and other names outside `refs/`, and
/// `refs/worktree/`, `refs/bisect/`, `refs/rewritten/`.
fn per_worktree(name: &str) -> bool {
    !name.starts_with("refs/")
        || ["refs/worktree/", "refs/bisect/", "refs/rewritten/"]
            .iter()
            .any(|p| name.starts_with(p))
}

impl RefTable {
    /// Read every table of the stack of `gitdir`. A writer compacting the
    /// stack meanwhile removes tables the list we read still names: as git
    /// does, read the list again then.
    fn read(gitdir: &Path) -> Result<Self, ReftableError> {
        let dir = gitdir.join("reftable");
        // About a second in all, as compactions of a busy stack go on.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::read_stack(&dir) {
                Err(ReftableError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempt < 20 =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
                }
                other => return other,
            }
        }
    }

    fn read_stack(dir: &Path) -> Result<Self, ReftableError> {
        let list = read(&dir.join("tables.list"))?;
        let mut refs = BTreeMap::new();
        for name in String::from_utf8_lossy(&list)
            .lines()
            .filter(|l| !l.is_empty())
        {
            let path = dir.join(name);
            let data = read(&path)?;
            Table::parse(&data, &mut refs).map_err(|what| ReftableError::Format {
                path: path.clone(),
                what,
            })?;
        }
        Ok(RefTable { refs })
    }

    /// What `name` finally points at, through symbolic refs.
    pub fn resolve(&self, name: &str) -> Option<git2::Oid> {
        let mut name = name;
        // As git: at most five levels of symbolic refs.
        for _ in 0..=5 {
            match self.refs.get(name)? {
                Value::Object(id) => return Some(*id),
                Value::Symbolic(target) => name = target,
            }
        }
        None
    }

    /// Every ref name (symbolic ones included).
    pub fn names(&self) -> Vec<String> {
        self.refs.keys().cloned().collect()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ReftableError> {
    fs::read(path).map_err(|source| ReftableError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A table being read: its bytes and the sizes its version sets.
struct Table<'a> {
    data: &'a [u8],
    hash_len: usize,
    block_size: usize,
    header_len: usize,
    footer_len: usize,
}

impl<'a> Table<'a> {
    /// Merge the ref records of the table `data` into `refs` (a record
    /// replaces an older table's; a deletion removes it).
    fn parse(data: &'a [u8], refs: &mut BTreeMap<String, Value>) -> Result<(), String> {
        let table = Table::new(data)?;
        let refs_end = data.len() - table.footer_len;
        let mut at = 0;
        let mut first = true;
        while at < refs_end {
            let type_at = if first { at + table.header_len } else { at };
            if data.get(type_at) != Some(&b'r') {
                break; // an index, object or log block: no more refs
            }
            let block_len = uint(data, type_at + 1, 3)? as usize;
            let block_end = at + block_len;
            table.parse_block(type_at + 4, block_end, refs)?;
            at = table.next_block(block_end, refs_end);
            first = false;
        }
        Ok(())
    }

    fn new(data: &'a [u8]) -> Result<Self, String> {
        if data.len() < 24 || &data[..4] != b"REFT" {
            return Err("not a reftable (no REFT header)".into());
        }
        let (header_len, footer_len, hash_len) = match data[4] {
            1 => (24, 68, 20),
            2 => match data.get(24..28) {
                Some(b"sha1") => (28, 72, 20),
                None => return Err("truncated".into()),
                Some(other) => {
                    return Err(format!(
                        "object format {:?} (git-sync reads SHA-1 repositories)",
                        String::from_utf8_lossy(other)
                    ))
                }
            },
            v => return Err(format!("unknown reftable version {v}")),
        };
        if data.len() < header_len + footer_len {
            return Err("truncated".into());
        }
        Ok(Table {
            data,
            hash_len,
            block_size: uint(data, 5, 3)? as usize,
            header_len,
            footer_len,
        })
    }

    /// Where the block after one ending at `end` starts: blocks of an
    /// aligned table are padded with zeros to the block size.
    fn next_block(&self, end: usize, limit: usize) -> usize {
        let mut at = end;
        if self.block_size > 0 {
            at = end.div_ceil(self.block_size) * self.block_size;
        }
        // Whatever the writer did, padding is zeros and a block type is not.
        while at < limit && self.data[at] == 0 {
            at += 1;
        }
        at.min(limit)
    }

    /// The records of the ref block whose records start at `at` and which
    /// ends (restart table included) at `end`.
    fn parse_block(
        &self,
        mut at: usize,
        end: usize,
        refs: &mut BTreeMap<String, Value>,
    ) -> Result<(), String> {
        let data = self.data;
        if end > data.len() || end < 2 {
            return Err("a ref block runs past the end of the table".into());
        }
        let restarts = uint(data, end - 2, 2)? as usize;
        let records_end = end
            .checked_sub(2 + 3 * restarts)
            .filter(|&e| e >= at)
            .ok_or("a ref block's restart table overlaps its records")?;
        let mut name: Vec<u8> = Vec::new();
        while at < records_end {
            let prefix = varint(data, &mut at)? as usize;
            let suffix_and_type = varint(data, &mut at)?;
            let (suffix, kind) = ((suffix_and_type >> 3) as usize, suffix_and_type & 7);
            if prefix > name.len() {
                return Err("a record's name prefix is longer than the previous name".into());
            }
            name.truncate(prefix);
            name.extend_from_slice(bytes(data, at, suffix)?);
            at += suffix;
            varint(data, &mut at)?; // update index delta
            let key = String::from_utf8_lossy(&name).into_owned();
            match kind {
                0 => {
                    refs.remove(&key);
                }
                1 | 2 => {
                    let id = git2::Oid::from_bytes(bytes(data, at, self.hash_len)?)
                        .map_err(|e| e.message().to_string())?;
                    // Type 2 adds the peeled target, which we peel ourselves.
                    at += self.hash_len * kind as usize;
                    refs.insert(key, Value::Object(id));
                }
                3 => {
                    let len = varint(data, &mut at)? as usize;
                    let target = String::from_utf8_lossy(bytes(data, at, len)?).into_owned();
                    at += len;
                    refs.insert(key, Value::Symbolic(target));
                }
                other => return Err(format!("unknown ref value type {other}")),
            }
        }
        Ok(())
    }
}

fn bytes(data: &[u8], at: usize, len: usize) -> Result<&[u8], String> {
    at.checked_add(len)
        .and_then(|end| data.get(at..end))
        .ok_or_else(|| "a record runs past the end of the table".to_string())
}

/// A big-endian unsigned integer of `len` bytes at `at`.
fn uint(data: &[u8], at: usize, len: usize) -> Result<u64, String> {
    Ok(bytes(data, at, len)?
        .iter()
        .fold(0u64, |n, &b| (n << 8) | u64::from(b)))
}

/// git's offset varint (as in packs): seven bits a byte, most significant
/// first, each continuation adding one.
fn varint(data: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut next = || {
        let byte = data
            .get(*at)
            .copied()
            .ok_or("a varint runs past the end of the table");
        *at += 1;
        byte
    };
    let mut byte = next()?;
    let mut value = u64::from(byte & 0x7f);
    while byte & 0x80 != 0 {
        byte = next()?;
        value = value
            .checked_add(1)
            .and_then(|v| v.checked_mul(128))
            .ok_or("a varint overflows")?
            | u64::from(byte & 0x7f);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_util::{git_with, git_with_input};

    #[test]
    fn refs_of_a_stack_read_as_git_lists_them() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        // Tables left stacked (git compacts small ones on its own): the
        // deletion below is a record in a newer table than the branch's.
        let git = |dir: &Path, args: &[&str]| {
            git_with(
                dir,
                args,
                &[("GIT_TEST_REFTABLE_AUTOCOMPACTION", "false")],
                "",
            )
        };
        git(dir, &["init", "-q", "--ref-format=reftable", "-b", "main"]);
        std::fs::write(dir.join("a"), "a").unwrap();
        git(dir, &["add", "a"]);
        git(dir, &["commit", "-qm", "a"]);
        git(dir, &["tag", "light"]);
        git(dir, &["tag", "-a", "annotated", "-m", "a"]);
        let head = git(dir, &["rev-parse", "HEAD"]).trim().to_string();
        // Enough refs for several blocks, then tables stacked on top, one
        // of them deleting a branch.
        let many: String = (0..400)
            .map(|i| format!("create refs/pull/{i}/head {head}\n"))
            .collect();
        git_with_input(dir, &["update-ref", "--stdin"], &many);
        git(dir, &["branch", "gone"]);
        git(dir, &["branch", "-D", "gone"]);
        git(dir, &["branch", "dev"]);
        let tables = std::fs::read_to_string(dir.join(".git/reftable/tables.list")).unwrap();
        assert!(tables.lines().count() >= 3, "{tables}");
        let check = |what: &str| {
            let table = Reftables::find(dir).unwrap().read().unwrap();
            let listed = git(dir, &["for-each-ref", "--format=%(refname) %(objectname)"]);
            let ours: Vec<String> = table
                .names()
                .into_iter()
                .filter(|n| n != "HEAD")
                .map(|n| format!("{n} {}", table.resolve(&n).unwrap()))
                .collect();
            assert_eq!(ours.join("\n"), listed.trim(), "{what}");
            assert_eq!(table.resolve("HEAD").unwrap().to_string(), head);
            assert!(table.resolve("refs/heads/gone").is_none(), "{what}");
        };
        check("a stack of tables");
        git(dir, &["pack-refs", "--all"]);
        check("compacted into one");
        assert!(Reftables::find(t.path().join("a").as_path()).is_none());
    }

    #[test]
    fn a_linked_worktree_sees_its_own_head_over_the_shared_refs() {
        let t = tempfile::tempdir().unwrap();
        let (main, linked) = (t.path().join("main"), t.path().join("linked"));
        std::fs::create_dir(&main).unwrap();
        let git = |dir: &Path, args: &[&str]| git_with(dir, args, &[], "").trim().to_string();
        git(
            &main,
            &["init", "-q", "--ref-format=reftable", "-b", "main"],
        );
        git(&main, &["commit", "-q", "--allow-empty", "-m", "on main"]);
        git(
            &main,
            &["worktree", "add", "-q", "../linked", "-b", "feature"],
        );
        git(
            &linked,
            &["commit", "-q", "--allow-empty", "-m", "on feature"],
        );
        git(&linked, &["update-ref", "refs/worktree/mine", "HEAD"]);
        let (on_main, on_feature) = (
            git(&main, &["rev-parse", "HEAD"]),
            git(&linked, &["rev-parse", "HEAD"]),
        );

        let tables = Reftables::find(&linked).unwrap();
        assert_eq!(tables.gitdir, main.join(".git").canonicalize().unwrap());
        let refs = tables.read().unwrap();
        let at = |name: &str| refs.resolve(name).map(|id| id.to_string());
        assert_eq!(at("HEAD").as_deref(), Some(on_feature.as_str()));
        assert_eq!(at("refs/heads/main").as_deref(), Some(on_main.as_str()));
        assert_eq!(
            at("refs/heads/feature").as_deref(),
            Some(on_feature.as_str())
        );
        assert!(at("refs/worktree/mine").is_some());

        let refs = Reftables::find(&main).unwrap().read().unwrap();
        assert_eq!(refs.resolve("HEAD").unwrap().to_string(), on_main);
        assert!(refs.resolve("refs/worktree/mine").is_none());
    }

    #[test]
    fn a_table_compacted_away_while_read_means_reading_the_list_again() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        git_with(
            dir,
            &["init", "-q", "--ref-format=reftable", "-b", "main"],
            &[],
            "",
        );
        git_with(dir, &["commit", "-q", "--allow-empty", "-m", "a"], &[], "");
        let list = dir.join(".git/reftable/tables.list");
        let good = std::fs::read_to_string(&list).unwrap();
        // As a reader sees it when a compaction removed a table between
        // its read of the list and of the table; the list is then renamed
        // into place by the compacting writer.
        std::fs::write(&list, "0x000000000001-0x000000000009-gone.ref\n").unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            // Renamed, as git writes it: written in place, a reader may
            // find it empty (no tables) between truncation and write.
            let next = list.with_extension("lock");
            std::fs::write(&next, good).unwrap();
            std::fs::rename(&next, &list).unwrap();
        });
        let table = RefTable::read(&dir.join(".git")).unwrap();
        writer.join().unwrap();
        assert!(table.resolve("refs/heads/main").is_some());

        // A table missing for good is an error, after a while.
        std::fs::write(dir.join(".git/reftable/tables.list"), "gone.ref\n").unwrap();
        let e = RefTable::read(&dir.join(".git")).unwrap_err();
        assert!(e.to_string().contains("gone.ref"), "{e}");
    }

    #[test]
    fn a_damaged_table_is_an_error_not_a_panic() {
        // A version 1 header of block size 0, one block, a footer's room.
        let table = |block: &[u8]| {
            [
                b"REFT\x01\x00\x00\x00".as_slice(),
                &[0u8; 16],
                block,
                &[0u8; 68],
            ]
            .concat()
        };
        let records = [&b"r\x00\x00\x90"[..], &[0x80u8; 100], b"\x00\x00"].concat();
        for data in [
            Vec::new(),
            b"REFT".to_vec(),
            b"NOPE".iter().chain(&[0u8; 100]).copied().collect(),
            table(b"r\xff\xff\xff"),
            table(&records),
            table(b"r\x00\x00\x1e\x05\x0b"),
            // A version 2 header cut before its object format.
            b"REFT\x02".iter().chain(&[0u8; 21]).copied().collect(),
            // A symbolic ref whose target is said to be 2^64 - 11 bytes long.
            table(b"r\x00\x00\x2c\x00\x0bx\x00\x80\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x75\x00\x00"),
        ] {
            let mut refs = BTreeMap::new();
            assert!(Table::parse(&data, &mut refs).is_err(), "{data:?}");
        }
    }

    #[test]
    fn a_table_cut_or_with_any_byte_changed_never_panics() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let git = |args: &[&str]| git_with(dir, args, &[], "");
        git(&["init", "-q", "--ref-format=reftable", "-b", "main"]);
        git(&["commit", "-q", "--allow-empty", "-m", "a"]);
        git(&["tag", "-a", "annotated", "-m", "a"]);
        git(&["symbolic-ref", "refs/heads/alias", "refs/heads/main"]);
        git(&["pack-refs", "--all"]);
        let list = std::fs::read_to_string(dir.join(".git/reftable/tables.list")).unwrap();
        let good = std::fs::read(dir.join(".git/reftable").join(list.trim())).unwrap();
        let mut refs = BTreeMap::new();
        Table::parse(&good, &mut refs).unwrap();
        assert_eq!(refs.len(), 4, "{refs:?}");
        for at in 0..good.len() {
            let mut damaged = vec![good[..at].to_vec()];
            for byte in [0x00, 0x02, 0x7f, 0x80, 0xff] {
                let mut d = good.clone();
                d[at] = byte;
                damaged.push(d.clone());
                d.truncate(at.max(26));
                damaged.push(d);
            }
            for d in damaged {
                let _ = Table::parse(&d, &mut BTreeMap::new());
            }
        }
    }
}
