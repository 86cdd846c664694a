//! The recorder: runs make with the plugin, takes events, drives the output, writes the
//! record.
//!
//! Four threads, data flowing one way: the event loop ([`server`]) reads the plugin's
//! and the shims' messages and the seccomp notifications and attributes every event to
//! a command or a make; the UI thread ([`ui`]) labels commands, runs the user's hooks
//! and prints; the writer thread ([`writer`]) batches rows into SQLite; the main thread
//! starts make (which dies with makescope) and waits; [`signals`] passes signals on. The event loop never waits for the
//! printer or the database, because traced processes wait for it.
//!
//! The record is opened and checked before make starts, so a bad `--db` costs nothing.
//! Whatever happens to the build, the record ends up saying how it ended.

mod dumps;
mod ids;
mod server;
mod signals;
mod ui;
mod writer;

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::exit;
use crate::output::{Mode, Stream};
use crate::protocol;
use crate::store::{BuildEnd, NewBuild, Store};
use crate::trace;
use crate::util::now_ns;

/// The plugin, built by build.rs and carried inside the binary.
static PLUGIN: &[u8] = include_bytes!(env!("MAKESCOPE_PLUGIN_SO"));

/// The make plugin's bytes (`makescope.so`), as every recorded make loads it.
pub fn plugin() -> &'static [u8] {
    PLUGIN
}
/// The shim (src/shim/shim.c, linked statically by build.rs), carried the same way.
static SHIM: &[u8] = include_bytes!(env!("MAKESCOPE_SHIM_BIN"));
/// The tracer's in-process fast path, preloaded into traced commands.
static PRELOAD: &[u8] = include_bytes!(env!("MAKESCOPE_PRELOAD_SO"));

/// make's own ring: 64 MiB of address space, touched only as records arrive. make's
/// prerequisite checks come in bursts (thousands of stats after reading a directory's
/// dependency files) and, with no filter to fall back on, a full ring makes make wait.
const MAKE_RING_UNITS: u64 = 1 << 20;

/// Everything the build's threads share, fixed before make starts.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub build_id: i64,
    pub top_directory: Vec<u8>,
    pub tracing: bool,
    pub keep_secrets: bool,
    pub mode: Mode,
    pub hooks: Option<PathBuf>,
    /// Commands (recipe lines) of the last such build: the progress bar's total.
    pub expected_total: Option<u64>,
    /// Its jobs: the total of the piped status (`[12/345] CC x.o`).
    pub expected_jobs: Option<u64>,
    pub db: PathBuf,
    /// The fast path's helper, as it appears in traced commands' LD_PRELOAD (taken out
    /// of environments recorded inside them).
    pub preload: Option<Vec<u8>>,
    /// makescope's private directory for this build, with a trailing slash: accesses
    /// under it are ours, not the commands'.
    pub private_dir: Vec<u8>,
    /// Where the plugin writes make's database dumps, absolute, with a trailing slash:
    /// ours too, not make's.
    pub makedb_dir: Vec<u8>,
}

/// How a build is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracing {
    /// Commands only, not the files they touch (no seccomp filter).
    Off,
    /// Every file system call trapped, without the in-process helper (LD_PRELOAD) that
    /// serves the common ones.
    TrapOnly,
    /// Trapped calls and the in-process helper's ring: the default.
    FastPath,
}

/// How `makescope make` records and prints, and what it runs.
#[derive(Debug, Clone)]
pub struct MakeOptions {
    pub tracing: Tracing,
    pub mode: Mode,
    /// The user's hooks file, when they named one (otherwise the usual places).
    pub hooks: Option<PathBuf>,
    /// Keep secret-looking environment variables instead of redacting them.
    pub keep_secrets: bool,
    /// Kill what the commands left running when make ends (see [`run`]).
    pub kill_leftovers: bool,
    /// The make program to run.
    pub make_program: PathBuf,
    /// make's argv[0], when not `make_program` as given: `$(MAKE)` is what make was
    /// called (a script standing in for make names itself).
    pub make_name: Option<OsString>,
    /// Arguments for make, passed through unchanged.
    pub make_args: Vec<OsString>,
}

