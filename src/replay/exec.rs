//! The executor: runs a [`Plan`]'s lines as make would (each line one shell, in the
//! recorded directory and environment, output inherited so it streams as it comes,
//! stopping at the first failure make would stop at), then kills what the command left
//! running. Plain ([`Executor::for_this_process`]), or each line under the seccomp
//! tracer ([`Executor::traced`]: the line's processes and file accesses come back in
//! its [`LineOutcome::trace`]), and in a sandbox ([`Executor::sandboxed`]).
//!
//! Traced, each line is its own run: what a line leaves running is killed when that
//! line ends (the tracer's run ends when every process under its filter has), where a
//! plain replay kills leftovers when the recipe ends.
//!
//! Leftovers: [`Executor::for_this_process`] makes this process the child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so every process the command starts that outlives its
//! parent (a double-forked, `setsid`'d daemon included) becomes our child; when the
//! recipe ends, every child of this process is killed (SIGKILL), round after round as
//! their own orphans arrive, and named. That is sound only while this process runs one
//! replay at a time and starts no other children: the CLI's case. Running jobs in
//! parallel needs a PID namespace per job (the sandbox's). This module never reads or
//! writes the record.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::plan::{Plan, Variable};
use super::sandbox::Sandbox;
use super::ReplayError;
use crate::trace::{self, Event, PathTable};
use crate::util::{lossy, now_ns};

/// How one line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

impl Status {
    /// The status a shell reports for it: the code, or 128+N for signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            Status::Exited(code) => code,
            Status::Signaled(signal) => 128 + signal,
        }
    }
}

/// One line's run.
#[derive(Debug, Clone)]
pub struct LineOutcome {
    /// Its position in the recipe, from 1.
    pub line: usize,
    /// Its recorded command id.
    pub command_id: i64,
    pub status: Status,
    /// It failed and the recipe went on, as make did in the recorded build.
    pub ignored: bool,
    pub duration: Duration,
    /// When it started and ended (ns since the epoch).
    pub started_ns: i64,
    pub ended_ns: i64,
    /// What the tracer saw, when the line was traced.
    pub trace: Option<LineTrace>,
    /// In a sandbox: what it touched outside it, and what the sandbox cost.
    pub sandbox: Option<SandboxRun>,
}

/// One line's run in a sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxRun {
    /// The paths it touched that the sandbox does not hold, with the access.
    pub misses: Vec<(Vec<u8>, crate::access::AccessKind)>,
    /// From the start to the namespaces made (ns).
    pub namespaces_ns: i64,
    /// The root built (ns).
    pub mounts_ns: i64,
    /// From the shell's end to the namespace's init reaped, everything left killed (ns).
    pub teardown_ns: i64,
}

/// What the tracer saw of one line: every event, in order, and the paths they number.
#[derive(Debug)]
pub struct LineTrace {
    pub events: Vec<Event>,
    pub paths: PathTable,
}

impl Clone for LineTrace {
    fn clone(&self) -> LineTrace {
        let mut paths = PathTable::default();
        for name in self.paths.names_from(0) {
            paths.intern(name);
        }
        LineTrace {
            events: self.events.clone(),
            paths,
        }
    }
}

impl LineOutcome {
    /// "exited 2", "was killed by signal 9".
    pub fn status_text(&self) -> String {
        match self.status {
            Status::Exited(code) => format!("exited {code}"),
            Status::Signaled(signal) => format!("was killed by signal {signal}"),
        }
    }
}

/// A replay's run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The lines that ran, in order; the last one failed if the recipe stopped early.
    pub lines: Vec<LineOutcome>,
    /// The processes the command left running, killed: `pid argv…` each.
    pub killed: Vec<String>,
    /// What the lines wrote, when the executor captures it ([`Executor::capturing`]).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// The process's exit status: the first failure that stopped the recipe (128+N for
    /// a signal, like a shell), else 0.
    pub fn exit_status(&self) -> u8 {
        self.lines
            .iter()
            .find(|l| !l.ignored && l.status != Status::Exited(0))
            .map_or(0, |l| l.status.shell_code().clamp(0, 255) as u8)
    }
}

