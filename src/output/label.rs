//! The built-in label rules: a verb and the thing made, from the command text.
//!
//! Labelling is a pure function of [`CommandInfo`] so that a user's hook can replace it
//! (the hook sees the default label and may return another). The command is split into
//! simple commands (see [`super::shell`]); each is classified by its program and
//! arguments; the most telling one names the verb (a compile beats the `mv` after it,
//! anything beats `rm`/`mkdir`); the object is the target (`$@`) relative to the
//! directory `makescope make` ran in, or what the command's words say it writes.
//! Wrappers (`env`, `nice`, `ccache`, `distcc` …) are looked through to the program
//! they run; libtool is labelled by its mode, as automake's silent rules label it
//! (`CC x.lo`, `CCLD lib.la`, `INSTALL`, `RUN`/`TEST` for what `execute` runs).
//! A program no rule knows falls back to its own name in capitals (documented in
//! the README's Labels section): `[Rule::Fallback]`.

use std::path::{Path, PathBuf};

use super::shell::{self, basename, SimpleCommand};
use super::{CommandInfo, Label};
use crate::paths;

/// Which rule produced a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `make -C dir`, `cd dir && $(MAKE)`: `MAKE dir`.
    SubMake,
    /// A test run (`evaluate-test.sh`, `test-driver`, a `.out`/`.test-result` target): `TEST name`.
    TestRun,
    /// A compiler with `-c`, `-S` or `-E`: `CC`, `CXX`, `AS` (assembly source), `CPP`.
    Compiler,
    /// An assembler: `AS`.
    Assembler,
    /// A compiler without `-c`/`-S`/`-E`, `ld`, `collect2`: `LD`.
    Linker,
    /// `ar`, `ranlib`: `AR`.
    Archiver,
    /// `install`, `install-sh`: `INSTALL`.
    Install,
    /// A text tool, interpreter or script that writes a file (`> $@`, `-o $@`): `GEN`.
    Generator,
    /// `objcopy`, `strip`: the tool's name.
    Binutils,
    /// `rm`, `mkdir`, `mv`, `cp`, `ln`, `touch`, `chmod`, `echo`, `test`, … on their own.
    Bookkeeping,
    /// A program run through `libtool --mode=execute` that no rule knows: `RUN prog`.
    Run,
    /// No rule knew the program: its own name in capitals.
    Fallback,
    /// Nothing to run (an empty command or only assignments): `SH`.
    Empty,
}

/// A label with the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub label: Label,
    pub rule: Rule,
}

/// The rule-based label for a command.
pub fn default_label(info: &CommandInfo) -> Label {
    classify(info).label
}

/// Classify a command: its label and the rule that chose it.
pub fn classify(info: &CommandInfo) -> Classified {
    classify_ranked(info).0
}

/// A command's label, its rule and the rank of its most telling simple command.
fn classify_ranked(info: &CommandInfo) -> (Classified, u8) {
    let text = String::from_utf8_lossy(&info.command);
    let ctx = Context {
        top: paths::as_path(&info.top_directory).to_path_buf(),
        dir: paths::as_path(&info.directory).to_path_buf(),
        target: String::from_utf8_lossy(&info.target).into_owned(),
    };
    let mut best: Option<Candidate> = None;
    let commands = shell::simple_commands(&text);
    let mut cd: Option<String> = None;
    collect(&ctx, &commands, &mut cd, &mut best, 0);
    match best {
        Some(c) => (
            Classified {
                label: Label {
                    object: match c.explicit {
                        // A target the command never names (`all: ; touch x`, `x/y.h: ;
                        // mkdir -p x`) says less than what the command writes; but a
                        // generator's stamp target (`x.stmp: ; gen > x.T`) is still the
                        // better name.
                        Some(written)
                            if !ctx.target.is_empty()
                                && !matches!(c.rule, Rule::SubMake | Rule::TestRun)
                                && (c.rule != Rule::Generator
                                    || !basename(&ctx.target).contains('.'))
                                && !text.contains(basename(&ctx.target)) =>
                        {
                            ctx.show(&written)
                        }
                        _ => c.object,
                    },
                    verb: c.verb,
                },
                rule: c.rule,
            },
            c.rank,
        ),
        None => (
            Classified {
                label: Label {
                    verb: "SH".into(),
                    object: ctx.target_or(String::new),
                },
                rule: Rule::Empty,
            },
            0,
        ),
    }
}

/// A recipe line of a job, as the job's label is chosen from it.
#[derive(Debug, Clone, Copy)]
pub struct JobLine<'a> {
    pub info: &'a CommandInfo,
    /// The line's own label: the default one or its hook's.
    pub label: &'a Label,
    /// Whether a hook's `label()` chose it.
    pub by_hook: bool,
}

/// The one label of a job (a target's recipe, all its lines, in order).
///
/// The rule, as the README's "One line per job" tells it:
/// - a job of one line keeps that line's label;
/// - the principal line names the verb: the line that does real work (a compile, link, generator, archive, install,
///   test, sub-make, or a program no rule knows) rather than housekeeping (`mkdir`, `rm`,
///   `mv`, `cp`, `ln`, `touch`, `chmod`, `echo`, `test`, `:`, `true` …, [`Rule::Bookkeeping`]),
///   and among those the one that ranks highest as within one line (a link beats the
///   `strip` after it), the first of equals; housekeeping names a job only when it is
///   all the job does (`MKDIR d`). A hook's `label()` overrides the rule: when it labelled
///   any line, the principal is chosen among those lines alone and its label is the
///   job's, verb and object;
/// - the object is the target make built when the recipe's text names
///   it (`…; mv objs/adler32.o adler32.lo` is `CC adler32.lo`; a sub-make and a test keep
///   theirs); else, when several lines tie as principal (two compiles), what each names
///   (`CC a.o b.o`); else the principal line's own object.
pub fn job_label(lines: &[JobLine]) -> Label {
    let Some(first) = lines.first() else {
        return Label {
            verb: "SH".into(),
            object: String::new(),
        };
    };
    if lines.len() == 1 {
        return first.label.clone();
    }
    let hooked = lines.iter().any(|l| l.by_hook);
    let ranked: Vec<(bool, u8, Rule)> = lines
        .iter()
        .map(|l| {
            let (classified, rank) = classify_ranked(l.info);
            let work = !matches!(classified.rule, Rule::Bookkeeping | Rule::Empty);
            (work, rank, classified.rule)
        })
        .collect();
    let eligible = |i: &usize| !hooked || lines[*i].by_hook;
    let key = |i: usize| (ranked[i].0, ranked[i].1);
    let top = (0..lines.len()).filter(eligible).map(key).max();
    let principal: Vec<usize> = (0..lines.len())
        .filter(eligible)
        .filter(|&i| Some(key(i)) == top)
        .collect();
    let chosen = lines[principal[0]];
    if hooked {
        return chosen.label.clone();
    }
    let rule = ranked[principal[0]].2;
    let target = String::from_utf8_lossy(&chosen.info.target).into_owned();
    let named = !target.is_empty()
        && lines
            .iter()
            .any(|l| contains(&l.info.command, basename(&target).as_bytes()));
    let object = if named && !matches!(rule, Rule::SubMake | Rule::TestRun) {
        relative_to(
            paths::as_path(&chosen.info.top_directory),
            paths::as_path(&chosen.info.directory),
            &target,
        )
    } else if principal.len() > 1 {
        let mut objects: Vec<&str> = Vec::new();
        for &i in &principal {
            let object = lines[i].label.object.as_str();
            if !object.is_empty() && !objects.contains(&object) {
                objects.push(object);
            }
        }
        objects.join(" ")
    } else {
        chosen.label.object.clone()
    };
    Label {
        verb: chosen.label.verb.clone(),
        object,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

struct Context {
    top: PathBuf,
    dir: PathBuf,
    target: String,
}

impl Context {
    /// A path as written in the command, relative to the top directory when possible.
    fn show(&self, path: &str) -> String {
        if path.is_empty() || path.contains('$') || path.contains('`') {
            return path.to_string();
        }
        relative_to(&self.top, &self.dir, path)
    }

    fn target_or(&self, otherwise: impl FnOnce() -> String) -> String {
        if self.target.is_empty() {
            otherwise()
        } else {
            self.show(&self.target)
        }
    }
}

struct Candidate {
    rank: u8,
    verb: String,
    object: String,
    rule: Rule,
    /// What the command's own words say it writes (`-o`, `>`, the operand of `touch`):
    /// the object when the target is not mentioned at all (a phony `all: ; touch x`).
    explicit: Option<String>,
}

fn offer(best: &mut Option<Candidate>, candidate: Candidate) {
    if best.as_ref().map_or(true, |b| candidate.rank > b.rank) {
        *best = Some(candidate);
    }
}

fn collect(
    ctx: &Context,
    commands: &[SimpleCommand],
    cd: &mut Option<String>,
    best: &mut Option<Candidate>,
    depth: u8,
) {
    for command in commands {
        if let Some(candidate) = classify_simple(ctx, command, cd, best, depth) {
            offer(best, candidate);
        }
    }
}

/// Programs that run the rest of their words as the real command (`env CC=x gcc …`,
/// `nice -n 5 gcc …`, `ccache gcc …`), with those of their options that take the next
/// word as a value. The compiler wrappers (`ccache`, `sccache`, `distcc`, `icecc`,
/// `buildcache`) take no options before the compiler: after one, a word starting with
/// `-` is the wrapper's own option (`ccache -s`) or, after `distcc`, the compile of an
/// implicit `cc` (`distcc -c x.c`); the wrapper stays the program.
fn wrapper_value_options(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "env" => &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
        "nice" => &["-n", "--adjustment"],
        "time" => &["-f", "--format", "-o", "--output"],
        "timeout" => &["-k", "--kill-after", "-s", "--signal"],
        "ionice" => &["-c", "--class", "-n", "--classdata"],
        "stdbuf" => &["-i", "-o", "-e", "--input", "--output", "--error"],
        "xargs" => &["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"],
        "exec" => &["-a"],
        "command" | "nohup" | "builtin" | "chronic" => &[],
        _ => return None,
    })
}

