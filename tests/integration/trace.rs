//! The tracer against real processes: each test runs a command under the
//! seccomp filter with a supervisor thread (`trace::run_traced`: fork, filter installed
//! in the child, listener sent back over a socketpair with SCM_RIGHTS, exec) and checks
//! the events. Every run has a deadline; a run that reaches it fails the test.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use makescope::trace::{self as tracer, AccessKind, Filter};

/// A traced run with its events' paths spelled out (the tracer numbers them).
struct Traced {
    status: std::process::ExitStatus,
    events: Vec<Event>,
    counts: Vec<(&'static str, u64)>,
    timed_out: bool,
}

type Event = tracer::Event<Vec<u8>>;

impl Traced {
    /// How many calls the fast path served.
    fn ring_records(&self) -> u64 {
        self.counts
            .iter()
            .find(|(n, _)| *n == "ring")
            .map_or(0, |(_, n)| *n)
    }
}

fn spelled(t: tracer::Traced) -> Traced {
    let paths = t.paths;
    Traced {
        status: t.status,
        events: t.events.into_iter().map(|e| e.spelled(&paths)).collect(),
        counts: t.counts,
        timed_out: t.timed_out,
    }
}

fn run_traced(cmd: &mut Command, filter: &Filter, timeout: Duration) -> std::io::Result<Traced> {
    tracer::run_traced(cmd, filter, timeout).map(spelled)
}

fn run_traced_fast(
    cmd: &mut Command,
    preload: &Path,
    timeout: Duration,
) -> std::io::Result<Traced> {
    tracer::run_traced_fast(cmd, preload, timeout).map(spelled)
}

fn run_traced_with_ring(
    cmd: &mut Command,
    preload: &Path,
    ring: tracer::Ring,
    timeout: Duration,
) -> std::io::Result<Traced> {
    tracer::run_traced_with_ring(cmd, preload, ring, timeout).map(spelled)
}

const TIMEOUT: Duration = Duration::from_secs(60);

/// The fast path's preload helper, built once per test run.
fn preload() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/trace/preload.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-fixture");
        std::fs::create_dir_all(&out).unwrap();
        let so = out.join("libmakescope-preload.so");
        let status = Command::new("gcc")
            .args(["-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .unwrap();
        assert!(status.success(), "compiling {}", src.display());
        so
    })
}

/// The fixture program, built once per test run: (dynamic, static).
fn programs() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace/prog.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-fixture");
        std::fs::create_dir_all(&out).unwrap();
        let dynamic = out.join("prog");
        let fixed = out.join("prog-static");
        for (exe, extra) in [(&dynamic, None), (&fixed, Some("-static"))] {
            let mut gcc = Command::new("gcc");
            gcc.args(["-O1", "-Wall", "-pthread", "-o"])
                .arg(exe)
                .arg(&src);
            gcc.args(extra);
            let status = gcc.status().expect("gcc");
            assert!(status.success(), "compiling {}", src.display());
        }
        (dynamic, fixed)
    })
}

fn trace(cmd: &mut Command) -> Traced {
    let traced = run_traced(cmd, &Filter::default(), TIMEOUT).expect("run_traced");
    assert!(!traced.timed_out, "timed out: {:?}", cmd);
    traced
}

fn run_in(dir: &Path, program: &Path, args: &[&str]) -> Traced {
    let traced = trace(Command::new(program).args(args).current_dir(dir));
    assert!(
        traced.status.success(),
        "{} {:?}: {:?}",
        program.display(),
        args,
        traced.status
    );
    traced
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn accesses(events: &[Event]) -> BTreeSet<(Vec<u8>, AccessKind)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Access { path, kind, .. } => Some((path.clone(), *kind)),
            _ => None,
        })
        .collect()
}

fn has(events: &[Event], path: &Path, kind: AccessKind) -> bool {
    let want = bytes(path);
    events
        .iter()
        .any(|e| matches!(e, Event::Access { path, kind: k, .. } if *path == want && *k == kind))
}

