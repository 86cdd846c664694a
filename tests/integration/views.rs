//! The read-only views of a record through the real binary: `stats`, `export trace`,
//! `export dot`, `report` (opened in headless Chromium) and `coverage` (against dpkg's
//! real file lists), on fixture builds in `tests/fixtures/views`.
//!
//! Tools the checks need (`dot`, `chromium`, the -dev packages) are installed by
//! scripts/test.sh; a test without its tool says so and passes, as `harness::installed`
//! tests elsewhere do.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{installed, Test};

/// The chain fixture, built with -j4 and traced: its longest chain is a → b → e → final.
fn chain() -> Test {
    let t = Test::new().fixture("views/chain").args(["make", "-j4"]);
    t.run().success();
    t
}

/// Target by command id, from `log --json`.
fn targets(t: &Test) -> HashMap<i64, String> {
    let log = t.then(["log", "--json"]).success().json();
    log["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().unwrap(),
                c["target"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn seconds(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_critical_path_is_the_longest_chain_of_the_fixture() {
    let t = chain();
    let stats = t.then(["stats", "--json"]).success().json();
    let targets = targets(&t);
    let path: Vec<&str> = stats["critical_path"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| targets[&c["id"].as_i64().unwrap()].as_str())
        .collect();
    assert_eq!(path, ["a", "b", "e", "final"], "{stats:#}");
    let length = seconds(&stats["critical_path"]["seconds"]);
    // At least its sleeps; at most the wall time (the build could not be shorter).
    assert!(length >= 1.2, "{length}");
    assert!(length <= seconds(&stats["wall_seconds"]), "{stats:#}");
    let text = t.then(["stats"]).success().stdout.clone();
    assert!(text.contains("critical path"), "{text}");
    assert!(text.contains("b"), "{text}");
}

#[test]
fn stats_numbers_add_up() {
    let t = chain();
    let stats = t.then(["stats", "--json"]).success().json();
    let total = seconds(&stats["command_seconds"]);
    let work = stats["work_commands"].as_u64().unwrap();
    for key in ["by_directory", "by_kind", "by_make_level"] {
        let groups = stats[key].as_array().unwrap();
        let sum: f64 = groups.iter().map(|g| seconds(&g["seconds"])).sum();
        let count: u64 = groups.iter().map(|g| g["commands"].as_u64().unwrap()).sum();
        assert!((sum - total).abs() < 1e-6, "{key}: {sum} != {total}");
        assert_eq!(count, work, "{key}");
    }
    // The sub-make's command is counted under its directory and level; the command that
    // ran the sub-make is not counted at all (its time is its sub-make's).
    let dirs: BTreeMap<String, u64> = stats["by_directory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().into(),
                g["commands"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(dirs, BTreeMap::from([(".".into(), 6), ("sub".into(), 1)]));
    assert_eq!(stats["commands"].as_u64().unwrap(), work + 1);
    let levels: Vec<&str> = stats["by_make_level"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["0", "1"]);
    assert_eq!(stats["jobs"], 4);
    let p = &stats["parallelism"];
    let window = seconds(&p["busy_window_seconds"]);
    assert!((seconds(&p["average"]) - total / window).abs() < 1e-6);
    assert!(p["peak"].as_u64().unwrap() >= 2, "{p}");
}

#[test]
fn notparallel_shows_as_serialised_time() {
    let t = Test::new()
        .makefile(".NOTPARALLEL:\nall: p q\np:\n\tsleep 0.3; echo > p\nq:\n\tsleep 0.3; echo > q\n")
        .args(["make", "-j2"]);
    t.run().success();
    let p = t.then(["stats", "--json"]).success().json()["parallelism"].clone();
    // q's inputs were ready from the start, a slot was free, and it waited for p.
    assert!(seconds(&p["serialised_seconds"]) >= 0.25, "{p}");
    assert!(seconds(&p["below_jobs_seconds"]) >= 0.5, "{p}");
    assert_eq!(p["peak"], 1, "{p}");
}

/// A slice of a trace: start, end, name.
type Slice = (u64, u64, String);

/// Every complete slice of a trace, by track: (pid, tid).
fn slices(trace: &Value) -> BTreeMap<(u64, u64), Vec<Slice>> {
    let mut tracks: BTreeMap<(u64, u64), Vec<Slice>> = BTreeMap::new();
    for event in trace["traceEvents"].as_array().unwrap() {
        if event["ph"] != "X" {
            continue;
        }
        let number = |key: &str| {
            event[key]
                .as_u64()
                .unwrap_or_else(|| panic!("slice without a whole {key}: {event}"))
        };
        let (ts, dur) = (number("ts"), number("dur"));
        tracks
            .entry((number("pid"), number("tid")))
            .or_default()
            .push((ts, ts + dur, event["name"].as_str().unwrap().to_string()));
    }
    tracks
}

#[test]
fn the_trace_has_a_track_per_slot_and_no_overlap_on_any() {
    let t = chain();
    t.then(["export", "trace", "-o", "trace.json"]).success();
    let trace: Value =
        serde_json::from_slice(&std::fs::read(t.path().join("trace.json")).unwrap()).unwrap();
    let tracks = slices(&trace);
    for (track, list) in &tracks {
        let mut list = list.clone();
        list.sort();
        for pair in list.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{track:?}: {:?} overlaps {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    // Every command that did work is on a job slot (pid 1), labelled; both makes are on
    // the makes process (pid 2); the critical path (pid 3) holds a, b, e and final.
    let jobs: Vec<&String> = tracks
        .iter()
        .filter(|((pid, _), _)| *pid == 1)
        .flat_map(|(_, l)| l.iter().map(|s| &s.2))
        .collect();
    assert_eq!(jobs.len(), 7, "{jobs:?}");
    let makes = tracks
        .iter()
        .filter(|((pid, _), _)| *pid == 2)
        .map(|(_, l)| l.len())
        .sum::<usize>();
    assert_eq!(makes, 2);
    let critical: Vec<u64> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == 3)
        .map(|e| e["args"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(critical.len(), 4);
    let slot_names = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["pid"] == 1)
        .count();
    assert!((2..=4).contains(&slot_names), "{slot_names} slots for -j4");
    // Each slice says where its recipe is and how it ended.
    let final_slice = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ph"] == "X" && e["args"]["target"] == "final")
        .unwrap();
    assert_eq!(final_slice["args"]["exit"], "ok");
    assert!(final_slice["args"]["recipe"]
        .as_str()
        .unwrap()
        .ends_with("Makefile:16"));
    assert_eq!(final_slice["args"]["critical"], true);
}

#[test]
fn devtools_reads_the_trace_with_every_slice_on_its_track() {
    if !installed("chromium") {
        eprintln!("skipped: no chromium (scripts/test.sh installs it)");
        return;
    }
    let t = chain();
    t.then(["export", "trace", "-o", "trace.json"]).success();
    let text = std::fs::read_to_string(t.path().join("trace.json")).unwrap();
    let trace: Value = serde_json::from_str(&text).unwrap();
    let parsed = crate::devtools::parse_trace(&t, &text);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    // Every slice of the export, on the track it was put on, under its track's name, with
    // its start and duration; and nothing else.
    let thread_names: HashMap<(u64, u64), &str> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            let id = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
            (id, e["args"]["name"].as_str().unwrap())
        })
        .collect();
    let mut exported: Vec<(u64, u64, String, String, u64, u64)> = slices(&trace)
        .into_iter()
        .flat_map(|((pid, tid), list)| {
            let name = thread_names[&(pid, tid)].to_string();
            list.into_iter()
                .map(move |(start, end, slice)| (pid, tid, name.clone(), slice, start, end - start))
        })
        .collect();
    let mut read = parsed.slices.clone();
    exported.sort();
    read.sort();
    assert_eq!(read, exported);
    let first = exported.iter().map(|s| s.4).min().unwrap();
    let last = exported.iter().map(|s| s.4 + s.5).max().unwrap();
    assert!(
        parsed.bounds.0 <= first && last <= parsed.bounds.1,
        "{:?}",
        parsed.bounds
    );
}

#[test]
fn graphviz_accepts_every_dot_export() {
    if !installed("dot") {
        eprintln!("skipped: no graphviz `dot` (scripts/test.sh installs it)");
        return;
    }
    let t = chain();
    for args in [
        &["export", "dot"][..],
        &["export", "dot", "--files"],
        &["export", "dot", "--focus", "b", "--depth", "1"],
        &["export", "dot", "--focus", "final", "--files"],
    ] {
        let out = t.then(args.iter().copied());
        out.success();
        let path = t.path().join("graph.dot");
        std::fs::write(&path, &out.stdout).unwrap();
        let mut dot = t.program("dot");
        dot.args(["-Tsvg", "-o", "graph.svg", "graph.dot"]);
        let svg = t.run_command(dot);
        svg.success();
        assert!(svg.stderr.is_empty(), "{args:?}: {}", svg.stderr);
        assert!(
            out.stdout.contains("->"),
            "{args:?}: no edge:\n{}",
            out.stdout
        );
    }
    // Focused on b one edge away: a, b and e, not d or final.
    let focused = t.then(["export", "dot", "--focus", "b", "--depth", "1"]);
    assert!(
        focused.stdout.contains("label=\"GEN a\\n"),
        "{}",
        focused.stdout
    );
    assert!(!focused.stdout.contains("GEN d"), "{}", focused.stdout);
    assert_eq!(
        focused.stdout.matches(" [label=").count(),
        3,
        "{}",
        focused.stdout
    );
    t.then(["export", "dot", "--focus", "no-such-target"])
        .code(2);
}

/// Headless Chromium on `page`: its DOM, what it logged to the console, the addresses
/// of the requests the page made (from Chromium's own network log: requests whose
/// network isolation key is the file:// page, not the browser's own), and a screenshot.
struct Rendered {
    dom: String,
    console: Vec<String>,
    requests: Vec<String>,
}

fn chromium(t: &Test, page: &Path, screenshot: &Path) -> Rendered {
    let profile = t.path().join("chromium-profile");
    let netlog = t.path().join("netlog.json");
    let mut command: Command = t.program("chromium");
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1300,1100",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command.arg(format!("--log-net-log={}", netlog.display()));
    command.arg(format!("--screenshot={}", screenshot.display()));
    command.arg("--dump-dom");
    command.arg(format!("file://{}", page.display()));
    let out = t.run_command(command);
    out.success();
    let console = out
        .stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let log: Value = serde_json::from_slice(&std::fs::read(&netlog).unwrap())
        .expect("chromium's network log is JSON");
    let requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let p = &e["params"];
            let url = p["url"].as_str()?;
            let from_page = p["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.contains("file://"));
            (from_page && !url.starts_with("file:") && !url.starts_with("data:"))
                .then(|| url.to_string())
        })
        .collect();
    Rendered {
        dom: out.stdout.clone(),
        console,
        requests,
    }
}

#[test]
fn the_browser_checks_see_a_console_error_and_a_request() {
    // The checks the report passes below would catch both on a page that has them.
    if !installed("chromium") {
        eprintln!("skipped: no chromium (scripts/test.sh installs it)");
        return;
    }
    let t = Test::new().file(
        "bad.html",
        "<!DOCTYPE html><html><body><img src=\"http://192.0.2.1/x.png\">\
         <script>console.error('deliberate')</script></body></html>",
    );
    let rendered = chromium(&t, &t.path().join("bad.html"), &t.path().join("bad.png"));
    assert!(
        rendered.console.iter().any(|l| l.contains("deliberate")),
        "{:?}",
        rendered.console
    );
    assert_eq!(rendered.requests, ["http://192.0.2.1/x.png"]);
}

/// Is there a pixel of this colour in the PNG?
fn has_colour(png_path: &Path, rgb: [u8; 3]) -> bool {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    buffer[..info.buffer_size()]
        .chunks(channels)
        .any(|p| p[..3] == rgb)
}

#[test]
fn the_report_renders_offline_in_chromium_with_its_timeline_and_critical_path() {
    let t = chain();
    t.then(["report", "-o", "report.html"]).success();
    let html = std::fs::read_to_string(t.path().join("report.html")).unwrap();
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("<script"));
    if !installed("chromium") {
        eprintln!("skipped the browser: no chromium (scripts/test.sh installs it)");
        return;
    }
    let shot = t.path().join("report.png");
    let rendered = chromium(&t, &t.path().join("report.html"), &shot);
    assert!(rendered.console.is_empty(), "{:?}", rendered.console);
    assert!(rendered.requests.is_empty(), "{:?}", rendered.requests);
    // The DOM as the browser built it: a timeline with a bar per command, the critical
    // path's four commands outlined and on their own lane, and listed.
    let dom = &rendered.dom;
    assert!(dom.contains("<svg id=\"timeline\""), "{dom}");
    let timeline = &dom[dom.find("<svg id=\"timeline\"").unwrap()..dom.find("</svg>").unwrap()];
    assert_eq!(timeline.matches("<rect x=").count(), 7, "{timeline}");
    assert_eq!(timeline.matches("class=\"critical\"").count(), 4);
    assert_eq!(timeline.matches("class=\"lane-critical\"").count(), 4);
    let section = &dom[dom.find("id=\"critical-path\"").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    for name in ["GEN a", "GEN b", "GEN e", "GEN final"] {
        assert!(
            section.contains(&format!(">{name}<")),
            "{name} not in {section}"
        );
    }
    // The screenshot shows the critical path's red lane and the commands' bars.
    assert!(
        has_colour(&shot, [0xc0, 0x39, 0x2b]),
        "no critical path red"
    );
    assert!(has_colour(&shot, [0x5b, 0x8f, 0xf9]), "no command bar");
    // Kept for people to look at: MAKESCOPE_UPDATE_SCREENSHOTS=1 refreshes it.
    let kept =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/snapshots/views_report.png");
    if std::env::var_os("MAKESCOPE_UPDATE_SCREENSHOTS").is_some() || !kept.exists() {
        std::fs::copy(&shot, &kept).unwrap();
    }
}

#[test]
fn coverage_shows_the_package_used_with_its_files_and_the_one_named_untouched() {
    let needed = [
        "/usr/include/zlib.h",
        "/usr/include/libxml2",
        "/var/lib/dpkg/info/zlib1g-dev:amd64.list",
    ];
    if let Some(missing) = needed.iter().find(|p| !Path::new(p).exists()) {
        eprintln!(
            "skipped: {missing} is missing (scripts/test.sh installs zlib1g-dev and libxml2-dev)"
        );
        return;
    }
    let t = Test::new().fixture("views/coverage").args(["make"]);
    t.run().success();
    let coverage = t
        .then([
            "coverage",
            "--json",
            "--prefix",
            "/usr/include/libxml2",
            "--prefix",
            "/usr/include",
        ])
        .success()
        .json();
    let used = coverage["used"].as_array().unwrap();
    let zlib = used
        .iter()
        .find(|u| u["package"] == "zlib1g-dev")
        .unwrap_or_else(|| panic!("zlib1g-dev not used: {coverage:#}"));
    let files: Vec<&str> = zlib["opened_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(files.contains(&"/usr/include/zlib.h"), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("/libz.so")), "{files:?}");
    assert!(used.iter().all(|u| u["package"] != "libxml2-dev"));
    let untouched = coverage["untouched"].as_array().unwrap();
    let libxml = untouched
        .iter()
        .find(|u| u["package"] == "libxml2-dev")
        .unwrap_or_else(|| panic!("libxml2-dev not untouched: {coverage:#}"));
    assert_eq!(libxml["why"], "searched /usr/include/libxml2");
    let prefixes: Vec<(&str, u64)> = coverage["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["prefix"].as_str().unwrap(), p["opened"].as_u64().unwrap()))
        .collect();
    assert_eq!(prefixes[0], ("/usr/include/libxml2", 0));
    assert!(prefixes[1].1 >= 2, "{prefixes:?}");
    // Text says the same; a package named by the user is reported however it is.
    let text = t
        .then(["coverage", "--package", "libpng-dev"])
        .success()
        .stdout
        .clone();
    assert!(text.contains("zlib1g-dev"), "{text}");
    assert!(text.contains("/usr/include/zlib.h"), "{text}");
    if Path::new("/var/lib/dpkg/info/libpng-dev:amd64.list").exists() {
        let named = text
            .lines()
            .find(|l| l.contains("libpng-dev"))
            .unwrap_or_default();
        assert!(named.ends_with(" named"), "{text}");
    }
}

#[test]
fn coverage_without_a_package_database_says_so() {
    let t = Test::new()
        .makefile("all:\n\tcat Makefile > /dev/null\n")
        .args(["make"]);
    t.run().success();
    let out = t.then(["coverage", "--dpkg-info", "no-such-dir"]);
    out.success();
    assert!(out.stdout.contains("no package database"), "{}", out.stdout);
    assert!(
        out.stdout.contains("opened outside any package"),
        "{}",
        out.stdout
    );
    let bad = t.then([
        "coverage",
        "--dpkg-info",
        "no-such-dir",
        "--package",
        "zlib1g-dev",
    ]);
    bad.code(2);
    assert!(bad
        .stderr
        .starts_with("makescope: error: there is no package database"));
    let out = t.then(["coverage", "--package", "surely-not-a-package"]);
    if Path::new("/var/lib/dpkg/info").is_dir() {
        out.code(2);
        assert!(
            out.stderr.contains("no installed package is called"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn views_of_a_missing_record_are_one_clear_error() {
    let t = Test::new();
    for args in [
        &["stats"][..],
        &["export", "trace"],
        &["export", "dot"],
        &["report"],
        &["coverage"],
    ] {
        let out = t.then(args.iter().copied());
        out.code(2);
        assert!(
            out.stderr.starts_with("makescope: error:") && out.stderr.lines().count() == 1,
            "{args:?}: {}",
            out.stderr
        );
        assert!(!t.path().join("report.html").exists());
    }
}
