//! The status printer, after ninja's: on a terminal one overprinted progress line at the
//! bottom and nothing else unless a job printed something or failed; piped, one plain
//! line per finished job and never an escape byte.
//!
//! A job is a target's recipe, all its lines, which one make runs one after another
//! ([`Place`]). Its line is printed when the job ends, labelled by
//! [`super::job_label`]: only then are all its lines known, so the label can be the
//! compile in `mkdir; cc; mv` and `MKDIR d` when the `mkdir` is all there is, and the
//! output of every line goes under that one label in one write, so jobs running in
//! parallel never interleave. A job ends after a line that failed, or when the recorder
//! says so ([`Printer::jobs_over`], [`Printer::make_ended`]: it knows when make has run
//! the job's last shell). A line that arrives after its job was printed is printed as a
//! job of its own; so is a line without a job (no make context). make's own output
//! arrives in arbitrary chunks and is line-buffered here so that its lines never split
//! around a job's block.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::label::{classify, job_label, relative_to, JobLine, Rule};
use super::{CommandInfo, Label, Mode, Outcome, Place, Stream};
use crate::paths::as_path;

/// What the recorder knows at the end of the build.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Commands make ran.
    pub commands: u64,
    /// Commands that failed (including those whose failure make ignored).
    pub failed: u64,
    /// Wall time of the whole build.
    pub elapsed: Duration,
    /// make's exit status, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended make, when one did.
    pub signal: Option<i32>,
    /// Where the record is, as the user should type it.
    pub record: Option<PathBuf>,
}

/// Prints the build.
pub struct Printer {
    mode: Mode,
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    /// The progress line; only on a terminal.
    bar: Option<ProgressBar>,
    color: bool,
    terminal: bool,
    expected_total: Option<u64>,
    /// The piped status line's total (jobs of the last such build) and format.
    expected_jobs: Option<u64>,
    status: String,
    /// Jobs printed (or ended silently) so far.
    jobs_done: u64,
    started: u64,
    done: u64,
    failed: u64,
    /// Running commands in start order: id, label, whether it is a sub-make.
    running: Vec<(i64, String, bool)>,
    /// Jobs whose end has not come, by (make pid, job number).
    jobs: HashMap<(i32, u64), Job>,
    /// make's partial lines, per stream.
    pending: [Vec<u8>; 2],
    first_failure: Option<i64>,
    start: Instant,
    /// Whether stdout refused a write: nothing more is written to it.
    stdout_lost: bool,
    /// Whether a write to stdout failed for another reason than a closed pipe.
    stdout_failed: bool,
}