impl MakeOptions {
    /// make's argv[0]: the name it was asked to run under, else the program as given
    /// (`make`, `./make`, `/usr/bin/make`), from which make derives `$(MAKE)` (made
    /// absolute when relative with a slash) and the name in its messages, as plain
    /// make run that way would.
    pub fn argv0(&self) -> &OsStr {
        self.make_name
            .as_deref()
            .unwrap_or(self.make_program.as_os_str())
    }
}

/// The status make 4.3 exits with when it finds, closing stdout, that a write failed.
const STDOUT_WRITE_ERROR: u8 = 1;

/// `makescope make`: run make, record the build, return make's exit status (or
/// [`exit::HOOKS_FAILED`] when make succeeded and a hook raised).
pub fn run(config: &Config, options: &MakeOptions) -> Result<u8> {
    if options.make_name.as_deref().is_some_and(OsStr::is_empty) {
        bail!("--make-name must not be empty (it is make's argv[0])");
    }
    if inside_a_recorded_build() {
        return Err(join_the_recorded_build(options));
    }
    let top_directory =
        std::env::current_dir().context("the current directory is not accessible")?;
    // What makescope kept before this build, for the size notice at its end.
    let footprint_before = crate::gc::footprint(&config.db);
    let mut store = Store::open_write(&config.db)?;
    let tracing = options.tracing != Tracing::Off;
    if tracing {
        check_tracing()?;
    }
    let runtime = Runtime::create(options.tracing == Tracing::FastPath)?;
    let makedb_dir = crate::gc::makedb_dir(&config.db);
    // make's database dumps hold its variables (environment included): the owner's
    // alone, as the record is.
    crate::store::create_private_dir(&makedb_dir)
        .with_context(|| format!("cannot create {}", makedb_dir.display()))?;

    let argv = crate::util::join_nul(options.make_args.iter().map(|a| a.as_bytes()));
    let argv = if options.keep_secrets {
        argv
    } else {
        crate::util::redact_arguments(&argv)
    };
    let directory = top_directory.as_os_str().as_bytes().to_vec();
    let (build_id, first_blocks) = ids::reserve_first(&mut store)?;
    // Held until makescope ends, however it ends: a build left `running` without it was
    // cut off.
    let _recorder = store.hold_recorder_lock(build_id)?;
    for build in store.mark_cut_off()? {
        eprintln!(
            "makescope: build {build} was cut off: its recorder was killed before the build \
             ended; the record keeps what it wrote, marked interrupted"
        );
    }
    let previous = store.previous_counts(&directory, &argv)?;
    store.insert_build(&NewBuild {
        id: build_id,
        argv,
        directory: directory.clone(),
        started_ns: now_ns(),
        traced: tracing,
    })?;

    let setup = Setup {
        build_id,
        top_directory: directory,
        tracing,
        keep_secrets: options.keep_secrets,
        mode: options.mode,
        hooks: crate::hooks::find(options.hooks.as_deref(), &top_directory),
        expected_total: previous.map(|(commands, _)| commands),
        expected_jobs: previous.map(|(_, jobs)| jobs),
        // For people: relative to where they are, when it is below.
        db: config
            .db
            .strip_prefix(&top_directory)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| config.db.clone()),
        preload: runtime
            .preload
            .as_ref()
            .map(|p| p.as_os_str().as_bytes().to_vec()),
        private_dir: {
            let mut dir = runtime.dir.as_os_str().as_bytes().to_vec();
            dir.push(b'/');
            dir
        },
        makedb_dir: {
            let mut dir = top_directory
                .join(&makedb_dir)
                .as_os_str()
                .as_bytes()
                .to_vec();
            dir.push(b'/');
            dir
        },
    };

    let (to_writer, writer_rx) = mpsc::channel();
    let (to_ui, ui_rx) = mpsc::channel();
    let (answers, answers_rx) = mpsc::channel();
    let writer = writer::spawn(
        store,
        ids::Blocks::new(first_blocks.clone(), answers),
        dumps::Dumps::new(!options.keep_secrets).with_listings(&config.db, &runtime.dir),
        writer_rx,
    );
    let ui = ui::spawn(setup.clone(), ui_rx, to_writer.clone());
    let mut server = server::Server::bind(
        &runtime.socket,
        setup.clone(),
        ids::Ids::new(first_blocks, to_writer.clone(), answers_rx),
        to_writer.clone(),
        to_ui.clone(),
    )?;
    // make's own file activity (makefiles read, prerequisites looked at): make runs with
    // the fast path's helper and a ring of its own, with no filter under it (a filter
    // there would be inherited by every recipe line, whose own listeners the kernel
    // would then refuse). Only with the fast path: trapping alone cannot see make.
    let make_ring = match &runtime.preload {
        Some(_) => {
            let ring = trace::Ring::new(MAKE_RING_UNITS).context("making make's ring")?;
            let fd = ring.fd().as_raw_fd();
            server.set_make_ring(ring);
            Some(fd)
        }
        None => None,
    };
    let stopper = server.stopper();
    let server = std::thread::Builder::new()
        .name("events".into())
        .spawn(move || server.run())?;

    signals::install().context("cannot take signals")?;
    if options.kill_leftovers {
        // Every process a command leaves running is orphaned to its shim (a
        // subreaper), then, when the shim ends, to us: make itself is no subreaper.
        // A PID namespace would kill them as surely, but it would also give make and
        // every command pids, /proc and signals of another namespace; being the
        // subreaper changes nothing the build sees.
        crate::replay::exec::become_subreaper();
    }
    let started = std::time::Instant::now();
    let status = run_make(options, &runtime, make_ring, &makedb_dir, &to_ui);
    if options.kill_leftovers {
        let killed = crate::replay::exec::kill_children();
        if !killed.is_empty() {
            eprintln!(
                "makescope: killed {} process(es) the build's commands left running: {}",
                killed.len(),
                killed.join(", ")
            );
        }
    }
    stopper.stop();
    let leftovers = server
        .join()
        .map_err(|_| anyhow::anyhow!("the event loop panicked"))?;
    server::keep_answering(leftovers);

    // make may not even have started: the build still ends in the record, as failed.
    let (signal, exit_code) = match &status {
        Ok(status) => (status.signal(), status.code()),
        Err(_) => (None, None),
    };
    let received = signals::received();
    // What happened to make: it died of a signal, or failed after one; a make that
    // finished the build anyway (a signal it ignores) completed it.
    let interrupted = signal.is_some() || (received != 0 && exit_code != Some(0));
    let state = if status.is_err() {
        "failed"
    } else if interrupted {
        "interrupted"
    } else if exit_code == Some(0) {
        "complete"
    } else {
        "failed"
    };
    let _ = to_ui.send(ui::Event::Done {
        exit_code,
        signal,
        elapsed: started.elapsed(),
    });
    drop(to_ui);
    let ui_result = ui
        .join()
        .map_err(|_| anyhow::anyhow!("the output thread panicked"))?;
    let end = BuildEnd {
        ended_ns: now_ns(),
        state,
        exit_code,
        signal,
        hooks_failed: ui_result.hooks_failed,
    };
    let _ = to_writer.send(writer::Write::BuildEnd(setup.build_id, end));
    drop(to_writer);
    // The record is a by-product: make's status stands when it could not be written.
    let recorded = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the record's writer panicked"))?;
    if let Err(error) = recorded {
        eprintln!("makescope: the record is incomplete: {error:#}");
    }
    // Dumps whose make never said it ended (killed), kept as the writer keeps the rest.
    dumps::Dumps::new(!options.keep_secrets).keep_all(&makedb_dir);
    size_notice(&config.db, footprint_before);
    if std::env::var_os("MAKESCOPE_TRACE_STATS").is_some() {
        // For measurements: the recorder's CPU against the build's.
        let cpu = |who| {
            // SAFETY: a zeroed rusage is valid; getrusage fills it in.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: `usage` is a live rusage for the call to fill in.
            unsafe { libc::getrusage(who, &mut usage) };
            let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            (s(usage.ru_utime), s(usage.ru_stime))
        };
        let ((user, system), (child_user, child_system)) =
            (cpu(libc::RUSAGE_SELF), cpu(libc::RUSAGE_CHILDREN));
        eprintln!(
            "makescope: CPU: makescope user {user:.1} s, system {system:.1} s; \
             make and its commands user {child_user:.1} s, system {child_system:.1} s"
        );
    }
    status?;

    if let Some(signal) = ending_signal(signal, received, exit_code) {
        drop(runtime);
        die_by(signal);
    }
    if ui_result.stdout_failed {
        // make's stdout is makescope's pipe, so make never sees the error: makescope
        // tells it with make's words, at the end, as make does when it closes stdout.
        let program = Path::new(options.argv0())
            .file_name()
            .map_or_else(|| "make".into(), |name| name.to_string_lossy());
        eprintln!("{program}: write error: stdout");
    }
    Ok(match exit_code {
        Some(0) if ui_result.stdout_failed => STDOUT_WRITE_ERROR,
        Some(0) if ui_result.hooks_failed => exit::HOOKS_FAILED,
        Some(code) => code as u8,
        None => exit::ERROR,
    })
}

