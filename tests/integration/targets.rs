//! `makescope targets` against real GNU make on the fixtures in tests/fixtures/targets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::harness::{Output, Test};

/// A fixture copied into a temporary directory, included makefiles older than the
/// makefiles that include them (so make would want to remake them), with a listing
/// cache of its own outside that directory.
struct Fixture {
    test: Test,
    cache: tempfile::TempDir,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let cache = tempfile::tempdir().unwrap();
        let test = Test::new()
            .fixture(&format!("targets/{name}"))
            .env("MAKESCOPE_CACHE_DIR", cache.path());
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800); // 2020-01-01
        for mk in ["rules.mk", "src/rules.mk"] {
            let path = test.path().join(mk);
            if path.exists() {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(old)
                    .unwrap();
            }
        }
        Fixture { test, cache }
    }

    fn path(&self) -> &Path {
        self.test.path()
    }

    /// `makescope [targets] ARGS` in `dir` (`targets` added unless `args` names it).
    fn makescope(&self, dir: &Path, args: &[&str]) -> Output {
        let mut command = self.test.command();
        if !args.contains(&"targets") {
            command.arg("targets");
        }
        command.current_dir(dir).args(args);
        self.test.run_command(command)
    }

    fn json(&self, dir: &Path, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.makescope(dir, &all);
        output.success();
        output.json()
    }

    /// What the plugin dumps: make's database at exit (here taken with `make -p`), of
    /// the makefile in `dir`, written to `to`.
    fn dump(&self, dir: &Path, to: &Path) {
        let mut make = self.test.program("make");
        make.current_dir(dir)
            .args(["-pq", "--eval=%: override SHELL = /bin/false", ".DEFAULT"])
            .env("LC_ALL", "C");
        let output = self.test.run_command(make);
        std::fs::write(to, output.stdout_bytes).unwrap();
    }
}

fn target<'a>(section: &'a Value, name: &str) -> &'a Value {
    section["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name} in {section:#}"))
}

