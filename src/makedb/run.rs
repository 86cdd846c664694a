//! Running make to print its database without changing the tree.
//!
//! `make -pq` alone is not safe: make remakes included makefiles even under `-q` and
//! `-n`, and runs `$(MAKE)` lines. So every target gets a pattern-specific
//! `override SHELL = /bin/false` (a pattern-specific variable beats the makefile's own
//! global `SHELL`, `override` or not): any recipe make decides to run, a makefile's
//! included makefile's included, is handed to `/bin/false`, which runs nothing. The
//! `--eval` travels to sub-makes in MAKEFLAGS.
//!
//! The one exception is forwarding: a makefile whose `.DEFAULT` rule hands every goal to
//! another make (glibc's build directory: `$(MAKE) -C $(srcdir) objdir=… $@`). The goal
//! is `.DEFAULT`, as bash-completion does, and `.DEFAULT` alone gets a real shell, so
//! under `-q` exactly its `$(MAKE)`/`+` lines run, as `make -q` would run them; the
//! sub-make inherits `-p -q` and the overrides and prints its own database.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// What one listing run printed.
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: std::process::ExitStatus,
}

/// Variables of the caller's environment that would change what make does here.
const SCRUBBED: &[&str] = &[
    "MAKEFLAGS",
    "MFLAGS",
    "GNUMAKEFLAGS",
    "MAKELEVEL",
    "MAKE_RESTARTS",
    "MAKEOVERRIDES",
];

/// The arguments that make a listing safe (see the module doc).
pub fn safety_args(follow_default: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "-p".into(),
        "-q".into(),
        "--eval=%: override SHELL = /bin/false".into(),
    ];
    if follow_default {
        args.push("--eval=.DEFAULT: override SHELL = /bin/sh".into());
    }
    args
}

/// Run `program` in `directory` with `args` (options and variable assignments, never
/// goals) plus the safety arguments, and the goal `.DEFAULT`.
///
/// `env`: the environment to use instead of ours (a recorded sub-make's), with
/// MAKEFLAGS already cleaned of the jobserver.
pub fn print_database(
    program: &Path,
    directory: &Path,
    args: &[OsString],
    env: Option<&[(OsString, OsString)]>,
    follow_default: bool,
) -> Result<Output> {
    let mut command = Command::new(program);
    command
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(env) = env {
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    } else {
        for name in SCRUBBED {
            command.env_remove(name);
        }
    }
    command.env("LC_ALL", "C").env_remove("LANGUAGE");
    command
        .args(args)
        .args(safety_args(follow_default))
        .arg(".DEFAULT");
    let output = command.output().with_context(|| {
        format!(
            "cannot run `{}` in {}",
            program.display(),
            directory.display()
        )
    })?;
    Ok(Output {
        stdout: output.stdout,
        stderr: output.stderr,
        status: output.status,
    })
}

/// Split a recorded make argv (without argv[0]) into what to keep for a listing (options
/// and variable assignments) and drop the goals. Also drops options that would make the
/// listing unsafe or slow (`-j`, `-t`, `-n`, `-B`, `-W`, `-p`, `-q`).
pub fn listing_args(argv: &[OsString]) -> Vec<OsString> {
    // Short options that take an argument (possibly in the next word).
    const WITH_ARG: &[&str] = &["-C", "-f", "-I", "-o", "-l", "-O"];
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].to_string_lossy().into_owned();
        i += 1;
        if arg == "--" {
            continue;
        }
        if let Some(opt) = arg.strip_prefix("--") {
            let name = opt.split('=').next().unwrap_or("");
            match name {
                "jobs" | "touch" | "just-print" | "dry-run" | "recon" | "always-make"
                | "what-if" | "new-file" | "assume-new" | "print-data-base" | "question"
                | "jobserver-auth" | "jobserver-fds" => {
                    if !opt.contains('=') && matches!(name, "what-if" | "new-file" | "assume-new") {
                        i += 1;
                    }
                }
                "directory" | "file" | "makefile" | "include-dir" | "old-file" | "assume-old"
                | "eval" | "load-average" | "output-sync"
                    if !opt.contains('=') =>
                {
                    out.push(arg.into());
                    if let Some(next) = argv.get(i) {
                        out.push(next.clone());
                        i += 1;
                    }
                }
                _ => out.push(arg.into()),
            }
            continue;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            let flag = &arg[..2];
            if WITH_ARG.contains(&flag) {
                out.push(arg.clone().into());
                if arg.len() == 2 {
                    if let Some(next) = argv.get(i) {
                        out.push(next.clone());
                        i += 1;
                    }
                }
                continue;
            }
            if flag == "-j" || flag == "-W" {
                if flag == "-W" && arg.len() == 2 {
                    i += 1;
                }
                continue;
            }
            // Clustered flags: drop the unsafe ones.
            let kept: String = arg[1..]
                .chars()
                .filter(|c| !"tnBpqj".contains(*c))
                .collect();
            if !kept.is_empty() && !kept.chars().any(|c| c.is_ascii_digit()) {
                out.push(format!("-{kept}").into());
            }
            continue;
        }
        if arg.contains('=') {
            out.push(arg.into()); // a variable assignment
        }
        // anything else is a goal: dropped
    }
    out
}

/// MAKEFLAGS from a recorded environment, without the jobserver and the flags that
/// would make a listing unsafe.
pub fn clean_makeflags(value: &OsStr) -> OsString {
    let mut text = value.to_string_lossy().into_owned();
    // The recorded build loaded makescope's plugin from a run directory that is gone
    // (`--eval=load\ /tmp/makescope-…/makescope.so`, space escaped): never load it here.
    while let Some(start) = text.find("--eval=load\\ ") {
        let Some(end) = text[start..].find("makescope.so") else {
            break;
        };
        text.replace_range(start..start + end + "makescope.so".len(), "");
    }
    let mut words: Vec<String> = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        if word.starts_with("--jobserver") || word.starts_with("-j") || word.is_empty() {
            continue;
        }
        if i == 0 && !word.starts_with('-') && !word.contains('=') {
            // The single-letter flags cluster.
            let kept: String = word.chars().filter(|c| !"tnBpqj".contains(*c)).collect();
            if !kept.is_empty() {
                words.push(kept);
            }
            continue;
        }
        words.push(word.to_string());
    }
    words.join(" ").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_recorded_builds_plugin_is_not_loaded() {
        let flags = OsStr::new("r --eval=load\\ /tmp/makescope-AbC123/makescope.so -- subdir=elf");
        assert_eq!(clean_makeflags(flags), OsString::from("r -- subdir=elf"));
    }

    #[test]
    fn goals_and_unsafe_flags_are_dropped() {
        let argv = os(&[
            "-r",
            "-C",
            "../elf",
            "-j4",
            "subdir=elf",
            "others",
            "-nk",
            "--jobserver-auth=3,4",
            "-f",
            "M",
        ]);
        assert_eq!(
            listing_args(&argv),
            os(&["-r", "-C", "../elf", "subdir=elf", "-k", "-f", "M"])
        );
        assert_eq!(
            clean_makeflags(OsStr::new("rnw -j2 --jobserver-auth=3,4 -- objdir=/b")),
            "rw -- objdir=/b"
        );
    }
}
