//! A small, forgiving shell-word splitter for recipe commands.
//!
//! Labels only need to know which programs a command runs, with which words and
//! redirections; they never run anything. So this is not a shell parser: it splits
//! `cd x && gcc ... -o y; mv -f a b` into simple commands, removes quotes, keeps
//! `$(...)`, backquotes and `${...}` as opaque parts of a word, and treats the reserved
//! words of compound commands (`if`, `for … in …`, `do`, `{`, …) as separators. It never
//! fails: unbalanced quotes end at the end of the text.

/// One simple command: `A=1 B=2 prog arg… >file`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    /// Leading `NAME=value` words.
    pub assignments: Vec<String>,
    /// The program and its arguments, quotes removed.
    pub words: Vec<String>,
    /// Redirections: operator (`>`, `>>`, `2>`, `<`, `&>` …) and its word.
    pub redirects: Vec<(String, String)>,
}

impl SimpleCommand {
    /// The program's name without its directory (`/usr/bin/gcc` → `gcc`).
    pub fn program(&self) -> Option<&str> {
        self.words.first().map(|w| basename(w))
    }

    /// Files its standard output (or all output) is written to, `/dev/null` excluded.
    pub fn output_files(&self) -> impl Iterator<Item = &str> {
        self.redirects
            .iter()
            .filter(|(op, file)| {
                let writes = op.ends_with('>') && !op.starts_with('2')
                    || op == ">|"
                    || op == "&>"
                    || op == "&>>";
                writes && file != "/dev/null" && !file.starts_with('&')
            })
            .map(|(_, file)| file.as_str())
    }
}

/// The last path component of a word.
pub fn basename(word: &str) -> &str {
    word.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(word)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    /// `;`, `&&`, `||`, `|`, `&`, newline, `(`, `)`, `;;`.
    Separator,
    Redirect(String),
}

/// Split shell text into its simple commands, in order.
pub fn simple_commands(text: &str) -> Vec<SimpleCommand> {
    let tokens = tokenize(text);
    let mut commands = Vec::new();
    let mut current = SimpleCommand::default();
    // Inside `for NAME in words…` up to the next separator: words are not a command.
    let mut skipping_clause = false;
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            Token::Separator => {
                skipping_clause = false;
                push(&mut commands, &mut current);
            }
            Token::Redirect(op) => {
                let target = match tokens.peek() {
                    Some(Token::Word(_)) => match tokens.next() {
                        Some(Token::Word(w)) => w,
                        _ => unreachable!(),
                    },
                    _ => String::new(),
                };
                if !skipping_clause {
                    current.redirects.push((op, target));
                }
            }
            Token::Word(word) => {
                if skipping_clause {
                    continue;
                }
                if current.words.is_empty() {
                    if is_assignment(&word) {
                        current.assignments.push(word);
                        continue;
                    }
                    match word.as_str() {
                        "if" | "then" | "else" | "elif" | "fi" | "do" | "done" | "while"
                        | "until" | "{" | "}" | "!" | "esac" | "time" => {
                            push(&mut commands, &mut current);
                            continue;
                        }
                        "for" | "case" | "select" => {
                            push(&mut commands, &mut current);
                            skipping_clause = true;
                            continue;
                        }
                        _ => {}
                    }
                }
                current.words.push(word);
            }
        }
    }
    push(&mut commands, &mut current);
    commands
}

fn push(commands: &mut Vec<SimpleCommand>, current: &mut SimpleCommand) {
    let command = std::mem::take(current);
    if !command.words.is_empty() || !command.redirects.is_empty() || !command.assignments.is_empty()
    {
        commands.push(command);
    }
}

