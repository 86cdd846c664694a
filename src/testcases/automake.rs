//! automake's parallel test harness. Each test's recipe (`%.log: %`, `.test.log:`) runs
//! the log driver, automake's `test-driver` by default:
//! `test-driver --test-name T --log-file T.log --trs-file T.trs -- ./T`, and the driver
//! writes `T.trs` with one `:test-result: RESULT` line per result (PASS, FAIL, XFAIL,
//! XPASS, SKIP, ERROR; a TAP driver may write several). `test-suite.log` and the
//! summary count those lines. A test's name is the `.trs` file's path relative to the
//! directory of the make that ran it, less `.trs`, as the harness prints it
//! (`PASS: t1`); when the driver's own printed lines (`PASS: check-x.sh`, the
//! `--test-name` a `.sh` test in `TEST_EXTENSIONS` keeps) match the `.trs` results one
//! for one, their names win. The `.trs` files are the ones the record says the command wrote or,
//! untraced, a literal `--trs-file FILE` in its text. A `.trs` with no result line is
//! UNRESOLVED.

use super::{absolute, read_result, unresolved, words, Claim, Context, Convention, TestCase};
use crate::paths;
use crate::store::CommandRow;
use crate::util::lossy;

/// The tests whose `.trs` files `command` wrote.
pub fn recognise(context: &Context<'_>, command: &CommandRow) -> Claim {
    let mut files = context.written_by(command, ".trs");
    if files.is_empty() {
        let words = words(&command.command);
        if let Some(at) = words.iter().position(|w| w == "--trs-file") {
            if let Some(file) = words.get(at + 1).filter(|f| !f.contains('$')) {
                files.push(file.clone().into_bytes());
            }
        }
    }
    if files.is_empty() {
        return Claim::NotMine;
    }
    let mut tests = Vec::new();
    for file in files {
        let path = absolute(&command.directory, &file);
        let relative = paths::relative(
            std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()),
            &command.directory,
            0,
        )
        .unwrap_or_else(|| file.clone());
        let relative = lossy(&relative);
        let name = relative
            .strip_suffix(".trs")
            .unwrap_or(&relative)
            .to_string();
        match read_result(&path) {
            Ok(text) => {
                let results: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix(":test-result:"))
                    .filter_map(|r| r.split_whitespace().next())
                    .collect();
                if results.is_empty() {
                    tests.push(unresolved(
                        command,
                        Convention::Automake,
                        name.clone(),
                        format!("{} has no :test-result: line", path.display()),
                    ));
                }
                for result in results {
                    tests.push(TestCase {
                        name: name.clone(),
                        directory: command.directory.clone(),
                        result: result.to_string(),
                        seconds: command.seconds(),
                        command_id: command.id,
                        convention: Convention::Automake,
                        note: None,
                        output_file: Some(path.with_extension("log")),
                        before: None,
                    });
                }
            }
            Err(why) => tests.push(unresolved(command, Convention::Automake, name, why)),
        }
    }
    name_as_printed(context, command, &mut tests);
    Claim::Tests(tests)
}

/// Give `tests` the names the driver printed (`RESULT: NAME` lines on the command's
/// stdout, colours removed) when those lines match them one for one.
fn name_as_printed(context: &Context<'_>, command: &CommandRow, tests: &mut [TestCase]) {
    let Ok(output) = context.store.output(command.id) else {
        return;
    };
    let text = strip_colours(&lossy(&output.stdout));
    let printed: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(r, _)| tests.iter().any(|t| t.result == *r))
        .collect();
    if printed.len() == tests.len()
        && printed
            .iter()
            .zip(tests.iter())
            .all(|((r, _), t)| *r == t.result)
    {
        for ((_, name), test) in printed.iter().zip(tests.iter_mut()) {
            test.name = name.trim().to_string();
        }
    }
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strip_colours;

    #[test]
    fn colours_are_stripped() {
        assert_eq!(strip_colours("\u{1b}[0;32mPASS\u{1b}[m: t1"), "PASS: t1");
    }
}