/// Runs plans.
#[derive(Debug)]
pub struct Executor {
    kill_leftovers: bool,
    trace: bool,
    sandbox: Option<Sandbox>,
    capture: bool,
}

/// The child running now, for the signal handlers to pass SIGTERM and SIGHUP on to.
static RUNNING: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(signal: libc::c_int) {
    let pid = RUNNING.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; `pid` is our unreaped child (RUNNING is
        // cleared before it is waited for), so it names no other process.
        unsafe { libc::kill(pid, signal) };
    }
}

extern "C" fn ignore(_: libc::c_int) {}

/// Install `handler` for `signal`. A handler (not SIG_IGN) is reset to the default in
/// the child by exec, so the command gets the dispositions make would have given it.
fn install(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler only
    // touches an atomic and calls kill, both async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

impl Executor {
    /// The executor for a process that runs one replay at a time and nothing else: it
    /// becomes the subreaper of what the command starts and kills its leftovers. A
    /// terminal's Ctrl-C reaches the command (same process group) and not makescope,
    /// which waits for the command's own status; SIGTERM and SIGHUP sent to makescope
    /// are passed on to the command.
    pub fn for_this_process() -> Executor {
        let subreaper = become_subreaper();
        install(libc::SIGINT, ignore);
        install(libc::SIGQUIT, ignore);
        install(libc::SIGTERM, pass_on);
        install(libc::SIGHUP, pass_on);
        Executor {
            kill_leftovers: subreaper,
            trace: false,
            sandbox: None,
            capture: false,
        }
    }

    /// An executor that leaves leftovers alone: for a process that has other children
    /// (a test harness).
    pub fn leaving_leftovers() -> Executor {
        Executor {
            kill_leftovers: false,
            trace: false,
            sandbox: None,
            capture: false,
        }
    }

    /// Trace each line (its processes and file accesses come back in its outcome).
    /// With an executor that leaves leftovers alone, a line that leaves a process
    /// running is not over until that process ends.
    pub fn traced(mut self) -> Executor {
        self.trace = true;
        self
    }

    /// Run each line in `sandbox` (traced: the tracer names what the line touched
    /// outside it). The namespace's end kills what the line left running.
    pub fn sandboxed(mut self, sandbox: Sandbox) -> Executor {
        self.trace = true;
        self.sandbox = Some(sandbox);
        self
    }

    /// Capture what the lines write (in [`Outcome::stdout`] and [`Outcome::stderr`])
    /// instead of passing it on: for a library caller.
    pub fn capturing(mut self) -> Executor {
        self.capture = true;
        self
    }

    /// Run the plan's lines in order; stop at the first failure that is not ignored.
    pub fn run(&self, plan: &Plan) -> Result<Outcome, ReplayError> {
        let mut outcome = Outcome::default();
        let captured = if self.capture {
            let file = |name: &std::ffi::CStr| {
                trace::sys::memfd_create(name, libc::MFD_CLOEXEC)
                    .map(std::fs::File::from)
                    .map_err(|error| ReplayError::Spawn {
                        shell: "the command (capturing its output)".into(),
                        error,
                    })
            };
            Some((file(c"stdout")?, file(c"stderr")?))
        } else {
            None
        };
        let result = self.run_lines(plan, &mut outcome, captured.as_ref());
        if let Some((out, err)) = captured {
            use std::io::{Read, Seek};
            for (mut file, into) in [(out, &mut outcome.stdout), (err, &mut outcome.stderr)] {
                let _ = file.rewind();
                let _ = file.read_to_end(into);
            }
        }
        if self.kill_leftovers {
            outcome.killed.extend(kill_children());
        }
        result.map(|()| outcome)
    }

    fn run_lines(
        &self,
        plan: &Plan,
        outcome: &mut Outcome,
        captured: Option<&(std::fs::File, std::fs::File)>,
    ) -> Result<(), ReplayError> {
        for line in &plan.lines {
            let direct = without_shell(plan, line);
            let exec_as_make = direct.is_some();
            let argv: Vec<&[u8]> = match direct {
                Some(words) => words,
                None => plan.argv(line).collect(),
            };
            let shell = argv.first().copied().unwrap_or_default();
            let mut command = Command::new(OsStr::from_bytes(shell));
            command
                .args(argv[1..].iter().map(|a| OsStr::from_bytes(a)))
                .current_dir(OsStr::from_bytes(&plan.directory))
                .env_clear();
            for variable in &plan.environment {
                if let Variable::Set(entry) = variable {
                    if let Some(eq) = entry.iter().position(|&b| b == b'=') {
                        command.env(
                            OsStr::from_bytes(&entry[..eq]),
                            OsStr::from_bytes(&entry[eq + 1..]),
                        );
                    }
                }
            }
            if let Some((out, err)) = captured {
                let clone = |f: &std::fs::File| {
                    f.try_clone().map_err(|error| ReplayError::Spawn {
                        shell: lossy(shell).into_owned(),
                        error,
                    })
                };
                command.stdout(clone(out)?).stderr(clone(err)?);
            }
            let started = Instant::now();
            let started_ns = now_ns();
            let ran = if self.trace {
                self.run_traced(command, shell)
                    .map(|(status, trace, killed, sandbox)| {
                        outcome.killed.extend(killed);
                        (status, Some(trace), sandbox)
                    })
            } else {
                self.run_plain(command, shell)
                    .map(|status| (status, None, None))
            };
            let (status, trace, sandbox) = match ran {
                Ok((status, trace, sandbox)) => match (status.code(), status.signal()) {
                    (Some(code), _) => (Status::Exited(code), trace, sandbox),
                    (None, Some(signal)) => (Status::Signaled(signal), trace, sandbox),
                    (None, None) => (Status::Exited(127), trace, sandbox),
                },
                // A program make would have exec'd itself and could not: make's child
                // says so and exits 127, and so does the replay.
                Err(ReplayError::Spawn { error, .. })
                    if exec_as_make && exec_failure(&error).is_some() =>
                {
                    let message = format!(
                        "make: {}: {}\n",
                        lossy(shell),
                        exec_failure(&error).unwrap_or_default()
                    );
                    match captured {
                        Some((_, err)) => {
                            use std::io::Write;
                            let _ = (&*err).write_all(message.as_bytes());
                        }
                        None => eprint!("{message}"),
                    }
                    (Status::Exited(127), None, None)
                }
                Err(error) => return Err(error),
            };
            let failed = status != Status::Exited(0);
            outcome.lines.push(LineOutcome {
                line: line.number,
                command_id: line.command_id,
                status,
                ignored: failed && line.ignore_errors,
                duration: started.elapsed(),
                started_ns,
                ended_ns: now_ns(),
                trace,
                sandbox,
            });
            if failed && !line.ignore_errors {
                break;
            }
        }
        Ok(())
    }
}

impl Executor {
    fn run_plain(
        &self,
        mut command: Command,
        shell: &[u8],
    ) -> Result<std::process::ExitStatus, ReplayError> {
        let spawn_error = |error| ReplayError::Spawn {
            shell: lossy(shell).into_owned(),
            error,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        RUNNING.store(child.id() as i32, Ordering::SeqCst);
        let waited = child.wait();
        RUNNING.store(0, Ordering::SeqCst);
        waited.map_err(spawn_error)
    }

    /// One line under the tracer (in the sandbox, if there is one); what it left
    /// running is killed before the tracer is waited for, and named.
    fn run_traced(&self, mut command: Command, shell: &[u8]) -> Result<TracedLine, ReplayError> {
        let spawn_error = |error| ReplayError::Spawn {
            shell: lossy(shell).into_owned(),
            error,
        };
        if let Some(sandbox) = &self.sandbox {
            sandbox.enter(&mut command);
        }
        let mut killed = Vec::new();
        let kill = self.kill_leftovers && self.sandbox.is_none();
        let traced = trace::run_traced_with(
            &mut command,
            &trace::Filter::default(),
            trace::RunHooks {
                new_group: false,
                deadline: None,
                spawned: &mut |pid| RUNNING.store(pid as i32, Ordering::SeqCst),
                exited: &mut || {
                    RUNNING.store(0, Ordering::SeqCst);
                    if kill {
                        killed = kill_children();
                    }
                },
                through_root: self.sandbox.is_some(),
            },
        )
        .map_err(spawn_error)?;
        let reaped = now_ns();
        let trace = LineTrace {
            events: traced.events,
            paths: traced.paths,
        };
        let mut run = None;
        if let Some(sandbox) = &self.sandbox {
            // The namespace's init ended and took every process left in it along:
            // it listed them first.
            killed = sandbox.last_left();
            let shell_ended = shell_end(&trace.events).unwrap_or(reaped);
            let (started, namespaces, mounts) = sandbox.last_times().unwrap_or_default();
            run = Some(SandboxRun {
                misses: sandbox.misses(&trace),
                namespaces_ns: namespaces - started,
                mounts_ns: mounts - namespaces,
                teardown_ns: reaped - shell_ended,
            });
        }
        Ok((traced.status, trace, killed, run))
    }
}

/// The words of a line make would have exec'd without a shell (make's fast path, as
/// the shim decides it: `/bin/sh -c` or `-ec`, no quotes, backslashes or shell
/// metacharacters, no assignment or builtin first), else `None`: run so, the replay
/// runs the same processes the build did (its program is looked up along the
/// command's PATH).
fn without_shell<'a>(plan: &'a Plan, line: &'a super::Line) -> Option<Vec<&'a [u8]>> {
    const BUILTINS: &[&str] = &[
        ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "eval", "exec",
        "exit", "export", "fc", "fg", "for", "getopts", "hash", "if", "jobs", "login", "logout",
        "read", "readonly", "return", "set", "shift", "test", "trap", "type", "ulimit", "umask",
        "unalias", "unset", "wait", "while",
    ];
    let shell = &plan.shell;
    if shell.len() != 2 || shell[0] != b"/bin/sh" || !matches!(shell[1].as_slice(), b"-c" | b"-ec")
    {
        return None;
    }
    if line
        .text
        .iter()
        .any(|b| b"#;\"*?[]&|<>(){}$`^~!'\\\n\r".contains(b))
    {
        return None;
    }
    let words: Vec<&[u8]> = line
        .text
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty())
        .collect();
    let first = words.first()?;
    if first.contains(&b'=') || BUILTINS.iter().any(|b| b.as_bytes() == *first) {
        return None;
    }
    Some(words)
}

/// The C library's text for an error `execvp` gives when the program cannot run (no
/// such file, not executable, not a program), as make prints it; `None` for others.
fn exec_failure(error: &std::io::Error) -> Option<String> {
    let code = error.raw_os_error()?;
    if !matches!(
        code,
        libc::ENOENT
            | libc::EACCES
            | libc::ENOEXEC
            | libc::ENOTDIR
            | libc::ELOOP
            | libc::ENAMETOOLONG
            | libc::ETXTBSY
    ) {
        return None;
    }
    // SAFETY: strerror returns a pointer to a NUL-terminated string that stays valid
    // until the next strerror call on this thread; it is copied at once.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
    Some(text.to_string_lossy().into_owned())
}

/// A traced line's status, trace, leftovers killed, and its sandbox's report.
type TracedLine = (
    std::process::ExitStatus,
    LineTrace,
    Vec<String>,
    Option<SandboxRun>,
);

/// When the first process (the shell) ended, from the tracer's events.
fn shell_end(events: &[Event]) -> Option<i64> {
    let shell = events.iter().find_map(|e| match e {
        Event::Process { pid, .. } => Some(*pid),
        _ => None,
    })?;
    events.iter().find_map(|e| match e {
        Event::Exit { pid, time_ns, .. } | Event::Gone { pid, time_ns } if *pid == shell => {
            Some(*time_ns)
        }
        _ => None,
    })
}

/// Make this process the child subreaper: what its descendants orphan becomes its
/// child (so [`kill_children`] finds it). Whether the kernel agreed.
pub(crate) fn become_subreaper() -> bool {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and touches
    // no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// This process's children, from every thread's `children` list.
fn children() -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Kill every child of this process, and the orphans that arrive as their parents die;
/// reap them all. Returns the ones that were still running, as `pid argv…`.
///
/// Done when `waitpid` says there is no child left, not when the `children` lists look
/// empty: the kernel builds those lists without stopping the processes in them, so a
/// child that is forking or being reparented as they are read can be missed (proc(5)).
/// A child missed in one round is found in the next.
pub(crate) fn kill_children() -> Vec<String> {
    let mut killed = Vec::new();
    let mut signalled = std::collections::HashSet::new();
    loop {
        for pid in children() {
            if signalled.contains(&pid) {
                continue;
            }
            let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .iter()
                .rposition(|&b| b == b')')
                .and_then(|p| stat.get(p + 2))
                == Some(&b'Z');
            if !zombie {
                let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let argv: Vec<String> = argv
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| lossy(a).into_owned())
                    .collect();
                killed.push(format!("{pid} {}", argv.join(" ")));
                // SAFETY: `pid` is our child and not yet reaped, so it names no other
                // process; kill touches no memory.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            signalled.insert(pid);
        }
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call's duration.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match reaped {
            // Children left, none ended yet (a SIGKILL takes a moment to land).
            0 => std::thread::sleep(std::time::Duration::from_millis(1)),
            pid if pid > 0 => {
                signalled.remove(&pid);
            }
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            // ECHILD: nothing left.
            _ => break,
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::super::plan::tests::row;
    use super::super::{Mode, Recipe};
    use super::*;

    fn recipe(lines: &[(&str, i32)]) -> Recipe {
        let env = ["PATH=/usr/bin:/bin"];
        Recipe {
            lines: (1..)
                .zip(lines)
                .map(|(id, &(text, code))| row(id, id - 1, text, code, &env))
                .collect(),
        }
    }

    fn run(lines: &[(&str, i32)]) -> Outcome {
        let none = |_: &[u8]| None;
        let plan = Plan::new(&recipe(lines), None, Mode::Run, &none).unwrap();
        Executor::leaving_leftovers().run(&plan).unwrap()
    }

    #[test]
    fn a_recipe_stops_at_its_first_failure_unless_make_went_on() {
        let outcome = run(&[("true", 0), ("exit 3", 0), ("true", 0)]);
        assert_eq!(outcome.lines.len(), 2);
        assert_eq!(outcome.exit_status(), 3);
        // Recorded: the first line failed and make went on (a `-` line).
        let outcome = run(&[("exit 1", 1), ("exit 0", 0)]);
        assert_eq!(outcome.lines.len(), 2);
        assert!(outcome.lines[0].ignored);
        assert_eq!(outcome.exit_status(), 0);
    }

    #[test]
    fn a_signal_is_reported_as_a_shell_does() {
        let outcome = run(&[("kill -TERM $$", 0)]);
        assert_eq!(outcome.lines[0].status, Status::Signaled(libc::SIGTERM));
        assert_eq!(outcome.exit_status(), 128 + libc::SIGTERM as u8);
    }
}
