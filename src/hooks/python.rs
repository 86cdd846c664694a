//! The pyo3 side of hooks: the interpreter, the user's module, `makescope.Command`.
//!
//! Text that comes from make (targets, paths, commands) is bytes; it reaches Python as
//! `str` decoded as `os.fsdecode` does (UTF-8, undecodable bytes as surrogate escapes),
//! so `os.fsencode(cmd.target)` gives back the exact bytes. The package does the same.

// pyo3 0.22's `#[pymethods]` expansion (its generated wrappers, not this module's code)
// converts each `PyErr` into itself and calls unsafe functions inside `unsafe fn`s.
#![allow(clippy::useless_conversion, unsafe_op_in_unsafe_fn)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use pyo3::exceptions::PySyntaxError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString, PyTuple};

use super::{Files, Reporter, Verdict};
use crate::output::{CommandInfo, Label, Outcome};

/// The three hook functions, by the name the user defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Hook {
    Label,
    Started,
    Finished,
}

impl Hook {
    const ALL: [Hook; 3] = [Hook::Label, Hook::Started, Hook::Finished];
    fn name(self) -> &'static str {
        match self {
            Hook::Label => "label",
            Hook::Started => "started",
            Hook::Finished => "finished",
        }
    }
}

fn fsdecode(py: Python<'_>, bytes: &[u8]) -> PyObject {
    OsStr::from_bytes(bytes).to_object(py)
}

/// A recipe command as hooks see it: `makescope.Command`.
#[pyclass(module = "makescope", name = "Command")]
pub struct PyCommand {
    info: CommandInfo,
    /// The label, `"VERB object"`: the default one inside `label()`, the final one after.
    #[pyo3(get)]
    label: String,
    #[pyo3(get)]
    test_name: Option<String>,
    #[pyo3(get)]
    test_result: Option<String>,
    /// Tags to record: name → value (or None).
    #[pyo3(get)]
    tags: Py<PyDict>,
    #[pyo3(get)]
    exit_code: Option<i32>,
    #[pyo3(get)]
    signal: Option<i32>,
    duration_ns: Option<i64>,
    files: Option<Files>,
}

#[pymethods]
impl PyCommand {
    #[getter]
    fn id(&self) -> i64 {
        self.info.id
    }
    #[getter]
    fn target(&self, py: Python<'_>) -> PyObject {
        fsdecode(py, &self.info.target)
    }
    #[getter]
    fn directory(&self, py: Python<'_>) -> PyObject {
        fsdecode(py, &self.info.directory)
    }
    #[getter]
    fn build_directory(&self, py: Python<'_>) -> PyObject {
        fsdecode(py, &self.info.top_directory)
    }
    #[getter]
    fn command(&self, py: Python<'_>) -> PyObject {
        fsdecode(py, &self.info.command)
    }
    #[getter]
    fn recipe_file(&self, py: Python<'_>) -> Option<PyObject> {
        (!self.info.recipe_file.is_empty()).then(|| fsdecode(py, &self.info.recipe_file))
    }
    #[getter]
    fn recipe_line(&self) -> Option<u32> {
        (self.info.recipe_line > 0).then_some(self.info.recipe_line)
    }
    #[getter]
    fn make_level(&self) -> u32 {
        self.info.make_level
    }
    /// `running` until it finished, then `ok`, `failed` or `killed`.
    #[getter]
    fn state(&self) -> &'static str {
        match (self.duration_ns, self.exit_code, self.signal) {
            (None, _, _) => "running",
            (_, _, Some(_)) => "killed",
            (_, Some(0), _) => "ok",
            _ => "failed",
        }
    }
    /// Seconds it ran; None while it runs.
    #[getter]
    fn duration(&self) -> Option<f64> {
        self.duration_ns.map(|ns| ns as f64 / 1e9)
    }
    /// Files it read, executed, stat'ed, listed or probed; None until it finished, or if it was not traced.
    #[getter]
    fn reads(&self, py: Python<'_>) -> Option<Vec<PyObject>> {
        self.files
            .as_ref()
            .map(|f| f.reads.iter().map(|p| fsdecode(py, p)).collect())
    }
    /// Files it wrote, created, truncated, appended, renamed into place or made (a
    /// directory, a symlink, a hard link); None until it finished, or if it was not traced.
    #[getter]
    fn writes(&self, py: Python<'_>) -> Option<Vec<PyObject>> {
        self.files
            .as_ref()
            .map(|f| f.writes.iter().map(|p| fsdecode(py, p)).collect())
    }
    #[setter]
    fn set_test_name(&mut self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        self.test_name = lossy_text(value)?;
        Ok(())
    }
    #[setter]
    fn set_test_result(&mut self, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        self.test_result = lossy_text(value)?;
        Ok(())
    }
    /// Attach a tag (`cmd.tags[name] = value` does the same).
    #[pyo3(signature = (name, value=None))]
    fn tag(&self, py: Python<'_>, name: &str, value: Option<PyObject>) -> PyResult<()> {
        self.tags.bind(py).set_item(name, value)
    }
    fn __repr__(&self) -> String {
        format!(
            "<makescope.Command {} {:?} {:?}>",
            self.info.id,
            String::from_utf8_lossy(&self.info.target),
            self.label
        )
    }
}