/// `NAME=value` with a valid shell name.
pub fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    // Whether `word` holds a word (it may be the empty word `''`).
    let mut in_word = false;
    let mut i = 0;
    let n = chars.len();
    macro_rules! end_word {
        () => {
            if in_word {
                tokens.push(Token::Word(std::mem::take(&mut word)));
                in_word = false;
            }
        };
    }
    while i < n {
        let c = chars[i];
        match c {
            '\\' if i + 1 < n && chars[i + 1] == '\n' => {
                // A line continuation is only whitespace to us.
                end_word!();
                i += 2;
            }
            '\\' => {
                if i + 1 < n {
                    word.push(chars[i + 1]);
                }
                in_word = true;
                i += 2;
            }
            ' ' | '\t' | '\r' => {
                end_word!();
                i += 1;
            }
            '\n' | ';' | '(' | ')' => {
                end_word!();
                tokens.push(Token::Separator);
                i += 1;
            }
            '#' if !in_word => {
                // A comment to the end of the line.
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
            }
            '&' | '|' => {
                if c == '&' && i + 1 < n && chars[i + 1] == '>' {
                    end_word!();
                    let mut op = String::from("&>");
                    i += 2;
                    if i < n && chars[i] == '>' {
                        op.push('>');
                        i += 1;
                    }
                    tokens.push(Token::Redirect(op));
                    continue;
                }
                end_word!();
                tokens.push(Token::Separator);
                i += 1;
                if i < n && (chars[i] == c) {
                    i += 1;
                }
            }
            '>' | '<' => {
                // An all-digit word right before is the file descriptor: `2>`.
                let mut op = String::new();
                if in_word && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()) {
                    op = std::mem::take(&mut word);
                    in_word = false;
                } else {
                    end_word!();
                }
                op.push(c);
                i += 1;
                while i < n
                    && (chars[i] == '>'
                        || chars[i] == '|'
                        || chars[i] == '&'
                        || (c == '<' && chars[i] == '<'))
                {
                    op.push(chars[i]);
                    i += 1;
                }
                if op.ends_with('&') {
                    // `2>&1`: the descriptor is the word; mark it so it is no file.
                    let mut dup = String::from("&");
                    while i < n && (chars[i].is_ascii_digit() || chars[i] == '-') {
                        dup.push(chars[i]);
                        i += 1;
                    }
                    op.pop();
                    tokens.push(Token::Redirect(op));
                    tokens.push(Token::Word(dup));
                    continue;
                }
                tokens.push(Token::Redirect(op));
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < n && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < n && chars[i] != '"' {
                    if chars[i] == '\\'
                        && i + 1 < n
                        && matches!(chars[i + 1], '"' | '\\' | '$' | '`')
                    {
                        word.push(chars[i + 1]);
                        i += 2;
                    } else if chars[i] == '\\' && i + 1 < n && chars[i + 1] == '\n' {
                        i += 2;
                    } else if chars[i] == '$'
                        && i + 1 < n
                        && (chars[i + 1] == '(' || chars[i + 1] == '{')
                    {
                        i = copy_expansion(&chars, i, &mut word);
                    } else if chars[i] == '`' {
                        i = copy_backquote(&chars, i, &mut word);
                    } else {
                        word.push(chars[i]);
                        i += 1;
                    }
                }
                i += 1;
            }
            '$' if i + 1 < n && (chars[i + 1] == '(' || chars[i + 1] == '{') => {
                in_word = true;
                i = copy_expansion(&chars, i, &mut word);
            }
            '`' => {
                in_word = true;
                i = copy_backquote(&chars, i, &mut word);
            }
            _ => {
                in_word = true;
                word.push(c);
                i += 1;
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    tokens
}

/// Copy `$(...)`, `$((...))` or `${...}` starting at `start` verbatim; returns the index after it.
fn copy_expansion(chars: &[char], start: usize, word: &mut String) -> usize {
    let open = chars[start + 1];
    let close = if open == '(' { ')' } else { '}' };
    let mut depth = 0usize;
    let mut i = start + 1;
    word.push('$');
    while i < chars.len() {
        let c = chars[i];
        word.push(c);
        i += 1;
        if c == '\\' && i < chars.len() {
            word.push(chars[i]);
            i += 1;
        } else if c == '\'' && open == '(' {
            while i < chars.len() && chars[i] != '\'' {
                word.push(chars[i]);
                i += 1;
            }
            if i < chars.len() {
                word.push('\'');
                i += 1;
            }
        } else if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                break;
            }
        }
    }
    i
}

fn copy_backquote(chars: &[char], start: usize, word: &mut String) -> usize {
    let mut i = start + 1;
    word.push('`');
    while i < chars.len() && chars[i] != '`' {
        if chars[i] == '\\' && i + 1 < chars.len() {
            word.push(chars[i]);
            i += 1;
        }
        word.push(chars[i]);
        i += 1;
    }
    word.push('`');
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        simple_commands(text).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn splits_statements_and_removes_quotes() {
        assert_eq!(
            words("cd x && gcc -c 'a b.c' -o \"o\\\"ut\"; mv -f a b"),
            vec![
                vec!["cd", "x"],
                vec!["gcc", "-c", "a b.c", "-o", "o\"ut"],
                vec!["mv", "-f", "a", "b"]
            ]
        );
    }

    #[test]
    fn assignments_and_redirects() {
        let cmds = simple_commands("LC_ALL=C gawk -f x.awk < in > out.T 2>/dev/null");
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].assignments, vec!["LC_ALL=C"]);
        assert_eq!(cmds[0].words, vec!["gawk", "-f", "x.awk"]);
        assert_eq!(cmds[0].output_files().collect::<Vec<_>>(), vec!["out.T"]);
        let cmds = simple_commands("prog >>log 2>&1");
        assert_eq!(cmds[0].output_files().collect::<Vec<_>>(), vec!["log"]);
        assert_eq!(cmds[0].words, vec!["prog"]);
    }

    #[test]
    fn expansions_are_opaque_words() {
        assert_eq!(
            words("echo $(dirname $@) `pwd` ${x:-a b} \"$(a \"b\" c)\""),
            vec![vec![
                "echo",
                "$(dirname $@)",
                "`pwd`",
                "${x:-a b}",
                "$(a \"b\" c)"
            ]]
        );
    }

    #[test]
    fn continuations_and_compound_commands() {
        let text = "(echo a; \\\n for i in 1 2; do \\\n echo $i; \\\n done; if test -f x; then rm x; fi) > out";
        assert_eq!(
            words(text),
            // The last is the group's redirection, with no words.
            vec![
                vec!["echo", "a"],
                vec!["echo", "$i"],
                vec!["test", "-f", "x"],
                vec!["rm", "x"],
                vec![]
            ]
        );
        let cmds = simple_commands(text);
        assert_eq!(
            cmds.last().unwrap().output_files().collect::<Vec<_>>(),
            vec!["out"]
        );
    }

    #[test]
    fn pipelines() {
        assert_eq!(
            words("{ echo '#include <x>'; } | gcc -E - | sed 's/a/b/' > x.h"),
            vec![
                vec!["echo", "#include <x>"],
                vec!["gcc", "-E", "-"],
                vec!["sed", "s/a/b/"]
            ]
        );
    }

    #[test]
    fn unbalanced_quotes_do_not_fail() {
        assert_eq!(words("echo 'abc"), vec![vec!["echo", "abc"]]);
        assert_eq!(words("echo $(abc"), vec![vec!["echo", "$(abc"]]);
    }
}
