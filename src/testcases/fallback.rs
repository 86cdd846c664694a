//! The plain fallback, for a build that follows none of the known conventions (it is
//! asked only when no other recogniser found a test in the build). A test is a command
//! that ran under a goal named `check`, `test` or `tests` (on its make's command line
//! or an enclosing make's) and runs a program the build produced: a process's
//! executable, or the command's first word, that another command of the build wrote
//! (by the record) or had as its target. Its name is that program's path relative to
//! the command's directory; its result PASS for exit status 0, SKIP for 77 (the skip
//! status of automake's and glibc's tests), FAIL otherwise, ERROR for a signal. Every
//! such test is marked guessed. A program run by several commands in one directory (a
//! `check` recipe that runs `./hello` once per case) names one test per command:
//! `hello#1`, `hello#2`, … in the order they ran.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;

use super::{absolute, words, Claim, Context, Convention, TestCase};
use crate::paths;
use crate::store::{CommandRow, Store};
use crate::util::lossy;

/// The goals that make a command a candidate.
pub const GOALS: [&str; 3] = ["check", "test", "tests"];

/// make's options whose argument is the next word (not a goal).
const WITH_ARGUMENT: [&str; 13] = [
    "-C",
    "-f",
    "-I",
    "-o",
    "-W",
    "--directory",
    "--file",
    "--makefile",
    "--include-dir",
    "--old-file",
    "--assume-old",
    "--new-file",
    "--what-if",
];

/// The makes of a build that run under a check goal.
pub struct UnderCheck {
    makes: BTreeSet<i64>,
}

impl UnderCheck {
    pub fn new(store: &Store, build_id: i64) -> Result<UnderCheck> {
        let makes = store.makes(build_id)?;
        let parent: BTreeMap<i64, Option<i64>> =
            makes.iter().map(|m| (m.id, m.parent_make_id)).collect();
        let checking: BTreeSet<i64> = makes
            .iter()
            .filter(|m| has_check_goal(&m.argv))
            .map(|m| m.id)
            .collect();
        let mut under = BTreeSet::new();
        for m in &makes {
            let mut at = Some(m.id);
            let mut steps = 0;
            while let Some(id) = at {
                if checking.contains(&id) {
                    under.insert(m.id);
                    break;
                }
                at = parent.get(&id).copied().flatten();
                steps += 1;
                if steps > makes.len() {
                    break;
                }
            }
        }
        Ok(UnderCheck { makes: under })
    }

    fn contains(&self, command: &CommandRow) -> bool {
        command.make_id.is_some_and(|id| self.makes.contains(&id))
    }
}

/// Whether a make's arguments name a check goal.
pub fn has_check_goal(argv: &[Vec<u8>]) -> bool {
    argv.iter().enumerate().skip(1).any(|(i, word)| {
        let previous = lossy(&argv[i - 1]);
        GOALS.iter().any(|g| g.as_bytes() == word.as_slice())
            && !WITH_ARGUMENT.contains(&previous.as_ref())
    })
}

/// `command` as a guessed test, if it runs a program the build produced under a check
/// goal.
pub fn recognise(
    context: &Context<'_>,
    under_check: &UnderCheck,
    command: &CommandRow,
) -> Result<Claim> {
    if !under_check.contains(command) || command.traced == 2 {
        return Ok(Claim::NotMine);
    }
    let mut programs: Vec<Vec<u8>> = context
        .store
        .processes(command.id)?
        .into_iter()
        .filter_map(|p| p.exe)
        .collect();
    if let Some(first) = words(&command.command).first().filter(|w| w.contains('/')) {
        programs.insert(
            0,
            absolute(&command.directory, first.as_bytes())
                .as_os_str()
                .as_bytes()
                .to_vec(),
        );
    }
    for program in programs {
        let program = paths::normalize(&program);
        if produced(context, command, &program)? {
            let name = paths::relative(&program, &command.directory, 0).unwrap_or(program);
            let result = match (command.exit_code, command.signal) {
                (Some(0), _) => "PASS",
                (Some(77), _) => "SKIP",
                (_, Some(_)) => "ERROR",
                _ => "FAIL",
            };
            return Ok(Claim::Tests(vec![TestCase {
                name: lossy(&name).into_owned(),
                directory: command.directory.clone(),
                result: result.into(),
                seconds: command.seconds(),
                command_id: command.id,
                convention: Convention::Fallback,
                note: Some("guessed from the exit status".into()),
                output_file: None,
                before: None,
            }]));
        }
    }
    Ok(Claim::NotMine)
}

/// Whether another command of the build wrote `program` or had it as its target.
fn produced(context: &Context<'_>, command: &CommandRow, program: &[u8]) -> Result<bool> {
    let writers = context.store.writers_of(context.build.id, program)?;
    if writers.iter().any(|&w| w != command.id) {
        return Ok(true);
    }
    Ok(context.commands.iter().any(|c| {
        c.id != command.id
            && paths::normalize(absolute(&c.directory, &c.target).as_os_str().as_bytes()) == program
    }))
}

/// Tell apart the guessed tests that would share a name in one directory: `NAME#1`,
/// `NAME#2`, … in the order their commands ran.
pub fn number_repeats(tests: &mut [TestCase]) {
    let mut seen: BTreeMap<(Vec<u8>, String), usize> = BTreeMap::new();
    for test in tests.iter() {
        *seen
            .entry((test.directory.clone(), test.name.clone()))
            .or_default() += 1;
    }
    let mut order: Vec<&mut TestCase> = tests.iter_mut().collect();
    order.sort_by_key(|t| t.command_id);
    let mut next: BTreeMap<(Vec<u8>, String), usize> = BTreeMap::new();
    for test in order {
        let key = (test.directory.clone(), test.name.clone());
        if seen[&key] > 1 {
            let n = next.entry(key).or_default();
            *n += 1;
            test.name = format!("{}#{n}", test.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &str) -> Vec<Vec<u8>> {
        words.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn check_goals_are_words_that_are_not_option_arguments() {
        assert!(has_check_goal(&argv("make -j2 check")));
        assert!(has_check_goal(&argv("make -C sub tests")));
        assert!(!has_check_goal(&argv("make -C check all")));
        assert!(!has_check_goal(&argv("make all")));
        assert!(!has_check_goal(&argv("check")));
    }

    #[test]
    fn a_program_run_by_several_commands_names_one_test_each() {
        let test = |name: &str, directory: &str, command_id: i64| TestCase {
            name: name.into(),
            directory: directory.as_bytes().to_vec(),
            result: "PASS".into(),
            seconds: None,
            command_id,
            convention: Convention::Fallback,
            note: None,
            output_file: None,
            before: None,
        };
        let mut tests = vec![
            test("hello", "/b", 9),
            test("hello", "/a", 4),
            test("other", "/a", 5),
            test("hello", "/a", 3),
        ];
        number_repeats(&mut tests);
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["hello", "hello#2", "other", "hello#1"]);
    }
}