#[track_caller]
fn expect(events: &[Event], path: &Path, kind: AccessKind) {
    assert!(
        has(events, path, kind),
        "no {kind:?} of {} in\n{}",
        path.display(),
        show(events)
    );
}

fn show(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| match e {
            Event::Access {
                pid, path, kind, ..
            } => format!("{pid} {} {}", kind.name(), String::from_utf8_lossy(path)),
            Event::Exec {
                pid, path, argv, ..
            } => {
                let argv: Vec<_> = argv
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                format!("{pid} EXEC {} {:?}", String::from_utf8_lossy(path), argv)
            }
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pid of the first process (the one the harness spawned).
fn first_pid(events: &[Event]) -> i32 {
    match events.first() {
        Some(Event::Process { pid, .. }) => *pid,
        other => panic!("first event is not a process: {other:?}"),
    }
}

fn canon(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap()
}

/// Must hold 1: a statically linked program is recorded as completely as a dynamic one.
#[test]
fn static_program_recorded_like_dynamic() {
    let (dynamic, fixed) = programs();
    let mut seen = Vec::new();
    for program in [dynamic, fixed] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = canon(tmp.path());
        let traced = run_in(&dir, program, &["basic"]);
        let ev = &traced.events;
        expect(ev, &dir.join("out.txt"), AccessKind::Create);
        expect(ev, &dir.join("missing.txt"), AccessKind::Probe);
        expect(ev, &dir.join("out.txt"), AccessKind::Read);
        expect(ev, &dir.join("out.txt"), AccessKind::Append);
        expect(ev, program, AccessKind::Exec);
        expect(ev, Path::new("/bin/true"), AccessKind::Exec);
        assert!(ev.iter().any(|e| matches!(e, Event::Exec { path, argv, .. }
            if path == b"/bin/true" && argv == &[b"true".to_vec()])));
        assert!(
            ev.iter().any(|e| matches!(e, Event::Exit { code: 0, .. })),
            "{}",
            show(ev)
        );
        // What the program itself did (in its directory, and the exec) is the same.
        let own: BTreeSet<_> = accesses(ev)
            .into_iter()
            .filter(|(p, _)| p.starts_with(&bytes(&dir)) || p == b"/bin/true")
            .collect();
        let rel: BTreeSet<_> = own
            .into_iter()
            .map(|(p, k)| (p[bytes(&dir).len().min(p.len())..].to_vec(), k))
            .collect();
        seen.push(rel);
    }
    assert_eq!(seen[0], seen[1]);
}

/// Must hold 2: fork, vfork and threads are followed, with the right pids.
#[test]
fn fork_vfork_threads_followed() {
    let (dynamic, fixed) = programs();
    for program in [dynamic, fixed] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = canon(tmp.path());
        let traced = run_in(&dir, program, &["procs"]);
        let ev = &traced.events;
        let main = first_pid(ev);
        let children: Vec<i32> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Process { pid, ppid, .. } if *ppid == main => Some(*pid),
                _ => None,
            })
            .collect();
        assert_eq!(
            children.len(),
            2,
            "fork and vfork children of {main}:\n{}",
            show(ev)
        );
        let forked = children[0];
        let vforked = children[1];
        assert!(
            ev.iter().any(
                |e| matches!(e, Event::Access { pid, path, kind: AccessKind::Create, .. }
            if *pid == forked && path.ends_with(b"/from-fork.txt"))
            ),
            "{}",
            show(ev)
        );
        assert!(ev
            .iter()
            .any(|e| matches!(e, Event::Exit { pid, code: 7, .. } if *pid == forked)));
        assert!(ev.iter().any(|e| matches!(e, Event::Exec { pid, path, .. } if *pid == vforked && path == b"/bin/true")));
        // A thread's accesses belong to its process.
        assert!(
            ev.iter().any(
                |e| matches!(e, Event::Access { pid, path, kind: AccessKind::Create, .. }
            if *pid == main && path.ends_with(b"/from-thread.txt"))
            ),
            "{}",
            show(ev)
        );
        // Process events come before anything else a process does.
        for pid in [main, forked, vforked] {
            let first = ev.iter().position(|e| e.pid() == pid).unwrap();
            assert!(matches!(ev[first], Event::Process { .. }), "{}", show(ev));
            assert_eq!(
                ev.iter()
                    .filter(|e| matches!(e, Event::Process { pid: p, .. } if *p == pid))
                    .count(),
                1
            );
        }
    }
}

