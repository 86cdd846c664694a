//! `makescope._native`: the record as the CLI reads it, for the Python package.
//!
//! Everything goes through `makescope::store::Store` (the CLI's read API); the few
//! queries it does not have yet live in [`queries`] so they can move into the store.
//! Rows cross into Python as dicts that `makescope/__init__.py` turns into objects.
//! Bytes from the record (paths, targets, commands, argv) become `str` the way
//! `os.fsdecode` does: UTF-8, undecodable bytes as surrogate escapes, so
//! `os.fsencode()` gives the exact bytes back. Output (stdout/stderr) stays `bytes`.
//! This module never writes to the record.

// pyo3 0.22's `#[pymethods]` expansion (its generated wrappers, not this crate's code)
// converts each `PyErr` into itself and calls unsafe functions inside `unsafe fn`s.
#![allow(clippy::useless_conversion, unsafe_op_in_unsafe_fn)]

mod queries;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use makescope::access::AccessKind;
use makescope::store::{
    AccessRow, BuildRow, CommandFilter, CommandRow, MakeRow, ProcessRow, Store, StoreError,
};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyTuple};

use queries::Queries;

create_exception!(
    makescope,
    RecordError,
    PyException,
    "The record cannot be opened or read."
);

fn err(e: StoreError) -> PyErr {
    RecordError::new_err(e.to_string())
}

fn s(py: Python<'_>, bytes: &[u8]) -> PyObject {
    OsStr::from_bytes(bytes).to_object(py)
}

fn opt_s(py: Python<'_>, bytes: &Option<Vec<u8>>) -> PyObject {
    bytes.as_deref().map(|b| s(py, b)).to_object(py)
}

fn list(py: Python<'_>, items: &[Vec<u8>]) -> PyObject {
    items
        .iter()
        .map(|b| s(py, b))
        .collect::<Vec<_>>()
        .to_object(py)
}

macro_rules! dict {
    ($py:expr, { $($key:literal : $value:expr),* $(,)? }) => {{
        let d = PyDict::new_bound($py);
        $( d.set_item($key, $value)?; )*
        d.unbind()
    }};
}

fn build_dict(py: Python<'_>, b: &BuildRow) -> PyResult<Py<PyDict>> {
    Ok(dict!(py, {
        "id": b.id, "argv": list(py, &b.argv), "directory": s(py, &b.directory),
        "started_ns": b.started_ns, "ended_ns": b.ended_ns, "state": &b.state,
        "exit_code": b.exit_code, "signal": b.signal, "traced": b.traced, "hooks_failed": b.hooks_failed,
    }))
}

fn make_dict(py: Python<'_>, m: &MakeRow) -> PyResult<Py<PyDict>> {
    Ok(dict!(py, {
        "id": m.id, "build_id": m.build_id, "pid": m.pid, "parent_make_id": m.parent_make_id,
        "parent_command_id": m.parent_command_id, "level": m.level, "directory": s(py, &m.directory),
        "argv": list(py, &m.argv), "started_ns": m.started_ns, "ended_ns": m.ended_ns,
        "default_goal": opt_s(py, &m.default_goal),
        "makefiles": m.makefiles.as_deref().map(|b| {
            b.split(|c| c.is_ascii_whitespace()).filter(|w| !w.is_empty()).map(|w| s(py, w)).collect::<Vec<_>>()
        }).unwrap_or_default(),
    }))
}

fn command_dict(py: Python<'_>, c: &CommandRow) -> PyResult<Py<PyDict>> {
    let newer: Vec<PyObject> = c
        .newer
        .as_deref()
        .unwrap_or_default()
        .split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .map(|w| s(py, w))
        .collect();
    Ok(dict!(py, {
        "id": c.id, "build_id": c.build_id, "make_id": c.make_id, "make_level": c.make_level,
        "job": c.job, "line_index": c.line_index, "target": s(py, &c.target),
        "recipe_file": opt_s(py, &c.recipe_file), "recipe_line": c.recipe_line, "newer": newer,
        "target_existed": c.target_existed, "why": c.why(), "directory": s(py, &c.directory),
        "shell": opt_s(py, &c.shell.as_ref().map(makescope::util::join_nul)), "shell_flags": opt_s(py, &c.shell_flags.as_ref().map(makescope::util::join_nul)),
        "command": s(py, &c.command), "argv": list(py, &c.argv), "env": list(py, &c.env),
        "pid": c.pid, "started_ns": c.started_ns, "ended_ns": c.ended_ns, "state": &c.state,
        "exit_code": c.exit_code, "signal": c.signal, "user_us": c.user_us, "system_us": c.system_us,
        "max_rss_kib": c.max_rss_kib, "label": &c.label, "test_name": &c.test_name,
        "test_result": &c.test_result, "traced": c.traced,
    }))
}

