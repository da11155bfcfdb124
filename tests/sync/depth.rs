//! `--depth`.

use super::*;

fn depth(t: Transport) {
    let f = Fixture::new(t);
    for i in 0..5 {
        f.repo.commit(&[("f", &i.to_string())], &format!("c{i}"));
    }
    f.sync_once(&["--depth=1"]);
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "1");
    assert!(f.root().join(".git/shallow").exists());
    let h = f.repo.commit(&[("f", "5")], "c5");
    f.sync_once(&["--depth=2"]);
    assert_published(&f, &h);
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "2");
    // A restart asking for more history brings it, the tree left as it is.
    use std::os::unix::fs::MetadataExt;
    let tree = || {
        fs::metadata(f.root().join(".worktrees").join(&h))
            .unwrap()
            .ino()
    };
    let before = tree();
    let log = f.sync_once(&["--depth=4"]);
    assert!(
        log.contains("fetching the history --depth asks for"),
        "{log}"
    );
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "4");
    f.sync_once(&["--depth=0"]);
    assert_eq!(git(&f.link(), &["rev-list", "--count", "HEAD"]), "6");
    assert!(!f.root().join(".git/shallow").exists());
    assert_eq!(tree(), before, "the tree was made again");
    git(&f.root(), &["fsck", "--no-progress"]);
    // Once there, nothing more is fetched.
    let log = f.sync_once(&["--depth=0"]);
    assert!(!log.contains("fetching the history"), "{log}");

    // All history asked for with a new commit, from a shallow store.
    let g = Fixture::new(match f.server {
        Some(_) => Transport::Http,
        None => Transport::File,
    });
    for i in 0..5 {
        g.repo.commit(&[("f", &i.to_string())], &format!("c{i}"));
    }
    g.sync_once(&["--depth=1"]);
    g.repo.commit(&[("f", "5")], "c5");
    g.sync_once(&["--depth=0"]);
    assert_eq!(git(&g.link(), &["rev-list", "--count", "HEAD"]), "6");
    assert!(!g.root().join(".git/shallow").exists());
    git(&g.root(), &["fsck", "--no-progress"]);
}

#[test]
fn depth_file() {
    depth(Transport::File);
}

#[test]
fn depth_http() {
    depth(Transport::Http);
}
