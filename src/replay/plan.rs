//! From a recorded recipe to what a replay runs: directory, shell, flags, lines and an
//! environment as plain make would have given the command, with a [`Note`] for each
//! thing that differs from the recorded run and a [`ReplayError`] for what cannot be
//! made whole. Pure: it reads no file and runs nothing (secrets come through
//! [`Secrets`]), so every rule here is unit-tested.

use std::fmt;

use super::{Mode, Recipe, ReplayError};
use crate::paths::as_path;
use crate::protocol::ENV_PREFIX;
use crate::trace::{without_fast_path, HELPER_FILE};
use crate::util::{lossy, REDACTED};

/// The file name of the tracer's preload helper in makescope's private directory
/// (`record::Runtime::create` writes it there).
/// The shell links' directory inside makescope's private directory, then `abs` or `rel/`.
const SHELL_LINKS: &[u8] = b"/sh/";

/// Where a replay gets the values the record redacted.
pub trait Secrets {
    /// The value of variable `name`, if set.
    fn get(&self, name: &[u8]) -> Option<Vec<u8>>;
}

/// The environment makescope itself runs in.
pub struct CurrentEnvironment;

impl Secrets for CurrentEnvironment {
    fn get(&self, name: &[u8]) -> Option<Vec<u8>> {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        std::env::var_os(std::ffi::OsStr::from_bytes(name)).map(|v| v.into_vec())
    }
}

impl<F: Fn(&[u8]) -> Option<Vec<u8>>> Secrets for F {
    fn get(&self, name: &[u8]) -> Option<Vec<u8>> {
        self(name)
    }
}

/// Something a replay does differently from the recorded run, said in one line before
/// it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The record redacted this variable; its value comes from the current environment.
    SecretFromEnvironment(String),
    /// The record redacted this variable; the script reads it from its own environment.
    SecretInScript(String),
    /// The recorded build stopped the recipe at this line (it failed): make never ran
    /// the lines after it, so the record does not have them and they do not run.
    RecipeStopped { line: usize, status: String },
    /// make's jobserver descriptors were dropped from these variables (MAKEFLAGS,
    /// MFLAGS).
    JobserverDropped {
        variables: Vec<String>,
        removed: String,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::SecretFromEnvironment(name) => write!(
                f,
                "`{name}` is redacted in the record: its value is taken from the current environment"
            ),
            Note::SecretInScript(name) => write!(
                f,
                "`{name}` is redacted in the record: the script takes it from the environment it runs in"
            ),
            Note::RecipeStopped { line, status } => write!(
                f,
                "the recorded build stopped this recipe at line {line} ({status}): any lines after it were never run nor recorded, so they do not run"
            ),
            Note::JobserverDropped { variables, removed } => write!(
                f,
                "make's jobserver (`{removed}`) is dropped from {}: the command shares no job slots",
                variables.join(" and ")
            ),
        }
    }
}

/// One environment variable of the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    /// `NAME=VALUE`, as the command gets it.
    Set(Vec<u8>),
    /// A redacted secret a script reads from its own environment at run time (only in
    /// [`Mode::Script`] plans).
    Secret(Vec<u8>),
}

/// One recipe line to run.
#[derive(Debug, Clone)]
pub struct Line {
    /// Its command id in the record.
    pub command_id: i64,
    /// Its position in the recipe, from 1 (as `show` numbers it).
    pub number: usize,
    /// The expanded command text the shell gets.
    pub text: Vec<u8>,
    /// A failure does not stop the recipe: make went on after it in the recorded build
    /// (a `-` line, or `make -i`). Never set when one line is replayed alone.
    pub ignore_errors: bool,
}