/// Say once, when what makescope keeps for this record grew past a threshold
/// ([`crate::gc::NOTICE_FROM`], or `$MAKESCOPE_SIZE_NOTICE` bytes, then each doubling),
/// how big it is and how to make it smaller.
fn size_notice(db: &Path, before: u64) {
    let from = std::env::var("MAKESCOPE_SIZE_NOTICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(crate::gc::NOTICE_FROM);
    let after = crate::gc::footprint(db);
    if crate::gc::threshold_passed(before, after, from).is_none() {
        return;
    }
    let builds = Store::open_read(db)
        .and_then(|s| s.build_ids())
        .map_or(0, |b| b.len());
    let dir = db.parent().unwrap_or(Path::new("."));
    eprintln!(
        "makescope: {} holds {} ({builds} build{}); `makescope gc` keeps the newest 3 and removes the rest",
        dir.display(),
        crate::gc::human_bytes(after),
        if builds == 1 { "" } else { "s" },
    );
}

/// Fail early, with what to do, when the kernel will not let us trace.
fn check_tracing() -> Result<()> {
    // SAFETY: fork(2) takes nothing; the child only installs a filter and exits (the
    // event loop and the other threads are not started yet).
    let child = unsafe { libc::fork() };
    if child < 0 {
        bail!("cannot fork: {}", std::io::Error::last_os_error());
    }
    if child == 0 {
        let code = match crate::trace::install_filter() {
            Ok(_) => 0,
            Err(crate::trace::TraceError::AlreadyFiltered) => 3,
            Err(_) => 1,
        };
        // SAFETY: _exit(2) ends the forked child without running the parent's exit code.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `status` is a live int for waitpid to fill in; `child` is our child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        3 => bail!(
            "cannot trace files: this process already runs under a seccomp user-notification filter \
             (a traced command that runs a makescope of its own, or a sandbox); run with --no-trace to record commands without files"
        ),
        _ => bail!(
            "cannot trace files: the kernel refused a seccomp user-notification filter (needs Linux ≥ 5.5 \
             with seccomp); run with --no-trace to record commands without files"
        ),
    }
}

