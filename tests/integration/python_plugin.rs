//! `$(python …)` and `$(python-exec …)` from make-plugin/python.c, loaded with `load`
//! into plain GNU make, and the same makefile under `makescope make`.

use crate::harness::{Output, Test};

const PLUGIN: &str = env!("MAKESCOPE_PLUGIN_SO");

/// A directory with just this Makefile, the plugin loaded first.
fn with_makefile(text: &str) -> Test {
    Test::new().makefile(&format!("load {PLUGIN}\n{text}"))
}

/// Plain GNU make (no makescope) in the test's directory, told where the plugin is.
fn make(test: &Test) -> Output {
    let mut make = test.program("make");
    make.args(["--no-print-directory", &format!("MAKESCOPE_SO={PLUGIN}")]);
    test.run_command(make)
}

fn read(test: &Test, file: &str) -> String {
    std::fs::read_to_string(test.path().join(file)).unwrap()
}

const LISTING: &str = "4 out/square-1.txt out/square-9.txt out/square-25.txt out/square-49.txt\nTrue\nTrue\nTrue\nTrue\n";

#[test]
fn targets_computed_in_python_under_plain_make() {
    let project = Test::new().fixture("python/plugin");
    make(&project).success();
    assert_eq!(read(&project, "listing.txt"), LISTING);
}

#[test]
fn targets_computed_in_python_under_makescope_make() {
    let project = Test::new()
        .fixture("python/plugin")
        .args(["make".to_string(), format!("MAKESCOPE_SO={PLUGIN}")]);
    project.run().success();
    assert_eq!(read(&project, "listing.txt"), LISTING);
}

#[test]
fn values_become_words() {
    let project = with_makefile(concat!(
        "$(python-exec state = [])\n",
        "$(python-exec state.append('kept'))\n",
        "$(info str=$(python 'a b') int=$(python 6*7) list=$(python [1, 'x', 2.5]) tuple=$(python (1, 2)))\n",
        "$(info none=[$(python None)] set=$(python {'b', 'a', 'c'}) gen=$(python (i for i in range(3))))\n",
        "$(info state=$(python state) comma=$(python ', '.join(['p', 'q'])) exec=[$(python-exec x = 1)])\n",
        "$(info make-vars=$(python len('$(MAKEFILE_LIST)'.split())) dollar=$(python '$$HOME'))\n",
        "$(info bytes=$(python b'raw'))\n",
        "all: ; @:\n",
    ));
    let out = make(&project);
    out.success();
    assert_eq!(
        out.stdout,
        "str=a b int=42 list=1 x 2.5 tuple=1 2\n\
         none=[] set=a b c gen=0 1 2\n\
         state=kept comma=p, q exec=[]\n\
         make-vars=1 dollar=$HOME\n\
         bytes=raw\n"
    );
}

#[test]
fn an_error_stops_make_at_the_makefile_line() {
    let project = with_makefile("X := 1\nY := $(python 1/0)\nall: ; @:\n");
    let out = make(&project);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "Makefile:3: *** $(python): ZeroDivisionError: division by zero.  Stop.\n"
    );
}

#[test]
fn an_error_in_a_recipe_names_the_recipe_line() {
    let project =
        with_makefile("all:\n\t@echo one\n\t@echo $(python-exec raise ValueError('bad value'))\n");
    let out = make(&project);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "Makefile:4: *** $(python-exec): ValueError: bad value.  Stop.\n"
    );
}

#[test]
fn an_error_in_called_code_prints_its_traceback_first() {
    let project = with_makefile(concat!(
        "define code\n",
        "def helper(x):\n",
        "    return {}[x]\n",
        "endef\n",
        "$(python-exec $(code))\n",
        "V := $(python helper('missing'))\n",
        "all: ; @:\n",
    ));
    let out = make(&project);
    assert_eq!(out.code, Some(2));
    let stderr = &out.stderr;
    assert!(
        stderr.starts_with("Traceback (most recent call last):\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("File \"$(python-exec)\", line 2, in helper"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("Makefile:7: *** $(python): KeyError: 'missing'.  Stop.\n"),
        "{stderr}"
    );
}

#[test]
fn a_syntax_error_is_a_make_error() {
    let project = with_makefile("X := $(python-exec x = [1,)\nall: ; @:\n");
    let out = make(&project);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "Makefile:2: *** $(python-exec): SyntaxError: '[' was never closed.  Stop.\n"
    );
}

#[test]
fn libpython_is_loaded_on_first_use_only() {
    let project = with_makefile(concat!(
        "BEFORE := $(shell grep -c libpython /proc/$$PPID/maps)\n",
        "X := $(python 1)\n",
        "AFTER := $(shell grep -c libpython /proc/$$PPID/maps)\n",
        "$(info before=$(BEFORE) after=$(if $(filter 0,$(AFTER)),0,some))\n",
        "all: ; @:\n",
    ));
    let out = make(&project);
    out.success();
    assert_eq!(out.stdout, "before=0 after=some\n");
}

#[test]
fn python_uses_the_standard_library_of_its_own_prefix() {
    let project = with_makefile("$(info $(python __import__('sys').prefix == __import__('sys').base_prefix and __import__('os').__file__.startswith(__import__('sys').prefix)))\nall: ; @:\n");
    let out = make(&project);
    out.success();
    assert_eq!(out.stdout, "True\n");
}