/// Must hold 2: openat2, statx, faccessat2, renameat2, execveat; io_uring refused.
#[test]
fn newer_calls_covered() {
    let (dynamic, fixed) = programs();
    for program in [dynamic, fixed] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = canon(tmp.path());
        let traced = run_in(&dir, program, &["newer"]);
        let ev = &traced.events;
        let d = |name: &str| dir.join(name);
        expect(ev, &d("openat2.txt"), AccessKind::Create);
        expect(ev, &d("openat2.txt"), AccessKind::Stat);
        expect(ev, &d("no-statx.txt"), AccessKind::Probe);
        expect(ev, &d("no-access.txt"), AccessKind::Probe);
        expect(ev, &d("openat2.txt"), AccessKind::RenameFrom);
        expect(ev, &d("renamed.txt"), AccessKind::RenameTo);
        expect(ev, &d("dir"), AccessKind::Mkdir);
        expect(ev, &d("link"), AccessKind::Symlink);
        expect(ev, &d("renamed.txt"), AccessKind::Stat);
        expect(ev, &d("hard"), AccessKind::Link);
        expect(ev, &d("hard"), AccessKind::Remove);
        expect(ev, &d("renamed.txt"), AccessKind::Truncate);
        expect(ev, &d("dir"), AccessKind::Remove);
        // statx(fd, "", AT_EMPTY_PATH) is fstat: no event for the directory itself.
        assert!(!has(ev, &dir, AccessKind::Stat), "{}", show(ev));
        assert_eq!(
            std::fs::read_to_string(d("io_uring-result")).unwrap(),
            "ENOSYS\n"
        );
        let execs: Vec<(Vec<u8>, Vec<Vec<u8>>)> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Exec { path, argv, .. } => Some((path.clone(), argv.clone())),
                _ => None,
            })
            .collect();
        let true_path = canon(Path::new("/bin/true"));
        assert!(
            execs.contains(&(bytes(&true_path), vec![b"true-by-fd".to_vec()])),
            "{execs:?}"
        );
        let by_dirfd = bytes(&canon(Path::new("/bin")).join("true"));
        assert!(
            execs.contains(&(by_dirfd, vec![b"true-by-dirfd".to_vec()])),
            "{execs:?}"
        );
    }
}

/// Must hold 4: dirfd-relative paths, `..`, chdir and fchdir, a non-UTF-8 name.
#[test]
fn relative_paths_resolve() {
    let (dynamic, fixed) = programs();
    for program in [dynamic, fixed] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = canon(tmp.path());
        let traced = run_in(&dir, program, &["paths"]);
        let ev = &traced.events;
        expect(ev, &dir.join("top.txt"), AccessKind::Create);
        expect(ev, &dir.join("top.txt"), AccessKind::Read);
        expect(ev, &dir.join("sub/deeper/new.txt"), AccessKind::Create);
        expect(ev, &dir.join("sub"), AccessKind::Chdir);
        expect(ev, &dir.join("sub/nothing"), AccessKind::Probe);
        expect(ev, &dir.join("sub/deeper"), AccessKind::Chdir);
        expect(ev, &dir.join("sub/deeper/new.txt"), AccessKind::Stat);
        expect(ev, &dir.join("sub/deeper"), AccessKind::List);
        let mut name = bytes(&dir.join("sub/deeper"));
        name.extend_from_slice(b"/caf\xe9.txt");
        assert!(ev.iter().any(|e| matches!(e, Event::Access { path, kind: AccessKind::Create, .. } if *path == name)), "{}", show(ev));
        assert!(std::fs::read_dir(dir.join("sub/deeper")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .as_bytes()
            == b"caf\xe9.txt"));
    }
}