fn is_compiler_wrapper(name: &str) -> bool {
    matches!(
        name,
        "ccache" | "sccache" | "distcc" | "icecc" | "buildcache"
    )
}

fn skip_wrappers(words: &[String]) -> &[String] {
    let mut words = words;
    loop {
        let Some(first) = words.first() else {
            return words;
        };
        let name = basename(first);
        if is_compiler_wrapper(name) {
            match words.get(1) {
                Some(next) if !next.starts_with('-') => words = &words[1..],
                _ => return words,
            }
            continue;
        }
        let Some(takes_value) = wrapper_value_options(name) else {
            return words;
        };
        words = &words[1..];
        while let Some(w) = words.first() {
            if w == "--" {
                words = &words[1..];
                break;
            } else if (w.starts_with('-') && w.len() > 1)
                || (name == "env" && (w == "-" || shell::is_assignment(w)))
            {
                let skip = if takes_value.contains(&w.as_str()) {
                    2
                } else {
                    1
                };
                words = &words[skip.min(words.len())..];
            } else {
                break;
            }
        }
        if name == "timeout" {
            // The duration.
            words = &words[1.min(words.len())..];
        }
    }
}

/// A compiler's run as its words say: the mode (`-c`, `-S`, `-E`; `-M`/`-MM` count as
/// `-E`), its operands (sources, objects), `-o` and `-x` (the label rules' own reading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompilerRun {
    pub mode: Option<String>,
    pub inputs: Vec<String>,
    pub output: Option<String>,
    pub language: Option<String>,
}

/// `argv` as a compiler run, when its program (`argv[0]`'s name) is a C or C++ compiler
/// by the label rules (`gcc`, `cc`, `clang`, `g++`, cross and versioned names).
pub fn compiler_run(argv: &[String]) -> Option<CompilerRun> {
    let name = basename(argv.first()?);
    // gcc's own passes (`cc1`, `cc1plus`) are run by the driver, not by the build.
    if name.starts_with("cc1") || (!is_c_compiler(name) && !is_cxx_compiler(name)) {
        return None;
    }
    let parsed = CompilerArgs::parse(&argv[1..]);
    Some(CompilerRun {
        mode: parsed.mode.map(str::to_string),
        inputs: parsed.inputs.iter().map(|s| s.to_string()).collect(),
        output: parsed.output,
        language: parsed.language,
    })
}

/// The compilers a command's text runs, each as (the `cd` before it, if any, its words
/// from the compiler on), looking through `VAR=x` prefixes and wrappers (`env`, `nice`,
/// `ccache` …) as the labels do. `sh -c '…'` and `$(…)` are not looked into.
pub fn compilers_in(text: &str) -> Vec<(Option<String>, Vec<String>)> {
    let mut cd = None;
    let mut found = Vec::new();
    for command in shell::simple_commands(text) {
        let words = skip_wrappers(&command.words);
        match words.first().map(|w| basename(w)) {
            Some("cd") => cd = words.get(1).cloned(),
            Some(_) if compiler_run(words).is_some() => found.push((cd.clone(), words.to_vec())),
            _ => {}
        }
    }
    found
}

fn strip_version(name: &str) -> &str {
    // gcc-12, clang-15, python3.11
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let trimmed = trimmed.strip_suffix('-').unwrap_or(trimmed);
    if trimmed.is_empty() {
        name
    } else {
        trimmed
    }
}

fn is_c_compiler(name: &str) -> bool {
    let n = strip_version(name);
    n == "cc"
        || n == "gcc"
        || n == "clang"
        || n == "icc"
        || n == "tcc"
        || n.ends_with("-gcc")
        || n.ends_with("-cc")
        || n.ends_with("-clang")
}

fn is_cxx_compiler(name: &str) -> bool {
    let n = strip_version(name);
    n == "c++"
        || n == "g++"
        || n == "clang++"
        || n.ends_with("-g++")
        || n.ends_with("-c++")
        || n.ends_with("-clang++")
}

fn is_assembler(name: &str) -> bool {
    matches!(name, "as" | "gas" | "nasm" | "yasm") || name.ends_with("-as")
}

fn is_linker(name: &str) -> bool {
    matches!(
        name,
        "ld" | "ld.bfd" | "ld.gold" | "ld.lld" | "lld" | "mold" | "collect2" | "gold"
    ) || name.ends_with("-ld")
}

fn is_archiver(name: &str) -> bool {
    let n = strip_version(name);
    matches!(
        n,
        "ar" | "ranlib" | "gcc-ar" | "gcc-ranlib" | "llvm-ar" | "llvm-ranlib"
    ) || n.ends_with("-ar")
        || n.ends_with("-ranlib")
}

fn is_make(name: &str) -> bool {
    matches!(name, "make" | "gmake" | "remake")
}

fn is_shell(name: &str) -> bool {
    matches!(strip_version(name), "sh" | "bash" | "dash" | "ksh" | "zsh")
}

fn is_interpreter(name: &str) -> bool {
    is_shell(name)
        || matches!(
            strip_version(name),
            "python" | "perl" | "ruby" | "tclsh" | "lua" | "node"
        )
}

/// Tools whose job is to turn text into text: with an output file they generate it.
fn is_generator(name: &str) -> bool {
    let n = strip_version(name);
    matches!(
        n,
        "awk"
            | "gawk"
            | "mawk"
            | "nawk"
            | "sed"
            | "gsed"
            | "perl"
            | "python"
            | "m4"
            | "bison"
            | "yacc"
            | "byacc"
            | "flex"
            | "lex"
            | "gperf"
            | "msgfmt"
            | "msgmerge"
            | "xgettext"
            | "msgcat"
            | "rpcgen"
            | "makeinfo"
            | "texi2dvi"
            | "texi2pdf"
            | "tr"
            | "sort"
            | "uniq"
            | "cut"
            | "grep"
            | "egrep"
            | "fgrep"
            | "head"
            | "tail"
            | "tac"
            | "paste"
            | "join"
            | "xxd"
            | "od"
            | "base64"
            | "gzip"
            | "bzip2"
            | "xz"
            | "zstd"
            | "tar"
            | "cpio"
            | "localedef"
            | "iconv"
            | "readelf"
            | "objdump"
            | "nm"
            | "size"
            | "pkg-config"
            | "autoconf"
            | "autoheader"
            | "automake"
            | "aclocal"
            | "libtoolize"
            | "config.status"
            | "configure"
            | "tic"
            | "zic"
            | "gencat"
            | "dot"
            | "doxygen"
            | "pod2man"
            | "help2man"
            | "envsubst"
            | "jq"
            | "diff"
    ) || n.ends_with("-readelf")
        || n.ends_with("-objdump")
        || n.ends_with("-nm")
        || n.starts_with("gen-")
        || n.starts_with("gen_")
}

/// Bookkeeping programs and scripts: their verb and rank (higher is more telling).
fn bookkeeping(name: &str) -> Option<(&'static str, u8)> {
    Some(match name {
        "install" | "ginstall" | "install-sh" => return None,
        "cp" => ("CP", 24),
        "ln" | "rellns-sh" => ("LN", 24),
        "mv" | "move-if-change" => ("MV", 23),
        "touch" => ("TOUCH", 22),
        "chmod" | "chown" | "chgrp" => ("CHMOD", 21),
        "mkdir" | "mkinstalldirs" | "mkdirhier" => ("MKDIR", 20),
        "rm" | "rmdir" | "unlink" => ("RM", 19),
        "echo" | "printf" | "cat" => ("ECHO", 5),
        "test" | "[" | "[[" | "cmp" => ("CHECK", 4),
        "cd" | "pushd" | "popd" | "true" | "false" | ":" | "exit" | "set" | "export" | "unset"
        | "shift" | "read" | "eval" | "wait" | "trap" | "sleep" | "return" | "local"
        | "continue" | "break" | "sync" | "type" | "which" | "pwd" | "umask" | "ulimit"
        | "hash" | "source" | "." => ("SH", 1),
        _ => return None,
    })
}

