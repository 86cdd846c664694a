//! Tracer micro-benchmark, ignored by default. Run:
//!
//! ```sh
//! cargo test --release --test integration trace_bench -- --ignored --nocapture
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

use makescope::trace::{run_traced, run_traced_fast, Filter, FilterOptions};

/// The fast path's preload helper, built once.
fn preload() -> &'static Path {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/trace/preload.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-bench");
        std::fs::create_dir_all(&out).unwrap();
        let so = out.join("libmakescope-preload.so");
        let status = Command::new("gcc")
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .unwrap();
        assert!(status.success());
        so
    })
}

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
    /// The same harness (fork, filter, listener, supervisor thread), trapping nothing.
    Harness,
    Traced(FilterOptions),
    /// The in-process fast path (preload helper + ring).
    Fast,
}

fn variants() -> Vec<(&'static str, Variant)> {
    vec![
        ("untraced", Variant::Plain),
        ("harness only (filter traps nothing)", Variant::Harness),
        (
            "traced (sync wake-up)",
            Variant::Traced(FilterOptions {
                trap_readlink: false,
                sync_wakeup: true,
                trusted_page: None,
            }),
        ),
        (
            "traced (no sync wake-up)",
            Variant::Traced(FilterOptions {
                trap_readlink: false,
                sync_wakeup: false,
                trusted_page: None,
            }),
        ),
        (
            "traced + readlink",
            Variant::Traced(FilterOptions {
                trap_readlink: true,
                sync_wakeup: true,
                trusted_page: None,
            }),
        ),
    ]
}

