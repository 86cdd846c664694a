//! What makescope keeps on disk: make's database dumps compressed, the listing cache
//! beside the record, `gc` pruning old builds, and the one-line size notice.

use crate::harness::{rows, Test};

fn recursive() -> Test {
    Test::new()
        .makefile("## Build everything.\nall:\n\t$(MAKE) -C sub\n\techo top > top.txt\n")
        .file(
            "sub/Makefile",
            "all: leaf.txt\n## The leaf.\nleaf.txt:\n\techo leaf > $@\nclean:\n\trm -f leaf.txt\n",
        )
        .args(["make", "--no-trace"])
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn make_databases_are_kept_compressed_and_list_as_before() {
    let t = recursive();
    t.run().success();
    let makedb = t.path().join(".makescope/makedb");
    let dumps = files(&makedb);
    assert_eq!(dumps.len(), 2, "one dump per make: {dumps:?}");
    assert!(
        dumps.iter().all(|d| d.ends_with(".mkdb.zst")),
        "every dump compressed when the build ended: {dumps:?}"
    );
    let listing = t.then(["targets", "--recursive", "--json"]);
    listing.success();
    let json = listing.json();
    let sections = json["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 2, "{json:#}");
    assert!(
        sections.iter().all(|s| s["source"] == "dump"),
        "both listed from their compressed dumps: {json:#}"
    );
    assert!(sections[1]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "clean"));

    // The next build's makes find their dumps (same makefiles, same arguments) and write
    // none again.
    let before: Vec<_> = dumps
        .iter()
        .map(|d| {
            std::fs::metadata(makedb.join(d))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    t.run().success();
    assert_eq!(files(&makedb), dumps);
    let after: Vec<_> = dumps
        .iter()
        .map(|d| {
            std::fs::metadata(makedb.join(d))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    assert_eq!(before, after, "the dumps were reused, not rewritten");
}

#[test]
fn the_listing_cache_lives_beside_the_record_not_in_the_home_directory() {
    let home = tempfile::tempdir().unwrap();
    let t = recursive()
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME");
    t.run().success();
    let first = t.then(["targets", "--recursive"]);
    first.success();
    let cache = files(&t.path().join(".makescope/cache"));
    assert_eq!(cache.len(), 2, "the listings and the output: {cache:?}");
    assert!(cache[1].ends_with(".out.zst"), "the output: {cache:?}");
    let listings = files(&t.path().join(".makescope/cache").join(&cache[0]));
    assert_eq!(listings.len(), 2, "one listing per make: {listings:?}");
    assert!(listings.iter().all(|c| c.ends_with(".zst")), "{listings:?}");
    assert!(
        files(home.path()).is_empty(),
        "nothing written in the home directory"
    );
    // The second listing is the cached one, and the same.
    assert_eq!(t.then(["targets", "--recursive"]).stdout, first.stdout);
}

/// Each file of `dir` with its inode and modification time.
fn stamps(dir: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    files(dir)
        .into_iter()
        .map(|name| {
            let meta = std::fs::metadata(dir.join(&name)).unwrap();
            (name, meta.ino(), meta.modified().unwrap())
        })
        .collect()
}

#[test]
fn the_build_leaves_each_makes_listing_and_the_first_listing_only_reads_them() {
    let t = recursive();
    t.run().success();
    let cache = t.path().join(".makescope/cache");
    let dirs = files(&cache);
    assert_eq!(
        dirs.len(),
        1,
        "the record's listings, made as it built: {dirs:?}"
    );
    let listings = cache.join(&dirs[0]);
    let made = stamps(&listings);
    assert_eq!(made.len(), 2, "one listing per make: {made:?}");

    let first = t.then(["targets", "--recursive", "--json"]);
    first.success();
    assert_eq!(
        stamps(&listings),
        made,
        "the first listing used the build's listings and remade none"
    );
    // They are what the dumps give: the same listing with no cache at all.
    std::fs::remove_dir_all(&cache).unwrap();
    let fresh = t.then(["targets", "--recursive", "--json"]);
    fresh.success();
    assert_eq!(fresh.stdout, first.stdout);
    let sections = first.json()["sections"].as_array().unwrap().len();
    assert_eq!(sections, 2);
}

#[test]
fn gc_keeps_the_newest_builds_and_removes_the_rest_whole() {
    let t = recursive();
    for _ in 0..4 {
        t.run().success();
    }
    let db = t.db();
    let count = |sql: &str| rows(&db, sql)[0][0].clone();
    assert_eq!(count("SELECT count(*) FROM build"), "4");
    let newest = count("SELECT max(id) FROM build");
    let log_before = t.then(["log", "--json"]);
    log_before.success();

    let dry = t.then(["gc", "--keep", "2", "--dry-run"]);
    dry.success();
    assert!(
        dry.stdout
            .starts_with("would remove builds 1, 2 and keep 3, 4"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        count("SELECT count(*) FROM build"),
        "4",
        "a dry run removes nothing"
    );

    let gc = t.then(["gc", "--keep", "2"]);
    gc.success();
    assert!(
        gc.stdout.starts_with("removed builds 1, 2"),
        "{}",
        gc.stdout
    );
    let db = t.db();
    let count = |sql: &str| rows(&db, sql)[0][0].clone();
    assert_eq!(count("SELECT group_concat(id) FROM build"), "3,4");
    for table in ["make", "command", "process"] {
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM {table} WHERE build_id NOT IN (SELECT id FROM build)"
            )),
            "0",
            "no {table} row of a removed build is left"
        );
    }
    assert_eq!(
        count(
            "SELECT count(*) FROM environment WHERE id NOT IN (SELECT environment_id FROM command)"
        ),
        "0"
    );
    // What `log` shows by default is untouched.
    assert_eq!(count("SELECT max(id) FROM build"), newest);
    assert_eq!(t.then(["log", "--json"]).stdout, log_before.stdout);
    // The kept builds' dumps stay (they share them).
    assert_eq!(files(&t.path().join(".makescope/makedb")).len(), 2);
    t.then(["targets", "--recursive"]).success();

    let keep_none = t.then(["gc", "--keep", "0"]);
    keep_none.code(2);
    assert!(
        keep_none.stderr.contains("--keep must be at least 1"),
        "{}",
        keep_none.stderr
    );
}

#[test]
fn gc_refuses_while_a_build_is_being_recorded() {
    let t = Test::new()
        .makefile("all:\n\ttouch started\n\twhile [ ! -e stop ]; do sleep 0.02; done\n")
        .args(["make", "--no-trace"]);
    std::fs::write(t.path().join("stop"), "").unwrap();
    t.run().success();
    std::fs::remove_file(t.path().join("stop")).unwrap();
    std::fs::remove_file(t.path().join("started")).unwrap();
    let running = t.spawn(t.command());
    let started = std::time::Instant::now();
    while !t.path().join("started").exists() {
        assert!(
            started.elapsed() < crate::harness::TIMEOUT,
            "the build never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let gc = t.then(["gc", "--keep", "1"]);
    gc.code(2);
    assert!(
        gc.stderr.contains("build 2 is being recorded"),
        "{}",
        gc.stderr
    );
    std::fs::write(t.path().join("stop"), "").unwrap();
    running.wait().success();
    assert_eq!(rows(&t.db(), "SELECT count(*) FROM build")[0][0], "2");
    t.then(["gc", "--keep", "1"]).success();
    assert_eq!(
        rows(&t.db(), "SELECT group_concat(id) FROM build")[0][0],
        "2"
    );
}

#[test]
fn a_record_past_the_size_threshold_is_said_once() {
    let t = recursive().env("MAKESCOPE_SIZE_NOTICE", "1000");
    let first = t.run();
    first.success();
    assert!(
        first.stderr.contains(".makescope holds ") && first.stderr.contains("makescope gc"),
        "the first build crosses 1 kB: {}",
        first.stderr
    );
    // Below its threshold, nothing is said (when a build passes one is unit-tested:
    // gc::tests::the_notice_comes_once_per_doubling).
    let quiet = recursive().env("MAKESCOPE_SIZE_NOTICE", "1000000000000");
    let second = quiet.run();
    second.success();
    assert!(!second.stderr.contains(" holds "), "{}", second.stderr);
}