const RANK_MAKE: u8 = 100;
const RANK_TEST: u8 = 90;
const RANK_BUILD: u8 = 80;
const RANK_AR: u8 = 70;
const RANK_INSTALL: u8 = 60;
const RANK_GEN: u8 = 50;
const RANK_BINUTILS: u8 = 45;
const RANK_FALLBACK: u8 = 40;

fn classify_simple(
    ctx: &Context,
    command: &SimpleCommand,
    cd: &mut Option<String>,
    best: &mut Option<Candidate>,
    depth: u8,
) -> Option<Candidate> {
    let words = skip_wrappers(&command.words);
    let writes_file = command.output_files().next().is_some();
    let redirect_object = || command.output_files().last().map(|f| ctx.show(f));
    let Some(first) = words.first() else {
        // A group's redirection: `(echo …; echo …) > $@`.
        return writes_file.then(|| Candidate {
            rank: RANK_GEN,
            verb: "GEN".into(),
            object: ctx.target_or(|| redirect_object().unwrap_or_default()),
            rule: Rule::Generator,
            explicit: command.output_files().last().map(str::to_string),
        });
    };
    let name = basename(first);
    let args = &words[1..];

    // Test runs are recognised by their helper anywhere in the command.
    if let Some(pos) = words.iter().position(|w| {
        let b = basename(w);
        b == "evaluate-test.sh" || b == "test-driver" || b == "tap-driver.sh"
    }) {
        let named = words.get(pos + 1).filter(|w| !w.starts_with('-')).cloned();
        let object = if ctx.target.is_empty() {
            named.unwrap_or_default()
        } else {
            test_name(ctx)
        };
        return Some(Candidate {
            rank: RANK_TEST,
            verb: "TEST".into(),
            object,
            rule: Rule::TestRun,
            explicit: None,
        });
    }

    if name == "cd" || name == "pushd" {
        *cd = args.iter().find(|a| !a.starts_with('-')).cloned();
    }

    if is_make(name) {
        let object = submake_dir(args)
            .or_else(|| cd.clone())
            .map(|d| if d.starts_with('/') { ctx.show(&d) } else { d })
            .unwrap_or_else(|| ctx.show(&ctx.dir.to_string_lossy()));
        return Some(Candidate {
            rank: RANK_MAKE,
            verb: "MAKE".into(),
            object,
            rule: Rule::SubMake,
            explicit: None,
        });
    }

    if is_shell(name) && depth < 3 {
        // `sh -c 'text'`: classify the text itself. Only the shell's own options count:
        // those before its first operand (`sh ./libtool … -c x.c` runs a script).
        let mut options = args.iter().take_while(|a| a.starts_with('-'));
        if let Some(pos) = options.position(|a| !a.starts_with("--") && a.contains('c')) {
            if let Some(text) = args.get(pos + 1) {
                let inner = shell::simple_commands(text);
                collect(ctx, &inner, cd, best, depth + 1);
                return None;
            }
        }
    }

    // `sh script args`, `python3 -B script.py args`: the script is the program.
    let script = if is_interpreter(name) {
        args.iter().position(|a| !a.starts_with('-'))
    } else {
        None
    };
    let was_script = script.is_some();
    let (name, args) = match script {
        Some(pos) => (basename(&args[pos]), &args[pos + 1..]),
        None => (name, args),
    };

    if is_libtool(name) {
        return libtool(ctx, args, command, cd, best, depth);
    }
    if is_c_compiler(name) || is_cxx_compiler(name) {
        return Some(compiler(ctx, name, args, command));
    }
    if name == "distcc" && args.first().is_some_and(|a| a.starts_with('-')) {
        // `distcc -c x.c`: distcc runs `cc` (ccache, icecc and the others need a
        // compiler's name: `ccache -s` is ccache's own command).
        return Some(compiler(ctx, "cc", args, command));
    }
    if is_assembler(name) {
        let object = ctx.target_or(|| {
            output_option(args)
                .map(|o| ctx.show(&o))
                .unwrap_or_default()
        });
        return Some(Candidate {
            rank: RANK_BUILD,
            verb: "AS".into(),
            object,
            rule: Rule::Assembler,
            explicit: output_option(args),
        });
    }
    if is_linker(name) {
        let object = ctx.target_or(|| {
            output_option(args)
                .map(|o| ctx.show(&o))
                .unwrap_or_default()
        });
        return Some(Candidate {
            rank: RANK_BUILD,
            verb: "LD".into(),
            object,
            rule: Rule::Linker,
            explicit: output_option(args),
        });
    }
    if is_archiver(name) {
        let object = ctx.target_or(|| {
            // `ar cru lib.a objs…`: the archive follows the operation letters.
            let operands: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
            let archive = if name.contains("ranlib") {
                operands.first()
            } else {
                operands.get(1)
            };
            archive.map(|a| ctx.show(a)).unwrap_or_default()
        });
        return Some(Candidate {
            rank: RANK_AR,
            verb: "AR".into(),
            object,
            rule: Rule::Archiver,
            explicit: None,
        });
    }
    if matches!(name, "install" | "ginstall" | "install-sh") {
        let object = ctx.target_or(|| last_operand(args).map(|a| ctx.show(a)).unwrap_or_default());
        return Some(Candidate {
            rank: RANK_INSTALL,
            verb: "INSTALL".into(),
            object,
            rule: Rule::Install,
            explicit: last_operand(args).cloned(),
        });
    }
    if matches!(name, "pytest" | "py.test" | "ctest" | "prove") {
        return Some(Candidate {
            rank: RANK_TEST,
            verb: "TEST".into(),
            object: test_name(ctx),
            rule: Rule::TestRun,
            explicit: None,
        });
    }
    if test_target(ctx)
        && !best.as_ref().is_some_and(|b| b.rank >= RANK_AR)
        && bookkeeping(name).is_none()
    {
        return Some(Candidate {
            rank: RANK_TEST,
            verb: "TEST".into(),
            object: test_name(ctx),
            rule: Rule::TestRun,
            explicit: None,
        });
    }
    let written = command
        .output_files()
        .last()
        .map(str::to_string)
        .or_else(|| output_option(args));
    let writes_target = writes_file
        || output_option(args).is_some()
        || (!ctx.target.is_empty() && args.iter().any(|a| mentions(a, &ctx.target)));
    if is_generator(name) || was_script || looks_like_script(first) {
        let object = ctx.target_or(|| {
            redirect_object()
                .or_else(|| output_option(args).map(|o| ctx.show(&o)))
                .or_else(|| last_operand(args).map(|a| ctx.show(a)))
                .unwrap_or_default()
        });
        if let Some((verb, rank)) = bookkeeping(name).filter(|_| !writes_file) {
            return Some(Candidate {
                rank,
                verb: verb.into(),
                object,
                rule: Rule::Bookkeeping,
                explicit: None,
            });
        }
        return Some(Candidate {
            rank: RANK_GEN,
            verb: "GEN".into(),
            object,
            rule: Rule::Generator,
            explicit: written.clone(),
        });
    }
    if matches!(strip_version(name), "objcopy" | "strip" | "eu-strip")
        || name.ends_with("-objcopy")
        || name.ends_with("-strip")
    {
        let verb = if name.contains("objcopy") {
            "OBJCOPY"
        } else {
            "STRIP"
        };
        let object = ctx.target_or(|| last_operand(args).map(|a| ctx.show(a)).unwrap_or_default());
        return Some(Candidate {
            rank: RANK_BINUTILS,
            verb: verb.into(),
            object,
            rule: Rule::Binutils,
            explicit: last_operand(args).cloned(),
        });
    }
    if let Some((verb, rank)) = bookkeeping(name) {
        if writes_file && matches!(verb, "ECHO" | "SH" | "CHECK") {
            let object = ctx.target_or(|| redirect_object().unwrap_or_default());
            return Some(Candidate {
                rank: RANK_GEN,
                verb: "GEN".into(),
                object,
                rule: Rule::Generator,
                explicit: written.clone(),
            });
        }
        let object = ctx.target_or(|| last_operand(args).map(|a| ctx.show(a)).unwrap_or_default());
        return Some(Candidate {
            rank,
            verb: verb.into(),
            object,
            rule: Rule::Bookkeeping,
            explicit: matches!(verb, "TOUCH" | "MKDIR" | "CP" | "LN" | "MV" | "CHMOD")
                .then(|| last_operand(args).cloned())
                .flatten(),
        });
    }
    if writes_target {
        let object = ctx.target_or(|| {
            redirect_object()
                .or_else(|| output_option(args).map(|o| ctx.show(&o)))
                .unwrap_or_default()
        });
        return Some(Candidate {
            rank: RANK_GEN,
            verb: "GEN".into(),
            object,
            rule: Rule::Generator,
            explicit: written.clone(),
        });
    }
    if name.contains('$') || name.contains('`') || name.is_empty() {
        // A program chosen at run time: nothing to call it by.
        return Some(Candidate {
            rank: 2,
            verb: "SH".into(),
            object: ctx.target_or(String::new),
            rule: Rule::Fallback,
            explicit: None,
        });
    }
    Some(Candidate {
        rank: RANK_FALLBACK,
        verb: name.to_uppercase(),
        object: ctx.target_or(|| last_operand(args).map(|a| ctx.show(a)).unwrap_or_default()),
        rule: Rule::Fallback,
        explicit: None,
    })
}

