//! The one way the integration tests start programs. A [`Test`] is a temporary directory
//! and a `makescope` command line, built like a sentence:
//! `Test::new().makefile(..).args([..]).run()`. Everything a test starts through it
//! (makescope, and make, gcc or tmux beside it: [`Test::program`]) runs in that
//! directory, in an environment without the make or makescope state of whoever ran
//! `cargo test` (no `MAKEFLAGS`, `MAKELEVEL`, `MFLAGS`, `MAKEFILES`, `MAKESCOPE_*`;
//! `NO_COLOR=1`), with the test's own variables on top, and is killed, failing the
//! test, after [`TIMEOUT`].
//!
//! The harness never decides what a test checks: [`Output`] hands back the status and
//! both streams, and its assertions ([`Output::success`], [`Output::code`]) only say
//! what they expected and show both streams when it did not happen.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long anything a test starts may run.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Variables of an enclosing make that would change what a program under test does
/// (besides every `MAKESCOPE_*` variable, an enclosing makescope's).
const MAKE_STATE: &[&str] = &["MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEFILES"];

pub fn makescope_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_makescope"))
}

/// `tests/fixtures/NAME`.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Is `program` on the PATH? (Tests that need an optional tool skip without it.)
pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A temporary directory (removed when the test ends) and how to run makescope in it.
pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<OsString>,
    /// Set (`Some`) or removed (`None`), in this order, after the clean environment.
    env: Vec<(OsString, Option<OsString>)>,
}

/// How a program ended and what it printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr_bytes: Vec<u8>,
    pub elapsed: Duration,
}

impl Output {
    #[track_caller]
    pub fn success(&self) -> &Output {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    #[track_caller]
    pub fn code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file; `\n    ` at the start of a line may be written as `\n\t` in the test.
    pub fn file(self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Test {
        let path = self.dir.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn makefile(self, contents: &str) -> Test {
        self.file("Makefile", contents)
    }

    /// Copy the fixture project `tests/fixtures/NAME` (its whole tree) into the directory.
    pub fn fixture(self, name: &str) -> Test {
        copy_tree(&fixture_path(name), self.dir.path());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Test {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Leave `key` out of the environment (e.g. `NO_COLOR`, which the harness sets).
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Test {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// `program` (make, gcc, tmux …) set up as makescope is: the test's directory and
    /// environment, no arguments. Run it with [`Test::run_command`].
    pub fn program(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(self.dir.path());
        for key in MAKE_STATE {
            command.env_remove(key);
        }
        for (key, _) in std::env::vars_os() {
            if key.as_encoded_bytes().starts_with(b"MAKESCOPE_") {
                command.env_remove(key);
            }
        }
        command.env("NO_COLOR", "1");
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }

    /// `makescope ARGS` (the test's arguments), to be given more arguments or
    /// environment and run with [`Test::run_command`].
    pub fn command(&self) -> Command {
        let mut command = self.program(makescope_bin());
        command.args(&self.args);
        command
    }

    /// Run `makescope ARGS` and wait.
    pub fn run(&self) -> Output {
        self.run_command(self.command())
    }

    /// Run `makescope` with other arguments in the same directory and environment
    /// (e.g. `log --json` after a build).
    pub fn then<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut command = self.program(makescope_bin());
        command.args(args.into_iter().map(Into::into));
        self.run_command(command)
    }

    /// Run `command` (from [`Test::command`] or [`Test::program`]) and wait for it,
    /// its output captured and no input.
    pub fn run_command(&self, command: Command) -> Output {
        self.spawn(command).wait()
    }

    /// Start `command` (its output captured, no input) and return while it runs, for a
    /// test that acts on it meanwhile (a signal, a kill).
    pub fn spawn(&self, mut command: Command) -> Running {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = read_all(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        Running {
            child,
            started,
            command: format!("{command:?}"),
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The record, for SQL assertions.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join(".makescope/db.sqlite"))
            .expect("the record exists")
    }
}

/// A program a test started with [`Test::spawn`]. Dropped unwaited, it is killed.
pub struct Running {
    child: Child,
    started: Instant,
    command: String,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Wait for it to end, killing it and failing the test after the timeout.
    pub fn wait(mut self) -> Output {
        use std::os::unix::process::ExitStatusExt;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("timed out after {TIMEOUT:?}: {}", self.command);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout_bytes = self.stdout.take().unwrap().join().unwrap();
        let stderr_bytes = self.stderr.take().unwrap().join().unwrap();
        Output {
            code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stderr: String::from_utf8_lossy(&stderr_bytes).into_owned(),
            stdout_bytes,
            stderr_bytes,
            elapsed: self.started.elapsed(),
        }
    }

    /// Kill it (SIGKILL) and wait for it to end; what it printed is dropped.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_all(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Rows of a query as strings, for compact assertions.
pub fn rows(db: &rusqlite::Connection, sql: &str) -> Vec<Vec<String>> {
    let mut st = db.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => "NULL".to_string(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Real(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(v) | rusqlite::types::ValueRef::Blob(v) => {
                    String::from_utf8_lossy(v).into_owned()
                }
            })
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}