/// The loaded hooks file and its interpreter state.
pub struct PyHooks {
    functions: HashMap<Hook, PyObject>,
    /// Commands between their first hook call and `finished`, by id.
    live: HashMap<i64, Py<PyCommand>>,
    failures: HashMap<Hook, u64>,
    load_failed: bool,
    reporter: Reporter,
}

impl PyHooks {
    pub fn load(path: &Path, source: &[u8], mut reporter: Reporter) -> PyHooks {
        set_python_home();
        let mut hooks = PyHooks {
            functions: HashMap::new(),
            live: HashMap::new(),
            failures: HashMap::new(),
            load_failed: false,
            reporter: Box::new(|_: &str| {}),
        };
        let loaded = Python::with_gil(|py| -> Result<(), String> {
            let module =
                load_module(py, path, source).map_err(|e| describe_load_error(py, path, &e))?;
            for hook in Hook::ALL {
                if let Ok(f) = module.getattr(hook.name()) {
                    if !f.is_callable() {
                        return Err(format!(
                            "makescope: hooks file {}: `{}` is not a function\n",
                            path.display(),
                            hook.name()
                        ));
                    }
                    hooks.functions.insert(hook, f.unbind());
                }
            }
            Ok(())
        });
        if let Err(message) = loaded {
            reporter(&format!("{message}makescope: hooks are off for this build; it goes on with default labels\n"));
            hooks.functions.clear();
            hooks.load_failed = true;
        }
        hooks.reporter = reporter;
        hooks
    }

    pub fn failed(&self) -> bool {
        self.load_failed || !self.failures.is_empty()
    }

    pub fn summary(&self) -> Option<String> {
        if self.failures.is_empty() {
            return self
                .load_failed
                .then(|| "the hooks file failed to load (see above)".to_string());
        }
        let total: u64 = self.failures.values().sum();
        let each: Vec<String> = Hook::ALL
            .iter()
            .filter_map(|h| self.failures.get(h).map(|n| format!("{} {n}", h.name())))
            .collect();
        Some(format!(
            "hooks raised {total} time{} ({}); the first traceback of each is above",
            if total == 1 { "" } else { "s" },
            each.join(", ")
        ))
    }

    pub fn label(&mut self, info: &CommandInfo, default: &Label) -> Option<Label> {
        Python::with_gil(|py| {
            let f = self.functions.get(&Hook::Label)?.clone_ref(py);
            let cmd = self.command(py, info, Some(default)).ok()?;
            let returned = match f.call1(py, (cmd.clone_ref(py),)) {
                Ok(value) => value,
                Err(e) => {
                    self.report(py, Hook::Label, info, e);
                    return None;
                }
            };
            match parse_label(returned.bind(py)) {
                Ok(None) => None,
                Ok(Some(label)) => {
                    cmd.borrow_mut(py).label = format_label(&label);
                    Some(label)
                }
                Err(e) => {
                    self.report(py, Hook::Label, info, e);
                    None
                }
            }
        })
    }

