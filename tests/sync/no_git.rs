//! Syncing with no git binary on `PATH`.

use super::*;

#[test]
fn syncs_without_any_git_binary_on_path() {
    let f = Fixture::new(Transport::Http);
    let h = f.repo.commit(&[("f", "1")], "c1");
    let empty = f.tmp.path().join("empty-bin");
    fs::create_dir_all(&empty).unwrap();
    for url in [f.url(), f.repo.url()] {
        let root = f.tmp.path().join(format!("root-{}", url.len()));
        let mut cmd = git_sync(&[
            &format!("--repo={url}"),
            &format!("--root={}", root.display()),
            "--one-time",
        ]);
        cmd.env_clear().env("PATH", &empty);
        let mut p = spawn(cmd);
        assert_eq!(p.wait_exit(LONG), 0, "{}", p.log());
        assert_eq!(published(&root.join("site")).as_deref(), Some(h.as_str()));
    }
}