fn access_dict(py: Python<'_>, build_id: i64, a: &AccessRow) -> PyResult<Py<PyDict>> {
    Ok(dict!(py, {
        "build_id": build_id, "command_id": a.command_id, "make_id": a.make_id, "path": s(py, &a.path),
        "kind": &a.kind, "count": a.count, "process_id": a.process_id,
    }))
}

fn process_dict(py: Python<'_>, build_id: i64, p: &ProcessRow) -> PyResult<Py<PyDict>> {
    Ok(dict!(py, {
        "id": p.id, "build_id": build_id, "command_id": p.command_id, "make_id": p.make_id, "pid": p.pid,
        "parent_pid": p.parent_pid, "exe": opt_s(py, &p.exe), "argv": list(py, &p.argv),
        "cwd": opt_s(py, &p.cwd), "started_ns": p.started_ns, "ended_ns": p.ended_ns, "exit_code": p.exit_code,
    }))
}

/// An open record (read-only use). `makescope.Record` wraps it.
#[pyclass(module = "makescope._native", unsendable)]
struct NativeRecord {
    store: Store,
}

impl NativeRecord {
    /// The configuration the library's engines take: this record.
    fn config(&self) -> makescope::config::Config {
        makescope::config::Config {
            db: self.store.path().to_path_buf(),
        }
    }
}

#[pymethods]
impl NativeRecord {
    #[new]
    fn new(path: std::path::PathBuf) -> PyResult<Self> {
        Ok(NativeRecord {
            store: Store::open_read(Path::new(&path)).map_err(err)?,
        })
    }

    #[getter]
    fn path(&self, py: Python<'_>) -> PyObject {
        self.store.path().as_os_str().to_object(py)
    }

    fn builds(&self, py: Python<'_>) -> PyResult<Vec<Py<PyDict>>> {
        self.store
            .builds()
            .map_err(err)?
            .iter()
            .map(|b| build_dict(py, b))
            .collect()
    }

    #[pyo3(signature = (id=None))]
    fn build(&self, py: Python<'_>, id: Option<i64>) -> PyResult<Option<Py<PyDict>>> {
        let row = match id {
            Some(id) => self.store.build(id),
            None => self.store.last_build(),
        }
        .map_err(err)?;
        row.map(|b| build_dict(py, &b)).transpose()
    }

    fn makes(&self, py: Python<'_>, build_id: i64) -> PyResult<Vec<Py<PyDict>>> {
        self.store
            .makes(build_id)
            .map_err(err)?
            .iter()
            .map(|m| make_dict(py, m))
            .collect()
    }

    #[pyo3(signature = (build_id, failed_only=false, target_contains=None))]
    fn commands(
        &self,
        py: Python<'_>,
        build_id: i64,
        failed_only: bool,
        target_contains: Option<Vec<u8>>,
    ) -> PyResult<Vec<Py<PyDict>>> {
        let filter = CommandFilter {
            failed_only,
            target_contains,
        };
        self.store
            .commands(build_id, &filter)
            .map_err(err)?
            .iter()
            .map(|c| command_dict(py, c))
            .collect()
    }

    fn command(&self, py: Python<'_>, id: i64) -> PyResult<Option<Py<PyDict>>> {
        self.store
            .command(id)
            .map_err(err)?
            .map(|c| command_dict(py, &c))
            .transpose()
    }

    fn commands_for_target(&self, build_id: i64, target: Vec<u8>) -> PyResult<Vec<i64>> {
        self.store
            .commands_for_target(build_id, &target)
            .map_err(err)
    }