fn is_libtool(name: &str) -> bool {
    let n = strip_version(name);
    n == "libtool" || n == "glibtool" || n.ends_with("-libtool")
}

/// The mode a libtool command runs in and what it runs (`ltmain.sh`): options come
/// first; the mode is `--mode=M` or `--mode M` with a whole mode name, `--finish`, or the
/// first argument as a mode name or any abbreviation of one (`c`, `comp`, `li`, `u`);
/// the first other operand starts the command (`gcc …`, `install …`, `./prog …`).
struct Libtool<'a> {
    mode: Option<&'static str>,
    /// `--tag=CXX`: the language of the compiler.
    tag: Option<&'a str>,
    command: &'a [String],
}

/// In the order the shorthand tries them: `c` is `compile`, `cl` is `clean`.
const LIBTOOL_MODES: [&str; 8] = [
    "compile",
    "clean",
    "execute",
    "finish",
    "install",
    "link",
    "relink",
    "uninstall",
];

impl<'a> Libtool<'a> {
    fn parse(args: &'a [String]) -> Self {
        let mut mode = None;
        let mut tag = None;
        let mut i = 0;
        // The shorthand: `libtool c gcc …`, `libtool link gcc …` (not `relink`).
        if let Some(first) = args.first() {
            mode = LIBTOOL_MODES
                .iter()
                .find(|m| **m != "relink" && !first.is_empty() && m.starts_with(first.as_str()))
                .copied();
            if mode.is_some() {
                i = 1;
            }
        }
        let whole = |m: &str| LIBTOOL_MODES.iter().find(|w| **w == m).copied();
        while let Some(a) = args.get(i) {
            let value = args.get(i + 1).map(String::as_str);
            match a.as_str() {
                "--mode" => (mode, i) = (value.and_then(whole), i + 1),
                "--tag" => (tag, i) = (value, i + 1),
                // execute's `-dlopen lib.la` comes after the mode.
                "--warnings" | "--warning" | "-W" | "-dlopen" => i += 1,
                "--finish" => mode = Some("finish"),
                "--" => {
                    i += 1;
                    break;
                }
                _ if a.starts_with("--mode=") => mode = whole(&a["--mode=".len()..]),
                _ if a.starts_with("--tag=") => tag = Some(&a["--tag=".len()..]),
                // --silent, --quiet, --no-silent, -n, -v, --debug, --preserve-dup-deps …
                _ if a.starts_with('-') => {}
                _ => break,
            }
            i += 1;
        }
        Libtool {
            mode,
            tag,
            command: &args[i.min(args.len())..],
        }
    }
}

/// A libtool command, labelled as automake's silent rules label it: `compile` by its
/// compiler (`CC x.lo`, `CXX`, `AS`), `link` and `relink` `CCLD` (`CXXLD`, `F77LD`,
/// `FCLD`, `OBJCLD`, `OBJCXXLD` by the tag or compiler), `install` and `finish`
/// `INSTALL`, `uninstall` and `clean` `RM`, and `execute` by what it runs (a program no
/// rule knows is `TEST` when it looks like a test, else `RUN`). Without a mode: Apple's
/// `libtool -static -o lib.a` is `AR`; anything else falls back to `LIBTOOL`.
fn libtool(
    ctx: &Context,
    args: &[String],
    command: &SimpleCommand,
    cd: &mut Option<String>,
    best: &mut Option<Candidate>,
    depth: u8,
) -> Option<Candidate> {
    let lt = Libtool::parse(args);
    let known_tag = lt.tag.filter(|t| {
        matches!(
            *t,
            "CC" | "CXX" | "F77" | "FC" | "GO" | "GCJ" | "RC" | "OBJC" | "OBJCXX"
        )
    });
    let run = skip_wrappers(lt.command);
    let program = run.first().map(|p| basename(p)).unwrap_or("");
    let run_args = run.get(1..).unwrap_or_default();
    let with_object = |rank, verb: &str, rule, written: Option<String>| Candidate {
        rank,
        verb: verb.into(),
        object: ctx.target_or(|| written.as_deref().map(|w| ctx.show(w)).unwrap_or_default()),
        rule,
        explicit: written,
    };
    Some(match lt.mode {
        Some("compile") => {
            let parsed = CompilerArgs::parse(run_args);
            let known = is_c_compiler(program) || is_cxx_compiler(program);
            let verb = parsed
                .compile_verb(program)
                .filter(|_| known)
                .or(known_tag)
                .unwrap_or("CC");
            // Without `-o`, libtool names the object after the source (`x.c` → `x.lo`,
            // and writes `x.o` beside it): a target stays the better name.
            let derived = || {
                let source = basename(parsed.inputs.last()?);
                let stem = source.rsplit_once('.').map_or(source, |(stem, _)| stem);
                Some(format!("{stem}.lo"))
            };
            let mut compiled = with_object(
                RANK_BUILD,
                verb,
                Rule::Compiler,
                parsed.output.clone().or_else(derived),
            );
            compiled.explicit = parsed.output.clone();
            compiled
        }
        Some("link" | "relink") => {
            let verb = match known_tag {
                Some(tag @ ("F77" | "FC" | "OBJC" | "OBJCXX")) => format!("{tag}LD"),
                Some("CXX") => "CXXLD".into(),
                _ if is_cxx_compiler(program) => "CXXLD".into(),
                _ => "CCLD".into(),
            };
            with_object(RANK_BUILD, &verb, Rule::Linker, output_option(run_args))
        }
        Some("install" | "finish") => {
            let operands = if lt.mode == Some("finish") {
                lt.command
            } else {
                run_args
            };
            let written = last_operand(operands).cloned();
            with_object(RANK_INSTALL, "INSTALL", Rule::Install, written)
        }
        Some("uninstall" | "clean") => {
            let mut removed =
                with_object(19, "RM", Rule::Bookkeeping, last_operand(run_args).cloned());
            removed.explicit = None;
            removed
        }
        // execute
        Some(_) => return execute(ctx, lt.command, command, cd, best, depth),
        None if args.iter().any(|a| a == "-static") => {
            with_object(RANK_AR, "AR", Rule::Archiver, output_option(args))
        }
        None => Candidate {
            rank: RANK_FALLBACK,
            verb: "LIBTOOL".into(),
            object: ctx.target_or(|| last_operand(args).map(|a| ctx.show(a)).unwrap_or_default()),
            rule: Rule::Fallback,
            explicit: None,
        },
    })
}

