//! Reading makefile text: where a rule is written and its doc comment. make's database
//! keeps neither comments nor the line of a rule without a recipe, so both come from the
//! makefiles themselves, read once each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::paths;

/// Makefiles read so far, by absolute path; `None` when unreadable.
#[derive(Default)]
pub struct Makefiles {
    /// Files under this directory read as missing: the recorder's per-run directory
    /// (its `makescope.mk`, in every make's MAKEFILE_LIST), listed as the build ends
    /// and gone right after.
    gone: Option<PathBuf>,
    files: HashMap<PathBuf, Option<Vec<String>>>,
    /// Per set of makefiles: literal target name → (file, line) of its first rule line.
    indexes: HashMap<Vec<PathBuf>, HashMap<String, (PathBuf, u32)>>,
}

fn ends_continued(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Directives whose lines are never rules.
const DIRECTIVES: &[&str] = &[
    "ifeq", "ifneq", "ifdef", "ifndef", "else", "endif", "include", "-include", "sinclude",
    "define", "endef", "export", "unexport", "override", "undefine", "vpath", "private", "load",
    "-load",
];

/// If `line` (a logical makefile line) is a rule, the text before its colon.
fn rule_targets(line: &str) -> Option<&str> {
    if line.starts_with('\t') || line.trim_start().starts_with('#') {
        return None;
    }
    let first = line.split_whitespace().next()?;
    if DIRECTIVES.contains(&first) {
        return None;
    }
    let bytes = line.as_bytes();
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'{' => depth += 1,
            b')' | b'}' => depth -= 1,
            b'#' if depth == 0 => return None,
            b'=' if depth == 0 => return None, // an assignment
            b':' if depth == 0 => {
                if bytes.get(i + 1) == Some(&b'=') || bytes[i + 1..].starts_with(b":=") {
                    return None;
                }
                return Some(&line[..i]);
            }
            _ => {}
        }
    }
    None
}

/// Whether the text after a rule's colon sets a target-specific variable.
fn is_target_variable(after: &str) -> bool {
    let mut words = after.split_whitespace();
    let mut word = words.next().unwrap_or("");
    while matches!(word, "override" | "export" | "private" | "unexport") {
        word = words.next().unwrap_or("");
    }
    let name_end = word
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .unwrap_or(word.len());
    let rest = after[after.find(word).unwrap_or(0) + name_end..].trim_start();
    name_end > 0
        && ["=", ":=", "::=", "+=", "?=", "!="]
            .iter()
            .any(|op| rest.starts_with(op))
}

/// The doc comment of `target: … ## text` on the rule line itself.
fn inline_doc(line: &str) -> Option<String> {
    let colon = line.find(':')?;
    let hash = line[colon..].find('#')? + colon;
    let comment = &line[hash..];
    comment
        .starts_with("##")
        .then(|| comment.trim_start_matches('#').trim().to_string())
        .filter(|d| !d.is_empty())
}

impl Makefiles {
    /// Makefiles to read, those under `gone` read as missing (see the field).
    pub fn without(gone: Option<&Path>) -> Makefiles {
        Makefiles {
            gone: gone.map(Path::to_path_buf),
            ..Makefiles::default()
        }
    }

