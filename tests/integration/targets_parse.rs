//! The parser of make's database, on a real `make -p` of the basic fixture.

use makescope::makedb::parse;

#[test]
fn parses_the_basic_fixture_database() {
    let dump = parse::parse(include_str!("../fixtures/targets/sample.db")).unwrap();
    assert!(dump.errors.is_empty(), "{:?}", dump.errors);
    assert_eq!(dump.databases.len(), 1);
    let db = &dump.databases[0];
    assert_eq!(db.default_goal(), Some("check"));
    assert_eq!(db.makefiles(), ["Makefile", "rules.mk"]);
    let goal = db.variable(".DEFAULT_GOAL").unwrap();
    insta::assert_debug_snapshot!("default_goal_variable", goal);
    // The makefile's own entries (make's built-in rules left out), in make's order.
    let mut rules: Vec<_> = db
        .rules
        .iter()
        .filter(|r| !r.name.starts_with('.') || r.name == ".PHONY")
        .collect();
    rules.sort_by(|a, b| (&a.name, a.dump_line).cmp(&(&b.name, b.dump_line)));
    let summary: Vec<String> = rules
        .iter()
        .map(|r| {
            format!(
                "{}{} {:?} | {:?} target={} phony={} recipe={:?} lines={:?} vars={:?}",
                r.name,
                if r.double_colon { "::" } else { ":" },
                r.prerequisites,
                r.order_only,
                r.is_target,
                r.phony,
                r.recipe.as_ref().map(|l| format!("{}:{}", l.file, l.line)),
                r.recipe_lines,
                r.variables
                    .iter()
                    .map(|v| format!("{}={}", v.name, v.value))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    insta::assert_snapshot!("basic_rules", summary.join("\n"));
    let patterns: Vec<_> = db
        .pattern_rules
        .iter()
        .filter(|p| !p.builtin && p.recipe.is_some())
        .collect();
    insta::assert_debug_snapshot!("basic_patterns", patterns);
}
