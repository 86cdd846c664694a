//! Tracer micro-benchmark (issue 3), ignored by default. Run:
//!
//! ```sh
//! cargo test --release --test trace_bench -- --ignored --nocapture
//! ```
//!
//! Alternates untraced and traced runs in one process so that machine noise hits every
//! variant alike: (1) a loop of trapped calls (open of a missing path + faccessat of an
//! existing one) for the per-notification cost; (2) `gcc -O1 -c` of a file including 20
//! system headers, for the per-compile overhead. `TRACE_BENCH_ROUNDS` sets the rounds
//! (default 20). Results go in docs/tracer.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use makescope::trace::{run_traced, Filter, FilterOptions};

const HEADERS: &[&str] = &[
    "stdio.h",
    "stdlib.h",
    "string.h",
    "math.h",
    "unistd.h",
    "fcntl.h",
    "sys/stat.h",
    "sys/types.h",
    "time.h",
    "errno.h",
    "signal.h",
    "pthread.h",
    "ctype.h",
    "limits.h",
    "stdint.h",
    "inttypes.h",
    "assert.h",
    "locale.h",
    "setjmp.h",
    "dirent.h",
];

#[derive(Clone, Copy, Debug)]
enum Variant {
    Plain,
    Traced(FilterOptions),
}

fn variants() -> Vec<(&'static str, Variant)> {
    vec![
        ("untraced", Variant::Plain),
        ("traced (sync wake-up)", Variant::Traced(FilterOptions { trap_readlink: false, sync_wakeup: true })),
        ("traced (no sync wake-up)", Variant::Traced(FilterOptions { trap_readlink: false, sync_wakeup: false })),
        ("traced + readlink", Variant::Traced(FilterOptions { trap_readlink: true, sync_wakeup: true })),
    ]
}

/// Run once; returns wall time and notifications.
fn run(variant: Variant, make: &dyn Fn() -> Command) -> (Duration, u64) {
    let start = Instant::now();
    match variant {
        Variant::Plain => {
            let status = make().status().unwrap();
            assert!(status.success());
            (start.elapsed(), 0)
        }
        Variant::Traced(options) => {
            let filter = Filter::new(options);
            let traced = run_traced(&mut make(), &filter, Duration::from_secs(120)).unwrap();
            assert!(traced.status.success() && !traced.timed_out);
            (start.elapsed(), traced.counts.iter().map(|(_, n)| n).sum())
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn bench(title: &str, rounds: usize, make: &dyn Fn() -> Command) -> Vec<(&'static str, f64, u64)> {
    let vs = variants();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); vs.len()];
    let mut notes = vec![0u64; vs.len()];
    for (_, v) in &vs {
        run(*v, make); // warm caches
    }
    for _ in 0..rounds {
        for (i, (_, v)) in vs.iter().enumerate() {
            let (t, n) = run(*v, make);
            times[i].push(t.as_secs_f64() * 1e3);
            notes[i] = n;
        }
    }
    println!("\n### {title} ({rounds} rounds, alternating)\n");
    println!("| variant | median ms | mean ms | notifications/run |");
    println!("|---|---:|---:|---:|");
    let mut out = Vec::new();
    for (i, (name, _)) in vs.iter().enumerate() {
        let med = median(times[i].clone());
        let mean = times[i].iter().sum::<f64>() / times[i].len() as f64;
        println!("| {name} | {med:.2} | {mean:.2} | {} |", notes[i]);
        out.push((*name, med, notes[i]));
    }
    out
}

fn fixture_prog() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace/prog.c");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-bench");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join("prog");
    let status = Command::new("gcc").args(["-O2", "-pthread", "-o"]).arg(&exe).arg(&src).status().unwrap();
    assert!(status.success());
    exe
}

#[test]
#[ignore]
fn trace_bench() {
    let rounds: usize = std::env::var("TRACE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    println!("kernel: {}", String::from_utf8_lossy(&Command::new("uname").arg("-r").output().unwrap().stdout).trim());

    let prog = fixture_prog();
    let loops = 20_000;
    let per_call = bench("trapped-call loop: 20,000 × (open missing + faccessat existing)", rounds, &|| {
        let mut c = Command::new(&prog);
        c.args(["loop", &loops.to_string()]);
        c
    });
    println!();
    let plain = per_call[0].1;
    for (name, med, n) in &per_call[1..] {
        println!("- {name}: {:.2} µs per notification", (med - plain) * 1e3 / *n as f64);
    }

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("twenty.c");
    let mut text: String = HEADERS.iter().map(|h| format!("#include <{h}>\n")).collect();
    text.push_str("int twenty(int x) { return (int)sqrt((double)x) + (int)strlen(\"x\") + abs(x); }\n");
    std::fs::write(&src, text).unwrap();
    let dir = tmp.path().to_path_buf();
    let compile = bench("gcc -O1 -c of a file with 20 system headers", rounds, &|| {
        let mut c = Command::new("gcc");
        c.args(["-O1", "-c", "twenty.c", "-o", "twenty.o"]).current_dir(&dir);
        c
    });
    println!();
    let plain = compile[0].1;
    for (name, med, n) in &compile[1..] {
        println!(
            "- {name}: +{:.2} ms per compile ({:+.1}%), {:.2} µs per notification",
            med - plain,
            (med / plain - 1.0) * 100.0,
            (med - plain) * 1e3 / *n as f64
        );
    }
    let traced =
        run_traced(&mut Command::new("gcc").args(["-O1", "-c", "twenty.c", "-o", "twenty.o"]).current_dir(&dir), &Filter::new(FilterOptions { trap_readlink: true, sync_wakeup: true }), Duration::from_secs(60)).unwrap();
    println!("\nnotifications of one compile (readlink trapped): {:?}", traced.counts);
}