/// `libtool --mode=execute [valgrind …|gdb --args] prog args`: what `prog` does by
/// the other rules; a program no rule knows is `TEST prog` when it looks like a test
/// (`test*`, `tst*`, `check*`, `*test`, `*tests`, run for `check`, `test`, `tests` or
/// `installcheck`, or the target is a test result), else `RUN prog`.
fn execute(
    ctx: &Context,
    words: &[String],
    command: &SimpleCommand,
    cd: &mut Option<String>,
    best: &mut Option<Candidate>,
    depth: u8,
) -> Option<Candidate> {
    let mut words = skip_wrappers(words);
    // What a test suite runs programs under: `valgrind [--opt=value …] prog`,
    // `gdb … --args prog`.
    match words.first().map(|w| basename(w)) {
        Some("valgrind") => {
            words = &words[1..];
            while words.first().is_some_and(|w| w.starts_with('-')) {
                words = &words[1..];
            }
        }
        Some("gdb") => {
            if let Some(pos) = words.iter().position(|w| w == "--args") {
                words = &words[pos + 1..];
            }
        }
        _ => {}
    }
    let program = words.first()?.clone();
    let inner = SimpleCommand {
        assignments: Vec::new(),
        words: words.to_vec(),
        redirects: command.redirects.clone(),
    };
    let ran = if depth < 3 {
        classify_simple(ctx, &inner, cd, best, depth + 1)
    } else {
        None
    };
    if let Some(ran) = ran.filter(|c| c.rule != Rule::Fallback) {
        return Some(ran);
    }
    let name = basename(&program);
    let looks_like_test = ["test", "tst", "check"].iter().any(|p| name.starts_with(p))
        || name.ends_with("test")
        || name.ends_with("tests")
        || matches!(
            ctx.target.as_str(),
            "check" | "test" | "tests" | "installcheck"
        );
    let shown = ctx.show(&program);
    Some(if test_target(ctx) {
        Candidate {
            rank: RANK_TEST,
            verb: "TEST".into(),
            object: test_name(ctx),
            rule: Rule::TestRun,
            explicit: None,
        }
    } else {
        Candidate {
            rank: if looks_like_test {
                RANK_TEST
            } else {
                RANK_FALLBACK
            },
            verb: if looks_like_test { "TEST" } else { "RUN" }.into(),
            object: if ctx.target.is_empty() || !mentions_anywhere(words, &ctx.target) {
                shown
            } else {
                ctx.show(&ctx.target)
            },
            rule: if looks_like_test {
                Rule::TestRun
            } else {
                Rule::Run
            },
            explicit: None,
        }
    })
}

fn mentions_anywhere(words: &[String], target: &str) -> bool {
    words.iter().any(|w| mentions(w, target))
}

/// A compiler's command line, as far as labels care.
struct CompilerArgs<'a> {
    /// `-c`, `-S` or `-E` (`-M`/`-MM` alone count as `-E`); `None` links.
    mode: Option<&'a str>,
    /// Operands: sources and objects.
    inputs: Vec<&'a str>,
    output: Option<String>,
    /// `-x language`.
    language: Option<String>,
}

impl<'a> CompilerArgs<'a> {
    fn parse(args: &'a [String]) -> Self {
        let mut parsed = CompilerArgs {
            mode: None,
            inputs: Vec::new(),
            output: None,
            language: None,
        };
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            match a {
                "-c" | "-S" | "-E" => parsed.mode = Some(a),
                // Dependencies only: a preprocessor run.
                "-M" | "-MM" if parsed.mode.is_none() => parsed.mode = Some("-E"),
                "-o" => {
                    parsed.output = args.get(i + 1).cloned();
                    i += 1;
                }
                "-x" => {
                    parsed.language = args.get(i + 1).cloned();
                    i += 1;
                }
                "-I" | "-D" | "-U" | "-include" | "-imacros" | "-isystem" | "-iquote"
                | "-idirafter" | "-MF" | "-MT" | "-MQ" | "-L" | "-l" | "-Xlinker"
                | "-Xassembler" | "-Xpreprocessor" | "-T" | "-B" | "-specs" | "-aux-info"
                | "--param" | "-z" | "-e" | "-u" => i += 1,
                _ if a.starts_with("-o") && a.len() > 2 => parsed.output = Some(a[2..].to_string()),
                _ if a.starts_with('-') => {}
                _ => parsed.inputs.push(a),
            }
            i += 1;
        }
        parsed
    }

    /// What the compile makes of its sources: `CC`, `CXX`, `AS` or `CPP` (`None` when it
    /// links).
    fn compile_verb(&self, compiler: &str) -> Option<&'static str> {
        let assembly_source = |f: &&str| {
            f.ends_with(".S") || f.ends_with(".s") || f.ends_with(".sx") || f.ends_with(".asm")
        };
        let cxx_source = |f: &&str| {
            [".cc", ".cpp", ".cxx", ".C", ".c++"]
                .iter()
                .any(|s| f.ends_with(s))
        };
        let is_asm = self
            .language
            .as_deref()
            .is_some_and(|l| l.starts_with("assembler"))
            || self.inputs.iter().any(assembly_source);
        let is_cxx = is_cxx_compiler(compiler)
            || self.language.as_deref() == Some("c++")
            || self.inputs.iter().any(cxx_source);
        match self.mode {
            Some("-E") => Some("CPP"),
            Some(_) if is_asm => Some("AS"),
            Some(_) if is_cxx => Some("CXX"),
            Some(_) => Some("CC"),
            None => None,
        }
    }
}

fn compiler(ctx: &Context, name: &str, args: &[String], command: &SimpleCommand) -> Candidate {
    let parsed = CompilerArgs::parse(args);
    let (verb, rule) = match parsed.compile_verb(name) {
        Some(verb) => (verb, Rule::Compiler),
        None => ("LD", Rule::Linker),
    };
    let output = parsed.output.clone();
    let object = ctx.target_or(|| {
        output
            .clone()
            .or_else(|| command.output_files().last().map(str::to_string))
            .or_else(|| parsed.inputs.first().map(|s| s.to_string()))
            .map(|o| ctx.show(&o))
            .unwrap_or_default()
    });
    // No mode, no input, no output: a query (`gcc -print-file-name=…`, `-Wl,--verbose`),
    // less telling than whatever uses its answer.
    let rank = if parsed.mode.is_none() && parsed.inputs.is_empty() && output.is_none() {
        3
    } else {
        RANK_BUILD
    };
    Candidate {
        rank,
        verb: verb.into(),
        object,
        rule,
        explicit: output.or_else(|| command.output_files().last().map(str::to_string)),
    }
}

/// `-C dir`, `-Cdir`, `--directory=dir`, `--directory dir`.
fn submake_dir(args: &[String]) -> Option<String> {
    let mut i = 0;
    let mut dir: Option<String> = None;
    while i < args.len() {
        let a = &args[i];
        if a == "-C" || a == "--directory" {
            let d = args.get(i + 1)?.clone();
            // Several -C options nest.
            dir = Some(match dir {
                Some(prev) if !d.starts_with('/') => format!("{prev}/{d}"),
                _ => d,
            });
            i += 1;
        } else if let Some(d) = a
            .strip_prefix("--directory=")
            .or_else(|| a.strip_prefix("-C"))
        {
            dir = Some(d.to_string());
        }
        i += 1;
    }
    dir
}

fn output_option(args: &[String]) -> Option<String> {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "-o" || a == "--output" {
            return args.get(i + 1).cloned();
        }
        if let Some(o) = a.strip_prefix("--output=") {
            return Some(o.to_string());
        }
        i += 1;
    }
    None
}

fn last_operand(args: &[String]) -> Option<&String> {
    args.iter()
        .rev()
        .find(|a| !a.starts_with('-') && !a.is_empty())
}

fn looks_like_script(program: &str) -> bool {
    [".sh", ".py", ".pl", ".awk", ".rb", ".tcl"]
        .iter()
        .any(|s| program.ends_with(s))
        || program.contains("scripts/")
}

/// Whether a word names the target (or its temporary twin `$@T`, `$@.new`, `$@-tmp`).
fn mentions(word: &str, target: &str) -> bool {
    let t = basename(target);
    if t.is_empty() {
        return false;
    }
    word.match_indices(t).any(|(pos, _)| {
        let before = &word[..pos];
        let after = &word[pos + t.len()..];
        (before.is_empty() || before.ends_with('/') || before.ends_with('='))
            && (after.is_empty()
                || (after.len() <= 6 && after.starts_with(['T', '.', '-', '~', '$', '_'])))
    })
}

fn test_target(ctx: &Context) -> bool {
    ctx.target.ends_with(".out")
        || ctx.target.ends_with(".test-result")
        || ctx.target.ends_with(".trs")
}

/// A test's name: its target without the result suffix.
fn test_name(ctx: &Context) -> String {
    let shown = ctx.show(&ctx.target);
    for suffix in [".test-result", ".out", ".trs", ".log"] {
        if let Some(name) = shown.strip_suffix(suffix) {
            return name.to_string();
        }
    }
    shown
}

