//! JUnit XML as GitLab and Jenkins read it: `<testsuites>` holding one `<testsuite>`
//! per directory, a `<testcase classname="DIR" name="NAME" time="S">` per test, and in
//! it `<failure>` (FAIL, XPASS, KPASS) or `<error>` (ERROR, UNRESOLVED) with the
//! running command's output and the test's output file (glibc's `.out`, automake's
//! `.log`), its last 64 KiB, or `<skipped>` (UNSUPPORTED, SKIP, UNTESTED). Other
//! results (PASS, XFAIL, KFAIL …) are passes. Text is escaped, and characters XML 1.0
//! cannot hold are dropped.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Result;

use super::{TestCase, TestList};

/// How a result shows in JUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Failure,
    Error,
    Skipped,
}

pub fn outcome(result: &str) -> Outcome {
    match result {
        "FAIL" | "XPASS" | "KPASS" => Outcome::Failure,
        "ERROR" | "UNRESOLVED" => Outcome::Error,
        "UNSUPPORTED" | "SKIP" | "UNTESTED" => Outcome::Skipped,
        _ => Outcome::Pass,
    }
}

/// The most of a command's output a failure carries: its last bytes.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// The JUnit document for `list`.
pub fn render(list: &TestList) -> Result<String> {
    let mut suites: BTreeMap<String, Vec<&TestCase>> = BTreeMap::new();
    for t in &list.tests {
        suites.entry(list.directory(t)).or_default().push(t);
    }
    let count =
        |tests: &[&TestCase], o: Outcome| tests.iter().filter(|t| outcome(&t.result) == o).count();
    let time = |tests: &[&TestCase]| tests.iter().filter_map(|t| t.seconds).sum::<f64>();
    let all: Vec<&TestCase> = list.tests.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        escape(&format!("makescope build {}", list.build.id)),
        all.len(),
        count(&all, Outcome::Failure),
        count(&all, Outcome::Error),
        count(&all, Outcome::Skipped),
        time(&all)
    )?;
    for (directory, tests) in &suites {
        writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape(directory),
            tests.len(),
            count(tests, Outcome::Failure),
            count(tests, Outcome::Error),
            count(tests, Outcome::Skipped),
            time(tests)
        )?;
        for t in tests {
            write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(directory),
                escape(&t.name),
                t.seconds.unwrap_or(0.0)
            )?;
            let message = match &t.note {
                Some(note) => format!("{}: {note}", t.result),
                None => t.result.clone(),
            };
            match outcome(&t.result) {
                Outcome::Pass => writeln!(out, "/>")?,
                Outcome::Skipped => writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(&message)
                )?,
                o => {
                    let tag = if o == Outcome::Failure {
                        "failure"
                    } else {
                        "error"
                    };
                    let output = list.store.output(t.command_id)?;
                    let mut text = output.stdout;
                    text.extend_from_slice(&output.stderr);
                    if let Some(file) = &t.output_file {
                        // As it is now; a file gone since is no failure of the listing.
                        text.extend(std::fs::read(file).unwrap_or_default());
                    }
                    let text = &text[text.len().saturating_sub(OUTPUT_LIMIT)..];
                    writeln!(
                        out,
                        ">\n      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>\n    </testcase>",
                        escape(&message),
                        escape(&t.result),
                        escape(&String::from_utf8_lossy(text))
                    )?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")?;
    Ok(out)
}

/// `text` as XML character data or an attribute value: `&<>"'` escaped, characters
/// XML 1.0 forbids (controls but tab, newline, carriage return) dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_quotes_markup_and_drops_controls() {
        assert_eq!(escape("a<b>&\"c'\u{1}\n"), "a&lt;b&gt;&amp;&quot;c&apos;\n");
    }

    #[test]
    fn results_map_to_junit_outcomes() {
        assert_eq!(outcome("FAIL"), Outcome::Failure);
        assert_eq!(outcome("UNRESOLVED"), Outcome::Error);
        assert_eq!(outcome("UNSUPPORTED"), Outcome::Skipped);
        assert_eq!(outcome("XFAIL"), Outcome::Pass);
    }
}
