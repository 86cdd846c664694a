//! A [`Plan`] as text: the listing `--dry-run` prints, and the standalone POSIX sh
//! script `--script` prints (for a bug report, or a colleague without makescope).
//! Renders only: runs nothing, checks nothing on this machine.

use super::plan::{Plan, Variable};
use crate::util::lossy;

/// `bytes` quoted for a POSIX shell: single quotes keep every byte but `'` (and NUL,
/// which no argument or environment entry can hold) as it is.
pub fn sh_quote(bytes: &[u8]) -> Vec<u8> {
    let plain = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(b));
    if plain {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

fn words(words: &[Vec<u8>]) -> String {
    words
        .iter()
        .map(|w| lossy(&sh_quote(w)).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn heading(plan: &Plan) -> String {
    let mut text = format!("`{}`", lossy(&plan.target));
    if let Some((file, line)) = &plan.recipe {
        text.push_str(&format!(" ({}:{line})", lossy(file)));
    }
    let ids: Vec<String> = plan
        .lines
        .iter()
        .map(|l| format!("#{}", l.command_id))
        .collect();
    text.push_str(&format!(
        ", command{} {} of build {}",
        if ids.len() == 1 { "" } else { "s" },
        ids.join(" "),
        plan.build_id
    ));
    text
}

/// What `--dry-run` prints: where and how each line would run.
pub fn listing(plan: &Plan) -> String {
    let mut out = format!("would replay {}\n", heading(plan));
    out.push_str(&format!("directory  {}\n", lossy(&plan.directory)));
    out.push_str(&format!(
        "shell      {}\n",
        words(&plan.shell[..plan.shell_words])
    ));
    out.push_str(&format!(
        "flags      {}\n",
        words(&plan.shell[plan.shell_words..])
    ));
    out.push_str(&format!(
        "env        {} variables, as recorded\n",
        plan.environment.len()
    ));
    for line in &plan.lines {
        let label = format!("line {}", line.number);
        let text = lossy(&line.text).replace('\n', "\n           ");
        let ignored = if line.ignore_errors {
            "   (a failure is ignored, as make did)"
        } else {
            ""
        };
        out.push_str(&format!("{label:<10} {text}{ignored}\n"));
    }
    out
}

/// What `--script` prints: a POSIX sh script that replays the plan on its own, with
/// `env -i` and the recorded environment, stopping at the first failure make would
/// stop at, and exiting with that line's status. A redacted secret is never written
/// out: the script takes it from the environment it runs in.
pub fn posix_sh(plan: &Plan) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let text = |s: &str, out: &mut Vec<u8>| out.extend_from_slice(s.as_bytes());
    text("#!/bin/sh\n", &mut out);
    text(
        &format!("# makescope replay of {}.\n", heading(plan)),
        &mut out,
    );
    text(
        "# Each line runs as make ran it: the recorded shell and flags, in the recorded\n\
         # directory, with only the recorded environment (env -i).\n",
        &mut out,
    );
    for note in &plan.notes {
        text(&format!("# note: {note}\n"), &mut out);
    }
    for variable in &plan.environment {
        if let Variable::Secret(name) = variable {
            let name = lossy(name);
            text(
                &format!(
                    "if [ -z \"${{{name}+set}}\" ]; then echo '{name} is redacted in the record: set it to run this script' >&2; exit 2; fi\n"
                ),
                &mut out,
            );
        }
    }
    text("cd ", &mut out);
    out.extend_from_slice(&sh_quote(&plan.directory));
    text(" || exit 2\n", &mut out);
    text("replay() {\n  env -i \\\n", &mut out);
    for variable in &plan.environment {
        text("    ", &mut out);
        match variable {
            Variable::Set(entry) => out.extend_from_slice(&sh_quote(entry)),
            Variable::Secret(name) => {
                out.push(b'"');
                out.extend_from_slice(name);
                out.extend_from_slice(b"=$");
                out.extend_from_slice(name);
                out.push(b'"');
            }
        }
        text(" \\\n", &mut out);
    }
    text("    \"$@\"\n}\n", &mut out);
    for line in &plan.lines {
        text(&format!("# line {}\n", line.number), &mut out);
        text("replay", &mut out);
        for word in plan.argv(line) {
            out.push(b' ');
            out.extend_from_slice(&sh_quote(word));
        }
        if line.ignore_errors {
            text(" || :  # make went past a failure here\n", &mut out);
        } else {
            text(" || exit\n", &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_byte() {
        assert_eq!(sh_quote(b"plain/path.c"), b"plain/path.c");
        assert_eq!(sh_quote(b""), b"''");
        assert_eq!(sh_quote(b"it's"), b"'it'\\''s'");
        // Run each through sh and compare the bytes it prints.
        let nasty: Vec<&[u8]> = vec![
            b"a b",
            b"$HOME `x` \\n \"q\"",
            b"line1\nline2",
            b"\xff\xfe not utf-8",
            b"'''",
            b"-n",
        ];
        for word in nasty {
            let mut script = b"printf '%s' ".to_vec();
            script.extend_from_slice(&sh_quote(word));
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&script))
                .output()
                .unwrap();
            assert_eq!(output.stdout, word, "{}", lossy(word));
        }
    }
}