/// Must hold 3: ptrace inside the traced tree keeps working.
#[test]
fn strace_inside_works() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = canon(tmp.path());
    for args in [
        &["-f", "-o", "/dev/null", "true"][..],
        &[
            "-f",
            "--seccomp-bpf",
            "-e",
            "trace=%file",
            "-o",
            "/dev/null",
            "true",
        ][..],
    ] {
        let traced = trace(Command::new("strace").args(args).current_dir(&dir));
        assert!(
            traced.status.success(),
            "strace {args:?}: {:?}",
            traced.status
        );
        let ev = &traced.events;
        expect(ev, Path::new("/usr/bin/strace"), AccessKind::Exec);
        assert!(
            ev.iter()
                .any(|e| matches!(e, Event::Exec { argv, .. } if argv == &[b"true".to_vec()])),
            "{}",
            show(ev)
        );
    }
}

#[test]
fn ptrace_traceme_works() {
    let (dynamic, fixed) = programs();
    for program in [dynamic, fixed] {
        let tmp = tempfile::tempdir().unwrap();
        let traced = run_in(tmp.path(), program, &["traceme"]);
        assert!(traced
            .events
            .iter()
            .any(|e| matches!(e, Event::Exec { path, .. } if path == b"/bin/true")));
    }
}

/// A process that outlives its command keeps working once the
/// listener is handed to `trace::detach`, and its end is reported while supervised.
#[test]
fn daemon_survives_detach() {
    use makescope::trace::{detach, recv_fd, send_fd, seqpacket_pair, Handled, Supervisor};
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::process::CommandExt;
    use std::time::Instant;

    let tmp = tempfile::tempdir().unwrap();
    let dir = canon(tmp.path());
    let deadline = Instant::now() + TIMEOUT;
    let (ours, theirs) = seqpacket_pair().unwrap();
    let child_sock = theirs.as_raw_fd();
    let filter = Filter::default();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("(sleep 1; cat /etc/passwd > marker.tmp && mv marker.tmp marker) >/dev/null 2>&1 </dev/null &")
        .current_dir(&dir);
    // SAFETY: the hook runs in the forked child before exec. The filter's program is
    // built before the fork: installing it is prctl and seccomp calls, sending the
    // listener one sendmsg; only the error path allocates, and then the child fails.
    unsafe {
        cmd.pre_exec(move || {
            let listener = filter
                .install()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            send_fd(child_sock, listener.as_raw_fd())
        });
    }
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let supervisor = std::thread::spawn(move || {
        let listener = recv_fd(ours.as_fd(), deadline).unwrap().unwrap();
        let mut supervisor = Supervisor::new();
        let mut events = Vec::new();
        while stop_rx.try_recv().is_err() && Instant::now() < deadline {
            let mut pfd = libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd, borrowed for the call.
            if unsafe { libc::poll(&mut pfd, 1, 10) } > 0
                && supervisor
                    .handle_ready(listener.as_fd(), pfd.revents, &mut events)
                    .unwrap()
                    == Handled::Hangup
            {
                break;
            }
        }
        (listener, events)
    });
    let mut child = cmd.spawn().unwrap();
    drop(theirs);
    assert!(child.wait().unwrap().success());
    stop_tx.send(()).unwrap();
    let (listener, events) = supervisor.join().unwrap();
    assert_eq!(events.first().map(|e| e.pid()), Some(child.id() as i32));
    // The recorder is leaving: hand the listener over, then close ours.
    detach(vec![listener]).unwrap();
    while !dir.join("marker").exists() {
        assert!(Instant::now() < deadline, "the daemon never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read(dir.join("marker")).unwrap(),
        std::fs::read("/etc/passwd").unwrap()
    );
}

/// Must hold 5: every path strace shows opened, exec'd or stat'ed (successfully or with
/// ENOENT) is among our events with the same kind, for a small compile and a pipeline.
#[test]
fn strace_oracle() {
    oracle(false);
}

/// The same oracle with the in-process fast path: the ring and the trapped calls
/// together must still show everything strace shows.
#[test]
fn strace_oracle_fast_path() {
    oracle(true);
}

fn oracle(fast: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = canon(tmp.path());
    std::fs::write(dir.join("local.h"), "#define LOCAL 1\n").unwrap();
    std::fs::write(
        dir.join("foo.c"),
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n#include \"local.h\"\n\
         int main(void) { printf(\"%d\\n\", LOCAL + (int)strlen(getenv(\"HOME\")) + (int)sqrt(4.0)); return 0; }\n",
    )
    .unwrap();
    let script = "gcc -O1 -c foo.c -o foo.o && cat foo.c | grep -c include > count.txt && ls nothing-here 2>/dev/null; \
                  rm -f count.txt; test -e foo.o";
    let mut cmd = Command::new("strace");
    cmd.args([
        "-ff",
        "-qq",
        "-y",
        "-s",
        "4096",
        "-e",
        "trace=%file,%process",
        "-o",
    ])
    .arg(dir.join("strace.out"))
    .args(["sh", "-c", script])
    .current_dir(&dir);
    let traced = if fast {
        let traced = run_traced_fast(&mut cmd, preload(), TIMEOUT).unwrap();
        assert!(!traced.timed_out);
        let ring = traced.ring_records();
        assert!(
            ring > 100,
            "the fast path served too little: {:?}",
            traced.counts
        );
        traced
    } else {
        trace(&mut cmd)
    };
    assert!(traced.status.success());
    let ours = accesses(&traced.events);
    let mut expected = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .as_bytes()
            .starts_with(b"strace.out.")
        {
            // One file per process (-ff). With the fast path, some calls right before
            // another on the same path are the helper's looks, not the program's: a stat
            // before an execve (it records misses as probes and leaves the rest to the
            // trapped execve), and `faccessat2(…, F_OK, …)` before an `O_CREAT` open
            // (whether the path existed decides create or truncate, as the supervisor's
            // own look does for a trapped open).
            let mut previous: Vec<(Vec<u8>, AccessKind)> = Vec::new();
            let mut previous_look = false;
            for line in std::fs::read(&path).unwrap().split(|&b| b == b'\n') {
                let seen = strace_expectations(line, &dir);
                if seen.is_empty() {
                    continue;
                }
                let text = String::from_utf8_lossy(line);
                let creat_open = text.starts_with("open") && text.contains("O_CREAT");
                let checked = |p: &(Vec<u8>, AccessKind)| {
                    let same =
                        |k: fn(AccessKind) -> bool| seen.iter().any(|s| k(s.1) && s.0 == p.0);
                    fast && ((p.1 == AccessKind::Stat && same(|k| k == AccessKind::Exec))
                        || (previous_look && creat_open && same(|_| true)))
                };
                expected.extend(previous.drain(..).filter(|p| !checked(p)));
                previous = seen;
                previous_look = text.starts_with("faccessat2(") && text.contains("F_OK");
            }
            expected.extend(previous);
        }
    }
    assert!(
        expected.len() > 50,
        "the oracle saw too little: {}",
        expected.len()
    );
    let write_family = [
        AccessKind::Write,
        AccessKind::Create,
        AccessKind::Truncate,
        AccessKind::Append,
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(path, kind)| {
            let found = |k: &AccessKind| ours.contains(&(path.clone(), *k));
            if write_family.contains(kind) {
                !write_family.iter().any(found)
            } else {
                !found(kind)
            }
        })
        .map(|(p, k)| format!("{} {}", k.name(), String::from_utf8_lossy(p)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} strace accesses missing:\n{}",
        missing.len(),
        expected.len(),
        missing.join("\n")
    );
}

/// What one line of `strace -y` output says was accessed, as (path, kind).
fn strace_expectations(line: &[u8], cwd: &Path) -> Vec<(Vec<u8>, AccessKind)> {
    let line = String::from_utf8_lossy(line);
    let Some(open) = line.find('(') else {
        return vec![];
    };
    let name = &line[..open];
    let Some(eq) = line.rfind(") = ") else {
        return vec![];
    };
    let result = &line[eq + 4..];
    let ok = !result.starts_with('-');
    if !ok && !result.starts_with("-1 ENOENT") {
        return vec![];
    }
    let args = &line[open + 1..eq];
    // (dirfd, path) pairs in order: a dirfd is `AT_FDCWD` or `3</dir>` before a string.
    let mut paths = Vec::new();
    let mut rest = args;
    let mut base = cwd.as_os_str().as_bytes().to_vec();
    while let Some(q) = rest.find('"') {
        let before = &rest[..q];
        if let (Some(lt), Some(gt)) = (before.rfind("</"), before.rfind(">,")) {
            if lt < gt
                && before[..lt]
                    .trim_start_matches([',', ' '])
                    .chars()
                    .all(|c| c.is_ascii_digit())
            {
                base = before.as_bytes()[lt + 1..gt].to_vec();
            }
        } else if before.contains("AT_FDCWD") {
            base = cwd.as_os_str().as_bytes().to_vec();
        }
        let after = &rest[q + 1..];
        let mut s = Vec::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        s.push(n as u8);
                    }
                }
                '"' => {
                    end = i;
                    break;
                }
                _ => s.extend_from_slice(c.to_string().as_bytes()),
            }
        }
        let mut full = if s.first() == Some(&b'/') {
            s.clone()
        } else {
            [base.as_slice(), b"/", &s].concat()
        };
        if s.is_empty() {
            full = Vec::new(); // AT_EMPTY_PATH: an fd, not a path
        }
        paths.push(normalize(&full));
        rest = &after[(end + 1).min(after.len())..];
        if name.starts_with("exec") {
            break; // argv strings follow
        }
    }
    let Some(first) = paths.first().cloned() else {
        return vec![];
    };
    if first.is_empty() {
        return vec![];
    }
    let probe_or = |k: AccessKind| if ok { k } else { AccessKind::Probe };
    match name {
        "open" | "openat" | "openat2" | "creat" => {
            let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|f| args.contains(f))
                || name == "creat";
            vec![(
                first,
                probe_or(if writes {
                    AccessKind::Write
                } else {
                    AccessKind::Read
                }),
            )]
        }
        "execve" | "execveat" => vec![(first, probe_or(AccessKind::Exec))],
        "stat" | "lstat" | "newfstatat" | "statx" | "access" | "faccessat" | "faccessat2" => {
            vec![(first, probe_or(AccessKind::Stat))]
        }
        "unlink" | "unlinkat" | "rmdir" => vec![(first, probe_or(AccessKind::Remove))],
        "chdir" => vec![(first, probe_or(AccessKind::Chdir))],
        "mkdir" | "mkdirat" if ok => vec![(first, AccessKind::Mkdir)],
        "rename" | "renameat" | "renameat2" if ok && paths.len() == 2 => {
            vec![
                (first, AccessKind::RenameFrom),
                (paths[1].clone(), AccessKind::RenameTo),
            ]
        }
        _ => vec![],
    }
}