    fn lines(&mut self, path: &Path) -> Option<&Vec<String>> {
        let gone = self.gone.as_deref().is_some_and(|g| path.starts_with(g));
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let bytes = if gone { None } else { std::fs::read(path).ok() };
                bytes.map(|b| {
                    String::from_utf8_lossy(&b)
                        .lines()
                        .map(str::to_string)
                        .collect()
                })
            })
            .as_ref()
    }

    /// Every makefile read so far, for the cache's identity check.
    pub fn read_paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.keys()
    }

    /// The rule line for a recipe at `recipe_line`: the recipe's own line for `t: ; cmd`
    /// and `$(eval)`, otherwise the first line of the rule above it. 1-based.
    pub fn rule_line(&mut self, file: &Path, recipe_line: u32) -> u32 {
        let Some(lines) = self.lines(file) else {
            return recipe_line;
        };
        let r = recipe_line as usize;
        if r == 0 || r > lines.len() {
            return recipe_line;
        }
        if !lines[r - 1].starts_with('\t') {
            return recipe_line; // `t: ; cmd`, or a rule made by $(eval) on this line
        }
        let mut j = r - 1; // 1-based index of the line above the recipe
        while j >= 1 {
            let text = &lines[j - 1];
            let blank_or_comment = text.trim().is_empty() || text.starts_with('#');
            let continuing = j >= 2 && ends_continued(&lines[j - 2]);
            if blank_or_comment && !continuing {
                j -= 1;
                continue;
            }
            break;
        }
        while j >= 2 && ends_continued(&lines[j - 2]) {
            j -= 1;
        }
        if j >= 1 && rule_targets(&lines[j - 1]).is_some() {
            j as u32
        } else {
            recipe_line
        }
    }

    /// The doc comment of the rule at `line`: `## text` at its end, else the `## text` /
    /// `#: text` lines right above it.
    pub fn doc(&mut self, file: &Path, line: u32) -> Option<String> {
        let lines = self.lines(file)?;
        let l = line as usize;
        if l == 0 || l > lines.len() {
            return None;
        }
        if let Some(doc) = inline_doc(&lines[l - 1]) {
            return Some(doc);
        }
        let mut above = Vec::new();
        let mut j = l - 1;
        while j >= 1 {
            let text = lines[j - 1].trim_start();
            let Some(doc) = text.strip_prefix("##").or_else(|| text.strip_prefix("#:")) else {
                break;
            };
            above.push(doc.trim_start_matches('#').trim().to_string());
            j -= 1;
        }
        above.reverse();
        let doc = above.join(" ").trim().to_string();
        (!doc.is_empty()).then_some(doc)
    }

    /// Where `name` is written as a literal rule target in these makefiles.
    pub fn find_rule(&mut self, makefiles: &[PathBuf], name: &str) -> Option<(PathBuf, u32)> {
        if !self.indexes.contains_key(makefiles) {
            let mut index = HashMap::new();
            for file in makefiles {
                let Some(lines) = self.lines(file).cloned() else {
                    continue;
                };
                let mut in_define = 0u32;
                let mut i = 0;
                while i < lines.len() {
                    let start = i;
                    let mut logical = lines[i].clone();
                    while ends_continued(&lines[i]) && i + 1 < lines.len() {
                        logical.pop();
                        i += 1;
                        logical.push(' ');
                        logical.push_str(lines[i].trim_start());
                    }
                    i += 1;
                    let first = logical.split_whitespace().next().unwrap_or("");
                    if first == "define"
                        || (first == "override" || first == "export")
                            && logical.contains(" define ")
                    {
                        in_define += 1;
                        continue;
                    }
                    if first == "endef" {
                        in_define = in_define.saturating_sub(1);
                        continue;
                    }
                    if in_define > 0 {
                        continue;
                    }
                    let Some(targets) = rule_targets(&logical) else {
                        continue;
                    };
                    let after = logical[targets.len() + 1..].trim_start_matches(':');
                    if is_target_variable(after) {
                        continue;
                    }
                    for word in targets.split_whitespace() {
                        if !word.contains('$') && !word.contains('%') {
                            let word = word.strip_prefix("./").unwrap_or(word);
                            index
                                .entry(word.to_string())
                                .or_insert((file.clone(), start as u32 + 1));
                        }
                    }
                }
            }
            self.indexes.insert(makefiles.to_vec(), index);
        }
        self.indexes[makefiles].get(name).cloned()
    }
}

/// `base/file`, with `.` and `..` resolved as text (make names files that way; see
/// [`crate::paths`]).
pub fn absolute(base: &Path, file: &str) -> PathBuf {
    let joined = paths::absolute(paths::as_bytes(base), file.as_bytes());
    paths::as_path(&joined).to_path_buf()
}

/// `path` relative to `base` (both absolute), for display; as it is when the two share
/// nothing but the root.
pub fn relative(path: &Path, base: &Path) -> PathBuf {
    match paths::relative(paths::as_bytes(path), paths::as_bytes(base), usize::MAX) {
        Some(shown) => paths::as_path(&shown).to_path_buf(),
        None => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_docs() {
        assert_eq!(rule_targets("a b: c"), Some("a b"));
        assert_eq!(rule_targets("X := a:b"), None);
        assert_eq!(rule_targets("X = a:b"), None);
        assert_eq!(rule_targets("\tcmd: x"), None);
        assert_eq!(rule_targets("$(objpfx)x.o: y"), Some("$(objpfx)x.o"));
        assert!(is_target_variable(" CFLAGS = -O0"));
        assert!(is_target_variable(" override X := 1"));
        assert!(!is_target_variable(" prog util.o"));
        assert_eq!(
            inline_doc("check: prog ## Run the tests."),
            Some("Run the tests.".into())
        );
        assert_eq!(inline_doc("check: prog # not a doc"), None);
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/d")),
            PathBuf::from("../b/c")
        );
        assert_eq!(
            absolute(Path::new("/a/b"), "../c/./d"),
            PathBuf::from("/a/c/d")
        );
    }
}