fn names(section: &Value) -> Vec<String> {
    section["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// `file:line` of a place, the file relative to `base`.
fn place(value: &Value, base: &Path) -> String {
    if value.is_null() {
        return "-".into();
    }
    let file = Path::new(value["file"].as_str().unwrap());
    let base = std::fs::canonicalize(base).unwrap();
    let shown = file
        .strip_prefix(&base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| file.to_path_buf());
    format!("{}:{}", shown.display(), value["line"])
}

#[test]
fn every_kind_of_target_with_its_location_and_doc() {
    let fx = Fixture::new("basic");
    let json = fx.json(fx.path(), &[]);
    assert_eq!(json["version"], 1);
    let s = &json["sections"][0];
    let base = fx.path();

    // Phony, default goal from .DEFAULT_GOAL, `target: ## doc`.
    let check = target(s, "check");
    assert_eq!(
        (check["phony"].as_bool(), check["default_goal"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(s["default_goal"], "check");
    assert_eq!(place(&check["location"], base), "Makefile:11");
    assert_eq!(place(&check["recipe"], base), "Makefile:12");
    assert_eq!(check["doc"], "Run the tests.");
    // `#: doc` above the rule.
    assert_eq!(target(s, "clean")["doc"], "Remove what the build made.");
    // Inline `##` wins over the `##` line above; order-only prerequisites apart.
    let all = target(s, "all");
    assert_eq!(all["doc"], "the default without .DEFAULT_GOAL");
    assert_eq!(all["default_goal"], false);
    assert_eq!(all["prerequisites"], serde_json::json!(["prog", "docs"]));
    assert_eq!(all["order_only"], serde_json::json!(["outdir"]));
    // Not phony; two rules for one target: prerequisites merged, location of the recipe's rule.
    let prog = target(s, "prog");
    assert_eq!(prog["phony"], false);
    assert_eq!(place(&prog["location"], base), "Makefile:16");
    let mut pre: Vec<_> = prog["prerequisites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    pre.sort();
    assert_eq!(pre, ["main.o", "util.o"]);
    // Double-colon rules: one entry, the first rule's location, all prerequisites.
    let docs = target(s, "docs");
    assert_eq!(docs["double_colon"], true);
    assert_eq!(place(&docs["location"], base), "Makefile:20");
    assert_eq!(docs["prerequisites"].as_array().unwrap().len(), 2);
    // $(eval) of a define: the location is the line of the $(eval).
    for t in ["tool-alpha", "tool-beta"] {
        assert_eq!(place(&target(s, t)["location"], base), "Makefile:32");
    }
    // A recipe from a `define`d variable.
    assert_eq!(
        place(&target(s, "release")["location"], base),
        "Makefile:39"
    );
    // No recipe: found by reading the makefiles (not the target-specific variable line).
    let debug = target(s, "debug");
    assert!(debug["recipe"].is_null());
    assert_eq!(place(&debug["location"], base), "Makefile:44");
    // An included makefile: the location points into it, its doc comment too.
    let install = target(s, "install");
    assert_eq!(place(&install["location"], base), "rules.mk:4");
    assert_eq!(install["doc"], "Install the program.");
    // Files only mentioned as prerequisites and special targets are not targets.
    let listed = names(s);
    for absent in [
        "main.o", "util.o", "README", "NEWS", ".PHONY", ".DEFAULT", "Makefile",
    ] {
        assert!(
            !listed.iter().any(|n| n == absent),
            "{absent} listed: {listed:?}"
        );
    }
    // Pattern rules apart, built-in ones left out.
    let patterns = s["pattern_rules"].as_array().unwrap();
    assert_eq!(patterns.len(), 1, "{patterns:?}");
    assert_eq!(patterns[0]["targets"], serde_json::json!(["%.o"]));
    assert_eq!(place(&patterns[0]["recipe"], base), "Makefile:47");
}

#[test]
fn aligned_text_listing() {
    let fx = Fixture::new("basic");
    let output = fx.makescope(fx.path(), &[]);
    output.success();
    insta::assert_snapshot!("basic_listing", output.stdout);
    let output = fx.makescope(fx.path(), &["--phony", "--prereqs"]);
    insta::assert_snapshot!("basic_phony_prereqs", output.stdout);
}

/// Every file under `dir`: content and modification time.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            let content = if meta.is_file() {
                std::fs::read(entry.path()).unwrap()
            } else {
                Vec::new()
            };
            out.insert(entry.path(), (content, meta.modified().unwrap()));
        }
    }
    out
}

#[test]
fn listing_never_changes_the_tree() {
    // The threat is real: plain `make -pq` rewrites rules.mk through its rule.
    let plain = Fixture::new("basic");
    let mut make = plain.test.program("make");
    make.arg("-pq");
    plain.test.run_command(make);
    assert!(
        plain.path().join("listed-by-make").exists(),
        "the fixture no longer tempts make"
    );

    for (fixture, dir) in [("basic", ""), ("forward", "build")] {
        let fx = Fixture::new(fixture);
        let before = tree(fx.path());
        for args in [&[][..], &["--json"], &["--phony", "--prereqs"]] {
            fx.makescope(&fx.path().join(dir), args).success();
        }
        assert_eq!(
            tree(fx.path()),
            before,
            "listing {fixture} changed the tree"
        );
    }
}

#[test]
fn follows_a_default_rule_that_forwards_to_another_make() {
    let fx = Fixture::new("forward");
    let build = fx.path().join("build");
    let json = fx.json(&build, &[]);
    let s = &json["sections"][0];
    // The forwarder's own targets, and the targets of the make it forwards to.
    assert_eq!(
        place(&target(s, "all")["location"], fx.path()),
        "build/Makefile:4"
    );
    let check = target(s, "check");
    assert_eq!(check["phony"], true);
    assert_eq!(place(&check["location"], fx.path()), "src/Makefile:4");
    assert_eq!(check["doc"], "Run the test suite.");
    assert_eq!(
        place(&target(s, "lint")["location"], fx.path()),
        "src/rules.mk:2"
    );
    // In text, locations are relative to where makescope runs.
    let text = fx.makescope(&build, &["--phony"]).stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("check") && l.contains("../src/Makefile:4")),
        "{text}"
    );
    // --no-follow: only the forwarder.
    let json = fx.json(&build, &["--no-follow"]);
    assert!(!names(&json["sections"][0]).contains(&"check".to_string()));
}

#[test]
fn no_makefile_is_one_clear_error() {
    let output = Test::new().args(["targets"]).run();
    assert_eq!(output.code, Some(2));
    let stderr = output.stderr;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no makefile"), "{stderr}");
}