/// Everything a replay runs, decided before anything runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `$@` of the recipe.
    pub target: Vec<u8>,
    /// The makefile and line of the recipe, when the record knows them.
    pub recipe: Option<(Vec<u8>, i64)>,
    /// The build the recipe was recorded in.
    pub build_id: i64,
    /// The directory make ran the recipe in.
    pub directory: Vec<u8>,
    /// The shell's words (the makefile's SHELL) then `.SHELLFLAGS`'s: a line's argv is
    /// these and the line's text.
    pub shell: Vec<Vec<u8>>,
    /// How many of [`Plan::shell`]'s words are the shell itself; the rest are flags.
    pub shell_words: usize,
    /// The command's environment, in the recorded order.
    pub environment: Vec<Variable>,
    /// The lines, in order.
    pub lines: Vec<Line>,
    /// What differs from the recorded run.
    pub notes: Vec<Note>,
}

impl Plan {
    /// Plan a replay of `recipe` (only line `line`, 1-based, if given) for `mode`:
    /// a script keeps secrets out of its text and checks nothing on this machine.
    pub fn new(
        recipe: &Recipe,
        line: Option<usize>,
        mode: Mode,
        secrets: &dyn Secrets,
    ) -> Result<Plan, ReplayError> {
        let first = &recipe.lines[0];
        let target = lossy(&first.target).into_owned();
        let chosen: Vec<usize> = match line {
            Some(n) if n >= 1 && n <= recipe.lines.len() => vec![n - 1],
            Some(n) => {
                return Err(ReplayError::NoSuchLine {
                    target,
                    lines: recipe.lines.len(),
                    line: n,
                })
            }
            None => (0..recipe.lines.len()).collect(),
        };
        let row = &recipe.lines[chosen[0]];
        let shell = row.shell.as_deref().unwrap_or_default();
        if shell.is_empty() {
            return Err(ReplayError::NoShell(row.id));
        }
        let flags = row.shell_flags.as_deref().unwrap_or_default();
        let (environment, mut notes) = environment(&row.env, &shell[0], mode, secrets)?;
        let ignore_all = make_ignores_errors(&row.env);
        let last = &recipe.lines[recipe.lines.len() - 1];
        if line.is_none() && !ignore_all {
            let status = match (last.exit_code, last.signal) {
                (Some(code), _) if code != 0 => Some(format!("exit {code}")),
                (_, Some(signal)) => Some(format!("killed by signal {signal}")),
                _ => None,
            };
            if let Some(status) = status {
                notes.push(Note::RecipeStopped {
                    line: recipe.lines.len(),
                    status,
                });
            }
        }
        let lines = chosen
            .iter()
            .map(|&i| {
                let c = &recipe.lines[i];
                let failed = c.exit_code.is_some_and(|code| code != 0) || c.signal.is_some();
                Line {
                    command_id: c.id,
                    number: i + 1,
                    text: without_shell_links(&c.command, &shell[0]),
                    // One line alone ends with its own status.
                    ignore_errors: line.is_none()
                        && (ignore_all || (failed && i + 1 < recipe.lines.len())),
                }
            })
            .collect();
        Ok(Plan {
            target: first.target.clone(),
            recipe: first
                .recipe_file
                .clone()
                .filter(|f| !f.is_empty())
                .zip(first.recipe_line),
            build_id: first.build_id,
            directory: row.directory.clone(),
            shell_words: shell.len(),
            shell: shell.iter().chain(flags).cloned().collect(),
            environment,
            lines,
            notes,
        })
    }

    /// The recorded directory still exists.
    pub fn check_directory(&self) -> Result<(), ReplayError> {
        if as_path(&self.directory).is_dir() {
            Ok(())
        } else {
            Err(ReplayError::DirectoryGone(
                as_path(&self.directory).to_owned(),
            ))
        }
    }

    /// The argv that runs `line`: the shell, its flags, the text.
    pub fn argv<'a>(&'a self, line: &'a Line) -> impl Iterator<Item = &'a [u8]> {
        self.shell
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(line.text.as_slice()))
    }
}

