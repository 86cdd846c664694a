//! The make processes and recipe lines of the build, from their messages to their rows:
//! a make's start and end, a command's start, output, listener and end, and what of a
//! command's environment is recorded.
//!
//! This is where the messages' facts become the record's rows and the UI's events; it
//! never reads a socket or a listener itself.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::os::fd::{OwnedFd, RawFd};

use super::socket::{Role, Sockets};
use super::Server;
use crate::output::{CommandInfo, Outcome, Place, Stream};
use crate::protocol::{self, ENV_PREFIX};
use crate::record::ui::Event as UiEvent;
use crate::record::writer::Write;
use crate::store::{CommandEnd, CommandNotes, IdKind, MakeEnd, NewCommand, NewMake, Owner};
use crate::util::{now_ns, redact_environment};

/// How long a make must be seen done with a job before the job is over (jobs_over).
const JOBS_SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

/// `command.traced` for a line that runs a sub-make: not filtered itself, its sub-make's
/// commands are.
const TRACED_SUB_MAKE: i64 = 2;

/// How much of each of a command's streams the record keeps: its first and its last
/// MiB, with a line saying how much was cut between them.
const KEPT_HEAD: usize = 1 << 20;
const KEPT_TAIL: usize = 1 << 20;

/// How much of a command's output is held to be printed in one piece when it ends;
/// past it, what came so far is printed at once, and the rest as it comes.
const HELD_FOR_PRINTING: usize = 4 << 20;

/// One stream of a command's output as the record keeps it: bounded however much the
/// command prints (a command that prints a gigabyte costs the recorder ~3 MiB).
#[derive(Default)]
struct Kept {
    head: Vec<u8>,
    tail: Vec<u8>,
    /// Bytes dropped from between the head and the tail.
    cut: u64,
}

impl Kept {
    fn push(&mut self, bytes: &[u8]) {
        let room = KEPT_HEAD.saturating_sub(self.head.len()).min(bytes.len());
        let (head, rest) = bytes.split_at(room);
        self.head.extend_from_slice(head);
        self.tail.extend_from_slice(rest);
        if self.tail.len() > 2 * KEPT_TAIL {
            self.drop_to_tail();
        }
    }

    fn drop_to_tail(&mut self) {
        let excess = self.tail.len().saturating_sub(KEPT_TAIL);
        self.cut += excess as u64;
        self.tail.drain(..excess);
    }

