//! Submodules.

use super::*;

#[test]
fn a_submodule_without_a_url_is_said_to_have_none() {
    // A gitlink .gitmodules declares with no url (as git says it).
    let f = Fixture::new(Transport::File);
    let h = f.repo.commit(&[("top.txt", "top")], "top");
    let link = format!("160000,{h},lib");
    f.repo.git(&["update-index", "--add", "--cacheinfo", &link]);
    fs::write(
        f.repo.dir.join(".gitmodules"),
        "[submodule \"lib\"]\n\tpath = lib\n",
    )
    .unwrap();
    f.repo.git(&["add", ".gitmodules"]);
    f.repo.git(&["commit", "-q", "-m", "lib without a url"]);
    let log = f.fail_once(&[]);
    assert!(
        log.contains("no url found for submodule path \\\"lib\\\" in .gitmodules"),
        "{log}"
    );
    // Without submodules, the commit is published.
    f.sync_once(&["--submodules=off"]);
    assert_eq!(f.read("top.txt"), "top");
}

#[test]
fn submodules_share_their_unchanged_files_with_the_previous_tree_too() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(Transport::Http);
    let srv = f.tmp.path().join("srv");
    let sub = SourceRepo::new(&srv, "sub");
    sub.commit_numbered("", 10, &[], "sub");
    f.repo.commit(&[("top.txt", "top")], "top");
    add_submodule(&f.repo, "../sub", "libs/sub");
    let recursive = ["--submodules=recursive"];
    f.sync_once(&recursive);
    // As in git's own submodule clone, its origin is its URL.
    let origin = git(&f.link().join("libs/sub"), &["remote", "get-url", "origin"]);
    let sub_url = f.url().replace("/site", "/sub");
    assert_eq!(origin.trim(), sub_url);
    let ino = |p: &str| fs::metadata(f.link().join(p)).unwrap().ino();
    let shared = ino("libs/sub/0.txt");
    let clean = |f: &Fixture| {
        for dir in ["", "libs/sub"] {
            let status = git(&f.link().join(dir), &["status", "--porcelain"]);
            assert_eq!(status, "", "in {dir:?}");
        }
    };

    // The parent changes, the submodule does not.
    let h = f.repo.commit(&[("top.txt", "top 2")], "top 2");
    f.sync_once(&recursive);
    assert_published(&f, &h);
    assert_eq!(ino("libs/sub/0.txt"), shared);
    clean(&f);

    // The submodule moves on: what it did not change is still shared.
    sub.commit(&[("9.txt", "9, v2")], "sub v2");
    let allow = ["-c", "protocol.file.allow=always"];
    let update = ["submodule", "update", "-q", "--remote", "libs/sub"];
    f.repo.git(&[&allow[..], &update[..]].concat());
    let h = f.repo.commit(&[], "bump sub");
    f.sync_once(&recursive);
    assert_published(&f, &h);
    assert_eq!(f.read("libs/sub/9.txt"), "9, v2");
    assert_eq!(ino("libs/sub/0.txt"), shared);
    clean(&f);
}

#[test]
fn submodules_on_this_machine_need_protocol_file_allow_as_in_git() {
    // A repository must not be able to copy another local repository into
    // the published tree: git refuses file-protocol submodules by default.
    let f = Fixture::new(Transport::File);
    SourceRepo::new(&f.tmp.path().join("srv"), "private").commit(&[("p.txt", "p")], "p");
    f.repo.commit(&[("f", "1")], "one");
    add_submodule(&f.repo, "../private", "private");
    let log = f.fail_once(&[]);
    assert!(log.contains("protocol.file.allow:always"), "{log}");
    assert!(!f.link().exists());

    let h = f.repo.head();
    f.sync_once(&["--git-config=protocol.file.allow:always"]);
    assert_published(&f, &h);
    assert_eq!(f.read("private/p.txt"), "p");
}