    pub fn started(&mut self, info: &CommandInfo) {
        if !self.functions.contains_key(&Hook::Started) {
            return;
        }
        Python::with_gil(|py| {
            let f = self.functions[&Hook::Started].clone_ref(py);
            let Ok(cmd) = self.command(py, info, None) else {
                return;
            };
            if let Err(e) = f.call1(py, (cmd,)) {
                self.report(py, Hook::Started, info, e);
            }
        })
    }

    pub fn finished(
        &mut self,
        info: &CommandInfo,
        outcome: &Outcome,
        files: Option<&Files>,
    ) -> Verdict {
        if self.functions.is_empty() {
            return Verdict::default();
        }
        Python::with_gil(|py| {
            let keep = self.functions.contains_key(&Hook::Finished);
            let cmd = match self.live.remove(&info.id) {
                Some(cmd) => cmd,
                None if keep => match self.command(py, info, None) {
                    Ok(cmd) => {
                        self.live.remove(&info.id);
                        cmd
                    }
                    Err(_) => return Verdict::default(),
                },
                None => return Verdict::default(),
            };
            {
                let mut c = cmd.borrow_mut(py);
                c.exit_code = outcome.exit_code;
                c.signal = outcome.signal;
                c.duration_ns = Some(outcome.duration_ns);
                c.files = files.cloned();
            }
            if let Some(f) = self.functions.get(&Hook::Finished) {
                let f = f.clone_ref(py);
                if let Err(e) = f.call1(py, (cmd.clone_ref(py),)) {
                    self.report(py, Hook::Finished, info, e);
                }
            }
            let decided = verdict(py, &cmd.borrow(py), outcome);
            match decided {
                Ok(v) => v,
                Err(e) => {
                    self.report(py, Hook::Finished, info, e);
                    Verdict::default()
                }
            }
        })
    }

    /// The one `Command` object of this command, made on first use.
    fn command(
        &mut self,
        py: Python<'_>,
        info: &CommandInfo,
        default: Option<&Label>,
    ) -> PyResult<Py<PyCommand>> {
        if let Some(cmd) = self.live.get(&info.id) {
            if let Some(label) = default {
                cmd.borrow_mut(py).label = format_label(label);
            }
            return Ok(cmd.clone_ref(py));
        }
        let label = default
            .cloned()
            .unwrap_or_else(|| crate::output::default_label(info));
        let cmd = Py::new(
            py,
            PyCommand {
                info: info.clone(),
                label: format_label(&label),
                test_name: None,
                test_result: None,
                tags: PyDict::new_bound(py).unbind(),
                exit_code: None,
                signal: None,
                duration_ns: None,
                files: None,
            },
        )?;
        // Only `started`/`finished` need the same object later.
        if self.functions.contains_key(&Hook::Started)
            || self.functions.contains_key(&Hook::Finished)
        {
            self.live.insert(info.id, cmd.clone_ref(py));
        }
        Ok(cmd)
    }

    /// Show a hook's exception once per hook function, with its traceback.
    fn report(&mut self, py: Python<'_>, hook: Hook, info: &CommandInfo, error: PyErr) {
        let count = self.failures.entry(hook).or_insert(0);
        *count += 1;
        if *count > 1 {
            return;
        }
        let traceback = format_traceback(py, &error);
        (self.reporter)(&format!(
            "makescope: hook {}() raised for target {} (shown once; the build goes on with the default):\n{traceback}",
            hook.name(),
            String::from_utf8_lossy(&info.target)
        ));
    }
}

