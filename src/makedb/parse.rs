//! The parser of make 4.3's database text: the output of `make -p` (one or more
//! databases, interleaved with make's own messages when sub-makes print theirs) and the
//! plugin's dump (the variables, implicit-rules and files sections without the banner).
//!
//! Each line's grammar is a nom parser; a small state machine over lines knows which
//! section and which entry a line belongs to. It is the inverse of make's
//! `print_variable_data_base`, `print_rule_data_base` and `print_file_data_base`: in
//! particular a recipe's continuation lines (after a backslash) are printed without the
//! recipe prefix and may look like anything, so they are recognised by the backslash,
//! never by their text.
//!
//! A line it does not understand is an error naming the dump line; the parser records it,
//! skips the entry it belongs to, and goes on, so a caller can warn once and still list
//! what it understood. It never panics on any input.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_until};
use nom::character::complete::{char, digit1, space0};
use nom::combinator::{map, map_res, opt, rest, value};
use nom::sequence::{preceded, terminated, tuple};
use nom::IResult;

use super::model::{Database, Flavor, Location, Origin, PatternRule, Rule, Variable};

/// A line of the dump the parser does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}: {text:?}")]
pub struct ParseError {
    /// 1-based line in the dump.
    pub line: usize,
    /// The line itself (shortened).
    pub text: String,
    pub message: &'static str,
}

/// Why a text cannot be read as a make database at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    #[error("not a make database: no `# Variables`, `# Implicit Rules` or `# Files` section found (make 4.3's `make -p` format)")]
    NotAMakeDatabase,
}

/// Everything read from one dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    /// The databases in the order they were printed (with `make -p`, a sub-make's
    /// database comes before its parent's).
    pub databases: Vec<Database>,
    /// The lines that were skipped, in order.
    pub errors: Vec<ParseError>,
}

// ---------------------------------------------------------------------------------------
// Line grammars.

/// `#  recipe to execute (from 'Makefile', line 12):` or `… (built-in):`.
/// `Some(None)` for a built-in recipe.
fn recipe_header(input: &str) -> IResult<&str, Option<Location>> {
    preceded(
        tuple((char('#'), space0, tag("recipe to execute"), char(' '))),
        alt((
            value(None, tag("(built-in):")),
            map(terminated(from_location, char(':')), Some),
        )),
    )(input)
}

/// `(from 'Makefile', line 12)`.
fn from_location(input: &str) -> IResult<&str, Location> {
    map(
        tuple((
            tag("(from '"),
            take_until("', line "),
            tag("', line "),
            map_res(digit1, str::parse::<u32>),
            char(')'),
        )),
        |(_, file, _, line, _)| Location {
            file: file.to_string(),
            line,
        },
    )(input)
}

/// `# makefile (from 'Makefile', line 3)`, `# 'override' directive`, `# default`, …
fn origin_comment(input: &str) -> IResult<&str, (Origin, bool, Option<Location>)> {
    let origin = alt((
        value(Origin::EnvironmentOverride, tag("environment under -e")),
        value(Origin::Environment, tag("environment")),
        value(Origin::Automatic, tag("automatic")),
        value(Origin::Default, tag("default")),
        value(Origin::Makefile, tag("makefile")),
        value(Origin::CommandLine, tag("command line")),
        value(Origin::Override, tag("'override' directive")),
    ));
    let (input, (_, origin, private, location)) = tuple((
        tag("# "),
        origin,
        map(opt(tag(" private")), |p| p.is_some()),
        opt(preceded(char(' '), from_location)),
    ))(input)?;
    if !input.is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Eof,
        )));
    }
    Ok((input, (origin, private, location)))
}

/// `NAME = value`, `NAME := value`, `NAME += value`.
fn assignment(input: &str) -> IResult<&str, (&str, Flavor, &str)> {
    let (input, name) = take_till(|c| c == ' ')(input)?;
    if name.is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::TakeTill1,
        )));
    }
    let (input, flavor) = preceded(
        char(' '),
        alt((
            value(Flavor::Simple, tag(":=")),
            value(Flavor::Append, tag("+=")),
            value(Flavor::Recursive, tag("=")),
        )),
    )(input)?;
    // make prints `NAME := ` for an empty value; an editor may have eaten the space.
    let (input, value) = alt((preceded(char(' '), rest), value("", nom::combinator::eof)))(input)?;
    Ok((input, (name, flavor, value)))
}