#[test]
fn nested_submodules_recursive_shallow_and_off() {
    let f = Fixture::new(Transport::Http);
    let srv = f.tmp.path().join("srv");
    let nested = SourceRepo::new(&srv, "nested");
    nested.commit(&[("n.txt", "nested")], "nested");
    let sub = SourceRepo::new(&srv, "sub");
    sub.commit(&[("s.txt", "sub")], "sub");
    let server = f.server.as_ref().unwrap();
    add_submodule(&sub, &server.url("nested"), "nested");
    f.repo.commit(&[("top.txt", "top")], "top");
    // A relative URL, resolved against the parent's, as git does.
    add_submodule(&f.repo, "../sub", "libs/sub");
    // One marked `update = none` in .gitmodules: git leaves it out.
    add_submodule(&f.repo, "../sub", "optional");
    let none = [
        "config",
        "-f",
        ".gitmodules",
        "submodule.optional.update",
        "none",
    ];
    f.repo.git(&none);
    f.repo.git(&["commit", "-q", "-am", "optional stays out"]);

    f.sync_once(&["--submodules=recursive"]);
    assert_eq!(f.read("libs/sub/s.txt"), "sub");
    assert_eq!(f.read("libs/sub/nested/n.txt"), "nested");
    assert!(!f.link().join("optional/s.txt").exists());

    // The submodule moves on; the parent records the new commit.
    sub.commit(&[("s.txt", "sub v2")], "sub v2");
    f.repo.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "update",
        "-q",
        "--remote",
        "libs/sub",
    ]);
    f.repo.git(&["commit", "-q", "-am", "bump sub"]);
    f.sync_once(&["--submodules=recursive"]);
    assert_eq!(f.read("libs/sub/s.txt"), "sub v2");
    assert_eq!(f.read("libs/sub/nested/n.txt"), "nested");

    // Each submodule is a worktree git sees at the commit its parent
    // records, fetched --depth deep (hooks may run git in them), the nested
    // one too; and the whole tree is clean to git.
    let in_link = |dir: &str, args: &[&str]| git(&f.link().join(dir), args);
    for (parent, sub) in [("", "libs/sub"), ("libs/sub", "nested")] {
        let here = Path::new(parent).join(sub);
        let here = here.to_str().unwrap();
        assert_eq!(
            in_link(here, &["rev-parse", "HEAD"]),
            in_link(parent, &["rev-parse", &format!("HEAD:{sub}")]),
            "{here}"
        );
        assert_eq!(in_link(here, &["rev-list", "--count", "HEAD"]), "1");
    }
    assert_eq!(in_link("", &["status", "--porcelain"]), "");
    // `-`: not initialized, `+`: another commit checked out.
    let status = in_link("", &["submodule", "status", "--recursive"]);
    let off: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with(['-', '+']))
        .collect();
    assert_eq!(status.lines().count(), 3, "{status}");
    assert!(
        off.len() == 1 && off[0].starts_with('-') && off[0].ends_with(" optional"),
        "every submodule but the skipped one shows as checked out:\n{status}"
    );
    // Their registrations go with the worktrees that made them.
    f.sync_once(&["--submodules=recursive", "--stale-worktree-grace=0s"]);
    let current = published(&f.link()).unwrap();
    for store in ["libs_2fsub", "libs_2fsub/modules/nested"] {
        let admins = f.root().join(".git/modules").join(store).join("worktrees");
        let names: Vec<String> = fs::read_dir(&admins)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [current.as_str()], "{}", admins.display());
    }

    // All history asked for: the submodules get theirs with the next
    // commit of the parent (the one that has not moved too).
    f.repo.commit(&[("top.txt", "top1")], "deeper");
    f.sync_once(&["--submodules=recursive", "--depth=0"]);
    assert_eq!(in_link("libs/sub", &["rev-list", "--count", "HEAD"]), "3");
    assert_eq!(
        in_link("libs/sub/nested", &["rev-list", "--count", "HEAD"]),
        "1"
    );

    let h = f.repo.commit(&[("top.txt", "top2")], "shallow");
    f.sync_once(&["--submodules=shallow"]);
    assert_published(&f, &h);
    assert_eq!(f.read("libs/sub/s.txt"), "sub v2");
    assert!(!f.link().join("libs/sub/nested/n.txt").exists());

    let h = f.repo.commit(&[("top.txt", "top3")], "off");
    f.sync_once(&["--submodules=off"]);
    assert_published(&f, &h);
    assert!(!f.link().join("libs/sub/s.txt").exists());
    assert_eq!(f.read("top.txt"), "top3");

    // Garbage collection reaches the submodule stores: the old submodule
    // commit is gone, and a store no kept commit records is removed.
    let store = f.root().join(".git/modules/libs_2fsub");
    let packs = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("objects/pack"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(store.is_dir(), "no submodule store at {}", store.display());
    assert_eq!(packs(&store), 1);
    f.repo.git(&["rm", "-q", "libs/sub"]);
    f.repo.git(&["commit", "-q", "-m", "drop sub"]);
    f.sync_once(&["--submodules=recursive", "--stale-worktree-grace=0s"]);
    assert!(!store.exists(), "store of a dropped submodule kept");
}
