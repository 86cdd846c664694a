//! `tests --list-only`: a tree's test cases from make's own view of the check goal,
//! without running a test and without changing the tree.
//!
//! How: make runs the goal under `-n` (it runs no recipe, only prints them), with
//! two additions travelling to every sub-make:
//! - `SHELL` is overridden for every target (`%: override SHELL = …`) by a small script
//!   ([`SHELL_SCRIPT`]) that runs a recipe line only when a word of it is the make
//!   program: a sub-make, which inherits `-n` and these overrides. Under `-n` make hands
//!   the shell only such lines, and the recipes that remake a makefile, which the script
//!   refuses as `/bin/false` would (as `targets` does, see `makedb::run`).
//! - `MAKEFILES` names a makefile of ours ([`MAKEFILE`]) that every make reads first and
//!   then tries to remake, as it does every makefile it read: its one prerequisite's
//!   recipe is a `$(info …)` that make expands after reading all the project's
//!   makefiles, so it prints, per make, the values of the convention's own variables:
//!   - glibc: the names `merge-test-results.sh` is given for `subdir-tests.sum` (Rules:
//!     `$(subdir)/` and `$(sort $(tests-expected) $(tests-special-notdir:.out=))`);
//!   - automake's parallel harness (`TESTS` and its `TEST_LOGS`): each word of
//!     `TESTS`, the name the harness prints;
//!   - DejaGnu (`DEJATOOL`, or a `runtest` in a printed recipe): the `.exp` scripts
//!     name their tests as they run, so only running them can tell: said plainly.
//!
//! A project with none of these: said plainly too. The expanded line is empty, so no
//! shell runs for it. What it owns: that one make run and reading what it printed.
//! What it must never do: run a test, or run anything but a sub-make; write anything
//! but its private directory (removed when done); read or write the record.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// What `tests --list-only` asks make.
#[derive(Debug, Clone)]
pub struct ListOnlyOptions {
    /// Where make runs (default: the current directory).
    pub directory: Option<PathBuf>,
    /// The goals whose tests are listed (default: `check`).
    pub goals: Vec<OsString>,
    /// Options and variable assignments for make (`objdir=…`, `-f FILE`).
    pub make_args: Vec<OsString>,
    /// The make program.
    pub make_program: PathBuf,
}

/// One test make's view names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTest {
    /// As the real run reports it (`string/test-strlen`, `t-alpha`).
    pub name: String,
    /// The directory of the make that would run it.
    pub directory: PathBuf,
    /// `glibc` or `automake`.
    pub convention: &'static str,
}

/// A directory whose tests make's view cannot name, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub directory: PathBuf,
    pub why: String,
}

/// What make's view of the goals says.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Where make ran; directories are shown relative to it.
    pub directory: PathBuf,
    pub goals: Vec<String>,
    /// By directory (in the order make reached them), then as the convention orders them.
    pub tests: Vec<PlannedTest>,
    pub unknown: Vec<Unknown>,
    /// make's complaints (stderr lines), for the caller to pass on.
    pub warnings: Vec<String>,
}

/// The script make gets as `SHELL` (see the module doc). `$MAKESCOPE_LIST_MAKE` is the
/// make program's file name; the line runs in bash when there is one (glibc's recipes
/// are bash), else sh.
pub const SHELL_SCRIPT: &str = r#"#!/bin/sh
# makescope tests --list-only: make's SHELL while it lists tests. Runs a recipe line
# only when a word of it is the make program (a sub-make, which inherits -n); refuses
# every other line, as /bin/false would.
for line; do :; done
set -f
for word in $line; do
  case "${word##*/}" in
    "$MAKESCOPE_LIST_MAKE") exec "$MAKESCOPE_LIST_SHELL" -c "$line" ;;
  esac
done
exit 1
"#;

/// The makefile every make reads first (`MAKEFILES`); `@SELF@` is its own path and
/// `@MARK@` the private directory's name, which starts each line it prints.
pub const MAKEFILE: &str = "# makescope tests --list-only: read first by every make (MAKEFILES); remade as\n\
# every makefile is, after all the others are read, so the $(info) below sees their values.\n\
@SELF@: makescope-list-tests\n\
.PHONY: makescope-list-tests\n\
makescope-list-tests:\n\
\t@$(info @MARK@\t$(CURDIR)\tglibc\t$(origin tests-expected)\t$(subdir)\t$(run-built-tests)\t$(sort $(tests-expected) $(tests-special-notdir:.out=)))$(info @MARK@\t$(CURDIR)\tautomake\t$(origin TESTS)\t$(TESTS)\t$(origin TEST_LOGS))$(info @MARK@\t$(CURDIR)\tdejagnu\t$(origin DEJATOOL)\t$(DEJATOOL))\n";