#[test]
fn a_broken_makefile_is_one_clear_error() {
    let output = Test::new()
        .makefile("all:\n    echo spaces, not a tab\n")
        .args(["targets"])
        .run();
    assert_eq!(output.code, Some(2));
    let stderr = output.stderr;
    assert!(
        stderr.contains("Makefile:2: *** missing separator"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// --recursive, from a record.

/// A record holding one build whose makes ran in `dirs` (level = position), each with
/// the dump at the same position (None: no dump).
fn record(path: &Path, makes: &[(&Path, &[&str], Option<&Path>)]) {
    use makescope::store::{BuildEnd, MakeEnd, NewBuild, NewMake, Store};
    let mut store = Store::open_write(path).unwrap();
    store
        .insert_build(&NewBuild {
            id: 1,
            argv: b"make".to_vec(),
            directory: b"/".to_vec(),
            started_ns: 0,
            traced: false,
        })
        .unwrap();
    for (i, (dir, argv, dump)) in makes.iter().enumerate() {
        let id = i as i64 + 1;
        store
            .insert_make(&NewMake {
                id,
                build_id: 1,
                pid: 100 + i as i32,
                parent_make_id: None,
                parent_command_id: None,
                level: i as i64,
                directory: dir.to_str().unwrap().as_bytes().to_vec(),
                argv: argv.join("\0").into_bytes(),
                started_ns: 0,
            })
            .unwrap();
        let end = MakeEnd {
            ended_ns: 1,
            default_goal: Vec::new(),
            makefiles: Vec::new(),
            makedb_path: dump.map(|d| d.to_str().unwrap().as_bytes().to_vec()),
        };
        store.finish_make(id, &end).unwrap();
    }
    let end = BuildEnd {
        ended_ns: 1,
        state: "complete",
        exit_code: Some(0),
        signal: None,
        hooks_failed: false,
    };
    store.finish_build(1, &end).unwrap();
}

#[test]
fn recursive_lists_every_recorded_make_from_dumps_or_make_and_caches() {
    let fx = Fixture::new("forward");
    let (build, src) = (fx.path().join("build"), fx.path().join("src"));
    let dumps = tempfile::tempdir().unwrap();
    let src_dump = dumps.path().join("src.db");
    fx.dump(&src, &src_dump);
    let db = dumps.path().join("record.sqlite");
    record(
        &db,
        &[
            // The top make has no dump: makescope runs make there (listing only).
            (&build, &["make", "all"], None),
            (&src, &["make", "-C", "../src", "all"], Some(&src_dump)),
            (&src, &["make", "-C", "../src", "lint"], Some(&src_dump)),
        ],
    );
    let args = ["--db", db.to_str().unwrap(), "targets", "--recursive"];
    let json = fx.json(&build, &args);
    let sections = json["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 2, "one section per directory: {json:#}");
    assert_eq!(sections[0]["source"], "make");
    assert_eq!(sections[1]["source"], "dump");
    assert_eq!(sections[1]["argv"].as_array().unwrap().len(), 2);
    assert_eq!(
        place(&target(&sections[1], "check")["location"], fx.path()),
        "src/Makefile:4"
    );

    // The second listing comes from the cache (the whole output, replayed), and says the
    // same. The cache: one listing per make (the two with one dump share it), and the
    // output.
    let mut cached: Vec<(String, usize)> = std::fs::read_dir(fx.cache.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            match name.split_once('.') {
                Some((_, ext)) => (ext.to_owned(), 0),
                None => (
                    "dir".to_owned(),
                    std::fs::read_dir(e.path()).unwrap().count(),
                ),
            }
        })
        .collect();
    cached.sort();
    assert_eq!(cached, [("dir".to_owned(), 2), ("out.zst".to_owned(), 0)]);
    assert_eq!(fx.json(&build, &args), json);
    // Another view (another make program) reuses the per-make listings: no make runs.
    let mut other_make = args.to_vec();
    other_make.extend(["--json", "--make-program", "/bin/false"]);
    let output = fx.makescope(&build, &other_make);
    output.success();
    assert_eq!(output.json(), json);
    // A changed makefile is seen.
    std::fs::write(
        src.join("Makefile"),
        std::fs::read_to_string(src.join("Makefile")).unwrap() + "newer:\n",
    )
    .unwrap();
    fx.dump(&src, &src_dump);
    let json = fx.json(&build, &args);
    target(&json["sections"][1], "newer");

    let text = fx.makescope(&build, &args[..4]).stdout;
    assert!(
        text.starts_with("# . (make level 0, 1 make, from make)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n# ../src (make level 1, 2 makes, from dump)\n"),
        "{text}"
    );
}

#[test]
fn a_dump_it_cannot_read_names_the_line_and_falls_back() {
    let fx = Fixture::new("forward");
    let src = fx.path().join("src");
    let dumps = tempfile::tempdir().unwrap();
    // A line no make 4.3 prints, inside the files section.
    let odd = dumps.path().join("odd.db");
    fx.dump(&src, &odd);
    let text = std::fs::read_to_string(&odd).unwrap().replacen(
        "\n# Files\n",
        "\n# Files\n\n<<<future make>>>\n",
        1,
    );
    let bad_line = text.lines().position(|l| l == "<<<future make>>>").unwrap() + 1;
    std::fs::write(&odd, text).unwrap();
    // Not a database at all.
    let junk = dumps.path().join("junk.db");
    std::fs::write(&junk, "\u{0}\u{1}binary junk\n").unwrap();
    let db = dumps.path().join("record.sqlite");
    record(
        &db,
        &[
            (&src, &["make"], Some(&odd)),
            (&fx.path().join("build"), &["make"], Some(&junk)),
        ],
    );

    let output = fx.makescope(
        &src,
        &[
            "--db",
            db.to_str().unwrap(),
            "targets",
            "--recursive",
            "--json",
        ],
    );
    output.success();
    let stderr = &output.stderr;
    assert!(stderr.contains(&format!("odd.db:{bad_line}: ")), "{stderr}");
    assert!(stderr.contains("<<<future make>>>"), "{stderr}");
    assert!(
        stderr.contains("junk.db: not a make database") && stderr.contains("running make"),
        "{stderr}"
    );
    let json = output.json();
    target(&json["sections"][0], "check"); // the rest of the odd dump is still read
    target(&json["sections"][1], "all"); // the junk one came from make
}

#[test]
fn recursive_without_a_record_says_what_to_do() {
    let fx = Fixture::new("basic");
    let output = fx.makescope(
        fx.path(),
        &["--db", "/nonexistent/db.sqlite", "targets", "--recursive"],
    );
    assert_eq!(output.code, Some(2));
    let stderr = output.stderr;
    assert!(stderr.contains("run `makescope make` first"), "{stderr}");
}