impl Printer {
    /// A printer on the process's stdout and stderr; `expected_total` is the command
    /// count of the last similar build.
    pub fn new(mode: Mode, expected_total: Option<u64>) -> Printer {
        let terminal = std::io::stdout().is_terminal()
            && std::env::var_os("TERM").map_or(true, |t| t != "dumb");
        let color = terminal && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty());
        let mut printer = Printer::with_writers(
            mode,
            expected_total,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        );
        printer.terminal = terminal;
        printer.color = color;
        if terminal && matches!(mode, Mode::Concise | Mode::Verbose) {
            printer.bar = Some(progress_bar(expected_total));
        }
        printer
    }

    /// A printer on given writers, as when piped: no progress line, no color.
    pub fn with_writers(
        mode: Mode,
        expected_total: Option<u64>,
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
    ) -> Printer {
        Printer {
            mode,
            out,
            err,
            bar: None,
            color: false,
            terminal: false,
            expected_total,
            expected_jobs: None,
            status: String::new(),
            jobs_done: 0,
            started: 0,
            done: 0,
            failed: 0,
            running: Vec::new(),
            jobs: HashMap::new(),
            pending: [Vec::new(), Vec::new()],
            first_failure: None,
            start: Instant::now(),
            stdout_lost: false,
            stdout_failed: false,
        }
    }

    /// Piped, a job's line starts with `status` ([`super::DEFAULT_STATUS`], or the
    /// user's `MAKESCOPE_STATUS`) when the total is known: the jobs of the last such
    /// build. `%f` jobs finished, `%t` the total, `%p` the percentage, `%e` seconds
    /// elapsed, `%%` a percent sign.
    pub fn set_status(&mut self, expected_jobs: Option<u64>, status: String) {
        self.expected_jobs = expected_jobs;
        self.status = status;
    }

    /// Commands finished so far and how many of them failed.
    pub fn counts(&self) -> (u64, u64) {
        (self.done, self.failed)
    }

    /// Whether a write to stdout failed (a full disk, an I/O error), other than because
    /// its reader went away: a closed pipe is no error, as for `makescope log | head`.
    /// After any failed write nothing more is written to stdout; like make with its
    /// stdio, the build goes on and the caller tells the error at the end.
    pub fn stdout_failed(&self) -> bool {
        self.stdout_failed
    }

    /// A command that is a job of its own started.
    pub fn started(&mut self, info: &CommandInfo, label: &Label) {
        self.line_started(info, label, Place::alone());
    }

    /// A command that is a job of its own finished; `output` is its chunks in arrival
    /// order.
    pub fn finished(
        &mut self,
        info: &CommandInfo,
        label: &Label,
        output: &[(Stream, Vec<u8>)],
        outcome: &Outcome,
    ) {
        self.line_finished(info, label, false, Place::alone(), output, outcome);
    }

    /// A recipe line started, at `place` in its job.
    pub fn line_started(&mut self, info: &CommandInfo, label: &Label, place: Place) {
        self.started += 1;
        self.running
            .push((info.id, label_text(label), label.verb == "MAKE"));
        if let Some(key) = place.job_key() {
            self.jobs.entry(key).or_default().running += 1;
        }
        self.update_bar();
    }

    /// A recipe line finished; `by_hook` says a hook's `label()` chose `label`.
    pub fn line_finished(
        &mut self,
        info: &CommandInfo,
        label: &Label,
        by_hook: bool,
        place: Place,
        output: &[(Stream, Vec<u8>)],
        outcome: &Outcome,
    ) {
        self.done += 1;
        if let Some(pos) = self.running.iter().position(|(id, ..)| *id == info.id) {
            self.running.remove(pos);
        }
        if outcome.failed() && !is_sub_make(info) {
            self.failed += 1;
            self.first_failure.get_or_insert(info.id);
        }
        self.update_bar();
        let line = Line {
            info: info.clone(),
            label: label.clone(),
            by_hook,
            place,
            output: output.to_vec(),
            outcome: outcome.clone(),
        };
        let key = place.job_key();
        let Some(job) = key.and_then(|key| self.jobs.get_mut(&key)) else {
            self.print_job(vec![line]);
            return;
        };
        job.running = job.running.saturating_sub(1);
        job.lines.push(line);
        // A failed line ends its job; else the recorder says when it is over.
        if outcome.failed() {
            self.print_jobs(key.into_iter().collect());
        }
    }

    /// Make process `pid` exited: its jobs are over.
    pub fn make_ended(&mut self, pid: i32) {
        let over = self
            .jobs
            .keys()
            .filter(|(make, _)| *make == pid)
            .copied()
            .collect();
        self.print_jobs(over);
    }

    /// These jobs (make pid, job number) are over: their make runs no more of them.
    pub fn jobs_over(&mut self, jobs: Vec<(i32, u64)>) {
        self.print_jobs(jobs);
    }

    /// Print these jobs, in the order make started them.
    fn print_jobs(&mut self, mut keys: Vec<(i32, u64)>) {
        keys.sort_unstable();
        for key in keys {
            if let Some(job) = self.jobs.remove(&key) {
                if !job.lines.is_empty() {
                    self.print_job(job.lines);
                }
            }
        }
    }

    /// One job's block: its label line, every line's output, a `FAILED:` block for a
    /// line that failed.
    fn print_job(&mut self, lines: Vec<Line>) {
        if self.mode.is_plain() {
            return;
        }
        let job_lines: Vec<JobLine> = lines
            .iter()
            .map(|l| JobLine {
                info: &l.info,
                label: &l.label,
                by_hook: l.by_hook,
            })
            .collect();
        let label = job_label(&job_lines);
        self.jobs_done += 1;
        // A sub-make's failure is its child's failure, already shown with its own
        // FAILED block: the sub-make only adds make's error lines, like make itself.
        let failed = |l: &Line| l.outcome.failed() && !is_sub_make(&l.info);
        let sub_make_failed = lines
            .iter()
            .any(|l| l.outcome.failed() && is_sub_make(&l.info));
        let bodies: Vec<Vec<u8>> = lines.iter().map(|l| self.body(&l.output)).collect();
        let first_failure = lines.iter().position(failed);
        let printed_before_failure = bodies[..first_failure.unwrap_or(lines.len())]
            .iter()
            .any(|b| !b.is_empty());
        // A job make ran silently, that printed nothing and succeeded, has no line of
        // its own (README, "One line per job"): plain make shows nothing of it either.
        let silent = lines.iter().all(|l| l.place.silent);
        let label_line = !sub_make_failed
            && match self.mode {
                Mode::Concise => {
                    if first_failure.is_some() {
                        printed_before_failure
                    } else {
                        printed_before_failure || !(self.terminal || silent)
                    }
                }
                Mode::Quiet => printed_before_failure,
                Mode::Verbose | Mode::Plain { .. } => false,
            };
        let mut block = Vec::new();
        if label_line {
            let status = self.status_prefix();
            let indent = if status.is_empty() { "  " } else { "" };
            block.extend_from_slice(
                format!("{status}{indent}{:<5} {}\n", label.verb, label.object).as_bytes(),
            );
        }
        let count = lines.len() as u32;
        for (line, body) in lines.iter().zip(&bodies) {
            if failed(line) {
                self.failure_header(&mut block, line, count);
                block.extend_from_slice(&line.info.command);
                end_line(&mut block);
            } else if self.mode == Mode::Verbose {
                block.extend_from_slice(&line.info.command);
                end_line(&mut block);
            } else if body.is_empty() || !(label_line || first_failure.is_some() || sub_make_failed)
            {
                // Output goes under the job's line, after a failure block, or alone
                // for a failed sub-make (make's error lines); else the job is silent.
                continue;
            }
            block.extend_from_slice(body);
            end_line(&mut block);
        }
        if block.is_empty() {
            return;
        }
        if !self.terminal {
            block = strip_escapes(&block);
        }
        self.emit(Stream::Stdout, &block);
    }

    /// The piped status before a job's line: empty on a terminal (the progress line
    /// says it) or when the total is unknown.
    fn status_prefix(&self) -> String {
        let Some(expected) = self.expected_jobs.filter(|_| !self.terminal) else {
            return String::new();
        };
        let total = expected.max(self.jobs_done).max(1);
        let mut out = String::new();
        let mut chars = self.status.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('f') => out.push_str(&self.jobs_done.to_string()),
                Some('t') => out.push_str(&total.to_string()),
                Some('p') => out.push_str(&format!("{:3}%", self.jobs_done * 100 / total)),
                Some('e') => out.push_str(&format!("{:.3}", self.start.elapsed().as_secs_f64())),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }

    /// A line's output as printed: a sub-make's directory lines dropped, as
    /// `make_output` drops them.
    fn body(&self, output: &[(Stream, Vec<u8>)]) -> Vec<u8> {
        let body: Vec<u8> = output
            .iter()
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect();
        if self.mode != Mode::Verbose && contains(&body, b" directory ") {
            body.split_inclusive(|&b| b == b'\n')
                .filter(|line| !is_directory_line(line))
                .flatten()
                .copied()
                .collect()
        } else {
            body
        }
    }

    /// make's own output (errors, `$(info)`, `$(warning)`, directory messages), in
    /// arbitrary chunks.
    pub fn make_output(&mut self, stream: Stream, bytes: &[u8]) {
        if self.mode.is_plain() {
            self.emit(stream, bytes);
            return;
        }
        let index = stream_index(stream);
        self.pending[index].extend_from_slice(bytes);
        let Some(last_newline) = self.pending[index].iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = self.pending[index].split_off(last_newline + 1);
        let lines = std::mem::replace(&mut self.pending[index], rest);
        self.make_lines(stream, &lines);
    }

    fn make_lines(&mut self, stream: Stream, lines: &[u8]) {
        let mut kept = Vec::new();
        for line in lines.split_inclusive(|&b| b == b'\n') {
            let keep = match self.mode {
                Mode::Plain { .. } | Mode::Verbose => true,
                Mode::Concise => !is_directory_line(line),
                Mode::Quiet => stream == Stream::Stderr && !is_directory_line(line),
            };
            if keep {
                kept.extend_from_slice(line);
            }
        }
        if !kept.is_empty() {
            if !self.terminal {
                kept = strip_escapes(&kept);
            }
            self.emit(stream, &kept);
        }
    }

    /// makescope's own warning (a command it could not trace, …): one line on stderr.
    pub fn warning(&mut self, text: &str) {
        let line = format!("makescope: warning: {text}\n");
        self.emit(Stream::Stderr, line.as_bytes());
    }

    /// The build is over: flush make's last partial lines, clear the progress line and
    /// print one summary line on stderr.
    pub fn finish(&mut self, summary: &Summary) {
        self.end();
        let line = self.summary_line(summary);
        if let Some(line) = line {
            let _ = self.err.write_all(line.as_bytes());
            let _ = self.err.flush();
        }
    }

    /// The run is over and its caller says the summary: flush make's last partial
    /// lines and clear the progress line.
    pub fn end(&mut self) {
        let over = self.jobs.keys().copied().collect();
        self.print_jobs(over);
        for stream in [Stream::Stdout, Stream::Stderr] {
            let mut rest = std::mem::take(&mut self.pending[stream_index(stream)]);
            if !rest.is_empty() {
                end_line(&mut rest);
                if self.mode.is_plain() {
                    self.emit(stream, &rest);
                } else {
                    self.make_lines(stream, &rest);
                }
            }
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn summary_line(&self, summary: &Summary) -> Option<String> {
        let commands = summary.commands.max(self.done);
        // The printer's count leaves out sub-makes that failed because a child did.
        let failed = if self.done > 0 {
            self.failed
        } else {
            summary.failed
        };
        let elapsed = clock(if summary.elapsed.is_zero() {
            self.start.elapsed()
        } else {
            summary.elapsed
        });
        let record = summary
            .record
            .as_ref()
            .map(|r| format!("; record in {}", r.display()))
            .unwrap_or_default();
        let show = self
            .first_failure
            .map(|id| format!(" `makescope show {id}` has everything."))
            .unwrap_or_default();
        let plural =
            |n: u64, what: &str| format!("{} {what}{}", group(n), if n == 1 { "" } else { "s" });
        if self.mode == (Mode::Plain { summary: false }) {
            return None;
        }
        let ok = summary.exit_code == Some(0) && summary.signal.is_none();
        let text = if ok && failed == 0 {
            if self.mode == Mode::Quiet {
                return None;
            }
            format!(
                "makescope: {} in {elapsed}{record}\n",
                plural(commands, "command")
            )
        } else if ok {
            format!(
                "makescope: build succeeded in {elapsed}; {} failed, make ignored the {}{record}.{show}\n",
                plural(failed, "command"),
                if failed == 1 { "error" } else { "errors" }
            )
        } else {
            let how = match (summary.signal, summary.exit_code) {
                (Some(signal), _) => format!("build interrupted (make killed by signal {signal})"),
                (None, Some(code)) => format!("build failed (make exited {code})"),
                (None, None) => "build failed".to_string(),
            };
            let how = if self.color {
                format!("\x1b[1;31m{how}\x1b[0m")
            } else {
                how
            };
            format!(
                "makescope: {how} after {elapsed}; {} failed{record}.{show}\n",
                plural(failed, "command")
            )
        };
        Some(text)
    }

    /// `FAILED: target   (dir/, make level, recipe at file:line[, line i of n])`: the
    /// line's position in its job when the job has more than one.
    fn failure_header(&self, block: &mut Vec<u8>, line: &Line, seen: u32) {
        let (info, outcome) = (&line.info, &line.outcome);
        let top = as_path(&info.top_directory);
        let dir_path = as_path(&info.directory);
        let target = if info.target.is_empty() {
            "(no target)".to_string()
        } else {
            relative_to(top, dir_path, &String::from_utf8_lossy(&info.target))
        };
        let mut dir = relative_to(top, dir_path, ".");
        if !dir.ends_with('/') {
            dir.push('/');
        }
        let mut context = format!("{dir}, make level {}", info.make_level);
        if !info.recipe_file.is_empty() {
            context.push_str(&format!(
                ", recipe at {}:{}",
                String::from_utf8_lossy(&info.recipe_file),
                info.recipe_line
            ));
        }
        let of = line.place.lines.max(seen);
        if of > 1 {
            context.push_str(&format!(", line {} of {of}", line.place.index + 1));
        }
        if let Some(signal) = outcome.signal {
            context.push_str(&format!(", killed by signal {signal}"));
        } else if outcome.exit_code.is_none() {
            context.push_str(", no exit status");
        }
        let failed = if self.color {
            "\x1b[1;31mFAILED:\x1b[0m"
        } else {
            "FAILED:"
        };
        block.extend_from_slice(format!("{failed} {target}   ({context})\n").as_bytes());
    }

    fn update_bar(&mut self) {
        let Some(bar) = &self.bar else { return };
        if let Some(total) = self.expected_total {
            bar.set_length(total.max(self.started).max(1));
        }
        bar.set_position(self.done);
        // Show the newest running command, preferring real work to a waiting sub-make.
        let shown = self
            .running
            .iter()
            .rev()
            .find(|(_, _, make)| !make)
            .or_else(|| self.running.last())
            .map(|(_, text, _)| text.clone())
            .unwrap_or_default();
        bar.set_message(shown);
    }

    fn emit(&mut self, stream: Stream, bytes: &[u8]) {
        if stream == Stream::Stdout && self.stdout_lost {
            return;
        }
        let writer = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let mut write = || writer.write_all(bytes).and_then(|()| writer.flush());
        let written = match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        // stderr's errors are dropped, as make drops them.
        if let (Stream::Stdout, Err(error)) = (stream, written) {
            self.stdout_lost = true;
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                self.stdout_failed = true;
            }
        }
    }
}