/// The replay's environment from the recorded one: makescope's own traces out, the
/// jobserver dropped, redacted secrets filled in (or, in a script, read at run time).
fn environment(
    recorded: &[Vec<u8>],
    shell: &[u8],
    mode: Mode,
    secrets: &dyn Secrets,
) -> Result<(Vec<Variable>, Vec<Note>), ReplayError> {
    let mut out = Vec::with_capacity(recorded.len());
    let mut notes = Vec::new();
    let mut missing = Vec::new();
    let recorded: Vec<&[u8]> = recorded.iter().map(Vec::as_slice).collect();
    let is_helper = |w: &[u8]| w.rsplit(|&b| b == b'/').next() == Some(HELPER_FILE.as_bytes());
    let cleaned = without_fast_path(&recorded, is_helper);
    let environment: Vec<&[u8]> = match &cleaned {
        Some(entries) => entries.iter().map(Vec::as_slice).collect(),
        None => recorded,
    };
    for &entry in &environment {
        let Some(eq) = entry.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (name, value) = (&entry[..eq], &entry[eq + 1..]);
        if name.starts_with(ENV_PREFIX.as_bytes()) {
            continue;
        }
        let with = |value: &[u8]| [name, b"=", value].concat();
        match name {
            b"MAKEFLAGS" | b"MFLAGS" => {
                let (kept, jobserver) = without_makescope_and_jobserver(value);
                if !jobserver.is_empty() {
                    let variable = lossy(name).into_owned();
                    match notes
                        .iter_mut()
                        .find(|n| matches!(n, Note::JobserverDropped { .. }))
                    {
                        Some(Note::JobserverDropped { variables, .. }) => variables.push(variable),
                        _ => notes.push(Note::JobserverDropped {
                            variables: vec![variable],
                            removed: lossy(&jobserver.join(&b' ')).into_owned(),
                        }),
                    }
                }
                out.push(Variable::Set(with(&kept)));
            }
            b"MAKEFILES" => {
                // makescope's makefile (which loads the plugin) out; the user's kept.
                let kept: Vec<&[u8]> = value
                    .split(|&b| b == b' ')
                    .filter(|w| !w.is_empty() && !crate::plugin::is_load_makefile(w))
                    .collect();
                if !kept.is_empty() {
                    out.push(Variable::Set(with(&kept.join(&b' '))));
                }
            }
            b"SHELL" if is_shell_link(value, shell) => out.push(Variable::Set(with(shell))),
            _ if value == REDACTED => {
                let shown = lossy(name).into_owned();
                if mode == Mode::Script {
                    notes.push(Note::SecretInScript(shown));
                    out.push(Variable::Secret(name.to_vec()));
                } else if let Some(value) = secrets.get(name) {
                    notes.push(Note::SecretFromEnvironment(shown));
                    out.push(Variable::Set(with(&value)));
                } else {
                    missing.push(shown);
                }
            }
            _ => out.push(Variable::Set(entry.to_vec())),
        }
    }
    if !missing.is_empty() {
        return Err(ReplayError::SecretsMissing(missing));
    }
    Ok((out, notes))
}

/// Whether make ran with `-i` (ignore every error): its single-letter flags are the
/// first word of `MAKEFLAGS` when that word does not start with `-`.
fn make_ignores_errors(environment: &[Vec<u8>]) -> bool {
    environment
        .iter()
        .find_map(|e| e.strip_prefix(b"MAKEFLAGS="))
        .and_then(|flags| words(flags).next())
        .is_some_and(|(first, _)| {
            !first.starts_with(b"-") && !first.contains(&b'=') && first.contains(&b'i')
        })
}

/// The words of a `MAKEFLAGS` value: make separates them by spaces and escapes a space
/// inside one with a backslash. Each word comes with its byte range.
fn words(value: &[u8]) -> impl Iterator<Item = (Vec<u8>, std::ops::Range<usize>)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < value.len() && value[i] == b' ' {
            i += 1;
        }
        if i >= value.len() {
            return None;
        }
        let start = i;
        let mut word = Vec::new();
        while i < value.len() && value[i] != b' ' {
            if value[i] == b'\\' && i + 1 < value.len() {
                i += 1;
            }
            word.push(value[i]);
            i += 1;
        }
        Some((word, start..i))
    })
}