/// CPU seconds (user + system) of this process and of its reaped descendants.
fn cpu() -> (f64, f64) {
    let get = |who| {
        // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid rusage, borrowed for the call.
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    (get(libc::RUSAGE_SELF), get(libc::RUSAGE_CHILDREN))
}

/// Run once; returns wall time, CPU time (the command's processes plus, when traced,
/// the supervisor) and notifications.
fn run(variant: Variant, make: &dyn Fn() -> Command) -> (Duration, f64, u64) {
    // cargo sets LD_LIBRARY_PATH (target dirs, the toolchain): ld.so would probe each
    // library in each of them, which no real build does.
    let make = || {
        let mut c = make();
        c.env_remove("LD_LIBRARY_PATH");
        c
    };
    let (self0, kids0) = cpu();
    let start = Instant::now();
    let notes = match variant {
        Variant::Plain => {
            let status = make().status().unwrap();
            assert!(status.success());
            0
        }
        Variant::Traced(options) => {
            let filter = Filter::new(options);
            let traced = run_traced(&mut make(), &filter, Duration::from_secs(120)).unwrap();
            assert!(traced.status.success() && !traced.timed_out);
            traced.counts.iter().map(|(_, n)| n).sum()
        }
        Variant::Harness => {
            let traced =
                run_traced(&mut make(), &Filter::allow_all(), Duration::from_secs(120)).unwrap();
            assert!(traced.status.success() && !traced.timed_out);
            0
        }
        Variant::Fast => {
            let traced = run_traced_fast(&mut make(), preload(), Duration::from_secs(120)).unwrap();
            assert!(traced.status.success() && !traced.timed_out);
            traced
                .counts
                .iter()
                .filter(|(n, _)| *n != "ring")
                .map(|(_, n)| n)
                .sum()
        }
    };
    let wall = start.elapsed();
    let (self1, kids1) = cpu();
    (wall, (self1 - self0) + (kids1 - kids0), notes)
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

fn bench(
    title: &str,
    rounds: usize,
    vs: Vec<(&'static str, Variant)>,
    make: &dyn Fn() -> Command,
) -> Vec<(&'static str, f64, f64, u64)> {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); vs.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); vs.len()];
    let mut notes = vec![0u64; vs.len()];
    for (_, v) in &vs {
        run(*v, make); // warm caches
    }
    for _ in 0..rounds {
        for (i, (_, v)) in vs.iter().enumerate() {
            let (t, c, n) = run(*v, make);
            times[i].push(t.as_secs_f64() * 1e3);
            cpus[i].push(c * 1e3);
            notes[i] = n;
        }
    }
    println!("\n### {title} ({rounds} rounds, alternating)\n");
    println!("| variant | wall median ms | wall min ms | CPU median ms | notifications/run |");
    println!("|---|---:|---:|---:|---:|");
    let mut out = Vec::new();
    for (i, (name, _)) in vs.iter().enumerate() {
        let med = median(times[i].clone());
        let min = times[i].iter().cloned().fold(f64::INFINITY, f64::min);
        let cpu = median(cpus[i].clone());
        println!("| {name} | {med:.2} | {min:.2} | {cpu:.2} | {} |", notes[i]);
        out.push((*name, med, cpu, notes[i]));
    }
    out
}

fn fixture_prog() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace/prog.c");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-bench");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join("prog");
    let status = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    exe
}

#[test]
#[ignore]
fn trace_bench() {
    let rounds: usize = std::env::var("TRACE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    println!(
        "kernel: {}",
        String::from_utf8_lossy(&Command::new("uname").arg("-r").output().unwrap().stdout).trim()
    );

    let prog = fixture_prog();
    let loops = 20_000;
    let per_call = bench(
        "trapped-call loop: 20,000 × (open missing + faccessat existing)",
        rounds,
        variants(),
        &|| {
            let mut c = Command::new(&prog);
            c.args(["loop", &loops.to_string()]);
            c
        },
    );
    println!();
    let (plain, plain_cpu) = (per_call[1].1, per_call[1].2);
    for (name, med, cpu, n) in &per_call[2..] {
        println!(
            "- {name}: {:.2} µs wall, {:.2} µs CPU per notification",
            (med - plain) * 1e3 / *n as f64,
            (cpu - plain_cpu) * 1e3 / *n as f64
        );
    }

    // The fast path's filter side: the same calls made from the trusted page.
    let page = 0x100_0000_0000u64;
    let trusted = vec![
        ("untraced", Variant::Plain),
        (
            "traced, calls from the trusted page",
            Variant::Traced(FilterOptions {
                trusted_page: Some(page),
                ..FilterOptions::default()
            }),
        ),
    ];
    let fast = bench(
        "the same loop through the trusted page",
        rounds,
        trusted,
        &|| {
            let mut c = Command::new(&prog);
            c.args(["bypass", &format!("{page:x}"), &loops.to_string()]);
            c
        },
    );
    println!(
        "\n- trusted page: {:.3} µs wall per call",
        (fast[1].1 - fast[0].1) * 1e3 / (2.0 * loops as f64)
    );

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("twenty.c");
    let mut text: String = HEADERS
        .iter()
        .map(|h| format!("#include <{h}>\n"))
        .collect();
    text.push_str(
        "int twenty(int x) { return (int)sqrt((double)x) + (int)strlen(\"x\") + abs(x); }\n",
    );
    std::fs::write(&src, text).unwrap();
    let dir = tmp.path().to_path_buf();
    let mut with_fast = variants();
    with_fast.push(("traced + fast path (prototype)", Variant::Fast));
    let compile = bench(
        "gcc -O1 -c of a file with 20 system headers",
        rounds,
        with_fast,
        &|| {
            let mut c = Command::new("gcc");
            c.args(["-O1", "-c", "twenty.c", "-o", "twenty.o"])
                .current_dir(&dir);
            c
        },
    );
    println!();
    let (plain, plain_cpu) = (compile[1].1, compile[1].2);
    println!("(overheads below are against the harness-only baseline)");
    for (name, med, cpu, n) in &compile[2..] {
        println!(
            "- {name}: wall {:+.2} ms per compile ({:+.1}%), CPU {:+.2} ms ({:+.1}%), {n} notifications",
            med - plain,
            (med / plain - 1.0) * 100.0,
            cpu - plain_cpu,
            (cpu / plain_cpu - 1.0) * 100.0,
        );
    }
    let traced = run_traced(
        Command::new("gcc")
            .env_remove("LD_LIBRARY_PATH")
            .args(["-O1", "-c", "twenty.c", "-o", "twenty.o"])
            .current_dir(&dir),
        &Filter::new(FilterOptions {
            trap_readlink: true,
            sync_wakeup: true,
            trusted_page: None,
        }),
        Duration::from_secs(60),
    )
    .unwrap();
    println!(
        "\nnotifications of one compile (readlink trapped): {:?}",
        traced.counts
    );
}
