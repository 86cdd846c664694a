//! glibc's convention. A test's recipe ends in `$(evaluate-test)` (Makeconfig):
//! `scripts/evaluate-test.sh NAME STATUS XFAIL STOP > $(common-objpfx)NAME.test-result`,
//! where NAME is `$(subdir)/<test>` (the `.out` target's path below the build directory,
//! less `.out`). It writes `RESULT: NAME` on the first line of the `.test-result` file:
//! PASS, FAIL, XFAIL, XPASS, or UNSUPPORTED (exit 77).
//!
//! Which of them are tests of a directory is glibc's own rule, from Rules' `tests:`
//! target: `merge-test-results.sh -s $(objpfx) $(subdir) <tests>` reads
//! `$(objpfx)<test>.test-result` for each test of the subdir, so `subdir-tests.sum`
//! holds only results below `$(objpfx)`, the subdir's own build directory: a NAME
//! whose first component is the subdir the make ran in (`make -C SRC/string`). The
//! same script run for anything else (the locale generation steps a subdir's tests
//! depend on, `localedata/de_DE.UTF-8/LC_CTYPE`, run from `string/`) is claimed as
//! not a test. At the top directory `$(subdir)` is empty: its tests' names have no `/`. A missing or empty result file is UNRESOLVED, as merge-test-results.sh
//! reports it.

use super::{
    absolute, read_result, simple_commands, unresolved, Claim, Context, Convention, TestCase,
};
use crate::output::shell::SimpleCommand;
use crate::store::CommandRow;
use crate::util::lossy;

const SCRIPT: &str = "evaluate-test.sh";

/// The test `command` evaluated, if it runs glibc's `evaluate-test.sh`.
pub fn recognise(context: &Context<'_>, command: &CommandRow) -> Claim {
    let simple = simple_commands(&command.command);
    let Some((script, at)) = simple.iter().find_map(|c| {
        let at = c.words.iter().position(|w| w.ends_with(SCRIPT))?;
        Some((c, at))
    }) else {
        return Claim::NotMine;
    };
    let Some(name) = script.words.get(at + 1).filter(|n| !n.contains('$')) else {
        return Claim::NotMine;
    };
    if !of_its_directory(name, &command.directory) {
        return Claim::NotATest;
    }
    let file = match context.written_by(command, ".test-result").pop() {
        Some(path) => absolute(&command.directory, &path),
        None => match result_file(script) {
            Some(path) => absolute(&command.directory, path.as_bytes()),
            None => {
                return Claim::Tests(vec![unresolved(
                    command,
                    Convention::Glibc,
                    name.clone(),
                    "no .test-result file in the record or the command".into(),
                )])
            }
        },
    };
    let test = match read_result(&file) {
        Ok(text) => match parse_line(text.lines().next().unwrap_or("")) {
            Some((result, reported)) => TestCase {
                name: reported.to_string(),
                directory: command.directory.clone(),
                result: result.to_string(),
                seconds: command.seconds(),
                command_id: command.id,
                convention: Convention::Glibc,
                note: None,
                output_file: output_file(command),
                before: None,
            },
            None => unresolved(
                command,
                Convention::Glibc,
                name.clone(),
                format!("{} has no `RESULT: NAME` first line", file.display()),
            ),
        },
        Err(why) => unresolved(command, Convention::Glibc, name.clone(), why),
    };
    Claim::Tests(vec![test])
}

/// The test's output: the recipe's target, `$(objpfx)TEST.out`, when it is one.
fn output_file(command: &CommandRow) -> Option<std::path::PathBuf> {
    command
        .target
        .ends_with(b".out")
        .then(|| absolute(&command.directory, &command.target))
}

/// Whether the test NAME is one of the subdir the make ran in: `string/x` of
/// `SRC/string`; a name without a `/` is the top directory's (its `$(subdir)` is empty,
/// as for `c++-types-check`).
fn of_its_directory(name: &str, directory: &[u8]) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first == subdir(directory),
        None => true,
    }
}

/// The subdir a glibc make ran in: the last component of its directory.
fn subdir(directory: &[u8]) -> String {
    let text = lossy(directory);
    text.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The `.test-result` file `evaluate-test.sh …` writes its verdict to (`> FILE`).
fn result_file(script: &SimpleCommand) -> Option<&str> {
    script
        .output_files()
        .find(|path| path.ends_with(".test-result"))
}

/// `PASS: string/test-strlen` as (result, name): the result an upper-case word.
pub fn parse_line(line: &str) -> Option<(&str, &str)> {
    let (result, name) = line.split_once(": ")?;
    let word = !result.is_empty() && result.bytes().all(|b| b.is_ascii_uppercase());
    (word && !name.trim().is_empty()).then(|| (result, name.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_an_upper_case_word_and_a_name() {
        assert_eq!(
            parse_line("PASS: string/test-strlen"),
            Some(("PASS", "string/test-strlen"))
        );
        assert_eq!(parse_line("PAS"), None);
        assert_eq!(parse_line("pass: x"), None);
        assert_eq!(parse_line("PASS: "), None);
    }

    #[test]
    fn a_test_belongs_to_the_subdir_its_name_starts_with() {
        assert!(of_its_directory("string/test-strlen", b"/src/glibc/string"));
        assert!(!of_its_directory(
            "localedata/de_DE.UTF-8/LC_CTYPE",
            b"/src/glibc/string"
        ));
        assert!(of_its_directory("c++-types-check", b"/src/glibc"));
    }

    #[test]
    fn the_subdir_is_the_last_component() {
        assert_eq!(subdir(b"/src/glibc/string/"), "string");
        assert_eq!(subdir(b"/src/glibc/string"), "string");
    }

    #[test]
    fn the_result_file_is_after_the_redirection() {
        let redirect = |text: &str| {
            let script = simple_commands(text.as_bytes()).remove(0);
            result_file(&script).map(String::from)
        };
        assert_eq!(
            redirect("evaluate-test.sh s/t 0 false false > /b/s/t.test-result"),
            Some("/b/s/t.test-result".into())
        );
        assert_eq!(
            redirect("evaluate-test.sh s/t 0 false false >/b/s/t.test-result"),
            Some("/b/s/t.test-result".into())
        );
        assert_eq!(redirect("evaluate-test.sh s/t 0 > log"), None);
    }
}
