//! make's database dumps (`.makescope/makedb/*.mkdb`, written by the plugin as make
//! exits), kept as the record keeps environments: the values of secret variables
//! redacted ([`crate::util::redact_environment`]'s rules: a variable whose name looks
//! secret or whose value holds a URL with a password, and secret assignments given on
//! make's command line, inside `MAKEFLAGS`, `-*-command-variables-*-`, …), and
//! zstd-compressed ([`crate::makedb::dump`]: glibc's 263 MB of dumps are 13 MB).
//!
//! The writer thread keeps each dump as its make ends, never the event loop; when the
//! build has ended, a dump still raw (its make's end never came: a killed make, or
//! another recorder's build cut off) is kept the same way. Only variable lines change
//! (`NAME = VALUE` at the start of a line); rules and recipes are left as make printed
//! them. A dump is never left compressed but unredacted: the one path to the compressed
//! form goes through the redaction.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::util::{has_url_password, looks_secret, redact_assignment, REDACTED};

/// The dumps this recorder kept (one dump serves every make with the same makefiles and
/// arguments), and whether secrets are redacted (not with `--keep-secrets`).
#[derive(Debug)]
pub(crate) struct Dumps {
    redact: bool,
    done: HashSet<PathBuf>,
}

impl Dumps {
    pub fn new(redact: bool) -> Dumps {
        Dumps {
            redact,
            done: HashSet::new(),
        }
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