/// `define NAME` (the first line of a multi-line variable).
fn define_line(input: &str) -> IResult<&str, &str> {
    preceded(tag("define "), rest)(input)
}

/// `make[1]: Entering directory '/x'` (with `# ` in front under `-p`).
fn entering(input: &str) -> IResult<&str, &str> {
    preceded(
        tuple((
            opt(tag("# ")),
            take_until(": Entering directory '"),
            tag(": Entering directory '"),
        )),
        terminated(take_until("'"), char('\'')),
    )(input)
}

/// Split `NAME: a b | c` / `NAME:: a` into the name, double-colon flag and the rest.
/// The name ends at the first colon followed by a space, a colon or the end of the line,
/// so names with colons inside (`a:b`) survive.
fn rule_head(line: &str) -> Option<(&str, bool, &str)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b':' && i > 0 {
            let next = bytes.get(i + 1).copied();
            match next {
                None => return Some((&line[..i], false, "")),
                Some(b' ') => return Some((&line[..i], false, &line[i + 1..])),
                Some(b':') => {
                    let after = bytes.get(i + 2).copied();
                    if after.is_none() || after == Some(b' ') {
                        return Some((&line[..i], true, &line[i + 2..]));
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Prerequisites `a b | c d` into normal and order-only lists.
fn prerequisites(text: &str) -> (Vec<String>, Vec<String>) {
    let mut normal = Vec::new();
    let mut order_only = Vec::new();
    let mut seen_bar = false;
    for word in text.split_whitespace() {
        if word == "|" && !seen_bar {
            seen_bar = true;
        } else if seen_bar {
            order_only.push(word.to_string());
        } else {
            normal.push(word.to_string());
        }
    }
    (normal, order_only)
}

/// Undo make's doubling of `$` in simple variables' printed values.
fn undouble_dollars(text: &str) -> String {
    text.replace("$$", "$")
}

/// A section header of the database, recognised only between entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Variables,
    PatternVariables,
    Directories,
    Implicit,
    Files,
    Vpath,
    Trailer,
}

fn section_header(line: &str) -> Option<Section> {
    Some(match line {
        "# Variables" => Section::Variables,
        "# Pattern-specific Variable Values" => Section::PatternVariables,
        "# Directories" => Section::Directories,
        "# Implicit Rules" => Section::Implicit,
        "# Files" => Section::Files,
        "# VPATH Search Paths" => Section::Vpath,
        _ if line.starts_with("# strcache ") || line.starts_with("# files hash-table stats") => {
            Section::Trailer
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// The state machine.

/// What the line being read belongs to.
enum Entry {
    None,
    /// A file entry; `in_recipe` once the recipe header has been seen.
    File(Rule),
    Pattern(PatternRule),
}

struct Parser {
    dump: Dump,
    db: Option<Database>,
    section: Section,
    entry: Entry,
    /// The entry had an error: ignore its lines until the blank line that ends it.
    skipping: bool,
    /// The recipe prefix (`.RECIPEPREFIX`), a tab unless the database says otherwise.
    prefix: char,
    /// The last recipe line ended with an odd number of backslashes.
    continued: bool,
    /// `# makefile (from …)` just seen: the next line is a variable.
    pending_origin: Option<(Origin, bool, Option<Location>)>,
    /// `# Not a target:` just seen.
    pending_not_target: bool,
    /// Target-specific variables read before the target's own line.
    pending_vars: Vec<Variable>,
    /// Inside `define … endef`: (depth, whether it belongs to a target, the variable,
    /// lines read so far).
    define: Option<(u32, bool, Variable, usize)>,
    last_entered: Option<String>,
}

fn shorten(line: &str) -> String {
    let mut s: String = line.chars().take(120).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

fn ends_continued(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

impl Parser {
    fn new() -> Parser {
        Parser {
            dump: Dump::default(),
            db: None,
            section: Section::None,
            entry: Entry::None,
            skipping: false,
            prefix: '\t',
            continued: false,
            pending_origin: None,
            pending_not_target: false,
            pending_vars: Vec::new(),
            define: None,
            last_entered: None,
        }
    }

    fn error(&mut self, line: usize, text: &str, message: &'static str) {
        self.dump.errors.push(ParseError {
            line,
            text: shorten(text),
            message,
        });
    }

    fn start_db(&mut self, line: usize) {
        self.finish_db();
        self.db = Some(Database {
            entered: self.last_entered.take(),
            first_line: line,
            ..Database::default()
        });
        self.section = Section::None;
        self.prefix = '\t';
    }

    fn finish_entry(&mut self) {
        let entry = std::mem::replace(&mut self.entry, Entry::None);
        if let Some(db) = self.db.as_mut() {
            match entry {
                Entry::File(rule) if !self.skipping => db.rules.push(rule),
                Entry::Pattern(rule) if !self.skipping => db.pattern_rules.push(rule),
                _ => {}
            }
        }
        self.skipping = false;
        self.continued = false;
        self.pending_not_target = false;
        self.pending_origin = None;
        self.pending_vars.clear();
    }

    fn finish_db(&mut self) {
        self.finish_entry();
        if let Some((_, _, var, _)) = self.define.take() {
            if let Some(db) = self.db.as_mut() {
                db.variables.push(var);
            }
        }
        if let Some(db) = self.db.take() {
            self.dump.databases.push(db);
        }
        self.section = Section::None;
    }

    fn line(&mut self, n: usize, line: &str) {
        // Inside `define … endef` every line is value text.
        if let Some((depth, for_target, mut var, lines)) = self.define.take() {
            let trimmed = line.trim_start();
            let depth = if trimmed == "endef" || trimmed.starts_with("endef ") {
                depth - 1
            } else if trimmed.starts_with("define ") || trimmed == "define" {
                depth + 1
            } else {
                depth
            };
            if depth == 0 {
                if for_target {
                    self.pending_vars.push(var);
                } else if let Some(db) = self.db.as_mut() {
                    db.variables.push(var);
                }
            } else {
                if lines > 0 {
                    var.value.push('\n');
                }
                var.value.push_str(line);
                self.define = Some((depth, for_target, var, lines + 1));
            }
            return;
        }

        // A recipe's continuation line can hold anything.
        if self.continued {
            self.continued = ends_continued(line);
            match &mut self.entry {
                Entry::File(rule) => {
                    if let Some(last) = rule.recipe_lines.last_mut() {
                        last.push('\n');
                        last.push_str(line);
                    }
                }
                Entry::Pattern(_) | Entry::None => {}
            }
            return;
        }

        // Database boundaries and make's own messages.
        if line.starts_with("# Make data base, printed on") {
            self.start_db(n);
            return;
        }
        if line.starts_with("# Finished Make data base") {
            self.finish_db();
            return;
        }
        if let Ok((_, dir)) = entering(line) {
            if self.db.is_none() {
                self.last_entered = Some(dir.to_string());
            }
            return;
        }

        if let Some(section) = section_header(line) {
            if matches!(
                section,
                Section::Variables | Section::Implicit | Section::Files
            ) && self.db.is_none()
            {
                // The plugin's dump: no banner.
                self.start_db(n);
            }
            self.finish_entry();
            self.section = section;
            return;
        }
        if self.db.is_none() {
            return; // make's messages, `$(info)` text, echoed recipes
        }

        match self.section {
            Section::Variables => self.variable_line(n, line, None),
            Section::Files => self.file_line(n, line),
            Section::Implicit => self.pattern_line(n, line),
            Section::PatternVariables => {
                // Not modelled; only `define` blocks need care so their text is skipped.
                if let Some((_, _, rest)) = rule_head(line) {
                    if define_line(rest.trim_start()).is_ok() {
                        let var = Variable {
                            name: String::new(),
                            origin: Origin::Makefile,
                            private: false,
                            flavor: Flavor::Recursive,
                            location: None,
                            value: String::new(),
                        };
                        self.define = Some((1, true, var, 0));
                    }
                }
            }
            Section::None | Section::Directories | Section::Vpath | Section::Trailer => {}
        }
    }

    /// A line of the variables section, or a target-specific variable (`target` set).
    fn variable_line(&mut self, n: usize, line: &str, target: Option<&str>) {
        if line.is_empty() {
            return;
        }
        if let Ok((_, origin)) = origin_comment(line) {
            self.pending_origin = Some(origin);
            return;
        }
        if line.starts_with('#') {
            return; // hash-table statistics and the like
        }
        let Some((origin, private, location)) = self.pending_origin.take() else {
            // A simple variable whose value held a newline continues on this line.
            if target.is_none() {
                if let Some(var) = self.db.as_mut().and_then(|db| db.variables.last_mut()) {
                    var.value.push('\n');
                    var.value.push_str(line);
                    return;
                }
            }
            self.error(n, line, "expected a variable after its origin comment");
            return;
        };
        if let Ok((_, name)) = define_line(line) {
            let var = Variable {
                name: name.trim().to_string(),
                origin,
                private,
                flavor: Flavor::Recursive,
                location,
                value: String::new(),
            };
            self.define = Some((1, target.is_some(), var, 0));
            return;
        }
        match assignment(line) {
            Ok((_, (name, flavor, value))) => {
                let value = if flavor == Flavor::Simple {
                    undouble_dollars(value)
                } else {
                    value.to_string()
                };
                let var = Variable {
                    name: name.to_string(),
                    origin,
                    private,
                    flavor,
                    location,
                    value,
                };
                if target.is_some() {
                    self.pending_vars.push(var);
                } else if let Some(db) = self.db.as_mut() {
                    db.variables.push(var);
                }
            }
            Err(_) => self.error(
                n,
                line,
                "expected `NAME = value`, `NAME := value` or `define NAME`",
            ),
        }
    }

    fn recipe_line(&mut self, line: &str) -> bool {
        let Some(body) = line.strip_prefix(self.prefix) else {
            return false;
        };
        self.continued = ends_continued(body);
        match &mut self.entry {
            Entry::File(rule) => rule.recipe_lines.push(body.to_string()),
            Entry::Pattern(_) => {}
            Entry::None => return false,
        }
        true
    }

    fn file_line(&mut self, n: usize, line: &str) {
        if line.is_empty() {
            self.finish_entry();
            return;
        }
        if self.skipping {
            self.continued = line.starts_with(self.prefix) && ends_continued(line);
            return;
        }
        if !matches!(self.entry, Entry::None) {
            if self.recipe_line(line) {
                return;
            }
            let Entry::File(rule) = &mut self.entry else {
                return;
            };
            if line.starts_with('#') {
                let comment = line.trim_start_matches('#').trim_start();
                if comment.starts_with("Phony target") {
                    rule.phony = true;
                } else if comment.starts_with("Precious file") {
                    rule.precious = true;
                } else if comment.starts_with("File is an intermediate prerequisite") {
                    rule.intermediate = true;
                } else if comment.starts_with("File has been updated") {
                    rule.updated = true;
                } else if comment.starts_with("recipe to execute") {
                    match recipe_header(line) {
                        Ok((_, location)) => rule.recipe = location,
                        Err(_) => {
                            self.error(n, line, "cannot read the recipe's location");
                            self.skipping = true;
                        }
                    }
                }
                return;
            }
            self.error(n, line, "unexpected line inside a file entry");
            self.skipping = true;
            return;
        }

        // Between entries.
        if let Some(p) = line.strip_prefix(".RECIPEPREFIX = ") {
            self.prefix = p.chars().next().unwrap_or('\t');
            return;
        }
        if line == ".RECIPEPREFIX = " {
            self.prefix = '\t';
            return;
        }
        if line.starts_with("# Not a target") {
            self.pending_not_target = true;
            return;
        }
        if let Ok((_, origin)) = origin_comment(line) {
            self.pending_origin = Some(origin);
            return;
        }
        if line.starts_with('#') {
            return;
        }
        let Some((name, double_colon, rest)) = rule_head(line) else {
            self.error(n, line, "expected a target line `NAME: prerequisites`");
            self.skipping = true;
            return;
        };
        if self.pending_origin.is_some() {
            // `target: VAR = value`: a target-specific variable before the entry itself.
            self.variable_line(n, rest.trim_start(), Some(name));
            return;
        }
        let (prerequisites, order_only) = prerequisites(rest);
        self.entry = Entry::File(Rule {
            name: name.to_string(),
            is_target: !self.pending_not_target,
            double_colon,
            phony: false,
            precious: false,
            intermediate: false,
            updated: false,
            prerequisites,
            order_only,
            recipe: None,
            recipe_lines: Vec::new(),
            variables: std::mem::take(&mut self.pending_vars),
            dump_line: n,
        });
        self.pending_not_target = false;
    }

    fn pattern_line(&mut self, n: usize, line: &str) {
        if line.is_empty() {
            self.finish_entry();
            return;
        }
        if self.skipping {
            self.continued = line.starts_with(self.prefix) && ends_continued(line);
            return;
        }
        if let Entry::Pattern(rule) = &mut self.entry {
            if let Some(body) = line.strip_prefix(self.prefix) {
                self.continued = ends_continued(body);
                return;
            }
            if line.starts_with('#') {
                if let Ok((_, location)) = recipe_header(line) {
                    rule.builtin = location.is_none();
                    rule.recipe = location;
                }
                return;
            }
            self.error(n, line, "unexpected line inside a pattern rule");
            self.skipping = true;
            return;
        }
        if line.starts_with('#') {
            return; // `# 92 implicit rules, …`
        }
        let Some((targets, terminal, rest)) = rule_head(line) else {
            self.error(n, line, "expected a pattern rule `%.o: %.c`");
            self.skipping = true;
            return;
        };
        let (prerequisites, order_only) = prerequisites(rest);
        self.entry = Entry::Pattern(PatternRule {
            targets: targets.split_whitespace().map(str::to_string).collect(),
            terminal,
            prerequisites,
            order_only,
            recipe: None,
            builtin: false,
            dump_line: n,
        });
    }
}

/// Parse a whole dump. Lines it does not understand are in [`Dump::errors`]; only a text
/// with no database in it at all is an error.
pub fn parse(text: &str) -> Result<Dump, DumpError> {
    let mut parser = Parser::new();
    for (i, line) in text.lines().enumerate() {
        parser.line(i + 1, line);
    }
    parser.finish_db();
    if parser.dump.databases.is_empty() {
        return Err(DumpError::NotAMakeDatabase);
    }
    Ok(parser.dump)
}

/// Parse bytes that may not be UTF-8 (file names need not be).
pub fn parse_bytes(bytes: &[u8]) -> Result<Dump, DumpError> {
    parse(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_grammars() {
        assert_eq!(
            recipe_header("#  recipe to execute (from 'a b.mk', line 12):")
                .unwrap()
                .1,
            Some(Location {
                file: "a b.mk".into(),
                line: 12
            })
        );
        assert_eq!(
            recipe_header("#  recipe to execute (built-in):").unwrap().1,
            None
        );
        assert_eq!(
            origin_comment("# makefile (from 'Makefile', line 3)")
                .unwrap()
                .1,
            (
                Origin::Makefile,
                false,
                Some(Location {
                    file: "Makefile".into(),
                    line: 3
                })
            )
        );
        assert_eq!(
            origin_comment("# environment under -e").unwrap().1 .0,
            Origin::EnvironmentOverride
        );
        assert!(origin_comment("# makefile stuff").is_err());
        assert_eq!(assignment("X := ").unwrap().1, ("X", Flavor::Simple, ""));
        assert_eq!(
            assignment("X += a b").unwrap().1,
            ("X", Flavor::Append, "a b")
        );
        assert_eq!(
            entering("# make[1]: Entering directory '/a b'").unwrap().1,
            "/a b"
        );
        assert_eq!(rule_head("a:b: c d"), Some(("a:b", false, " c d")));
        assert_eq!(rule_head("dc:: x"), Some(("dc", true, " x")));
        assert_eq!(rule_head("all:"), Some(("all", false, "")));
        assert_eq!(rule_head("no colon"), None);
        assert_eq!(
            prerequisites(" a b | c"),
            (vec!["a".into(), "b".into()], vec!["c".into()])
        );
    }

    #[test]
    fn garbage_is_not_a_database() {
        assert_eq!(parse("hello\nworld\n"), Err(DumpError::NotAMakeDatabase));
        assert_eq!(parse(""), Err(DumpError::NotAMakeDatabase));
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let text = "# Files\n\nok: a\n\n!!! what\n\nfine:\n#  recipe to execute (from 'M', line x):\n\tx\n\nlast:\n";
        let dump = parse(text).unwrap();
        let names: Vec<_> = dump.databases[0]
            .rules
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["ok", "last"]);
        assert_eq!(dump.errors.len(), 2);
        assert_eq!(dump.errors[0].line, 5);
        assert_eq!(dump.errors[1].line, 8);
    }

    #[test]
    fn continuation_lines_may_look_like_anything() {
        let text = "# Files\n\nt:\n#  recipe to execute (from 'M', line 2):\n\techo a \\\n# Files \\\nx: y \\\n\n\techo b\n\nu:\n";
        let dump = parse(text).unwrap();
        let rules = &dump.databases[0].rules;
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert_eq!(
            rules[0].recipe_lines,
            ["echo a \\\n# Files \\\nx: y \\\n", "echo b"]
        );
        assert!(dump.errors.is_empty());
    }

    #[test]
    fn never_panics_on_truncated_input() {
        let text = include_str!("../../tests/fixtures/targets/sample.db");
        for cut in (0..text.len()).step_by(7) {
            if text.is_char_boundary(cut) {
                let _ = parse(&text[..cut]);
            }
        }
    }
}
