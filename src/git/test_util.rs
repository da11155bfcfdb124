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
    let mut index = git2::Index::new().unwrap();
    for (path, text) in files {
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: repo.blob(text.as_bytes()).unwrap(),
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