fn progress_bar(expected_total: Option<u64>) -> ProgressBar {
    let elapsed = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}", clock(state.elapsed()));
    };
    let eta = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let (pos, len) = (state.pos(), state.len().unwrap_or(0));
        if pos == 0 || len <= pos {
            let _ = write!(w, "-:--");
        } else {
            let per = state.elapsed().as_secs_f64() / pos as f64;
            let _ = write!(
                w,
                "{}",
                clock(Duration::from_secs_f64(per * (len - pos) as f64))
            );
        }
    };
    let (bar, template) = match expected_total {
        Some(total) => (
            ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stdout()),
            "[{pos}/{len}] {percent:>2}% {my_elapsed} elapsed  ETA {my_eta}   {wide_msg}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout()),
            "{spinner} [{pos}] {my_elapsed} elapsed   {wide_msg}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("my_elapsed", elapsed)
        .with_key("my_eta", eta)
        .tick_strings(&["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "]);
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// A finished line waiting for the end of its job.
struct Line {
    info: CommandInfo,
    label: Label,
    by_hook: bool,
    place: Place,
    output: Vec<(Stream, Vec<u8>)>,
    outcome: Outcome,
}

/// A job whose end has not come: its finished lines in order and how many run now.
#[derive(Default)]
struct Job {
    lines: Vec<Line>,
    running: u32,
}

fn is_sub_make(info: &CommandInfo) -> bool {
    classify(info).rule == Rule::SubMake
}

fn label_text(label: &Label) -> String {
    format!("{} {}", label.verb, label.object)
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn end_line(block: &mut Vec<u8>) {
    if block.last().is_some_and(|&b| b != b'\n') {
        block.push(b'\n');
    }
}

/// `make[2]: Entering directory '/x'` and its `Leaving` twin.
pub(crate) fn is_directory_line(line: &[u8]) -> bool {
    let line = String::from_utf8_lossy(line);
    let Some((program, rest)) = line.split_once(": ") else {
        return false;
    };
    let program = program.split('[').next().unwrap_or(program);
    (rest.starts_with("Entering directory ") || rest.starts_with("Leaving directory "))
        && super::shell::basename(program).ends_with("make")
}

/// Drop ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL/ST`, and two-byte
/// escapes) and any other ESC byte: piped output must be plain text.
pub(crate) fn strip_escapes(bytes: &[u8]) -> Vec<u8> {
    if !bytes.contains(&0x1b) {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        i += 1;
        match bytes.get(i) {
            Some(b'[') => {
                i += 1;
                while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                    i += 1;
                }
                i += 1;
            }
            Some(b']') => {
                i += 1;
                while i < bytes.len()
                    && bytes[i] != 0x07
                    && !(bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'\\'))
                {
                    i += 1;
                }
                i += if bytes.get(i) == Some(&0x07) { 1 } else { 2 };
            }
            Some(_) => i += 1,
            None => {}
        }
    }
    out
}