fn normalize(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                let keep = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(keep);
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(part);
            }
        }
    }
    if out.is_empty() && !path.is_empty() {
        out.push(b'/');
    }
    out
}

/// i386 callers (`int 0x80`) are trapped through their own syscall table; argv
/// pointers are 4 bytes wide.
#[test]
fn i386_program_followed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace/i386.S");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-fixture");
    std::fs::create_dir_all(&out).unwrap();
    let obj = out.join("i386.o");
    let exe = out.join("i386");
    let assembled = Command::new("as")
        .args(["--32", "-o"])
        .arg(&obj)
        .arg(&src)
        .status()
        .unwrap();
    let linked = Command::new("ld")
        .args(["-m", "elf_i386", "-o"])
        .arg(&exe)
        .arg(&obj)
        .status()
        .unwrap();
    assert!(assembled.success() && linked.success());
    let tmp = tempfile::tempdir().unwrap();
    let dir = canon(tmp.path());
    let traced = run_in(&dir, &exe, &[]);
    let ev = &traced.events;
    expect(ev, &dir.join("i386-missing.txt"), AccessKind::Probe);
    expect(ev, &dir.join("i386-dir"), AccessKind::Mkdir);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Exec { path, argv, .. }
            if path == b"/bin/true" && argv == &[b"true".to_vec(), b"from-i386".to_vec()])),
        "{}",
        show(ev)
    );
}

