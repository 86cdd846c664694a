//! Issue 6: `$(python …)` and `$(python-exec …)` from make-plugin/python.c, loaded with
//! `load` into plain GNU make, and the same makefile under `makescope make`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PLUGIN: &str = env!("MAKESCOPE_PLUGIN_SO");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/python")
        .join(name)
}

/// A temporary copy of a fixture project, or a directory with just this Makefile.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn copy_of(name: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        Project { dir }
    }
    fn with_makefile(text: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Makefile"),
            format!("load {PLUGIN}\n{text}"),
        )
        .unwrap();
        Project { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn make(&self, args: &[&str]) -> Output {
        Command::new("make")
            .args(["--no-print-directory", &format!("MAKESCOPE_SO={PLUGIN}")])
            .args(args)
            .current_dir(self.path())
            .env_remove("MAKEFLAGS")
            .env_remove("MAKESCOPE_SOCK")
            .output()
            .unwrap()
    }
    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path().join(file)).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const LISTING: &str = "4 out/square-1.txt out/square-9.txt out/square-25.txt out/square-49.txt\nTrue\nTrue\nTrue\nTrue\n";

#[test]
fn targets_computed_in_python_under_plain_make() {
    let project = Project::copy_of("plugin");
    let out = project.make(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(project.read("listing.txt"), LISTING);
}

#[test]
fn targets_computed_in_python_under_makescope_make() {
    let project = Project::copy_of("plugin");
    let out = Command::new(env!("CARGO_BIN_EXE_makescope"))
        .args(["make", &format!("MAKESCOPE_SO={PLUGIN}")])
        .current_dir(project.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(project.read("listing.txt"), LISTING);
}

#[test]
fn values_become_words() {
    let project = Project::with_makefile(concat!(
        "$(python-exec state = [])\n",
        "$(python-exec state.append('kept'))\n",
        "$(info str=$(python 'a b') int=$(python 6*7) list=$(python [1, 'x', 2.5]) tuple=$(python (1, 2)))\n",
        "$(info none=[$(python None)] set=$(python {'b', 'a', 'c'}) gen=$(python (i for i in range(3))))\n",
        "$(info state=$(python state) comma=$(python ', '.join(['p', 'q'])) exec=[$(python-exec x = 1)])\n",
        "$(info make-vars=$(python len('$(MAKEFILE_LIST)'.split())) dollar=$(python '$$HOME'))\n",
        "$(info bytes=$(python b'raw'))\n",
        "all: ; @:\n",
    ));
    let out = project.make(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "str=a b int=42 list=1 x 2.5 tuple=1 2\n\
         none=[] set=a b c gen=0 1 2\n\
         state=kept comma=p, q exec=[]\n\
         make-vars=1 dollar=$HOME\n\
         bytes=raw\n"
    );
}

#[test]
fn an_error_stops_make_at_the_makefile_line() {
    let project = Project::with_makefile("X := 1\nY := $(python 1/0)\nall: ; @:\n");
    let out = project.make(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "Makefile:3: *** $(python): ZeroDivisionError: division by zero.  Stop.\n"
    );
}

#[test]
fn an_error_in_a_recipe_names_the_recipe_line() {
    let project = Project::with_makefile(
        "all:\n\t@echo one\n\t@echo $(python-exec raise ValueError('bad value'))\n",
    );
    let out = project.make(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "Makefile:4: *** $(python-exec): ValueError: bad value.  Stop.\n"
    );
}

#[test]
fn an_error_in_called_code_prints_its_traceback_first() {
    let project = Project::with_makefile(concat!(
        "define code\n",
        "def helper(x):\n",
        "    return {}[x]\n",
        "endef\n",
        "$(python-exec $(code))\n",
        "V := $(python helper('missing'))\n",
        "all: ; @:\n",
    ));
    let out = project.make(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
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
    let project = Project::with_makefile("X := $(python-exec x = [1,)\nall: ; @:\n");
    let out = project.make(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "Makefile:2: *** $(python-exec): SyntaxError: '[' was never closed.  Stop.\n"
    );
}

#[test]
fn libpython_is_loaded_on_first_use_only() {
    let project = Project::with_makefile(concat!(
        "BEFORE := $(shell grep -c libpython /proc/$$PPID/maps)\n",
        "X := $(python 1)\n",
        "AFTER := $(shell grep -c libpython /proc/$$PPID/maps)\n",
        "$(info before=$(BEFORE) after=$(if $(filter 0,$(AFTER)),0,some))\n",
        "all: ; @:\n",
    ));
    let out = project.make(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "before=0 after=some\n");
}

#[test]
fn python_uses_the_standard_library_of_its_own_prefix() {
    let project = Project::with_makefile("$(info $(python __import__('sys').prefix == __import__('sys').base_prefix and __import__('os').__file__.startswith(__import__('sys').prefix)))\nall: ; @:\n");
    let out = project.make(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "True\n");
}