/// `4:21`, `1:02:03`.
pub(crate) fn clock(duration: Duration) -> String {
    let s = duration.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `7,856`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn printer(mode: Mode) -> (Printer, Shared, Shared) {
        let (out, err) = (Shared::default(), Shared::default());
        (
            Printer::with_writers(mode, Some(10), Box::new(out.clone()), Box::new(err.clone())),
            out,
            err,
        )
    }

    fn info(id: i64, target: &str, command: &str) -> CommandInfo {
        CommandInfo {
            id,
            target: target.into(),
            directory: b"/b/elf".to_vec(),
            top_directory: b"/b".to_vec(),
            command: command.into(),
            recipe_file: b"../Makerules".to_vec(),
            recipe_line: 1023,
            make_level: 2,
        }
    }

    fn ok() -> Outcome {
        Outcome {
            exit_code: Some(0),
            signal: None,
            duration_ns: 1,
        }
    }

    #[test]
    fn failure_block() {
        let (mut p, out, err) = printer(Mode::Concise);
        let i = info(
            7,
            "/b/elf/dl-load.os",
            "gcc dl-load.c -c -o /b/elf/dl-load.os",
        );
        let l = crate::output::default_label(&i);
        p.started(&i, &l);
        let output = vec![(
            Stream::Stderr,
            b"dl-load.c:812:3: error: expected ';'".to_vec(),
        )];
        p.finished(
            &i,
            &l,
            &output,
            &Outcome {
                exit_code: Some(1),
                signal: None,
                duration_ns: 1,
            },
        );
        p.make_output(
            Stream::Stderr,
            b"make[2]: *** [../Makerules:1023: /b/elf/dl-load.os] Err",
        );
        p.make_output(Stream::Stderr, b"or 1\n");
        p.finish(&Summary {
            commands: 1,
            failed: 1,
            exit_code: Some(2),
            elapsed: Duration::from_secs(113),
            ..Summary::default()
        });
        assert_eq!(
            out.text(),
            "FAILED: elf/dl-load.os   (elf/, make level 2, recipe at ../Makerules:1023)\n\
             gcc dl-load.c -c -o /b/elf/dl-load.os\n\
             dl-load.c:812:3: error: expected ';'\n"
        );
        assert_eq!(
            err.text(),
            "make[2]: *** [../Makerules:1023: /b/elf/dl-load.os] Error 1\n\
             makescope: build failed (make exited 2) after 1:53; 1 command failed. `makescope show 7` has everything.\n"
        );
    }

    #[test]
    fn signal_in_failure_header() {
        let (mut p, out, _) = printer(Mode::Quiet);
        let i = info(1, "x", "sleep 100");
        p.finished(
            &i,
            &crate::output::default_label(&i),
            &[],
            &Outcome {
                exit_code: None,
                signal: Some(9),
                duration_ns: 1,
            },
        );
        assert!(out.text().starts_with("FAILED: elf/x   (elf/, make level 2, recipe at ../Makerules:1023, killed by signal 9)\n"));
    }

    #[test]
    fn concise_piped_prints_one_line_per_command_and_output_whole() {
        let (mut p, out, _) = printer(Mode::Concise);
        let a = info(1, "/b/elf/a.o", "gcc -c a.c -o /b/elf/a.o");
        let b = info(2, "/b/elf/b.o", "gcc -c b.c -o /b/elf/b.o");
        let (la, lb) = (
            crate::output::default_label(&a),
            crate::output::default_label(&b),
        );
        p.started(&a, &la);
        p.started(&b, &lb);
        p.make_output(
            Stream::Stdout,
            b"make[2]: Entering directory '/b/elf'\nmake[2]: Noth",
        );
        p.finished(&b, &lb, &[], &ok());
        p.make_output(Stream::Stdout, b"ing to be done for 'x'.\n");
        let chunks = vec![
            (Stream::Stderr, b"a.c:1: warning: one\n".to_vec()),
            (Stream::Stdout, b"a.c:2: warning: two".to_vec()),
        ];
        p.finished(&a, &la, &chunks, &ok());
        assert_eq!(
            out.text(),
            "  CC    elf/b.o\nmake[2]: Nothing to be done for 'x'.\n  CC    elf/a.o\na.c:1: warning: one\na.c:2: warning: two\n"
        );
    }

    fn at(job: u64, index: u32, lines: u32) -> Place {
        Place {
            make_pid: 100,
            job,
            index,
            lines,
            silent: false,
        }
    }

    #[test]
    fn interleaved_jobs_print_one_line_each_with_all_their_output() {
        let (mut p, out, _) = printer(Mode::Concise);
        let mkdir = info(1, "/b/elf/a.lo", "mkdir -p objs");
        let cc = info(2, "/b/elf/a.lo", "gcc -c a.c -o objs/a.o");
        let mv = info(3, "/b/elf/a.lo", "mv objs/a.o /b/elf/a.lo");
        let other = info(4, "/b/elf/b.o", "gcc -c b.c -o /b/elf/b.o");
        let line = |p: &mut Printer, i: &CommandInfo, place: Place, output: &[u8]| {
            let l = crate::output::default_label(i);
            p.line_started(i, &l, place);
            let chunks = vec![(Stream::Stderr, output.to_vec())];
            p.line_finished(i, &l, false, place, &chunks, &ok());
        };
        line(&mut p, &mkdir, at(1, 0, 3), b"");
        p.started(&other, &crate::output::default_label(&other));
        line(
            &mut p,
            &cc,
            at(1, 1, 3),
            b"a.c:1: warning: w
",
        );
        assert_eq!(out.text(), "", "nothing before the job ends");
        p.finished(&other, &crate::output::default_label(&other), &[], &ok());
        line(&mut p, &mv, at(1, 2, 3), b"");
        assert_eq!(
            out.text(),
            "  CC    elf/b.o\n",
            "until the recorder says it is over"
        );
        p.jobs_over(vec![(100, 1)]);
        assert_eq!(
            out.text(),
            "  CC    elf/b.o
  CC    elf/a.lo
a.c:1: warning: w
"
        );
        assert_eq!(p.counts(), (4, 0));
    }

    #[test]
    fn a_job_ends_when_told_or_with_its_make() {
        let (mut p, out, _) = printer(Mode::Concise);
        let cc = info(1, "/b/elf/a.o", "gcc -c a.c -o /b/elf/a.o");
        let l = crate::output::default_label(&cc);
        p.line_started(&cc, &l, at(1, 0, 3));
        p.line_finished(&cc, &l, false, at(1, 0, 3), &[], &ok());
        let cc2 = info(2, "/b/elf/b.o", "gcc -c b.c -o /b/elf/b.o");
        let l2 = crate::output::default_label(&cc2);
        p.line_started(&cc2, &l2, at(2, 0, 2));
        p.line_finished(&cc2, &l2, false, at(2, 0, 2), &[], &ok());
        assert_eq!(out.text(), "");
        p.jobs_over(vec![(100, 1)]);
        assert_eq!(
            out.text(),
            "  CC    elf/a.o
"
        );
        p.make_ended(100);
        assert_eq!(
            out.text(),
            "  CC    elf/a.o
  CC    elf/b.o
"
        );
    }

    #[test]
    fn a_failing_line_ends_its_job_and_is_named() {
        let (mut p, out, _) = printer(Mode::Concise);
        let echo = info(1, "/b/elf/a.lo", "echo preparing");
        let bad = info(2, "/b/elf/a.lo", "gcc -c a.c -o objs/a.o");
        let l = crate::output::default_label(&echo);
        p.line_started(&echo, &l, at(1, 0, 3));
        let said = vec![(Stream::Stdout, b"preparing\n".to_vec())];
        p.line_finished(&echo, &l, false, at(1, 0, 3), &said, &ok());
        let l = crate::output::default_label(&bad);
        p.line_started(&bad, &l, at(1, 1, 3));
        let failed = Outcome {
            exit_code: Some(1),
            signal: None,
            duration_ns: 1,
        };
        let error = vec![(Stream::Stderr, b"a.c:1: error: e\n".to_vec())];
        p.line_finished(&bad, &l, false, at(1, 1, 3), &error, &failed);
        assert_eq!(
            out.text(),
            "  CC    elf/objs/a.o\npreparing\n\
             FAILED: elf/a.lo   (elf/, make level 2, recipe at ../Makerules:1023, line 2 of 3)\n\
             gcc -c a.c -o objs/a.o\na.c:1: error: e\n"
        );
        assert_eq!(p.counts(), (2, 1));
    }

    #[test]
    fn piped_job_lines_carry_the_status_when_the_total_is_known() {
        let (mut p, out, _) = printer(Mode::Concise);
        p.set_status(Some(2), crate::output::DEFAULT_STATUS.into());
        for id in 1..=3 {
            let i = info(id, &format!("/b/elf/{id}.o"), "gcc -c x.c");
            p.finished(&i, &crate::output::default_label(&i), &[], &ok());
        }
        assert_eq!(
            out.text(),
            "[1/2] CC    elf/1.o\n[2/2] CC    elf/2.o\n[3/3] CC    elf/3.o\n"
        );
        let (mut p, out, _) = printer(Mode::Concise);
        p.set_status(Some(4), "%p %f of %t: ".into());
        let i = info(1, "/b/elf/1.o", "gcc -c x.c");
        p.finished(&i, &crate::output::default_label(&i), &[], &ok());
        assert_eq!(out.text(), " 25% 1 of 4: CC    elf/1.o\n");
        let (mut p, out, _) = printer(Mode::Concise);
        p.set_status(None, crate::output::DEFAULT_STATUS.into());
        p.finished(&i, &crate::output::default_label(&i), &[], &ok());
        assert_eq!(
            out.text(),
            "  CC    elf/1.o\n",
            "no prefix when the total is unknown"
        );
    }

    #[test]
    fn modes() {
        let i = info(1, "/b/elf/a.o", "gcc -c a.c -o /b/elf/a.o");
        let l = crate::output::default_label(&i);
        let warn = vec![(Stream::Stderr, b"warning: x\n".to_vec())];

        let (mut p, out, err) = printer(Mode::Verbose);
        p.finished(&i, &l, &[], &ok());
        p.make_output(Stream::Stdout, b"make: Entering directory '/b'\n");
        assert_eq!(
            out.text(),
            "gcc -c a.c -o /b/elf/a.o\nmake: Entering directory '/b'\n"
        );
        p.finish(&Summary {
            commands: 1,
            exit_code: Some(0),
            elapsed: Duration::from_secs(61),
            ..Summary::default()
        });
        assert_eq!(err.text(), "makescope: 1 command in 1:01\n");

        let (mut p, out, err) = printer(Mode::Quiet);
        p.finished(&i, &l, &[], &ok());
        p.finished(&i, &l, &warn, &ok());
        p.make_output(Stream::Stdout, b"hello from $(info)\n");
        p.make_output(Stream::Stderr, b"Makefile:3: a $(warning)\n");
        p.finish(&Summary {
            commands: 2,
            exit_code: Some(0),
            ..Summary::default()
        });
        assert_eq!(out.text(), "  CC    elf/a.o\nwarning: x\n");
        assert_eq!(err.text(), "Makefile:3: a $(warning)\n");

        let (mut p, out, err) = printer(Mode::Plain { summary: true });
        p.finished(&i, &l, &warn, &ok());
        p.make_output(
            Stream::Stdout,
            b"gcc -c a.c\nmake: Entering directory '/b'\npartial",
        );
        p.finish(&Summary {
            commands: 1,
            exit_code: Some(0),
            ..Summary::default()
        });
        // Untouched: not even a newline added.
        assert_eq!(
            out.text(),
            "gcc -c a.c\nmake: Entering directory '/b'\npartial"
        );
        assert!(err.text().starts_with("makescope: 1 command in 0:00"));
    }

    #[test]
    fn escapes_are_stripped_when_piped() {
        let (mut p, out, _) = printer(Mode::Concise);
        let i = info(1, "a.o", "gcc -c a.c");
        let l = crate::output::default_label(&i);
        let colored = vec![(
            Stream::Stderr,
            b"\x1b[01;35m\x1b[Kwarning:\x1b[m\x1b[K x \x1b]8;;http://x\x07link\x1b]8;;\x07\n"
                .to_vec(),
        )];
        p.finished(&i, &l, &colored, &ok());
        assert_eq!(out.text(), "  CC    elf/a.o\nwarning: x link\n");
    }

    #[test]
    fn summary_lines() {
        let (mut p, _, err) = printer(Mode::Concise);
        p.finish(&Summary {
            commands: 7856,
            failed: 0,
            elapsed: Duration::from_secs(524),
            exit_code: Some(0),
            signal: None,
            record: Some(".makescope/db.sqlite".into()),
        });
        assert_eq!(
            err.text(),
            "makescope: 7,856 commands in 8:44; record in .makescope/db.sqlite\n"
        );
        let (mut p, _, err) = printer(Mode::Concise);
        p.finish(&Summary {
            commands: 3,
            signal: Some(2),
            elapsed: Duration::from_secs(3725),
            ..Summary::default()
        });
        assert_eq!(err.text(), "makescope: build interrupted (make killed by signal 2) after 1:02:05; 0 commands failed.\n");
    }

    #[test]
    fn directory_lines() {
        assert!(is_directory_line(b"make[12]: Entering directory '/a b'\n"));
        assert!(is_directory_line(
            b"/usr/bin/make: Leaving directory '/x'\n"
        ));
        assert!(!is_directory_line(b"make: *** [Makefile:3: x] Error 1\n"));
        assert!(!is_directory_line(b"gcc: Entering directory x\n"));
    }
}
