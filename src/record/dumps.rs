//! make's database dumps (`.makescope/makedb/*.mkdb`, written by the plugin as make
//! exits), kept as the record keeps environments: the values of secret variables
//! redacted ([`crate::util::redact_environment`]'s rules: a variable whose name looks
//! secret or whose value holds a URL with a password, and secret assignments given on
//! make's command line, inside `MAKEFLAGS`, `-*-command-variables-*-`, …), and
//! zstd-compressed ([`crate::makedb::dump`]: glibc's 263 MB of dumps are 13 MB).
//!
//! As each make ends the writer thread reads its dump once, redacts it, keeps it
//! compressed, and from that one parse takes both make's declared graph (for the record,
//! [`crate::makedb::declared`]) and the make's targets listing, which it puts into the
//! `--recursive` cache beside the record ([`crate::makedb::cache::store_entry`]): the
//! first `targets --recursive` after a build then parses no dump. The event loop never
//! does any of this (it is off make's path: the writer runs at batch priority); when the
//! build has ended, a dump still raw (its make's end never came: a killed make, or
//! another recorder's build cut off) is kept the same way. Only variable lines change
//! (`NAME = VALUE` at the start of a line); rules and recipes are left as make printed
//! them. A dump is never left compressed but unredacted: the one path to the compressed
//! form goes through the redaction.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::makedb::{cache, dump, parse::parse_bytes};
use crate::store::NewPrereq;
use crate::util::{has_url_password, looks_secret, redact_assignment, REDACTED};

/// The dumps this recorder kept (one dump serves every make with the same makefiles and
/// arguments), whether secrets are redacted (not with `--keep-secrets`), and the record
/// whose `--recursive` cache gets each make's listing.
#[derive(Debug)]
pub(crate) struct Dumps {
    redact: bool,
    done: HashSet<PathBuf>,
    record: Option<PathBuf>,
    /// The recorder's per-run directory, removed when the build ends.
    run_dir: Option<PathBuf>,
    /// The writer's CPU time (ns) spent keeping dumps (reading, redacting, compressing),
    /// parsing them, and making listings: for `MAKESCOPE_TRACE_STATS`.
    cpu: [u64; 3],
}

/// This thread's CPU time so far, in ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill in.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Dumps {
    pub fn new(redact: bool) -> Dumps {
        Dumps {
            redact,
            done: HashSet::new(),
            record: None,
            run_dir: None,
            cpu: [0; 3],
        }
    }

    /// Also put each ended make's listing into the `--recursive` cache of `record`, as
    /// it will read once the build has ended and `run_dir` (the recorder's per-run
    /// directory, whose `makescope.mk` every make reads) is gone.
    pub fn with_listings(mut self, record: &Path, run_dir: &Path) -> Dumps {
        self.record = Some(std::fs::canonicalize(record).unwrap_or_else(|_| record.to_owned()));
        self.run_dir = Some(run_dir.to_owned());
        self
    }

    /// A make that ran in `directory` ended, having dumped its database to `path` (the
    /// raw name the plugin gave): keep the dump (redacted, compressed) and its listing
    /// (none when where the make ran is unknown), and give its declared graph. The dump is parsed once, as it is kept (redacted:
    /// redaction changes variable lines only, never a rule), for both. A dump kept
    /// already (another make's, or reused by the plugin from an earlier build) is read
    /// in whichever form is there. `None` when it cannot be read or holds no database.
    pub fn end_make(&mut self, path: &Path, directory: Option<&Path>) -> Option<Vec<NewPrereq>> {
        let first = self.done.insert(path.to_owned());
        if !first {
            return crate::makedb::declared::declared(path);
        }
        let start = thread_cpu_ns();
        let text = match std::fs::read(path) {
            Ok(raw) => {
                let text = match self.redact.then(|| redact_dump(&raw)).flatten() {
                    Some(redacted) => redacted,
                    None => raw,
                };
                let _ = dump::store(path, &text);
                text
            }
            Err(_) => dump::read(path).ok()?,
        };
        let kept = thread_cpu_ns();
        self.cpu[0] += kept - start;
        let parsed = parse_bytes(&text).ok();
        drop(text);
        let parsed_at = thread_cpu_ns();
        self.cpu[1] += parsed_at - kept;
        let parsed = parsed?;
        if let (Some(record), Some(directory)) = (&self.record, directory) {
            let gone = self.run_dir.as_deref();
            let section = crate::makedb::dump_section(&parsed, directory, path, gone);
            let mut inputs = crate::makedb::inputs(&section, dump::locate(path).as_deref());
            for input in &mut inputs {
                if gone.is_some_and(|g| input.path.starts_with(g)) {
                    input.stamp = None;
                }
            }
            cache::store_entry(record, &crate::makedb::dump_key(path), &inputs, &section);
            self.cpu[2] += thread_cpu_ns() - parsed_at;
        }
        Some(crate::makedb::declared::from_dump(&parsed))
    }

    /// Keep the dump at `path` (the raw name the plugin gave) redacted and compressed,
    /// unless done already or already compressed; a dump that cannot be read or
    /// rewritten is left as it is (it is the owner's alone, in a 0700 directory).
    pub fn keep(&mut self, path: &Path) {
        if !self.done.insert(path.to_owned()) {
            return;
        }
        let Ok(text) = std::fs::read(path) else {
            return;
        };
        let redacted = if self.redact {
            redact_dump(&text)
        } else {
            None
        };
        let _ = crate::makedb::dump::store(path, redacted.as_deref().unwrap_or(&text));
    }

    /// With `MAKESCOPE_TRACE_STATS`: the writer's CPU time spent on the dumps, as
    /// `makescope: writer dumps: …`.
    pub fn report_cpu(&self) {
        if std::env::var_os(crate::protocol::ENV_TRACE_STATS).is_none() {
            return;
        }
        let [kept, parsed, listed] = self.cpu.map(|ns| ns / 1_000_000);
        eprintln!(
            "makescope: writer dumps: {} kept in {kept} ms (read, redacted, compressed), parsed in {parsed} ms, listed in {listed} ms",
            self.done.len()
        );
    }

    /// Keep every dump of `dir` still raw.
    pub fn keep_all(&mut self, dir: &Path) {
        for raw in crate::makedb::dump::raw_dumps(dir) {
            self.keep(&raw);
        }
    }
}

