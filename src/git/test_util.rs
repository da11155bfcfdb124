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
