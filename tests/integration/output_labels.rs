//! Every command of a real glibc build gets a label from a rule; only the programs the
//! README's Labels section names as fallbacks may fall back to their own name.
//!
//! The commands come from `tests/fixtures/output/glibc-commands.jsonl`, a sample of a
//! plain `make -j2` log of glibc 2.36 (extracted with `extract-commands.py` there).
//! `MAKESCOPE_LABEL_COMMANDS=/path/to/all.jsonl cargo test --test integration output_labels -- --nocapture`
//! runs the same check on a whole log and prints the coverage.

use std::collections::BTreeMap;

use makescope::output::{classify, CommandInfo, Rule};

/// Programs that fall back to their first word in glibc's build (listed in the README's
/// Labels section).
const DOCUMENTED_FALLBACKS: &[&str] = &[];

#[test]
fn glibc_commands_are_labelled_by_rules() {
    let path = std::env::var("MAKESCOPE_LABEL_COMMANDS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/output/glibc-commands.jsonl"
        )
        .into()
    });
    let text = std::fs::read_to_string(&path).expect("command sample");
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    let mut verbs: BTreeMap<String, usize> = BTreeMap::new();
    let mut undocumented = Vec::new();
    let mut empty_objects = Vec::new();
    let mut total = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("json line");
        let info = CommandInfo {
            id: total as i64,
            target: Vec::new(),
            directory: value["directory"].as_str().unwrap().into(),
            top_directory: b"/work/glibc/build".to_vec(),
            command: value["command"].as_str().unwrap().into(),
            recipe_file: Vec::new(),
            recipe_line: 0,
            make_level: 0,
        };
        total += 1;
        let c = classify(&info);
        if std::env::var_os("MAKESCOPE_LABEL_PRINT").is_some() {
            println!(
                "{:<8} {:<40} <= {}",
                c.label.verb,
                c.label.object,
                first_line(&value["command"])
            );
        }
        *rules.entry(format!("{:?}", c.rule)).or_default() += 1;
        *verbs.entry(c.label.verb.clone()).or_default() += 1;
        if c.rule == Rule::Fallback && !DOCUMENTED_FALLBACKS.contains(&c.label.verb.as_str()) {
            undocumented.push(format!(
                "{} {}  <=  {}",
                c.label.verb,
                c.label.object,
                first_line(&value["command"])
            ));
        }
        if c.label.object.is_empty() {
            empty_objects.push(format!(
                "{}  <=  {}",
                c.label.verb,
                first_line(&value["command"])
            ));
        }
    }
    println!("{total} commands; by rule: {rules:?}");
    println!("by verb: {verbs:?}");
    assert!(total > 100, "sample too small: {total}");
    assert!(
        undocumented.is_empty(),
        "commands falling back to their first word:\n{}",
        undocumented.join("\n")
    );
    assert!(
        empty_objects.is_empty(),
        "labels without an object:\n{}",
        empty_objects.join("\n")
    );
}

fn first_line(value: &serde_json::Value) -> String {
    value
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(120)
        .collect()
}
