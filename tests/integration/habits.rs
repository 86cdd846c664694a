//! makescope as other tools are used: shell completions and the man page generated from
//! the command line (`completions SHELL`, `man`), and the make plugin at a path that
//! stays (`plugin`), loaded by plain make.

use std::ffi::OsString;
use std::path::Path;

use crate::harness::{installed, makescope_bin, Output, Test};

/// The subcommands as `makescope --help` lists them.
const SUBCOMMANDS: &[&str] = &[
    "make",
    "log",
    "show",
    "targets",
    "replay",
    "tests",
    "plugin",
    "gc",
    "completions",
    "man",
];

/// `bash -c SCRIPT` in `test`'s directory and environment.
fn bash(test: &Test, script: &str) -> Output {
    let mut bash = test.program("bash");
    bash.args(["--norc", "--noprofile", "-c", script]);
    test.run_command(bash)
}

/// A test whose PATH finds makescope first, and whose data directory is its own.
fn with_makescope_on_path() -> Test {
    let test = Test::new();
    let bin = makescope_bin();
    let mut path = OsString::from(bin.parent().unwrap());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let data = test.path().join("data");
    test.env("PATH", path).env("XDG_DATA_HOME", data)
}

#[test]
fn bash_completion_is_valid_bash_and_registers_for_makescope() {
    let test = Test::new();
    let script = test.then(["completions", "bash"]);
    script.success();
    std::fs::write(test.path().join("complete.bash"), &script.stdout).unwrap();
    bash(&test, "bash -n complete.bash").success();
    let registered = bash(&test, "source complete.bash && complete -p makescope");
    registered.success();
    assert!(
        registered.stdout.contains("-F _makescope makescope"),
        "{}",
        registered.stdout
    );
}

#[test]
fn bash_completes_a_subcommand_from_its_first_letters() {
    let test = Test::new();
    let script = test.then(["completions", "bash"]);
    script.success();
    std::fs::write(test.path().join("complete.bash"), &script.stdout).unwrap();
    // What bash does on `makescope ma<TAB>`: the words, the cursor, then the function.
    let offered = bash(
        &test,
        "source complete.bash\n\
         COMP_WORDS=(makescope ma); COMP_CWORD=1\n\
         COMP_LINE='makescope ma'; COMP_POINT=${#COMP_LINE}\n\
         _makescope makescope ma makescope\n\
         printf '%s\\n' \"${COMPREPLY[@]}\"",
    );
    offered.success();
    let words: Vec<&str> = offered.stdout.lines().collect();
    assert_eq!(words, ["make", "man"], "{}", offered.stderr);
}