/// Variables of the caller's environment that would change what make does here.
const SCRUBBED: &[&str] = &[
    "MAKEFLAGS",
    "MFLAGS",
    "GNUMAKEFLAGS",
    "MAKELEVEL",
    "MAKE_RESTARTS",
    "MAKEOVERRIDES",
    "MAKEFILES",
];

/// A private directory, removed when dropped.
struct Private(PathBuf);

impl Private {
    fn create() -> Result<Private> {
        crate::util::private_temp_dir("makescope-list").map(Private)
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Ask make for the tests of `options.goals` (see the module doc).
pub fn list_only(options: &ListOnlyOptions) -> Result<Planned> {
    let cwd = std::env::current_dir().context("cannot tell the current directory")?;
    let directory = match &options.directory {
        Some(d) => std::fs::canonicalize(cwd.join(d))
            .with_context(|| format!("no directory {}", d.display()))?,
        None => cwd,
    };
    let goals: Vec<OsString> = if options.goals.is_empty() {
        vec!["check".into()]
    } else {
        options.goals.clone()
    };
    let private = Private::create()?;
    if private
        .0
        .as_os_str()
        .as_bytes()
        .iter()
        .any(u8::is_ascii_whitespace)
    {
        bail!(
            "the temporary directory {} has a blank in its path, which make cannot take in MAKEFILES; set TMPDIR",
            private.0.display()
        );
    }
    let mark = private
        .0
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let makefile = private.0.join("list.mk");
    std::fs::write(
        &makefile,
        MAKEFILE
            .replace("@SELF@", &makefile.to_string_lossy())
            .replace("@MARK@", &mark),
    )
    .with_context(|| format!("cannot write {}", makefile.display()))?;
    let shell = private.0.join("sh");
    std::fs::write(&shell, SHELL_SCRIPT)
        .with_context(|| format!("cannot write {}", shell.display()))?;
    std::fs::set_permissions(&shell, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", shell.display()))?;
    let real_shell = if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let program_name = options
        .make_program
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| options.make_program.clone().into_os_string());

    let mut command = Command::new(&options.make_program);
    command
        .current_dir(&directory)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in SCRUBBED {
        command.env_remove(name);
    }
    command
        .env("LC_ALL", "C")
        .env_remove("LANGUAGE")
        .env("MAKEFILES", &makefile)
        .env("MAKESCOPE_LIST_MAKE", &program_name)
        .env("MAKESCOPE_LIST_SHELL", real_shell)
        .arg("-n")
        .arg("-k")
        .arg(format!("--eval=%: override SHELL = {}", shell.display()))
        .args(&options.make_args)
        .args(&goals);
    let output = command.output().with_context(|| {
        format!(
            "cannot run `{}` in {}",
            options.make_program.display(),
            directory.display()
        )
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut planned = read_output(&stdout, &mark, &directory);
    planned.goals = goals
        .iter()
        .map(|g| g.to_string_lossy().into_owned())
        .collect();
    let no_rule = stderr.lines().find(|l| {
        l.starts_with(&format!(
            "{}: *** No rule to make target",
            program_name.to_string_lossy()
        )) || l.contains("No targets specified and no makefile found")
    });
    if let Some(line) = no_rule {
        bail!(
            "make cannot list the tests of `{}` in {}: {line}",
            planned.goals.join(" "),
            directory.display()
        );
    }
    if !stdout.lines().any(|l| l.starts_with(&mark)) {
        let why = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("it printed nothing");
        bail!(
            "make could not be asked for the tests of `{}` in {}: {why}",
            planned.goals.join(" "),
            directory.display()
        );
    }
    planned.warnings = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("jobserver"))
        .map(|l| format!("make in {}: {l}", directory.display()))
        .collect();
    if planned.tests.is_empty() && planned.unknown.is_empty() {
        planned.unknown.push(Unknown {
            directory: directory.clone(),
            why: format!(
                "no test convention makescope knows (glibc's Rules, automake's TESTS, DejaGnu) in make's view of `{}`: only running the tests can tell (`makescope make {0}`, then `makescope tests`)",
                planned.goals.join(" ")
            ),
        });
    }
    Ok(planned)
}

/// Read the lines our makefile printed (`MARK\tDIR\tCONVENTION\t…`) and the recipes
/// make printed (`runtest`), each in the directory make said it entered.
fn read_output(stdout: &str, mark: &str, top: &Path) -> Planned {
    let mut planned = Planned {
        directory: top.to_path_buf(),
        goals: Vec::new(),
        tests: Vec::new(),
        unknown: Vec::new(),
        warnings: Vec::new(),
    };
    let mut entered: Vec<PathBuf> = vec![top.to_path_buf()];
    let mut dejagnu: Vec<(PathBuf, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(mark).and_then(|r| r.strip_prefix('\t')) {
            let fields: Vec<&str> = rest.split('\t').collect();
            read_fields(&fields, &mut planned, &mut dejagnu);
        } else if let Some(dir) = entering(line, "Entering directory") {
            entered.push(dir);
        } else if entering(line, "Leaving directory").is_some() {
            if entered.len() > 1 {
                entered.pop();
            }
        } else if line
            .split_whitespace()
            .any(|w| w.trim_start_matches('-').rsplit('/').next() == Some("runtest"))
        {
            let here = entered.last().cloned().unwrap_or_default();
            dejagnu.push((here, String::new()));
        }
    }
    for (directory, tools) in dejagnu {
        if planned.unknown.iter().any(|u| u.directory == directory) {
            continue;
        }
        let tools = if tools.is_empty() {
            String::new()
        } else {
            format!(" (tool {tools})")
        };
        planned.unknown.push(Unknown {
            directory,
            why: format!("DejaGnu{tools}: its .exp scripts name their tests as they run, so only running runtest can tell"),
        });
    }
    planned
}

/// One `$(info)` line's fields: DIR CONVENTION ORIGIN VALUES….
fn read_fields(fields: &[&str], planned: &mut Planned, dejagnu: &mut Vec<(PathBuf, String)>) {
    let (Some(dir), Some(convention), Some(origin)) =
        (fields.first(), fields.get(1), fields.get(2))
    else {
        return;
    };
    if *origin == "undefined" {
        return;
    }
    let directory = PathBuf::from(dir);
    let mut add = |name: String, convention: &'static str| {
        let test = PlannedTest {
            name,
            directory: directory.clone(),
            convention,
        };
        if !planned.tests.contains(&test) {
            planned.tests.push(test);
        }
    };
    match *convention {
        "glibc" => {
            let subdir = fields.get(3).copied().unwrap_or("");
            let run_built = fields.get(4).copied().unwrap_or("");
            let names = fields.get(5).copied().unwrap_or("");
            if run_built == "no" && names.trim().is_empty() {
                planned.unknown.push(Unknown {
                    directory: directory.clone(),
                    why: "glibc with run-built-tests = no: `check` builds the tests and runs none"
                        .into(),
                });
            }
            for name in names.split_whitespace() {
                match subdir {
                    "" => add(name.to_string(), "glibc"),
                    _ => add(format!("{subdir}/{name}"), "glibc"),
                }
            }
        }
        // `TESTS` with the harness's `TEST_LOGS` (a plain makefile may say TESTS too).
        "automake" if fields.get(4).is_some_and(|o| *o != "undefined") => {
            for name in fields.get(3).copied().unwrap_or("").split_whitespace() {
                add(name.to_string(), "automake");
            }
        }
        "dejagnu" => dejagnu.push((
            directory.clone(),
            fields.get(3).copied().unwrap_or("").trim().to_string(),
        )),
        _ => {}
    }
}

/// The directory of make's `make[1]: Entering directory '/x'` line.
fn entering(line: &str, what: &str) -> Option<PathBuf> {
    let (_, rest) = line.split_once(what)?;
    let quoted = rest.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(PathBuf::from(quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_info_lines_give_glibc_names_with_their_subdir_and_automake_tests_as_written() {
        let out = "M\t/s/string\tglibc\tfile\tstring\tyes\ttest-a tst-b\n\
                   M\t/s/string\tautomake\tundefined\t\n\
                   M\t/p/one\tautomake\tfile\tt1 t2.sh\tfile\n\
                   M\t/p/two\tautomake\tfile\tnot-automake\tundefined\n\
                   M\t/p/one\tglibc\tundefined\t\t\t\n";
        let planned = read_output(out, "M", Path::new("/p"));
        let names: Vec<&str> = planned.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["string/test-a", "string/tst-b", "t1", "t2.sh"]);
        assert!(planned.unknown.is_empty());
    }

    #[test]
    fn a_printed_runtest_makes_its_directory_unknowable() {
        let out = "make[1]: Entering directory '/p/one'\n../runtest --tool calc\n\
                   make[1]: Leaving directory '/p/one'\n";
        let planned = read_output(out, "M", Path::new("/p"));
        assert_eq!(planned.unknown.len(), 1);
        assert_eq!(planned.unknown[0].directory, Path::new("/p/one"));
        assert!(planned.tests.is_empty());
    }
}