/// The kernel opens `#!` interpreters and ld.so inside execve: they are recorded too.
#[test]
fn interpreters_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = canon(tmp.path());
    let script = dir.join("script");
    std::fs::write(&script, "#!/bin/sh -e\ntrue\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let traced = run_in(&dir, &script, &[]);
    let ev = &traced.events;
    expect(ev, &script, AccessKind::Exec);
    expect(ev, Path::new("/bin/sh"), AccessKind::Exec);
    let (dynamic, fixed) = programs();
    let traced = run_in(&dir, dynamic, &["loop", "1"]);
    expect(
        &traced.events,
        Path::new("/lib64/ld-linux-x86-64.so.2"),
        AccessKind::Exec,
    );
    let traced = run_in(&dir, fixed, &["loop", "1"]);
    assert!(!traced
        .events
        .iter()
        .any(|e| matches!(e, Event::Access { path, .. } if path.ends_with(b".so.2"))));
}

/// The fast path's filter side: calls made from the trusted page pass unseen, the same
/// call from anywhere else is still trapped.
#[test]
fn trusted_page_passes_unseen() {
    use makescope::trace::FilterOptions;
    let page = 0x100_0000_0000u64;
    let filter = Filter::new(FilterOptions {
        trusted_page: Some(page),
        ..FilterOptions::default()
    });
    let (dynamic, fixed) = programs();
    for program in [dynamic, fixed] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = canon(tmp.path());
        let mut cmd = Command::new(program);
        cmd.args(["bypass", &format!("{page:x}"), "0"])
            .current_dir(&dir);
        let traced = run_traced(&mut cmd, &filter, TIMEOUT).unwrap();
        assert!(traced.status.success() && !traced.timed_out);
        expect(
            &traced.events,
            &dir.join("not-bypassed.txt"),
            AccessKind::Probe,
        );
        assert!(
            !has(&traced.events, &dir.join("bypassed.txt"), AccessKind::Probe),
            "{}",
            show(&traced.events)
        );
    }
}