/// A `MAKEFLAGS` value without makescope's `--eval=load …/makescope.so` and without
/// the jobserver's options (returned, as written), up to the `--` that starts the
/// command line's variables.
fn without_makescope_and_jobserver(value: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut kept = Vec::with_capacity(value.len());
    let mut jobserver = Vec::new();
    let mut variables = false;
    let mut last = 0;
    for (word, range) in words(value) {
        if !variables {
            if word == b"--" {
                variables = true;
            } else if word.starts_with(b"--jobserver-auth=")
                || word.starts_with(b"--jobserver-fds=")
            {
                kept.extend_from_slice(gap(&kept, &value[last..range.start]));
                jobserver.push(value[range.clone()].to_vec());
                last = range.end;
                continue;
            } else if crate::plugin::is_load_argument(&word) {
                kept.extend_from_slice(gap(&kept, &value[last..range.start]));
                last = range.end;
                continue;
            }
        }
        kept.extend_from_slice(&value[last..range.end]);
        last = range.end;
    }
    kept.extend_from_slice(&value[last..]);
    (kept, jobserver)
}

/// The spaces before a dropped word: kept only when nothing came before them (make
/// writes MAKEFLAGS with a leading space when there are no single-letter flags).
fn gap<'a>(kept: &[u8], spaces: &'a [u8]) -> &'a [u8] {
    if kept.is_empty() {
        spaces
    } else {
        &[]
    }
}

