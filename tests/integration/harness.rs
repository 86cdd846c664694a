//! A builder for tests that drive the real `makescope` binary against real GNU make in
//! a temporary directory: `Test::new().makefile(..).args([..]).run()`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(120);

pub fn makescope_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_makescope"))
}

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    timeout: Duration,
}

pub struct Output {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: Vec<u8>,
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
            cwd: None,
            timeout: TIMEOUT,
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

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Test {
        self.cwd = Some(self.dir.path().join(dir));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Test {
        self.timeout = timeout;
        self
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(makescope_bin());
        command
            .args(&self.args)
            .current_dir(
                self.cwd
                    .clone()
                    .unwrap_or_else(|| self.dir.path().to_owned()),
            )
            .env_remove("MAKEFLAGS")
            .env_remove("MAKELEVEL")
            .env_remove("MFLAGS")
            .env_remove("MAKESCOPE_DB")
            .env_remove("MAKESCOPE_HOOKS")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    /// Run and wait, killing it and failing the test after the timeout.
    pub fn run(&self) -> Output {
        self.run_command(self.command())
    }

    /// Run `command` (from [`Test::command`], with more arguments or environment) the way
    /// [`Test::run`] runs its own.
    pub fn run_command(&self, mut command: Command) -> Output {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_with_timeout(command, self.timeout)
    }

    /// Run `makescope ARGS` again in the same directory (e.g. `log --json`).
    pub fn then<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut command = Command::new(makescope_bin());
        command
            .args(args.into_iter().map(Into::into))
            .current_dir(
                self.cwd
                    .clone()
                    .unwrap_or_else(|| self.dir.path().to_owned()),
            )
            .env_remove("MAKESCOPE_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_with_timeout(command, self.timeout)
    }

    /// The record, for SQL assertions.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join(".makescope/db.sqlite"))
            .expect("the record exists")
    }
}

pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    use std::os::unix::process::ExitStatusExt;
    let started = Instant::now();
    let mut child = command.spawn().expect("spawning makescope");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("timed out after {timeout:?}: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout_bytes = out.join().unwrap();
    let stderr = err.join().unwrap();
    Output {
        code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        stdout_bytes,
        elapsed: started.elapsed(),
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