/// The fast path records what trapping records: the same (path, kind) set for a
/// compile, apart from the helper library itself.
#[test]
fn fast_path_matches_trapping() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = canon(tmp.path());
    std::fs::write(
        dir.join("a.c"),
        "#include <stdio.h>\n#include <math.h>\nint f(void) { return 1; }\n",
    )
    .unwrap();
    let compile = || {
        let mut c = Command::new("gcc");
        c.args(["-O1", "-c", "a.c", "-o", "a.o"]).current_dir(&dir);
        c
    };
    let slow = trace(&mut compile());
    std::fs::remove_file(dir.join("a.o")).unwrap();
    let fast = run_traced_fast(&mut compile(), preload(), TIMEOUT).unwrap();
    assert!(slow.status.success() && fast.status.success() && !fast.timed_out);
    // gcc's temporary files have random names: leave them out.
    let helper = bytes(preload());
    let keep = |(p, _): &(Vec<u8>, AccessKind)| *p != helper && !p.starts_with(b"/tmp/cc");
    let slow_set: BTreeSet<_> = accesses(&slow.events).into_iter().filter(keep).collect();
    let fast_set: BTreeSet<_> = accesses(&fast.events).into_iter().filter(keep).collect();
    let only_slow: Vec<_> = slow_set.difference(&fast_set).collect();
    let only_fast: Vec<_> = fast_set.difference(&slow_set).collect();
    assert!(
        only_slow.is_empty() && only_fast.is_empty(),
        "only trapped: {only_slow:?}\nonly fast: {only_fast:?}"
    );
    let notified = |t: &Traced| {
        t.counts
            .iter()
            .filter(|(n, _)| *n != "ring")
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    eprintln!(
        "notifications: trapped {}, fast {} (+ring {:?})",
        notified(&slow),
        notified(&fast),
        fast.counts
    );
    assert!(notified(&fast) < notified(&slow));
}