/// `text` with each word that is the shim's link for `shell` (the recorded `$(SHELL)`
/// in a recipe, as automake's `LOG_DRIVER = $(SHELL) test-driver`) made `shell` again:
/// the link lived in the recorded build's private directory, which is gone.
fn without_shell_links(text: &[u8], shell: &[u8]) -> Vec<u8> {
    let spelled: Vec<u8> = match shell.strip_prefix(b"/") {
        Some(_) => [SHELL_LINKS, b"abs", shell].concat(),
        None => [SHELL_LINKS, b"rel/", shell].concat(),
    };
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.windows(spelled.len()).position(|w| w == &spelled[..]) {
        let end = at + spelled.len();
        let start = rest[..at]
            .iter()
            .rposition(|b| b.is_ascii_whitespace() || b"'\"=;|&(`".contains(b))
            .map_or(0, |p| p + 1);
        let word_ends = rest
            .get(end)
            .map_or(true, |b| b.is_ascii_whitespace() || b"'\";|&)`".contains(b));
        if word_ends && is_shell_link(&rest[start..end], shell) {
            out.extend_from_slice(&rest[..start]);
            out.extend_from_slice(shell);
        } else {
            out.extend_from_slice(&rest[..end]);
        }
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    out
}

/// `value` is the shim's link for `shell` (`…/makescope-XXXXXX/sh/abs/bin/bash`).
fn is_shell_link(value: &[u8], shell: &[u8]) -> bool {
    let Some(at) = value
        .windows(SHELL_LINKS.len())
        .rposition(|w| w == SHELL_LINKS)
    else {
        return false;
    };
    let rest = &value[at + SHELL_LINKS.len()..];
    let spelled = match rest.strip_prefix(b"abs") {
        Some(absolute) => absolute,
        None => rest.strip_prefix(b"rel/").unwrap_or_default(),
    };
    !spelled.is_empty() && spelled == shell && value[..at].windows(10).any(|w| w == b"makescope-")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::CommandRow;

    /// One recorded line of job 1 (the executor's tests use it too).
    pub(in crate::replay) fn row(
        id: i64,
        line_index: i64,
        command: &str,
        exit_code: i32,
        env: &[&str],
    ) -> CommandRow {
        CommandRow {
            id,
            build_id: 1,
            make_id: Some(1),
            make_level: Some(0),
            job: 1,
            line_index,
            target: b"out.txt".to_vec(),
            recipe_file: Some(b"Makefile".to_vec()),
            recipe_line: Some(3),
            newer: None,
            target_existed: Some(false),
            directory: b"/tmp".to_vec(),
            shell: Some(vec![b"/bin/sh".to_vec()]),
            shell_flags: Some(vec![b"-c".to_vec()]),
            command: command.as_bytes().to_vec(),
            argv: Vec::new(),
            env: env.iter().map(|e| e.as_bytes().to_vec()).collect(),
            pid: None,
            started_ns: 0,
            ended_ns: Some(1),
            state: if exit_code == 0 { "ok" } else { "failed" }.into(),
            exit_code: Some(exit_code),
            signal: None,
            user_us: None,
            system_us: None,
            max_rss_kib: None,
            label: None,
            test_name: None,
            test_result: None,
            traced: 0,
            left_behind: None,
        }
    }

    fn none(_: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn set(plan: &Plan) -> Vec<String> {
        plan.environment
            .iter()
            .map(|v| match v {
                Variable::Set(e) => String::from_utf8_lossy(e).into_owned(),
                Variable::Secret(n) => format!("secret {}", String::from_utf8_lossy(n)),
            })
            .collect()
    }

    #[test]
    fn makescope_leaves_the_environment() {
        let recipe = Recipe {
            lines: vec![row(
                1,
                0,
                "true",
                0,
                &[
                    "PATH=/bin",
                    "MAKESCOPE_CTX=x",
                    "SHELL=/tmp/makescope-Ab12Cd/sh/abs/bin/sh",
                    "LD_PRELOAD=libasan.so.8 /tmp/makescope-Ab12Cd/makescope-preload.so",
                    "ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0",
                    "MAKEFLAGS= -j2 --jobserver-auth=3,4 --eval=load\\ /tmp/makescope-Ab12Cd/makescope.so -- CC=gcc",
                    "MAKEFILES=/tmp/makescope-Ab12Cd/makescope.mk common.mk",
                    "MAKEFILES=/tmp/makescope-Ab12Cd/makescope.mk",
                ],
            )],
        };
        let plan = Plan::new(&recipe, None, Mode::Run, &none).unwrap();
        assert_eq!(
            set(&plan),
            [
                "PATH=/bin",
                "SHELL=/bin/sh",
                "LD_PRELOAD=libasan.so.8",
                "ASAN_OPTIONS=detect_leaks=0",
                "MAKEFLAGS= -j2 -- CC=gcc",
                "MAKEFILES=common.mk"
            ]
        );
        assert_eq!(
            plan.notes,
            [Note::JobserverDropped {
                variables: vec!["MAKEFLAGS".into()],
                removed: "--jobserver-auth=3,4".into()
            }]
        );
    }

    #[test]
    fn makeflags_keep_what_is_not_ours() {
        let cases: [(&str, &str, &str); 5] = [
            ("", "", ""),
            ("k -j2 --jobserver-fds=3,4", "k -j2", "--jobserver-fds=3,4"),
            (
                " --jobserver-auth=fifo:/tmp/GMfifo1",
                " ",
                "--jobserver-auth=fifo:/tmp/GMfifo1",
            ),
            ("-- X=--jobserver-auth=1,2", "-- X=--jobserver-auth=1,2", ""),
            (
                "i --eval=load\\ /x/makescope.so --eval=a\\ b",
                "i --eval=a\\ b",
                "",
            ),
        ];
        for (value, kept, dropped) in cases {
            let (k, d) = without_makescope_and_jobserver(value.as_bytes());
            assert_eq!(String::from_utf8_lossy(&k), kept, "{value}");
            assert_eq!(String::from_utf8_lossy(&d.join(&b' ')), dropped, "{value}");
        }
    }

    #[test]
    fn a_secret_comes_from_the_environment_or_refuses_by_name() {
        let recipe = Recipe {
            lines: vec![row(
                1,
                0,
                "true",
                0,
                &[
                    "API_TOKEN=<redacted>",
                    "DB_PASSWORD=<redacted>",
                    "HTTPS_PROXY=<redacted>",
                ],
            )],
        };
        match Plan::new(&recipe, None, Mode::Run, &none) {
            Err(ReplayError::SecretsMissing(names)) => {
                // The marker is the recorder's: a URL with a password is redacted
                // whatever its variable's name.
                assert_eq!(names, ["API_TOKEN", "DB_PASSWORD", "HTTPS_PROXY"])
            }
            other => panic!("{other:?}"),
        }
        let from_env = |name: &[u8]| Some([name, b"-value"].concat());
        let plan = Plan::new(&recipe, None, Mode::Run, &from_env).unwrap();
        assert_eq!(
            set(&plan),
            [
                "API_TOKEN=API_TOKEN-value",
                "DB_PASSWORD=DB_PASSWORD-value",
                "HTTPS_PROXY=HTTPS_PROXY-value"
            ]
        );
        assert_eq!(
            plan.notes[0],
            Note::SecretFromEnvironment("API_TOKEN".into())
        );
        // A script never carries a secret's value: it reads it where it runs.
        let plan = Plan::new(&recipe, None, Mode::Script, &from_env).unwrap();
        assert_eq!(set(&plan)[0], "secret API_TOKEN");
        assert_eq!(plan.notes[0], Note::SecretInScript("API_TOKEN".into()));
    }

    #[test]
    fn a_failure_make_went_past_is_ignored() {
        let recipe = Recipe {
            lines: vec![
                row(1, 0, "false", 1, &[]),
                row(2, 1, "echo a", 0, &[]),
                row(3, 2, "exit 3", 3, &[]),
            ],
        };
        let plan = Plan::new(&recipe, None, Mode::Run, &none).unwrap();
        let ignored: Vec<bool> = plan.lines.iter().map(|l| l.ignore_errors).collect();
        assert_eq!(ignored, [true, false, false]);
        assert_eq!(
            plan.notes,
            [Note::RecipeStopped {
                line: 3,
                status: "exit 3".into()
            }]
        );
        let plan = Plan::new(&recipe, Some(2), Mode::Run, &none).unwrap();
        assert_eq!(plan.lines.len(), 1);
        assert_eq!(plan.lines[0].number, 2);
        assert_eq!(
            plan.argv(&plan.lines[0]).collect::<Vec<_>>(),
            [&b"/bin/sh"[..], b"-c", b"echo a"]
        );
        assert!(matches!(
            Plan::new(&recipe, Some(4), Mode::Run, &none),
            Err(ReplayError::NoSuchLine {
                lines: 3,
                line: 4,
                ..
            })
        ));
        let recipe = Recipe {
            lines: vec![row(1, 0, "exit 3", 3, &["MAKEFLAGS=ik -j2"])],
        };
        assert!(Plan::new(&recipe, None, Mode::Run, &none).unwrap().lines[0].ignore_errors);
    }

    #[test]
    fn shell_links_in_a_recipes_text_become_the_shell() {
        assert_eq!(
            without_shell_links(
                b"p=t; /tmp/makescope-Ab12Cd/sh/abs/bin/sh ../test-driver -- /tmp/makescope-Ab12Cd/sh/abs/bin/sh ./t.sh",
                b"/bin/sh"
            ),
            b"p=t; /bin/sh ../test-driver -- /bin/sh ./t.sh".to_vec()
        );
        assert_eq!(
            without_shell_links(b"/home/u/sh/abs/bin/sh x", b"/bin/sh"),
            b"/home/u/sh/abs/bin/sh x".to_vec()
        );
        assert_eq!(
            without_shell_links(b"/tmp/makescope-Ab12Cd/sh/abs/bin/shx", b"/bin/sh"),
            b"/tmp/makescope-Ab12Cd/sh/abs/bin/shx".to_vec()
        );
    }

    #[test]
    fn shell_links_are_recognised() {
        assert!(is_shell_link(
            b"/tmp/makescope-Ab12Cd/sh/abs/bin/bash",
            b"/bin/bash"
        ));
        assert!(is_shell_link(b"/tmp/makescope-Ab12Cd/sh/rel/bash", b"bash"));
        assert!(!is_shell_link(b"/bin/bash", b"/bin/bash"));
        assert!(!is_shell_link(b"/home/u/sh/abs/bin/bash", b"/bin/bash"));
    }
}