    /// What the record keeps.
    fn into_bytes(mut self) -> Vec<u8> {
        self.drop_to_tail();
        let mut out = self.head;
        if self.cut > 0 {
            out.extend_from_slice(
                format!(
                    "\n[makescope: {} bytes of output cut here: the record keeps the first and the last MiB]\n",
                    self.cut
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(&self.tail);
        out
    }
}

/// The tag of a command whose environment is not in the record.
const ENVIRONMENT_NOT_RECORDED: (&str, &str) = (
    "makescope.environment",
    "not recorded: the command's start came without it",
);

/// A recipe line between its start and its end.
struct Running {
    info: CommandInfo,
    place: Place,
    /// Output not yet printed, in order.
    chunks: Vec<(Stream, Vec<u8>)>,
    held: usize,
    stdout: Kept,
    stderr: Kept,
    traced: bool,
    started_ns: i64,
    pid: i32,
}

/// The recipe lines running, and what is known of how they were traced.
#[derive(Default)]
pub(super) struct Commands {
    running: HashMap<i64, Running>,
    /// Commands whose files cannot be complete (a call not read, a ring not usable).
    incomplete: HashSet<i64>,
    /// Commands that run a sub-make.
    sub_makes: HashSet<i64>,
    /// Jobs whose last line ended and that may have more: by (make pid, job number),
    /// when jobs_over first found their make done with them (None: not yet, or not
    /// since a look that found it busy).
    between: HashMap<(i32, u64), Option<std::time::Instant>>,
    /// Jobs of serial makes known over, to be told after the messages sent before.
    serial_over: Vec<(i32, u64)>,
}

impl Commands {
    pub fn is_running(&self, id: i64) -> bool {
        self.running.contains_key(&id)
    }

    /// Whether some job waits to be known over.
    pub fn jobs_waiting(&self) -> bool {
        !self.between.is_empty()
    }

    /// The command's files cannot be complete.
    pub fn mark_incomplete(&mut self, id: i64) {
        self.incomplete.insert(id);
    }
}

impl Server {
    /// A make process announced itself (on connection `fd`): its row, then the ack it
    /// waits for.
    pub(super) fn on_make_start(&mut self, fd: RawFd, m: &protocol::MakeStart) {
        // What a make that re-executes itself did before is its earlier image's.
        self.drain_make_ring(false);
        // make re-executes itself after remaking its makefiles (glibc does, often): the
        // same pid announces itself again, and the earlier image never said goodbye.
        if let Some(previous) = self.attribution.make(m.pid) {
            self.flush_accesses(Owner::Make(previous));
            let end = MakeEnd {
                ended_ns: m.time_ns,
                default_goal: Vec::new(),
                makefiles: Vec::new(),
                makedb_path: None,
            };
            self.rows.write(Write::MakeEnd(previous, end));
            // Its jobs are over, and the new image numbers its jobs from 1 again.
            self.commands.between.retain(|&(make, _), _| make != m.pid);
            self.commands.serial_over.retain(|&(make, _)| make != m.pid);
            let _ = self.to_ui.send(UiEvent::MakeEnded(m.pid));
        }
        let id = self.ids.next(IdKind::Make);
        // The recipe that ran this make: the nearest ancestor that is a command.
        let parent_command_id = match self.attribution.owner_of(m.ppid) {
            Some(Owner::Command(command)) => Some(command),
            _ => None,
        };
        let parent_make_id = m
            .context
            .as_ref()
            .and_then(|c| self.attribution.make(c.make_pid));
        self.attribution.make_started(m.pid, id);
        self.rows.write(Write::Make(NewMake {
            id,
            build_id: self.setup.build_id,
            pid: m.pid,
            parent_make_id,
            parent_command_id,
            level: m.level,
            directory: m.directory.to_vec(),
            argv: if self.setup.keep_secrets {
                without_our_plugin(m.argv)
            } else {
                crate::util::redact_arguments(&without_our_plugin(m.argv))
            },
            started_ns: m.time_ns,
        }));
        self.sockets.set_role(fd, Role::Make { id, pid: m.pid });
        Sockets::ack(fd);
    }

    /// Make `id` (process `pid`) is exiting.
    pub(super) fn on_make_end(&mut self, id: i64, pid: i32, m: &protocol::MakeEnd) {
        let end = MakeEnd {
            ended_ns: m.time_ns,
            default_goal: m.default_goal.to_vec(),
            makefiles: m.makefiles.to_vec(),
            makedb_path: m.database.map(<[u8]>::to_vec),
        };
        self.drain_make_ring(false);
        self.flush_accesses(Owner::Make(id));
        self.rows.write(Write::MakeEnd(id, end));
        self.attribution.make_gone(pid, id);
        self.commands.between.retain(|&(make, _), _| make != pid);
        self.commands.serial_over.retain(|&(make, _)| make != pid);
        let _ = self.to_ui.send(UiEvent::MakeEnded(pid));
    }

    /// A recipe line starts (its shim on connection `fd`): its row and the UI's event,
    /// then the ack if the shim waits for one.
    pub(super) fn on_command_start(&mut self, fd: RawFd, m: &protocol::CommandStart) {
        let context = m.context.clone().unwrap_or_default();
        let argv = crate::util::split_nul(m.argv);
        let id = self.ids.next(IdKind::Command);
        let line_index = self.attribution.next_line(context.make_pid, context.job);

        // argv is the makefile's SHELL words, then .SHELLFLAGS words, then the command.
        let shell_words = context
            .shell
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .count()
            .max(1);
        let command = if argv.len() > shell_words {
            argv[argv.len() - 1].to_vec()
        } else {
            Vec::new()
        };
        let shell = crate::util::join_nul(argv.iter().take(shell_words.min(argv.len())));
        let flags = crate::util::join_nul(
            argv.iter()
                .take(argv.len().saturating_sub(1))
                .skip(shell_words),
        );
        let env = self.recorded_environment(m.environment);

        self.attribution.command_started(m.shim_pid, id);
        let make_id = self.attribution.make(context.make_pid);
        let directory = m.directory.to_vec();
        let info = CommandInfo {
            id,
            target: context.target.to_vec(),
            directory: directory.clone(),
            top_directory: self.setup.top_directory.clone(),
            command: command.clone(),
            recipe_file: context.recipe_file.to_vec(),
            // make names the line that ran the way its own error messages do: the
            // recipe's first line plus the line's position in the recipe.
            recipe_line: if context.recipe_line > 0 {
                context.recipe_line + line_index as u32
            } else {
                0
            },
            make_level: context.make_level,
        };
        self.rows.write(Write::Command(NewCommand {
            id,
            build_id: self.setup.build_id,
            make_id,
            job: context.job as i64,
            line_index,
            target: context.target.to_vec(),
            recipe_file: context.recipe_file.to_vec(),
            recipe_line: context.recipe_line as i64,
            // For a target that did not exist `$?` is every prerequisite (hundreds of
            // headers for a glibc object) and says nothing the flag does not.
            newer: if m.target_existed {
                context.newer.to_vec()
            } else {
                Vec::new()
            },
            target_existed: m.target_existed,
            directory,
            shell,
            shell_flags: flags,
            command,
            env,
            pid: m.shim_pid,
            started_ns: m.time_ns,
            traced: false,
            label: String::new(),
        }));
        if m.environment.is_empty() {
            // make always exports MAKELEVEL: an empty environment is one that did not
            // come (the shim sends any size in parts; an older one sent none when its
            // arguments and environment did not fit in one packet).
            self.rows.write(Write::Notes(
                id,
                CommandNotes {
                    tags: vec![(
                        ENVIRONMENT_NOT_RECORDED.0.into(),
                        Some(ENVIRONMENT_NOT_RECORDED.1.into()),
                    )],
                    ..Default::default()
                },
            ));
        }
        self.rows.send(); // the UI's notes on this command update its row
        let place = Place {
            make_pid: context.make_pid,
            job: context.job,
            index: line_index as u32,
            lines: context.lines,
            silent: context.silent(),
        };
        self.jobs_over_before(place, context.serial(), m.shim_pid);
        let _ = self.to_ui.send(UiEvent::Started(info.clone(), place));
        let traced = self.setup.tracing && m.wants_ack;
        self.commands.running.insert(
            id,
            Running {
                info,
                place,
                chunks: Vec::new(),
                held: 0,
                stdout: Kept::default(),
                stderr: Kept::default(),
                traced,
                started_ns: m.time_ns,
                pid: m.shim_pid,
            },
        );
        self.sockets.set_role(fd, Role::Command(id));
        if m.wants_ack {
            Sockets::ack(fd);
        }
    }

    /// A line at `place` (its shim `shim_pid`) starts: tell the UI which other jobs of
    /// its make are over. A `serial` make (one job at a time) starts a line of a job
    /// only when every other job it ran is over: all of them are, for certain. They are
    /// told once the messages sent before this line's are in ([`Server::serial_jobs_over`]):
    /// the end of a sub-make one of them ran may still wait in its socket.
    fn jobs_over_before(&mut self, place: Place, serial: bool, shim_pid: i32) {
        self.commands.between.remove(&(place.make_pid, place.job));
        if place.make_pid == 0 {
            return;
        }
        if serial {
            let mut over: Vec<(i32, u64)> = self
                .commands
                .between
                .keys()
                .filter(|&&(make, _)| make == place.make_pid)
                .copied()
                .collect();
            for key in &over {
                self.commands.between.remove(key);
            }
            self.commands.serial_over.append(&mut over);
            return;
        }
        self.jobs_over(place.make_pid, Some(shim_pid));
    }

    /// Tell the UI the jobs of serial makes found over in this turn, now that every
    /// message sent before is handled (the loop calls this after the deferred ones): a
    /// sub-make's jobs come before the job that ran it, as make ran them.
    pub(super) fn serial_jobs_over(&mut self) {
        if self.commands.serial_over.is_empty() {
            return;
        }
        let mut over = std::mem::take(&mut self.commands.serial_over);
        over.sort_unstable();
        let _ = self.to_ui.send(UiEvent::JobsOver(over));
    }

    /// Check every make that has jobs waiting (the event loop calls this now and then,
    /// so that a make's last jobs do not wait for its next line or its end).
    pub(super) fn check_jobs(&mut self) {
        let mut makes: Vec<i32> = self.commands.between.keys().map(|&(m, _)| m).collect();
        makes.sort_unstable();
        makes.dedup();
        for make in makes {
            self.jobs_over(make, None);
        }
    }

    /// Tell the UI which jobs of make `make` are over, `starting` the shim of a line
    /// that is starting now.
    ///
    /// No message says that a job ran its last line: the recipe's line count is not the
    /// count of shells make runs (it skips a line that expands to nothing and runs each
    /// line of a multi-line expansion, glibc's `$(do-stamp)`, in a shell of its own).
    /// But make starts a job's next shell as soon as it has reaped the one before,
    /// before it does anything else. So when the make sleeps and every child of it is
    /// the shim of a line that announced itself and has not ended (no zombie waiting to
    /// be reaped, no shell forked and not yet heard from), each job of that make with no
    /// line running has run its last. Otherwise the question waits for the make's next line, the
    /// next check, or its end. A line of a job that still comes (forked in the instant
    /// between a reap and this check) is printed as a job of its own.
    fn jobs_over(&mut self, make: i32, starting: Option<i32>) {
        if !self.commands.between.keys().any(|&(m, _)| m == make) {
            return;
        }
        // Its children, its state, its children again: make sleeps (waiting for a child
        // or a job slot) only outside its reap-then-fork, so a make asleep between two
        // looks that found only known children is not between a job's shells.
        let all_known = |commands: &Commands| {
            let Ok(children) =
                std::fs::read_to_string(format!("/proc/{make}/task/{make}/children"))
            else {
                return false;
            };
            children
                .split_ascii_whitespace()
                .filter_map(|pid| pid.parse::<i32>().ok())
                .all(|pid| {
                    Some(pid) == starting
                        || commands
                            .running
                            .values()
                            .any(|r| r.pid == pid && r.place.make_pid == make)
                })
        };
        let done = all_known(&self.commands) && asleep(make) && all_known(&self.commands);
        // Only what holds at two looks JOBS_SETTLE apart, with none between finding the
        // make busy, counts: one look can fall in the instant between a reap and a fork.
        let now = std::time::Instant::now();
        let mut over: Vec<(i32, u64)> = Vec::new();
        for (&key, since) in self.commands.between.iter_mut() {
            if key.0 != make {
                continue;
            }
            match (done, *since) {
                (false, _) => *since = None,
                (true, None) => *since = Some(now),
                (true, Some(first)) if now.duration_since(first) >= JOBS_SETTLE => over.push(key),
                (true, Some(_)) => {}
            }
        }
        if over.is_empty() {
            return;
        }
        over.sort_unstable();
        for key in &over {
            self.commands.between.remove(key);
        }
        let _ = self.to_ui.send(UiEvent::JobsOver(over));
    }

    /// The environment recorded for a command: without our per-job variables (they are
    /// in the command's own columns; without them most commands of a make share one
    /// environment, which the record stores once), without the fast path's variables a
    /// command inside a traced one inherited, and redacted unless secrets are kept.
    fn recorded_environment(&self, environment: &[u8]) -> Vec<u8> {
        let environment = crate::util::split_nul(environment);
        let cleaned = self
            .setup
            .preload
            .as_deref()
            .and_then(|helper| crate::trace::without_fast_path(&environment, |w| w == helper));
        let environment: Vec<&[u8]> = match &cleaned {
            Some(entries) => entries.iter().map(Vec::as_slice).collect(),
            None => environment,
        };
        let environment: Vec<&[u8]> = environment
            .into_iter()
            .filter(|e| !e.starts_with(ENV_PREFIX.as_bytes()))
            .collect();
        if self.setup.keep_secrets {
            crate::util::join_nul(&environment)
        } else {
            redact_environment(&environment)
        }
    }

    /// Some of command `id`'s output.
    pub(super) fn on_output(&mut self, id: i64, m: &protocol::Output) {
        let Some(running) = self.commands.running.get_mut(&id) else {
            return;
        };
        let stream = match m.stream {
            protocol::Stream::Stdout => Stream::Stdout,
            protocol::Stream::Stderr => Stream::Stderr,
        };
        match stream {
            Stream::Stdout => running.stdout.push(m.bytes),
            Stream::Stderr => running.stderr.push(m.bytes),
        }
        match running.chunks.last_mut() {
            Some((last, chunk)) if *last == stream => chunk.extend_from_slice(m.bytes),
            _ => running.chunks.push((stream, m.bytes.to_vec())),
        }
        running.held += m.bytes.len();
        if running.held > HELD_FOR_PRINTING {
            // Too much to hold: printed as it comes, as make without -O would.
            for (stream, bytes) in running.chunks.drain(..) {
                let _ = self.to_ui.send(UiEvent::MakeOutput(stream, bytes));
            }
            running.held = 0;
        }
    }

    /// Command `id`'s child passed its listener (and the fast path's ring).
    pub(super) fn on_listener(&mut self, id: i64, listener: OwnedFd, ring: Option<OwnedFd>) {
        if let Some(running) = self.commands.running.get_mut(&id) {
            running.traced = true;
        }
        self.sockets
            .watch_listener(std::os::fd::AsRawFd::as_raw_fd(&listener));
        if let Err(error) = self.listeners.add(listener, ring, id) {
            // The helper may already be writing into a ring nobody reads: this
            // command's files cannot be complete.
            self.commands.incomplete.insert(id);
            self.warn(format!("a command's fast-path ring is unusable: {error}"));
        }
    }

    /// Command `id` runs a sub-make.
    pub(super) fn on_sub_make(&mut self, id: i64) {
        self.commands.sub_makes.insert(id);
    }

    /// Command `id` finished, as its shim reported.
    pub(super) fn on_command_end(&mut self, id: i64, m: &protocol::CommandEnd) {
        let status = m.status;
        let exited = libc::WIFEXITED(status);
        let signaled = libc::WIFSIGNALED(status);
        let end = CommandEnd {
            ended_ns: m.time_ns,
            state: if exited && libc::WEXITSTATUS(status) == 0 {
                "ok"
            } else if signaled {
                "killed"
            } else {
                "failed"
            },
            exit_code: exited.then(|| libc::WEXITSTATUS(status)),
            signal: signaled.then(|| libc::WTERMSIG(status)),
            user_us: Some(m.user_us),
            system_us: Some(m.system_us),
            max_rss_kib: Some(m.max_rss_kib),
            left_behind: m.left_behind.to_vec(),
            ..Default::default()
        };
        self.command_ended(id, end);
    }

    /// Command `id`'s shim died without reporting: make saw it fail.
    pub(super) fn command_lost(&mut self, id: i64) {
        if self.commands.is_running(id) {
            self.command_ended(
                id,
                CommandEnd {
                    ended_ns: now_ns(),
                    state: "lost",
                    ..Default::default()
                },
            );
        }
    }

    fn command_ended(&mut self, id: i64, mut end: CommandEnd) {
        let Some(running) = self.commands.running.remove(&id) else {
            return;
        };
        let files = self.flush_accesses(Owner::Command(id));
        self.attribution
            .release_root(running.pid, Owner::Command(id));
        let outcome = Outcome {
            exit_code: end.exit_code,
            signal: end.signal,
            duration_ns: end.ended_ns - running.started_ns,
        };
        end.traced = if self.commands.sub_makes.remove(&id) {
            TRACED_SUB_MAKE
        } else {
            i64::from(running.traced && !self.commands.incomplete.remove(&id))
        };
        let place = running.place;
        if place.make_pid != 0 {
            // A failed line ends its job (the printer knows); any other waits here
            // until jobs_over says its make ran no more of it.
            if outcome.failed() {
                self.commands.between.remove(&(place.make_pid, place.job));
            } else {
                self.commands
                    .between
                    .insert((place.make_pid, place.job), None);
            }
        }
        end.stdout = running.stdout.into_bytes();
        end.stderr = running.stderr.into_bytes();
        self.rows.write(Write::CommandEnd(id, end));
        self.rows.send();
        let _ = self.to_ui.send(UiEvent::Finished {
            info: running.info,
            place: running.place,
            output: running.chunks,
            outcome,
            files,
        });
    }
}

/// Whether process `pid` sleeps (state `S` in /proc/PID/stat).
fn asleep(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
    })
}

/// make's argv as the user gave it: without the `--eval=load …/makescope.so` we add.
fn without_our_plugin(argv: &[u8]) -> Vec<u8> {
    crate::util::join_nul(
        crate::util::split_nul(argv)
            .into_iter()
            .filter(|a| !crate::plugin::is_load_argument(a)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_the_head_and_tail_of_a_long_output() {
        let mut kept = Kept::default();
        kept.push(b"short");
        assert_eq!(std::mem::take(&mut kept).into_bytes(), b"short");
        let line = vec![b'x'; 1000];
        for _ in 0..5000 {
            kept.push(&line);
        }
        kept.push(b"the end");
        let bytes = kept.into_bytes();
        assert!(bytes.len() < KEPT_HEAD + KEPT_TAIL + 200);
        assert!(bytes.ends_with(b"xthe end"));
        let text = String::from_utf8(bytes).unwrap();
        let cut = 5_000_007 - KEPT_HEAD - KEPT_TAIL;
        assert!(text.contains(&format!("[makescope: {cut} bytes of output cut here")));
    }

    #[test]
    fn our_plugin_leaves_makes_argv() {
        assert_eq!(
            without_our_plugin(b"make\0--eval=load /tmp/m/makescope.so\0-j4"),
            b"make\0-j4"
        );
    }
}