impl Drop for PyHooks {
    fn drop(&mut self) {
        // The interpreter is never finalized: flush what the hooks printed.
        Python::with_gil(|py| {
            for stream in ["stdout", "stderr"] {
                if let Ok(s) = py.import_bound("sys").and_then(|sys| sys.getattr(stream)) {
                    let _ = s.call_method0("flush");
                }
            }
        });
    }
}

/// `str(value)` as Rust text; None stays None.
fn lossy_text(value: Option<Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match value {
        Some(v) if !v.is_none() => Ok(Some(text(&v.str()?))),
        _ => Ok(None),
    }
}

/// A Python str as Rust text. Bytes that came from make as non-UTF-8 (surrogate escapes,
/// as `os.fsdecode` makes them) become U+FFFD one for one, as `String::from_utf8_lossy`
/// of the original bytes would show them.
fn text(s: &Bound<'_, PyString>) -> String {
    if let Ok(s) = s.to_str() {
        return s.to_string();
    }
    match s.call_method1("encode", ("utf-8", "surrogateescape")) {
        Ok(bytes) => String::from_utf8_lossy(
            bytes
                .downcast::<pyo3::types::PyBytes>()
                .map(|b| b.as_bytes())
                .unwrap_or_default(),
        )
        .into_owned(),
        Err(_) => s.to_string_lossy().into_owned(),
    }
}

fn format_label(label: &Label) -> String {
    if label.object.is_empty() {
        label.verb.clone()
    } else {
        format!("{} {}", label.verb, label.object)
    }
}

/// `"VERB object"` (split at the first space), `(verb, object)`, or None.
fn parse_label(value: &Bound<'_, PyAny>) -> PyResult<Option<Label>> {
    if value.is_none() {
        return Ok(None);
    }
    // Labels are text: bytes that were not UTF-8 (surrogate escapes) become U+FFFD.
    if let Ok(text) = value.downcast::<PyString>() {
        let text = self::text(text);
        let text = text.trim();
        let (verb, object) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        return Ok(Some(Label {
            verb: verb.to_string(),
            object: object.trim_start().to_string(),
        }));
    }
    if let Ok(pair) = value.downcast::<PyTuple>() {
        if let Ok((verb, object)) = pair.extract::<(Bound<'_, PyString>, Bound<'_, PyString>)>() {
            let (verb, object) = (text(&verb), text(&object));
            return Ok(Some(Label { verb, object }));
        }
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "label() must return a str like \"CC foo.o\", a (verb, object) tuple, or None; it returned {}",
        value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into())
    )))
}

fn verdict(py: Python<'_>, cmd: &PyCommand, outcome: &Outcome) -> PyResult<Verdict> {
    let mut tags = Vec::new();
    for (name, value) in cmd.tags.bind(py).iter() {
        let name = text(&name.str()?);
        tags.push((name, lossy_text(Some(value))?));
    }
    let test_result = match (&cmd.test_name, &cmd.test_result) {
        (Some(_), None) => Some(
            if outcome.exit_code == Some(0) {
                "PASS"
            } else {
                "FAIL"
            }
            .to_string(),
        ),
        (_, result) => result.clone(),
    };
    Ok(Verdict {
        tags,
        test_name: cmd.test_name.clone(),
        test_result,
    })
}

/// Compile and run the hooks file as module `makescope_hooks`, its directory first on
/// `sys.path` so it can import helpers next to it.
fn load_module<'py>(py: Python<'py>, path: &Path, source: &[u8]) -> PyResult<Bound<'py, PyModule>> {
    let filename = path.to_string_lossy();
    let builtins = py.import_bound("builtins")?;
    let code = builtins.getattr("compile")?.call1((
        pyo3::types::PyBytes::new_bound(py, source),
        &*filename,
        "exec",
    ))?;
    let module = PyModule::new_bound(py, "makescope_hooks")?;
    module.setattr("__file__", &*filename)?;
    let sys = py.import_bound("sys")?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        sys.getattr("path")?
            .call_method1("insert", (0, dir.as_os_str()))?;
    }
    sys.getattr("modules")?
        .set_item("makescope_hooks", &module)?;
    builtins.getattr("exec")?.call1((code, module.dict()))?;
    Ok(module)
}