/// The private directory a build's socket, plugin and shim links live in.
struct Runtime {
    dir: PathBuf,
    socket: PathBuf,
    plugin: PathBuf,
    /// The makefile MAKEFILES names, which loads the plugin
    /// ([`crate::plugin::load_makefile`]).
    makefile: PathBuf,
    shim: PathBuf,
    filter: PathBuf,
    preload: Option<PathBuf>,
    shell_dir: PathBuf,
}

impl Runtime {
    /// The private directory with everything make and the shims need; `fast_path`: with
    /// the tracer's preload helper (and a filter that lets its calls through).
    fn create(fast_path: bool) -> Result<Runtime> {
        let dir = crate::util::private_temp_dir("makescope")?;
        let plugin = dir.join(crate::plugin::FILE_NAME);
        std::fs::write(&plugin, PLUGIN)
            .with_context(|| format!("cannot write {}", plugin.display()))?;
        let makefile = dir.join(crate::plugin::MAKEFILE_NAME);
        std::fs::write(&makefile, crate::plugin::load_makefile(&plugin, &makefile)?)
            .with_context(|| format!("cannot write {}", makefile.display()))?;
        let shell_dir = dir.join("sh");
        std::fs::create_dir(&shell_dir)
            .with_context(|| format!("cannot create {}", shell_dir.display()))?;
        let shim = dir.join("makescope-shim");
        write_executable(&shim, SHIM)?;
        // The seccomp program, built once here; the shim's child installs it.
        let filter = dir.join("filter.bpf");
        let options = crate::trace::FilterOptions {
            trusted_page: fast_path.then_some(crate::trace::FAST_PATH_PAGE),
            ..Default::default()
        };
        std::fs::write(&filter, crate::trace::Filter::new(options).program_bytes())
            .with_context(|| format!("cannot write {}", filter.display()))?;
        let preload = if fast_path {
            let path = dir.join(crate::trace::HELPER_FILE);
            std::fs::write(&path, PRELOAD)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(path)
        } else {
            None
        };
        Ok(Runtime {
            socket: dir.join("sock"),
            plugin,
            makefile,
            shim,
            filter,
            preload,
            shell_dir,
            dir,
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_executable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The signal makescope ends with, if any: the one that ended make, or the one that
/// interrupted the build (`received`) when make, which dies of it, exited with a failure
/// instead. GNU make 4.3 does when the signal reaches it as it reaps the interrupted
/// command (its handler then waits for a child it has already reaped, finds none, and
/// exits 2 with "wait: No child processes"; plain make does it too, under load). A
/// SIGQUIT make answers with exit 2 on purpose (no core dump), so its status stands.
fn ending_signal(make_signal: Option<i32>, received: i32, exit_code: Option<i32>) -> Option<i32> {
    let fatal_to_make = matches!(received, libc::SIGINT | libc::SIGTERM | libc::SIGHUP);
    make_signal.or((fatal_to_make && exit_code != Some(0)).then_some(received))
}

/// End makescope by `signal`, so whoever ran it (a shell deciding whether to go on)
/// sees the build end as make's did.
fn die_by(signal: i32) -> ! {
    // SAFETY: signal(2), pthread_sigmask(3) and raise(3) take no pointers but to the
    // signal set, a live local that sigemptyset initialises first. raise delivers the
    // signal to this thread before it returns, and its default action ends the process.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    // Only a signal whose default action is not to end the process gets here.
    std::process::exit(128 + signal)
}

/// Whether this process runs inside a recipe of a build makescope records: the
/// recorder's socket is in the environment and there.
fn inside_a_recorded_build() -> bool {
    std::env::var_os(protocol::ENV_CTX).is_some_and(|c| !c.is_empty())
        && std::env::var_os(protocol::ENV_SOCK)
            .is_some_and(|s| !s.is_empty() && Path::new(&s).exists())
}

/// `makescope make` inside a recipe of a recorded build (a script that stands in for
/// make, called by name from a makefile): exec make itself, which joins the build as a
/// sub-make of the command that ran it (the plugin's makefile is in MAKEFILES), in the
/// outer build's record and under its options. Returns only when make cannot run.
fn join_the_recorded_build(options: &MakeOptions) -> anyhow::Error {
    let error = Command::new(&options.make_program)
        .arg0(options.argv0())
        .args(&options.make_args)
        .exec();
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("cannot run {}: not found", options.make_program.display())
        }
        _ => anyhow::anyhow!("cannot run {}: {error}", options.make_program.display()),
    }
}

/// Whether make's command line `args` sets the variable MAKEFILES (`MAKEFILES=…`,
/// `MAKEFILES:=…`, `override MAKEFILES+=…`, …), which overrides the environment's.
fn sets_makefiles(args: &[OsString]) -> bool {
    let mut after_options = false;
    args.iter().any(|arg| {
        let arg = arg.as_bytes();
        if arg == b"--" {
            after_options = true;
        }
        if arg.starts_with(b"-") && !after_options {
            return false;
        }
        let arg = arg.strip_prefix(b"override ").unwrap_or(arg);
        let Some(equals) = arg.iter().position(|&b| b == b'=') else {
            return false;
        };
        let name = arg[..equals].trim_ascii_end();
        let name = name
            .strip_suffix(b"::")
            .or_else(|| name.strip_suffix(b":"))
            .or_else(|| name.strip_suffix(b"+"))
            .or_else(|| name.strip_suffix(b"?"))
            .or_else(|| name.strip_suffix(b"!"))
            .unwrap_or(name);
        name.trim_ascii() == b"MAKEFILES"
    })
}

/// The environment variable `name` with `item` before the rest after `separator` (or
/// `item` alone when it is unset or empty).
fn prepended(name: &str, separator: &str, item: &OsStr) -> OsString {
    let mut value = item.to_os_string();
    if let Some(old) = std::env::var_os(name).filter(|v| !v.is_empty()) {
        value.push(separator);
        value.push(old);
    }
    value
}

/// The environment variable `name` with `item` appended after `separator` (or `item`
/// alone when it is unset or empty).
fn appended(name: &str, separator: &str, item: &OsStr) -> OsString {
    let mut value = std::env::var_os(name).unwrap_or_default();
    if !value.is_empty() {
        value.push(separator);
    }
    value.push(item);
    value
}

fn run_make(
    options: &MakeOptions,
    runtime: &Runtime,
    make_ring: Option<RawFd>,
    makedb_dir: &Path,
    to_ui: &mpsc::Sender<ui::Event>,
) -> Result<std::process::ExitStatus> {
    let plain = options.mode.is_plain();
    let mut command = Command::new(&options.make_program);
    command.arg0(options.argv0());
    if sets_makefiles(&options.make_args) {
        // The command line's MAKEFILES hides the environment's from every make of the
        // build (it travels in MAKEFLAGS): load the plugin the visible way.
        command
            .arg(crate::plugin::load_argument(&runtime.plugin))
            .env_remove(protocol::ENV_MAKEFILE);
    } else {
        command
            .env(
                "MAKEFILES",
                prepended("MAKEFILES", " ", runtime.makefile.as_os_str()),
            )
            .env(protocol::ENV_MAKEFILE, &runtime.makefile);
    }
    command
        .args(&options.make_args)
        .env(protocol::ENV_SOCK, &runtime.socket)
        .env(protocol::ENV_SHIM, &runtime.shim)
        .env(protocol::ENV_SHELL_DIR, &runtime.shell_dir)
        .env(protocol::ENV_FILTER, &runtime.filter)
        .env(
            protocol::ENV_PRELOAD,
            runtime.preload.as_deref().unwrap_or(Path::new("")),
        )
        .env(
            protocol::ENV_TRACE,
            if options.tracing == Tracing::Off {
                "0"
            } else {
                "1"
            },
        )
        .env(protocol::ENV_TEE, if plain { "1" } else { "0" })
        // With -v the printer prints each command with its output: make must not echo.
        .env(protocol::ENV_SILENT, if plain { "0" } else { "1" })
        .env(protocol::ENV_MAKEDB_DIR, makedb_dir)
        .env_remove(protocol::ENV_CTX)
        .env_remove(protocol::ENV_TRACED);
    if let (Some(ring), Some(helper)) = (make_ring, &runtime.preload) {
        // As the shim does for a traced command (shim.c, enable_fast_path): the helper
        // after the user's own preloads, and a sanitizer's runtime allowed not to be
        // first. The shim takes all of this back out for each traced recipe line.
        command
            .env(
                "LD_PRELOAD",
                appended("LD_PRELOAD", " ", helper.as_os_str()),
            )
            .env(
                "ASAN_OPTIONS",
                appended("ASAN_OPTIONS", ":", OsStr::new("verify_asan_link_order=0")),
            )
            .env("MAKESCOPE_TRACE_RING", ring.to_string())
            .env(
                "MAKESCOPE_TRACE_PAGE",
                format!("{:x}", trace::FAST_PATH_PAGE),
            )
            .env("MAKESCOPE_TRACE_UNFILTERED", "1");
    }
    if !plain {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    // make must not outlive makescope (a build nobody records): it gets SIGTERM, which
    // it passes on to its jobs, when makescope dies. The kernel sends it when the thread
    // that forked make ends: this one, the main thread, which lives as long as makescope.
    let makescope = std::process::id() as libc::pid_t;
    // SAFETY: the hook runs in the forked child before exec and only calls signal(2),
    // prctl(2), getppid(2), and fcntl(2), which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            signals::reset_in_child();
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // makescope died before the request took effect: nobody would record.
            if libc::getppid() != makescope {
                return Err(std::io::Error::other("makescope ended"));
            }
            // make's ring is close-on-exec in makescope; make itself must have it.
            if let Some(ring) = make_ring {
                if libc::fcntl(ring, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("cannot run {}: not found", options.make_program.display())
        }
        _ => anyhow::anyhow!("cannot run {}: {e}", options.make_program.display()),
    })?;
    signals::set_make(child.id() as i32);
    let readers: Vec<_> = [
        (child.stdout.take().map(OwnedFd::from), Stream::Stdout),
        (child.stderr.take().map(OwnedFd::from), Stream::Stderr),
    ]
    .into_iter()
    .filter_map(|(fd, stream)| fd.map(|fd| (fd, stream)))
    .map(|(fd, stream)| {
        let to_ui = to_ui.clone();
        std::thread::spawn(move || forward_make_output(fd, stream, to_ui))
    })
    .collect();
    // Until make is reaped its pid is its own: signals are passed on until then.
    loop {
        // SAFETY: a zeroed siginfo is valid for waitid to fill in; WNOWAIT leaves make
        // to be reaped below.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live siginfo; make is our child.
        let waited = unsafe {
            libc::waitid(
                libc::P_PID,
                child.id(),
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if waited == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            break;
        }
    }
    signals::forget_make();
    let status = loop {
        match child.wait() {
            Ok(status) => break status,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("waiting for make"),
        }
    };
    for reader in readers {
        let _ = reader.join();
    }
    Ok(status)
}

fn forward_make_output(fd: OwnedFd, stream: Stream, to_ui: mpsc::Sender<ui::Event>) {
    let mut file = std::fs::File::from(fd);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if to_ui
                    .send(ui::Event::MakeOutput(stream, buffer[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_makefiles_is_seen_in_any_spelling() {
        let sets =
            |args: &[&str]| sets_makefiles(&args.iter().map(OsString::from).collect::<Vec<_>>());
        assert!(sets(&["-j2", "MAKEFILES=a.mk"]));
        assert!(sets(&["MAKEFILES :=a.mk"]));
        assert!(sets(&["override MAKEFILES+=a.mk"]));
        assert!(sets(&["--", "MAKEFILES?=a.mk"]));
        assert!(!sets(&["-j2", "all", "MAKEFILES_X=1", "X=MAKEFILES=1"]));
        assert!(!sets(&["--eval=MAKEFILES=a.mk"]));
    }

    #[test]
    fn an_interrupted_build_ends_with_the_signal_make_died_of_or_would_have() {
        // make died of a signal: that one, whatever makescope received.
        assert_eq!(
            ending_signal(Some(libc::SIGTERM), libc::SIGINT, None),
            Some(libc::SIGTERM)
        );
        // make meant to die of the interrupt but exited 2 (make 4.3's reaping race).
        assert_eq!(
            ending_signal(None, libc::SIGINT, Some(2)),
            Some(libc::SIGINT)
        );
        assert_eq!(
            ending_signal(None, libc::SIGHUP, Some(2)),
            Some(libc::SIGHUP)
        );
        // make finished the build anyway: its status stands.
        assert_eq!(ending_signal(None, libc::SIGINT, Some(0)), None);
        // make answers SIGQUIT with exit 2 on purpose.
        assert_eq!(ending_signal(None, libc::SIGQUIT, Some(2)), None);
        // Not interrupted: make's status.
        assert_eq!(ending_signal(None, 0, Some(2)), None);
    }
}
