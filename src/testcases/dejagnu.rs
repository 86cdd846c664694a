//! DejaGnu. `runtest --tool TOOL` writes `TOOL.sum` in its directory: a header, then
//! for each test script a `Running x.exp ...` line followed by one `RESULT: name` line
//! per test (PASS, FAIL, XPASS, XFAIL, KPASS, KFAIL, UNRESOLVED, UNTESTED,
//! UNSUPPORTED), then the summary block (`=== TOOL Summary ===`, `# of expected
//! passes N`). A `.sum` file the command wrote is DejaGnu's when it has a `Running `
//! line or a `=== … Summary ===` line (glibc's `subdir-tests.sum` has neither). Each
//! result line is a test, with the name as written; ERROR and WARNING lines are
//! DejaGnu's diagnostics, not tests, and not counted in its summary. One command runs
//! them all: a test's duration is not known.

use super::{absolute, read_result, unresolved, Claim, Context, Convention, TestCase};
use crate::store::CommandRow;

/// The results DejaGnu counts in its summary block.
pub const RESULTS: [&str; 9] = [
    "PASS",
    "FAIL",
    "XPASS",
    "XFAIL",
    "KPASS",
    "KFAIL",
    "UNRESOLVED",
    "UNTESTED",
    "UNSUPPORTED",
];

/// The tests in the `.sum` files `command` wrote.
pub fn recognise(context: &Context<'_>, command: &CommandRow) -> Claim {
    let mut tests = Vec::new();
    for file in context.written_by(command, ".sum") {
        let path = absolute(&command.directory, &file);
        let text = match read_result(&path) {
            Ok(text) => text,
            Err(why) => {
                // Only a file the record also shows being written as DejaGnu's is
                // claimed: the tool's name, from the file's.
                if is_runtest(&command.command) {
                    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                    tests.push(unresolved(
                        command,
                        Convention::DejaGnu,
                        name.unwrap_or_default(),
                        why,
                    ));
                }
                continue;
            }
        };
        if !is_dejagnu(&text) {
            continue;
        }
        for (result, name) in parse(&text) {
            tests.push(TestCase {
                name: name.to_string(),
                directory: command.directory.clone(),
                result: result.to_string(),
                seconds: None,
                command_id: command.id,
                convention: Convention::DejaGnu,
                note: None,
                output_file: None,
                before: None,
            });
        }
    }
    if tests.is_empty() {
        Claim::NotMine
    } else {
        Claim::Tests(tests)
    }
}

fn is_runtest(command: &[u8]) -> bool {
    String::from_utf8_lossy(command).contains("runtest")
}

/// A `.sum` in DejaGnu's shape.
pub fn is_dejagnu(text: &str) -> bool {
    text.lines().any(|l| {
        l.starts_with("Running ") || (l.trim().starts_with("===") && l.contains("Summary"))
    })
}

/// The (result, name) lines of a DejaGnu `.sum`, in order.
pub fn parse(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let (result, name) = line.split_once(": ")?;
        RESULTS.contains(&result).then(|| (result, name.trim_end()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_tests_and_diagnostics_are_not() {
        let sum = "Test run by me\n\t\t=== t tests ===\n\nRunning ./t/a.exp ...\nPASS: a one\n\
                   ERROR: oops\nFAIL: a two: detail\n\n\t\t=== t Summary ===\n\n# of expected passes\t1\n";
        assert!(is_dejagnu(sum));
        assert_eq!(
            parse(sum).collect::<Vec<_>>(),
            [("PASS", "a one"), ("FAIL", "a two: detail")]
        );
        assert!(!is_dejagnu("PASS: string/x\nFAIL: string/y\n"));
    }
}