/// A syntax error as `file:line:col: message`, the line and a caret; anything else with
/// its traceback.
fn describe_load_error(py: Python<'_>, path: &Path, error: &PyErr) -> String {
    if error.is_instance_of::<PySyntaxError>(py) {
        let value = error.value_bound(py);
        let get = |name: &str| value.getattr(name).ok().filter(|v| !v.is_none());
        let msg = get("msg")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "invalid syntax".into());
        let line: Option<u64> = get("lineno").and_then(|v| v.extract().ok());
        let offset: Option<u64> = get("offset").and_then(|v| v.extract().ok());
        let text = get("text").map(|v| v.to_string());
        let mut out = format!("error: hooks file {}", path.display());
        if let Some(line) = line {
            out += &format!(":{line}");
            if let Some(col) = offset {
                out += &format!(":{col}");
            }
        }
        out += &format!(
            ": {}: {msg}\n",
            error
                .get_type_bound(py)
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        );
        if let Some(text) = text {
            let text = text.trim_end_matches(['\n', '\r']);
            out += &format!("    {text}\n");
            if let Some(col) = offset.filter(|c| *c >= 1) {
                out += &format!("    {}^\n", " ".repeat((col - 1) as usize));
            }
        }
        out
    } else {
        format!(
            "error: hooks file {} raised while loading:\n{}",
            path.display(),
            format_traceback(py, error)
        )
    }
}

fn format_traceback(py: Python<'_>, error: &PyErr) -> String {
    let formatted = py.import_bound("traceback").and_then(|tb| {
        let lines = tb.getattr("format_exception")?.call1((
            error.get_type_bound(py),
            error.value_bound(py),
            error.traceback_bound(py),
        ))?;
        PyString::new_bound(py, "")
            .call_method1("join", (lines,))?
            .extract::<String>()
    });
    formatted.unwrap_or_else(|_| format!("{error}\n"))
}

/// The embedded interpreter looks for its standard library next to the executable and
/// then at the prefix libpython was built for; an executable installed under /usr would
/// find the system's Python instead. When libpython lives in PREFIX/lib, PREFIX is its
/// home (the make plugin does the same).
fn set_python_home() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: `Py_IsInitialized` may be called at any time; `dladdr` gets a function's
    // address and a zeroed `Dl_info` to fill; `dli_fname`, checked non-null, is the
    // loader's NUL-terminated file name; `Py_SetPythonHome` runs before the interpreter
    // starts (checked above, and `Once` runs this once) and keeps a pointer that is
    // leaked, so it stays valid for the life of the process.
    ONCE.call_once(|| unsafe {
        if std::env::var_os("PYTHONHOME").is_some() || pyo3::ffi::Py_IsInitialized() != 0 {
            return;
        }
        let mut dl: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(pyo3::ffi::Py_IsInitialized as *const libc::c_void, &mut dl) == 0
            || dl.dli_fname.is_null()
        {
            return;
        }
        let lib = Path::new(OsStr::from_bytes(
            std::ffi::CStr::from_ptr(dl.dli_fname).to_bytes(),
        ));
        let Some(dir) = lib
            .parent()
            .filter(|d| d.file_name() == Some(OsStr::new("lib")))
        else {
            return;
        };
        let Some(home) = dir.parent().and_then(|h| h.to_str()) else {
            return;
        };
        // Python keeps the pointer: leak it.
        let wide: Vec<libc::wchar_t> = home
            .chars()
            .map(|c| c as libc::wchar_t)
            .chain([0])
            .collect();
        #[allow(deprecated)]
        pyo3::ffi::Py_SetPythonHome(Box::leak(wide.into_boxed_slice()).as_ptr());
    });
}