/// A small ring wraps around and fills up: calls then go the trapped way, and every
/// call is recorded exactly once either way.
#[test]
fn fast_path_ring_wraps_and_fills_without_loss() {
    use makescope::trace::Ring;
    let (dynamic, _) = programs();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(dynamic);
    cmd.args(["loop", "2000"]).current_dir(tmp.path());
    let traced =
        run_traced_with_ring(&mut cmd, preload(), Ring::new(64).unwrap(), TIMEOUT).unwrap();
    assert!(traced.status.success() && !traced.timed_out);
    let count = |want: &[u8], kind: AccessKind| {
        traced
            .events
            .iter()
            .filter(
                |e| matches!(e, Event::Access { path, kind: k, .. } if path == want && *k == kind),
            )
            .count()
    };
    assert_eq!(
        count(b"/nonexistent/x", AccessKind::Probe),
        2000,
        "{:?}",
        traced.counts
    );
    assert_eq!(
        count(b"/etc/passwd", AccessKind::Stat),
        2000,
        "{:?}",
        traced.counts
    );
    let ring = traced.ring_records();
    assert!(ring >= 64, "the ring was not used: {:?}", traced.counts);
}

/// Records of one to fifteen units in a ring of 64: padding at the end of the area,
/// wrap-arounds and full-ring fallbacks all happen, and each call is recorded once.
#[test]
fn fast_path_ring_takes_paths_of_every_length() {
    use makescope::trace::Ring;
    let tmp = tempfile::tempdir().unwrap();
    let dir = canon(tmp.path());
    // 1 to 900 bytes past the directory: 1 to 15 units each, three rounds.
    let lengths: Vec<usize> = (0..60).map(|i| 1 + (i * 97) % 900).collect();
    let names: Vec<String> = lengths
        .iter()
        .map(|&n| "n".repeat(n.min(200)) + &"/d".repeat(n.saturating_sub(200) / 2))
        .collect();
    let script: String = names
        .iter()
        .map(|n| format!("test -e {n}; test -e {n}; test -e {n};"))
        .collect();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).current_dir(&dir);
    let traced =
        run_traced_with_ring(&mut cmd, preload(), Ring::new(64).unwrap(), TIMEOUT).unwrap();
    assert!(traced.status.success() || traced.status.code() == Some(1));
    assert!(!traced.timed_out);
    for name in &names {
        let want = [dir.as_os_str().as_bytes(), b"/", name.as_bytes()].concat();
        let found = traced
            .events
            .iter()
            .filter(|e| matches!(e, Event::Access { path, kind: AccessKind::Probe, .. } if *path == want))
            .count();
        assert_eq!(found, 3, "{} bytes: {:?}", want.len(), traced.counts);
    }
    let ring = traced.ring_records();
    assert!(ring >= 60, "the ring was not used: {:?}", traced.counts);
}

/// A process killed by a signal never calls exit_group: its end is still reported.
#[test]
fn killed_process_reported_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let traced = trace(
        Command::new("sh")
            .args(["-c", "cat /etc/hostname >/dev/null; kill -9 $$"])
            .current_dir(tmp.path()),
    );
    assert!(!traced.status.success());
    let ev = &traced.events;
    let sh = first_pid(ev);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Gone { pid, .. } if *pid == sh)),
        "{}",
        show(ev)
    );
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Event::Exit { pid, .. } if *pid == sh)));
    // cat ended normally.
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Exit { pid, code: 0, .. } if *pid != sh)));
}