/// The dump's text with secret values redacted; `None` when it holds none.
pub(crate) fn redact_dump(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut changed = false;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        match redact_line(line) {
            Some(redacted) => {
                out.extend_from_slice(&redacted);
                changed = true;
            }
            None => out.extend_from_slice(line),
        }
    }
    changed.then_some(out)
}

/// A variable line (`NAME OP VALUE`, as make's database prints one) with its secret
/// redacted; `None` when it is not one or holds none.
fn redact_line(line: &[u8]) -> Option<Vec<u8>> {
    if !matches!(line.first(), Some(&b) if b != b'\t' && b != b'#' && b != b' ') {
        return None;
    }
    let space = line.iter().position(|&b| b == b' ')?;
    let (name, rest) = (&line[..space], &line[space + 1..]);
    let op_end = rest.iter().position(|&b| b == b' ')?;
    let op = &rest[..op_end];
    if !matches!(op, b"=" | b":=" | b"::=" | b"+=" | b"?=" | b"!=") {
        return None;
    }
    let value = &rest[op_end + 1..];
    let mut out = line[..space + 1 + op_end + 1].to_vec();
    if looks_secret(name) || has_url_password(value) {
        out.extend_from_slice(REDACTED);
        return Some(out);
    }
    let mut changed = false;
    for (i, word) in value.split(|&b| b == b' ').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match redact_assignment(word) {
            Some(redacted) => {
                out.extend_from_slice(&redacted);
                changed = true;
            }
            None => out.extend_from_slice(word),
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variables_of_a_dump_are_redacted_and_the_rest_kept() {
        let dump =
            b"# environment\nGITHUB_PAT = ghp_x\n# environment\nHTTP_PROXY = http://u:p@h:1\n\
# automatic\n-*-command-variables-*- := API_TOKEN=v CC=gcc\nCC = gcc\n\
all: x\n\t@echo TOKEN = 1\n";
        let redacted = redact_dump(dump).unwrap();
        assert_eq!(
            String::from_utf8(redacted).unwrap(),
            "# environment\nGITHUB_PAT = <redacted>\n# environment\nHTTP_PROXY = <redacted>\n\
# automatic\n-*-command-variables-*- := API_TOKEN=<redacted> CC=gcc\nCC = gcc\n\
all: x\n\t@echo TOKEN = 1\n"
        );
        assert_eq!(redact_dump(b"CC = gcc\nall:\n"), None);
    }
}