/// `path` (relative to `dir` unless absolute) as seen from `top`: `elf/dl-load.os`.
/// Paths far outside `top` (more than two levels up, or sharing nothing but the root)
/// stay absolute; with a relative `top` or `dir`, `path` stays as written.
pub fn relative_to(top: &Path, dir: &Path, path: &str) -> String {
    let (top, dir) = (paths::as_bytes(top), paths::as_bytes(dir));
    let written = path.as_bytes();
    if !paths::is_absolute(top) || !(paths::is_absolute(written) || paths::is_absolute(dir)) {
        return path.to_string();
    }
    let full = paths::absolute(dir, written);
    let shown = paths::relative(&full, top, 2).unwrap_or(full);
    String::from_utf8_lossy(&shown).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(dir: &str, target: &str, command: &str) -> CommandInfo {
        CommandInfo {
            id: 1,
            target: target.into(),
            directory: dir.into(),
            top_directory: b"/b".to_vec(),
            command: command.into(),
            recipe_file: b"Makefile".to_vec(),
            recipe_line: 1,
            make_level: 0,
        }
    }

    fn label(dir: &str, target: &str, command: &str) -> (String, Rule) {
        let c = classify(&info(dir, target, command));
        (format!("{} {}", c.label.verb, c.label.object), c.rule)
    }

    #[test]
    fn compilers() {
        assert_eq!(
            label("/src/elf", "/b/elf/dl-load.os", "gcc dl-load.c -c -std=gnu11 -O2 -I../include -o /b/elf/dl-load.os -MD -MP -MF /b/elf/dl-load.os.dt"),
            ("CC elf/dl-load.os".into(), Rule::Compiler)
        );
        assert_eq!(
            label("/src/string", "/b/string/strlen-avx2.os", "gcc ../sysdeps/x86_64/multiarch/strlen-avx2.S -c -DPIC -o /b/string/strlen-avx2.os"),
            ("AS string/strlen-avx2.os".into(), Rule::Compiler)
        );
        assert_eq!(
            label("/b", "x.o", "ccache g++-12 -O2 -c x.cc -o x.o"),
            ("CXX x.o".into(), Rule::Compiler)
        );
        assert_eq!(
            label("/b", "x.s", "clang -S x.c"),
            ("CC x.s".into(), Rule::Compiler)
        );
        assert_eq!(
            label("/b", "x.o", "x86_64-linux-gnu-gcc -c x.c"),
            ("CC x.o".into(), Rule::Compiler)
        );
        assert_eq!(
            label(
                "/b",
                "bits/stdio_lim.h",
                "{ echo '#include \"x.h\"'; } | gcc -E -dM -MD -x c - > bits/stdio_lim.hT"
            ),
            ("CPP bits/stdio_lim.h".into(), Rule::Compiler)
        );
        // Without a target, the -o word names the object.
        assert_eq!(
            label("/src/csu", "", "gcc init-first.c -c -o /b/csu/init-first.o"),
            ("CC csu/init-first.o".into(), Rule::Compiler)
        );
    }

    /// The job label of these recipe lines (target, directory /b), each line labelled
    /// by the rules or, after `hook:`, by a hook.
    fn job(target: &str, lines: &[&str]) -> String {
        let infos: Vec<CommandInfo> = lines
            .iter()
            .map(|l| info("/b", target, l.trim_start_matches("hook:")))
            .collect();
        let labels: Vec<Label> = lines
            .iter()
            .zip(&infos)
            .map(|(l, i)| match l.strip_prefix("hook:") {
                Some(_) => Label {
                    verb: "HOOK".into(),
                    object: format!("line of {target}"),
                },
                None => default_label(i),
            })
            .collect();
        let job_lines: Vec<JobLine> = infos
            .iter()
            .zip(&labels)
            .zip(lines)
            .map(|((info, label), l)| JobLine {
                info,
                label,
                by_hook: l.starts_with("hook:"),
            })
            .collect();
        let l = job_label(&job_lines);
        format!("{} {}", l.verb, l.object)
    }

    #[test]
    fn a_job_is_named_by_its_principal_line_and_its_target() {
        // zlib: mkdir, compile into objs/, mv to the target.
        assert_eq!(
            job(
                "adler32.lo",
                &[
                    "mkdir objs 2>/dev/null || test -d objs",
                    "cc -fPIC -c -o objs/adler32.o adler32.c",
                    "mv objs/adler32.o adler32.lo"
                ]
            ),
            "CC adler32.lo"
        );
        // A link, then its strip.
        assert_eq!(job("prog", &["cc -o prog main.o", "strip prog"]), "LD prog");
        // glibc's sysd-rules: rm, generate into $@T, mv.
        assert_eq!(
            job(
                "/b/sysd-rules",
                &[
                    "rm -f /b/sysd-rules.T",
                    "(echo a; echo b) > /b/sysd-rules.T",
                    "mv -f /b/sysd-rules.T /b/sysd-rules"
                ]
            ),
            "GEN sysd-rules"
        );
        // Housekeeping only: the highest of it; one line keeps its own label.
        assert_eq!(job("stamp", &["echo making", "touch stamp"]), "TOUCH stamp");
        assert_eq!(job("d/x.h", &["mkdir -p d"]), "MKDIR d");
        // An unknown program is work; `true` is not.
        assert_eq!(job("doc", &["true", "frob --all"]), "FROB doc");
        // Two compiles, the target unnamed: both objects.
        assert_eq!(
            job("both", &["cc -c a.c -o a.o", "cc -c b.c -o b.o"]),
            "CC a.o b.o"
        );
        // A sub-make keeps its directory.
        assert_eq!(job("all", &["mkdir -p sub", "make -C sub all"]), "MAKE sub");
    }

    #[test]
    fn a_hooks_label_overrides_the_jobs_rule() {
        assert_eq!(
            job(
                "x.lo",
                &[
                    "mkdir -p objs",
                    "cc -c -o objs/x.o x.c",
                    "hook:mv objs/x.o x.lo"
                ]
            ),
            "HOOK line of x.lo"
        );
    }

    #[test]
    fn linkers() {
        assert_eq!(
            label("/src/elf", "/b/elf/ld.so", "gcc -nostdlib -nostartfiles -shared -o /b/elf/ld.so.new -Wl,-z,defs /b/elf/librtld.os"),
            ("LD elf/ld.so".into(), Rule::Linker)
        );
        assert_eq!(
            label("/b", "prog", "cc -o prog a.o b.o -lm"),
            ("LD prog".into(), Rule::Linker)
        );
        assert_eq!(
            label("/b", "", "ld -r -o all.o a.o b.o"),
            ("LD all.o".into(), Rule::Linker)
        );
        assert_eq!(
            label(
                "/b",
                "",
                "/usr/lib/gcc/x86_64-linux-gnu/12/collect2 -o x a.o"
            ),
            ("LD x".into(), Rule::Linker)
        );
    }

    #[test]
    fn assemblers() {
        assert_eq!(
            label("/b", "start.o", "as --64 -o start.o start.s"),
            ("AS start.o".into(), Rule::Assembler)
        );
        assert_eq!(
            label("/b", "", "nasm -f elf64 -o a.o a.asm"),
            ("AS a.o".into(), Rule::Assembler)
        );
    }

    #[test]
    fn archivers() {
        assert_eq!(
            label(
                "/b",
                "/b/libc_pic.a",
                "cd /b && ar cruv libc_pic.a `cat csu/stamp.os`"
            ),
            ("AR libc_pic.a".into(), Rule::Archiver)
        );
        assert_eq!(
            label(
                "/b",
                "",
                "ar crv /b/sunrpc/librpc_compat_pic.a /b/sunrpc/a.os"
            ),
            ("AR sunrpc/librpc_compat_pic.a".into(), Rule::Archiver)
        );
        assert_eq!(
            label("/b", "", "ranlib libfoo.a"),
            ("AR libfoo.a".into(), Rule::Archiver)
        );
    }

    #[test]
    fn generators() {
        assert_eq!(
            label(
                "/src",
                "/b/sysd-rules",
                "LC_ALL=C gawk -f scripts/sysd-rules.awk > /b/sysd-rulesT \\\n\t\t-v x='.o .os'"
            ),
            ("GEN sysd-rules".into(), Rule::Generator)
        );
        assert_eq!(
            label(
                "/src/csu",
                "/b/csu/abi-tag.h",
                "sed -e 's/x/y/' < abi-tag.h.in > /b/csu/abi-tag.h.new"
            ),
            ("GEN csu/abi-tag.h".into(), Rule::Generator)
        );
        assert_eq!(
            label("/src/iconvdata", "/b/iconvdata/iso8859-2.stmp", "LC_ALL=C /bin/sh ./gen-8bit.sh ../localedata/charmaps/ISO-8859-2 > /b/iconvdata/iso8859-2.T"),
            ("GEN iconvdata/iso8859-2.stmp".into(), Rule::Generator)
        );
        assert_eq!(
            label("/src/csu", "/b/tcb-offsets.h", "python3 -B ../scripts/gen-as-const.py --cc=\"gcc -O2\" tcb-offsets.sym > /b/tcb-offsets.hT"),
            ("GEN tcb-offsets.h".into(), Rule::Generator)
        );
        assert_eq!(
            label(
                "/b",
                "x.h",
                "(echo '#define A 1'; \\\n echo '#define B 2') > x.hT"
            ),
            ("GEN x.h".into(), Rule::Generator)
        );
        assert_eq!(
            label("/b", "", "echo '' > /b/csu/stamp.oST"),
            ("GEN csu/stamp.oST".into(), Rule::Generator)
        );
        assert_eq!(
            label("/b", "parse.c", "bison -d -o parse.c parse.y"),
            ("GEN parse.c".into(), Rule::Generator)
        );
        assert_eq!(
            label("/b", "out.txt", "./tool --frobnicate -o out.txt"),
            ("GEN out.txt".into(), Rule::Generator)
        );
        // A program nobody knows that writes its target is a generator too.
        assert_eq!(
            label("/b", "data.bin", "frob data.in data.bin"),
            ("GEN data.bin".into(), Rule::Generator)
        );
    }

    #[test]
    fn test_runs() {
        let text = "env GCONV_PATH=/b/iconvdata LC_ALL=C /b/elf/ld-linux-x86-64.so.2 --library-path /b /b/elf/tst-tls1 > /b/elf/tst-tls1.out; \\\n../scripts/evaluate-test.sh elf/tst-tls1 $? false false > /b/elf/tst-tls1.test-result";
        assert_eq!(
            label("/src/elf", "/b/elf/tst-tls1.out", text),
            ("TEST elf/tst-tls1".into(), Rule::TestRun)
        );
        assert_eq!(
            label("/src/elf", "", text),
            ("TEST elf/tst-tls1".into(), Rule::TestRun)
        );
        assert_eq!(
            label(
                "/b",
                "/b/string/tst-x.out",
                "/bin/bash tst-x.sh /b/ > /b/string/tst-x.out"
            ),
            ("TEST string/tst-x".into(), Rule::TestRun)
        );
        assert_eq!(
            label(
                "/b",
                "t1.log",
                "../build-aux/test-driver --test-name t1 --log-file t1.log -- ./t1"
            ),
            ("TEST t1".into(), Rule::TestRun)
        );
        // A program linked to a.out is no test.
        assert_eq!(
            label("/b", "a.out", "gcc x.c"),
            ("LD a.out".into(), Rule::Linker)
        );
    }

    #[test]
    fn submakes() {
        assert_eq!(
            label(
                "/src",
                "subdir_lib",
                "make  subdir=elf -C elf ..=../ subdir_lib"
            ),
            ("MAKE elf".into(), Rule::SubMake)
        );
        assert_eq!(
            label(
                "/b",
                "all",
                "make -r PARALLELMFLAGS=\"\" -C ../src objdir=`pwd` all"
            ),
            ("MAKE ../src".into(), Rule::SubMake)
        );
        assert_eq!(
            label("/b", "all", "cd lib && /usr/bin/make all"),
            ("MAKE lib".into(), Rule::SubMake)
        );
        assert_eq!(
            label("/b", "all", "for d in a b; do $(MAKE) -C $d; done"),
            ("SH all".into(), Rule::Fallback)
        );
        assert_eq!(
            label("/b", "all", "for d in a b; do make -C $d || exit 1; done"),
            ("MAKE $d".into(), Rule::SubMake)
        );
        assert_eq!(
            label("/b/sub", "all", "make --directory=/b/sub/x"),
            ("MAKE sub/x".into(), Rule::SubMake)
        );
        assert_eq!(
            label("/b/sub", "all", "make"),
            ("MAKE sub".into(), Rule::SubMake)
        );
    }

    #[test]
    fn install() {
        assert_eq!(
            label(
                "/b",
                "/b/bits/std_abs.h",
                "/usr/bin/install -c -m 644 /usr/include/x.h /b/bits/std_abs.hT"
            ),
            ("INSTALL bits/std_abs.h".into(), Rule::Install)
        );
        assert_eq!(
            label("/b", "", "install -m 755 prog /usr/bin/prog"),
            ("INSTALL /usr/bin/prog".into(), Rule::Install)
        );
    }

    #[test]
    fn bookkeeping_rules() {
        assert_eq!(
            label("/b", "", "mkdir -p -- /b/csu"),
            ("MKDIR csu".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/src", "", ".././scripts/mkinstalldirs /b/elf"),
            ("MKDIR elf".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label(
                "/b",
                "/b/x.h",
                "/bin/sh ../scripts/move-if-change /b/x.hT /b/x.h"
            ),
            ("MV x.h".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "", "mv -f /b/sysd-rulesT /b/sysd-rules"),
            ("MV sysd-rules".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "/b/x.stmp", "touch /b/x.stmp"),
            ("TOUCH x.stmp".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "clean", "rm -f *.o"),
            ("RM clean".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label(
                "/b",
                "",
                "/bin/sh ../scripts/rellns-sh /b/elf/ld.so /b/elf/ld.so.2.new"
            ),
            ("LN elf/ld.so.2.new".into(), Rule::Bookkeeping)
        );
        // mv after rm: mv is the more telling.
        assert_eq!(
            label("/b", "t", "rm -f t; mv t.new t"),
            ("MV t".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "", "test -s /b/shlib.ldsT"),
            ("CHECK shlib.ldsT".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "", "echo hello"),
            ("ECHO hello".into(), Rule::Bookkeeping)
        );
        // A compile beats the bookkeeping around it.
        assert_eq!(
            label(
                "/b",
                "x.o",
                "mkdir -p d && cd d && gcc -c ../x.c -o ../x.o; mv -f a b"
            ),
            ("CC x.o".into(), Rule::Compiler)
        );
    }

    #[test]
    fn binutils() {
        assert_eq!(
            label("/b", "x.debug", "objcopy --only-keep-debug x x.debug"),
            ("OBJCOPY x.debug".into(), Rule::Binutils)
        );
        assert_eq!(
            label("/b", "", "strip prog"),
            ("STRIP prog".into(), Rule::Binutils)
        );
    }

    #[test]
    fn nested_shell() {
        assert_eq!(
            label("/b", "x.o", "sh -c 'cd sub && gcc -c x.c -o ../x.o'"),
            ("CC x.o".into(), Rule::Compiler)
        );
    }

    #[test]
    fn phony_targets_name_what_is_written() {
        assert_eq!(
            label("/b/d", "all", "touch x"),
            ("TOUCH d/x".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "all", "gcc -o prog main.o"),
            ("LD prog".into(), Rule::Linker)
        );
        assert_eq!(
            label("/b", "docs", "pandoc a.md > a.html"),
            ("GEN a.html".into(), Rule::Generator)
        );
        // A file target stays, even when only its temporary twin is named.
        assert_eq!(
            label("/b", "x.stmp", "gen.sh > x.T"),
            ("GEN x.stmp".into(), Rule::Generator)
        );
        assert_eq!(
            label("/b", "clean", "rm -f *.o"),
            ("RM clean".into(), Rule::Bookkeeping)
        );
    }

    #[test]
    fn fallback_and_empty() {
        assert_eq!(
            label("/b", "doc", "frobnicate --all"),
            ("FROBNICATE doc".into(), Rule::Fallback)
        );
        assert_eq!(
            label("/b", "", "frobnicate --all x"),
            ("FROBNICATE x".into(), Rule::Fallback)
        );
        assert_eq!(label("/b", "t", "   "), ("SH t".into(), Rule::Empty));
        assert_eq!(label("/b", "t", "X=1 Y=2"), ("SH t".into(), Rule::Empty));
    }

    #[test]
    fn libtool_compile() {
        let expect = |target: &str, command: &str, want: &str| {
            assert_eq!(
                label("/b/src", target, command),
                (want.to_string(), Rule::Compiler),
                "{command}"
            );
        };
        // automake's LTCOMPILE, through `$(SHELL) $(top_builddir)/libtool`.
        let ltcompile = "/bin/bash ../libtool  --tag=CC   --mode=compile gcc -DHAVE_CONFIG_H -I. -I.. -I../include -O2 -Wall -ffast-math -fsigned-char -g -O2 -MT bitwise.lo -MD -MP -MF .deps/bitwise.Tpo -c -o bitwise.lo bitwise.c";
        expect("bitwise.lo", ltcompile, "CC src/bitwise.lo");
        expect("", ltcompile, "CC src/bitwise.lo");
        expect(
            "",
            "libtool --mode=compile gcc -O2 -c lapi.c -o lapi.lo",
            "CC src/lapi.lo",
        );
        // Without -o, libtool names the object after the source.
        expect("", "libtool --mode=compile gcc -c lapi.c", "CC src/lapi.lo");
        // A target the command does not name (lua's `lapi.o: lapi.c`) stays the object.
        expect(
            "lapi.o",
            "libtool --quiet --mode=compile --tag=CC x86_64-linux-gnu-gcc -c lapi.c",
            "CC src/lapi.o",
        );
        expect(
            "",
            "../libtool --silent --tag=CXX --mode compile g++ -c a.cc -o a.lo",
            "CXX src/a.lo",
        );
        expect(
            "",
            "./libtool --tag=CC --mode=compile ccache gcc -c x.S -o x.lo",
            "AS src/x.lo",
        );
        // The shorthand: the mode as the first argument, abbreviated.
        expect("", "libtool compile gcc -c x.c", "CC src/x.lo");
        expect("", "libtool c gcc -c x.c", "CC src/x.lo");
        expect("", "libtool comp --tag=CC gcc -c x.c", "CC src/x.lo");
        // A compiler no rule knows is named by the tag.
        expect(
            "",
            "libtool --tag=F77 --mode=compile gfortran -c f.f -o f.lo",
            "F77 src/f.lo",
        );
        expect(
            "",
            "libtool --tag=RC --mode=compile windres r.rc -o r.lo",
            "RC src/r.lo",
        );
    }

    #[test]
    fn libtool_link() {
        let expect = |target: &str, command: &str, want: &str| {
            assert_eq!(
                label("/b/src", target, command),
                (want.to_string(), Rule::Linker),
                "{command}"
            );
        };
        let link = "/bin/bash ../libtool  --tag=CC   --mode=link gcc  -O2 -Wall -ffast-math -fsigned-char -g -O2 -no-undefined -version-info 8:5:8  -o libogg.la -rpath /usr/local/lib framing.lo bitwise.lo";
        expect("libogg.la", link, "CCLD src/libogg.la");
        expect("", link, "CCLD src/libogg.la");
        expect(
            "test_bitwise",
            "/bin/bash ../libtool  --tag=CC   --mode=link gcc -D_V_SELFTEST -O2 -Wall -ffast-math -fsigned-char -g -O2   -o test_bitwise test_bitwise-bitwise.o",
            "CCLD src/test_bitwise",
        );
        expect(
            "",
            "libtool --tag=CXX --mode=link g++ -o liba.la a.lo",
            "CXXLD src/liba.la",
        );
        expect("", "libtool --mode=link c++ -o prog a.o", "CXXLD src/prog");
        expect(
            "",
            "libtool link gcc -o liblua.la lapi.lo",
            "CCLD src/liblua.la",
        );
        expect(
            "",
            "libtool l gcc -o liblua.la lapi.lo",
            "CCLD src/liblua.la",
        );
        expect(
            "",
            "libtool --tag=F77 --mode=link gfortran -o libf.la f.lo",
            "F77LD src/libf.la",
        );
    }

    #[test]
    fn libtool_install_and_removal() {
        assert_eq!(
            label(
                "/b/src",
                "install-libLTLIBRARIES",
                "/bin/bash ../libtool   --mode=install /usr/bin/install -c   libogg.la '/usr/local/lib'"
            ),
            ("INSTALL /usr/local/lib".into(), Rule::Install)
        );
        assert_eq!(
            label(
                "/b",
                "",
                "libtool --mode=install install -c liblua.la /usr/lib"
            ),
            ("INSTALL /usr/lib".into(), Rule::Install)
        );
        assert_eq!(
            label("/b", "", "libtool i install -c liblua.la /usr/lib"),
            ("INSTALL /usr/lib".into(), Rule::Install)
        );
        assert_eq!(
            label("/b", "", "/bin/bash ./libtool --mode=finish /usr/local/lib"),
            ("INSTALL /usr/local/lib".into(), Rule::Install)
        );
        assert_eq!(
            label("/b", "", "libtool --finish /usr/local/lib"),
            ("INSTALL /usr/local/lib".into(), Rule::Install)
        );
        assert_eq!(
            label(
                "/b",
                "uninstall-libLTLIBRARIES",
                "/bin/bash ../libtool   --mode=uninstall rm -f '/usr/local/lib/libogg.la'"
            ),
            ("RM uninstall-libLTLIBRARIES".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "", "libtool --mode=clean rm -f x.lo"),
            ("RM x.lo".into(), Rule::Bookkeeping)
        );
        assert_eq!(
            label("/b", "", "libtool cl rm -f x.lo"),
            ("RM x.lo".into(), Rule::Bookkeeping)
        );
    }

    #[test]
    fn libtool_execute() {
        // A program no rule knows: a test when it looks like one, else RUN.
        assert_eq!(
            label(
                "/b/src",
                "check",
                "/bin/bash ../libtool --mode=execute ./test_bitwise"
            ),
            ("TEST src/test_bitwise".into(), Rule::TestRun)
        );
        assert_eq!(
            label(
                "/b/tests",
                "check",
                "libtool --mode=execute valgrind --leak-check=full -q ./framing-test"
            ),
            ("TEST tests/framing-test".into(), Rule::TestRun)
        );
        assert_eq!(
            label("/b/tests", "t1.log", "libtool --mode=execute ./t1 > t1.log"),
            ("GEN tests/t1.log".into(), Rule::Generator)
        );
        assert_eq!(
            label("/b/tests", "t1.trs", "libtool e ./t1"),
            ("TEST tests/t1".into(), Rule::TestRun)
        );
        assert_eq!(
            label(
                "/b/tools",
                "demo",
                "libtool --mode=execute -dlopen ../lib/libx.la ./inspect --all"
            ),
            ("RUN tools/inspect".into(), Rule::Run)
        );
        // lua's `make test`: a smoke test.
        assert_eq!(
            label(
                "/b/src",
                "test",
                "libtool --mode=execute -dlopen ./liblua5.4.la ./lua5.4 -v"
            ),
            ("TEST src/lua5.4".into(), Rule::TestRun)
        );
        // A program a rule knows keeps its label: a generator writing its target.
        assert_eq!(
            label(
                "/b",
                "tables.h",
                "libtool --mode=execute ./mktables > tables.h"
            ),
            ("GEN tables.h".into(), Rule::Generator)
        );
        assert_eq!(
            label("/b", "", "libtool --mode=execute gdb -q --args ./prog -v"),
            ("RUN prog".into(), Rule::Run)
        );
    }

    #[test]
    fn libtool_without_a_mode() {
        // Apple's libtool makes static archives.
        assert_eq!(
            label("/b", "", "libtool -static -o libx.a a.o b.o"),
            ("AR libx.a".into(), Rule::Archiver)
        );
        assert_eq!(
            label("/b", "version", "libtool --version"),
            ("LIBTOOL version".into(), Rule::Fallback)
        );
        // libtoolize is a generator, not libtool.
        assert_eq!(
            label("/b", "ltmain.sh", "libtoolize --copy"),
            ("GEN ltmain.sh".into(), Rule::Generator)
        );
    }

    #[test]
    fn compiler_wrappers() {
        let expect = |command: &str, want: &str| {
            assert_eq!(
                label("/b", "", command),
                (want.to_string(), Rule::Compiler),
                "{command}"
            );
        };
        expect("ccache gcc -c a.c -o a.o", "CC a.o");
        expect("sccache clang -c a.c -o a.o", "CC a.o");
        expect("buildcache g++ -c a.cc -o a.o", "CXX a.o");
        expect("distcc gcc -c a.c -o a.o", "CC a.o");
        expect("distcc -c a.c -o a.o", "CC a.o");
        expect("icecc gcc -c a.c -o a.o", "CC a.o");
        expect("/usr/lib/ccache/gcc -c a.c -o a.o", "CC a.o");
        expect("ccache distcc gcc -c a.c -o a.o", "CC a.o");
        expect("env CCACHE_DIR=/tmp/c ccache gcc -c a.c -o a.o", "CC a.o");
        expect("env -u LANG gcc -c a.c -o a.o", "CC a.o");
        expect(
            "env --unset=LANG -i PATH=/usr/bin gcc -c a.c -o a.o",
            "CC a.o",
        );
        expect("env --unset LANG gcc -c a.c -o a.o", "CC a.o");
        expect("env - gcc -c a.c -o a.o", "CC a.o");
        expect("nice -n 10 gcc -c a.c -o a.o", "CC a.o");
        expect("nice -10 gcc -c a.c -o a.o", "CC a.o");
        expect("time gcc -c a.c -o a.o", "CC a.o");
        expect("/usr/bin/time -f %e -o t.txt gcc -c a.c -o a.o", "CC a.o");
        expect("timeout -k 5 600 ccache gcc -c a.c -o a.o", "CC a.o");
        // A wrapper's own option: no compile.
        assert_eq!(
            label("/b", "stats", "ccache -s"),
            ("CCACHE stats".into(), Rule::Fallback)
        );
    }

    #[test]
    fn relative_paths() {
        let top = Path::new("/work/glibc/build");
        assert_eq!(
            relative_to(
                top,
                Path::new("/work/glibc/glibc-2.36/elf"),
                "/work/glibc/build/elf/x.os"
            ),
            "elf/x.os"
        );
        assert_eq!(
            relative_to(top, Path::new("/work/glibc/glibc-2.36/elf"), "plural.c"),
            "../glibc-2.36/elf/plural.c"
        );
        assert_eq!(relative_to(top, top, "."), ".");
        assert_eq!(
            relative_to(top, top, "/usr/include/x.h"),
            "/usr/include/x.h"
        );
        assert_eq!(relative_to(Path::new("relative"), top, "x"), "x");
    }
}
