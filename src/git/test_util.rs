//! Helpers shared by this module's unit tests.

use std::path::Path;
use std::process::Command;

/// Run the git CLI in `dir` (no system or user config); its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with(dir, args, &[], "")
}

/// [`git`] with `input` on its stdin.
pub fn git_with_input(dir: &Path, args: &[&str], input: &str) -> String {
    git_with(dir, args, &[], input)
}

/// [`git`] with more environment variables, and `input` on its stdin.
pub fn git_with(dir: &Path, args: &[&str], env: &[(&str, &str)], input: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `len` bytes that do not compress, the same for the same `seed`.
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A commit (no parent, no ref) of `files`: paths with `/` and their text.
pub fn commit_files(repo: &git2::Repository, files: &[(&str, &str)]) -> git2::Oid {
    let entries: Vec<_> = files.iter().map(|&(p, text)| (p, 0o100644, text)).collect();
    commit_entries(repo, &entries)
}

/// A commit (no parent, no ref) of `entries`: path, mode and content (a
/// symlink's target; a gitlink's commit, in hex).
pub fn commit_entries(repo: &git2::Repository, entries: &[(&str, u32, &str)]) -> git2::Oid {
    let mut index = git2::Index::new().unwrap();
    for &(path, mode, content) in entries {
        let id = match mode {
            0o160000 => content.parse().unwrap(),
            _ => repo.blob(content.as_bytes()).unwrap(),
        };
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            file_size: 0,
            id,
            flags: path.len() as u16,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry).unwrap();
    }
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    let who = git2::Signature::now("t", "t@t").unwrap();
    repo.commit(None, &who, &who, "c", &tree, &[]).unwrap()
}

/// A tree of `entries` (mode, name, id) written as given, unchecked: a
/// hand-made tree may name anything, twice, or an object the store lacks.
pub fn raw_tree(repo: &git2::Repository, entries: &[(&str, &str, git2::Oid)]) -> git2::Oid {
    let mut data = Vec::new();
    for (mode, name, id) in entries {
        data.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        data.extend_from_slice(id.as_bytes());
    }
    let odb = repo.odb().unwrap();
    odb.write(git2::ObjectType::Tree, &data).unwrap()
}