    fn output<'py>(
        &self,
        py: Python<'py>,
        command_id: i64,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let out = self.store.output(command_id).map_err(err)?;
        Ok((
            PyBytes::new_bound(py, &out.stdout),
            PyBytes::new_bound(py, &out.stderr),
        ))
    }

    fn accesses(
        &self,
        py: Python<'_>,
        build_id: i64,
        command_id: i64,
    ) -> PyResult<Vec<Py<PyDict>>> {
        self.store
            .accesses(command_id)
            .map_err(err)?
            .iter()
            .map(|a| access_dict(py, build_id, a))
            .collect()
    }

    fn accesses_to(
        &self,
        py: Python<'_>,
        build_id: i64,
        path: Vec<u8>,
    ) -> PyResult<Vec<Py<PyDict>>> {
        self.store
            .accesses_to(build_id, &path)
            .map_err(err)?
            .iter()
            .map(|a| access_dict(py, build_id, a))
            .collect()
    }

    fn build_accesses(&self, py: Python<'_>, build_id: i64) -> PyResult<Vec<Py<PyDict>>> {
        self.store
            .build_accesses(build_id)
            .map_err(err)?
            .iter()
            .map(|a| access_dict(py, build_id, a))
            .collect()
    }

    fn processes(
        &self,
        py: Python<'_>,
        build_id: i64,
        command_id: i64,
    ) -> PyResult<Vec<Py<PyDict>>> {
        self.store
            .processes(command_id)
            .map_err(err)?
            .iter()
            .map(|p| process_dict(py, build_id, p))
            .collect()
    }

    fn build_processes(&self, py: Python<'_>, build_id: i64) -> PyResult<Vec<Py<PyDict>>> {
        self.store
            .build_processes(build_id)
            .map_err(err)?
            .iter()
            .map(|p| process_dict(py, build_id, p))
            .collect()
    }

    fn tags(&self, command_id: i64) -> PyResult<Vec<(String, Option<String>)>> {
        self.store.tags(command_id).map_err(err)
    }

    fn build_tags(&self, build_id: i64) -> PyResult<Vec<(i64, String, Option<String>)>> {
        self.store.build_tags(build_id).map_err(err)
    }

    fn tests(&self, build_id: i64) -> PyResult<Vec<i64>> {
        self.store.test_commands(build_id).map_err(err)
    }

    fn writers_of(&self, build_id: i64, path: Vec<u8>) -> PyResult<Vec<i64>> {
        self.store.writers_of(build_id, &path).map_err(err)
    }

    fn readers_of(&self, build_id: i64, path: Vec<u8>) -> PyResult<Vec<i64>> {
        self.store.readers_of(build_id, &path).map_err(err)
    }

    fn dependents(&self, py: Python<'_>, command_id: i64) -> PyResult<Vec<(i64, PyObject)>> {
        Ok(self
            .store
            .dependents(command_id)
            .map_err(err)?
            .into_iter()
            .map(|(id, p)| (id, s(py, &p)))
            .collect())
    }

    fn dependencies(&self, py: Python<'_>, command_id: i64) -> PyResult<Vec<(i64, PyObject)>> {
        Ok(self
            .store
            .dependencies(command_id)
            .map_err(err)?
            .into_iter()
            .map(|(id, p)| (id, s(py, &p)))
            .collect())
    }

    fn affected(&self, build_id: i64, path: Vec<u8>) -> PyResult<Vec<i64>> {
        self.store.affected(build_id, &path).map_err(err)
    }

    /// `makescope rebuild --dry-run`'s answer: each recipe to re-run, in dependency
    /// order, with its first reason; `direct` false for those only downstream.
    fn out_of_date(&self, py: Python<'_>, build_id: i64) -> PyResult<Vec<Py<PyDict>>> {
        let build = self
            .store
            .build(build_id)
            .map_err(err)?
            .ok_or_else(|| RecordError::new_err(format!("no build {build_id}")))?;
        let answer = makescope::rebuild::query(&self.store, build, &[])
            .map_err(|e| RecordError::new_err(e.to_string()))?;
        answer
            .units
            .iter()
            .map(|u| {
                let ids: Vec<i64> = u.lines.iter().map(|(l, _)| l.id).collect();
                Ok(dict!(py, {
                    "command_ids": ids,
                    "label": makescope::rebuild::unit_label(u, &answer.top),
                    "reason": u.reason.to_string(),
                    "direct": u.direct,
                }))
            })
            .collect()
    }

    /// The views of `makescope stats`, `lint`, `coverage` and `export trace`, as their
    /// `--json` documents (JSON text; the Python side parses it), and `report`'s page.
    fn view(
        &self,
        which: &str,
        build_id: i64,
        prefixes: Vec<std::path::PathBuf>,
        packages: Vec<String>,
    ) -> PyResult<String> {
        use makescope::views::{self, BuildChoice};
        let config = self.config();
        let build = BuildChoice {
            build: Some(build_id),
        };
        // `{:#}`: an error with its causes, as the command line prints it.
        fn fail(e: impl std::fmt::Display) -> PyErr {
            RecordError::new_err(format!("{e:#}"))
        }
        let json = match which {
            "stats" => views::stats::stats(&config, &build)
                .map_err(fail)?
                .to_json(),
            "lint" => makescope::lint::lint(
                &config,
                &makescope::lint::LintOptions {
                    build: Some(build_id),
                },
            )
            .map_err(fail)?
            .to_json(),
            "coverage" => views::coverage::coverage(
                &config,
                &views::coverage::CoverageOptions {
                    build: Some(build_id),
                    prefixes,
                    packages,
                    database: None,
                },
            )
            .map_err(fail)?
            .to_json(),
            "trace" => views::trace::trace(&config, &build).map_err(fail)?,
            "report" => return views::report::report(&config, &build).map_err(fail),
            other => return Err(RecordError::new_err(format!("no view {other:?}"))),
        };
        Ok(json.to_string())
    }

    /// Replay recorded command `command_id` (its recipe, or only `line`), as
    /// `makescope replay` does, with the same executor: output captured, traced and
    /// recorded unless `trace` is false, in the sandbox if `sandbox`. Returns a dict:
    /// exit_status, stdout, stderr (bytes), notes, killed, misses ([(path, kind)]),
    /// recorded (the new run's command ids).
    #[pyo3(signature = (command_id, line=None, trace=true, sandbox=false))]
    fn replay(
        &self,
        py: Python<'_>,
        command_id: i64,
        line: Option<usize>,
        trace: bool,
        sandbox: bool,
    ) -> PyResult<Py<PyDict>> {
        use makescope::replay::{self, CurrentEnvironment, Executor, Mode, ReplayOptions};
        let config = self.config();
        let options = ReplayOptions {
            reference: command_id.to_string().into_bytes(),
            build: None,
            line,
            mode: Mode::Run,
            trace: trace || sandbox,
            sandbox,
            for_rebuild: false,
        };
        let plan = replay::plan(&config, &options, &CurrentEnvironment)
            .map_err(|e| RecordError::new_err(format!("{e:#}")))?;
        plan.check_directory()
            .map_err(|e| RecordError::new_err(e.to_string()))?;
        // Leftovers: a library must not kill its host's other children; only a
        // sandbox's PID namespace ends what the command left running.
        let mut executor = Executor::leaving_leftovers().capturing();
        if sandbox {
            executor = executor.sandboxed(
                replay::sandbox(&config, &plan)
                    .map_err(|e| RecordError::new_err(format!("{e:#}")))?,
            );
        } else if trace {
            executor = executor.traced();
        }
        let outcome = py
            .allow_threads(|| executor.run(&plan))
            .map_err(|e| RecordError::new_err(e.to_string()))?;
        let recorded = if options.trace {
            replay::record_run(&config, &options, &plan, &outcome)
                .map_err(|e| RecordError::new_err(e.to_string()))?
                .command_ids
        } else {
            Vec::new()
        };
        let misses: Vec<(PyObject, &'static str)> = outcome
            .lines
            .iter()
            .filter_map(|l| l.sandbox.as_ref())
            .flat_map(|s| s.misses.iter())
            .map(|(path, kind)| (s(py, path), kind.name()))
            .collect();
        let d = PyDict::new_bound(py);
        d.set_item("exit_status", outcome.exit_status())?;
        d.set_item("stdout", PyBytes::new_bound(py, &outcome.stdout))?;
        d.set_item("stderr", PyBytes::new_bound(py, &outcome.stderr))?;
        let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
        d.set_item("notes", notes)?;
        d.set_item("killed", &outcome.killed)?;
        d.set_item("misses", misses)?;
        d.set_item("recorded", recorded)?;
        Ok(d.unbind())
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeRecord>()?;
    m.add("RecordError", m.py().get_type_bound::<RecordError>())?;
    m.add("SCHEMA_VERSION", makescope::store::SCHEMA_VERSION)?;
    m.add("VERSION", makescope::VERSION)?;
    add_access_kinds(m)
}

/// The access kinds' names, from `makescope::access` (the package re-exports them):
/// `ACCESS_KINDS`, every kind by id, a tuple; `READ_KINDS` and `WRITE_KINDS`, the
/// kinds that make a command a reader or a writer of a path, frozensets.
fn add_access_kinds(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let names = |select: fn(AccessKind) -> bool| -> Vec<&'static str> {
        AccessKind::ALL
            .into_iter()
            .filter(|&k| select(k))
            .map(AccessKind::name)
            .collect()
    };
    m.add("ACCESS_KINDS", PyTuple::new_bound(py, names(|_| true)))?;
    m.add(
        "READ_KINDS",
        PyFrozenSet::new_bound(py, &names(AccessKind::is_read))?,
    )?;
    m.add(
        "WRITE_KINDS",
        PyFrozenSet::new_bound(py, &names(AccessKind::is_write))?,
    )?;
    Ok(())
}