/// What bash offers on `make WORD<TAB>` (after `cd DIR` when given) with the `--make`
/// completion sourced, and bash-completion not loaded.
fn make_completion(test: &Test, line: &str) -> Vec<String> {
    let script = test.then(["completions", "--make", "bash"]);
    script.success();
    std::fs::write(test.path().join("make.bash"), &script.stdout).unwrap();
    let words: Vec<&str> = line.split(' ').collect();
    let offered = bash(
        test,
        &format!(
            "source make.bash\n\
             COMP_WORDS=({line}); COMP_CWORD={}\n\
             COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
             _makescope_make make '{}' '{}'\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        ),
    );
    offered.success();
    offered.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_make_goals_with_phony_targets_first() {
    let test = with_makescope_on_path()
        .makefile(
            "## Build everything.\nall: prog\nprog: main.o\n\tcc -o $@ $^\n\
             check: prog\n\t./prog\nclean:\n\trm -f prog *.o\n\
             .PHONY: all check clean\n",
        )
        .file(
            "sub/Makefile",
            "install-headers:\n\t@:\ninstall:\n\t@:\n.PHONY: install install-headers\n",
        );
    let all = make_completion(&test, "make ");
    assert_eq!(
        all.iter().take(3).collect::<Vec<_>>(),
        ["all", "check", "clean"],
        "phony goals first, sorted: {all:?}"
    );
    assert!(all.contains(&"prog".to_string()), "{all:?}");
    assert_eq!(make_completion(&test, "make c"), ["check", "clean"]);
    // `-C DIR` completes that directory's goals.
    assert_eq!(
        make_completion(&test, "make -C sub inst"),
        ["install", "install-headers"]
    );
    let fish = test.then(["completions", "--make", "fish"]);
    fish.success();
    assert!(fish.stdout.contains("complete -c make"), "{}", fish.stdout);
    let zsh = test.then(["completions", "--make", "zsh"]);
    zsh.code(2);
    assert!(zsh.stderr.contains("bash and fish"), "{}", zsh.stderr);
}

#[test]
fn targets_complete_prints_names_and_docs_for_shells() {
    let test =
        Test::new().makefile("## Build everything.\nall: prog\nprog:\n\ttouch $@\n.PHONY: all\n");
    let out = test.then(["targets", "--complete"]);
    out.success();
    assert_eq!(out.stdout, "all\tBuild everything.\nprog\t\n");
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let test = Test::new();
    for shell in ["zsh", "fish"] {
        let script = test.then(["completions", shell]);
        script.success();
        for subcommand in SUBCOMMANDS {
            assert!(
                script.stdout.contains(subcommand),
                "{shell} completion lacks {subcommand}:\n{}",
                script.stdout
            );
        }
    }
}

#[test]
fn completions_for_an_unknown_shell_are_one_clear_error() {
    let out = Test::new().args(["completions", "tcsh"]).run();
    out.code(2);
    assert!(
        out.stderr.contains("invalid value 'tcsh'"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_man_page_is_roff_with_a_section_per_subcommand() {
    let test = Test::new();
    let page = test.then(["man"]);
    page.success();
    // clap_mangen starts with two lines defining a quote string, then the title.
    let first_macro = page
        .stdout
        .lines()
        .find(|line| !line.starts_with(".ie") && !line.starts_with(".el"))
        .unwrap_or_default();
    assert!(first_macro.starts_with(".TH makescope 1"), "{first_macro}");
    for subcommand in SUBCOMMANDS {
        let section = format!(".SH \"MAKESCOPE {}\"", subcommand.to_uppercase());
        assert!(
            page.stdout.contains(&section),
            "no {section} in\n{}",
            page.stdout
        );
    }
    assert!(
        page.stdout.contains("\\-\\-install"),
        "plugin's --install is documented"
    );
}

#[test]
fn the_man_page_renders_with_man() {
    if !installed("man") {
        eprintln!("skipped: man is not installed");
        return;
    }
    let test = Test::new();
    let script = format!(
        "'{}' man > page.1 && MANWIDTH=80 man --warnings -l page.1",
        makescope_bin().display()
    );
    let out = bash(&test, &script);
    out.success();
    assert!(out.stderr.is_empty(), "man warned:\n{}", out.stderr);
    assert!(out.stdout.contains("MAKESCOPE REPLAY"), "{}", out.stdout);
}

#[test]
fn plain_make_loads_the_plugin_from_makescope_plugin_and_runs_python() {
    let test = with_makescope_on_path();
    std::fs::write(
        test.path().join("Makefile"),
        "load $(shell makescope plugin)\n\
         $(info loaded=$(notdir $(filter %makescope.so,$(.LOADED))))\n\
         SIZES := $(python [n * n for n in range(1, 4)])\n\
         all: ; @echo sizes=$(SIZES)\n",
    )
    .unwrap();
    let out = test.run_command(test.program("make"));
    out.success();
    assert_eq!(
        out.stdout, "loaded=makescope.so\nsizes=1 4 9\n",
        "{}",
        out.stderr
    );
    let path = test.then(["plugin"]);
    path.success();
    let expected = test
        .path()
        .join("data/makescope")
        .join(env!("CARGO_PKG_VERSION"))
        .join("makescope.so");
    assert_eq!(Path::new(path.stdout.trim_end()), expected);
}

#[test]
fn the_plugin_copy_is_written_once_and_left_alone_after() {
    let test = with_makescope_on_path();
    let first = test.then(["plugin"]);
    first.success();
    let path = Path::new(first.stdout.trim_end()).to_path_buf();
    let written = std::fs::metadata(&path).unwrap();
    let second = test.then(["plugin"]);
    second.success();
    assert_eq!(second.stdout, first.stdout);
    let after = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(after.ino(), written.ino(), "the copy was rewritten");
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["makescope.so"]);
}

#[test]
fn concurrent_plugin_runs_each_print_a_whole_copy() {
    let test = with_makescope_on_path();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let mut command = test.program(makescope_bin());
            command.arg("plugin");
            test.spawn(command)
        })
        .collect();
    let expected = std::fs::read(env!("MAKESCOPE_PLUGIN_SO")).unwrap();
    for run in runs {
        let out = run.wait();
        out.success();
        let copy = std::fs::read(out.stdout.trim_end()).unwrap();
        assert!(copy == expected, "a run saw a copy that is not the plugin");
    }
}

#[test]
fn plugin_install_copies_into_the_directory_given() {
    let test = with_makescope_on_path();
    std::fs::create_dir(test.path().join("lib")).unwrap();
    let out = test.then(["plugin", "--install", "lib"]);
    out.success();
    assert_eq!(out.stdout, "lib/makescope.so\n");
    let copy = std::fs::read(test.path().join("lib/makescope.so")).unwrap();
    assert!(copy == std::fs::read(env!("MAKESCOPE_PLUGIN_SO")).unwrap());
    assert!(
        !test.path().join("data").exists(),
        "nothing in the data directory"
    );

    let missing = test.then(["plugin", "--install", "nowhere"]);
    missing.code(2);
    assert_eq!(
        missing.stderr,
        "makescope: error: nowhere is not a directory\n"
    );
}
