//! A real reader for Chrome trace-event files: the trace engine of Chrome's own DevTools
//! (the Performance panel's parser, `models/trace/trace.js`), which Chromium ships inside
//! its binary. Headless Chromium is driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: file descriptors 3 and 4, messages ended by a NUL byte), so
//! nothing listens on a port and nothing is fetched from the network.
//!
//! Perfetto's trace processor would do as well, but its Python package downloads the
//! binary from Google's storage on first use, which this machine cannot reach; the
//! DevTools engine is the other reader the trace-event format is written for.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::Test;

/// How long one protocol call may take (loading DevTools' modules is the slow one).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A headless Chromium and one page in it, attached. Dropped, the browser is killed.
pub struct Browser {
    child: std::process::Child,
    to: std::fs::File,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Start headless Chromium with its protocol on a pipe and open `url` in a page,
    /// waiting for the page's load event.
    pub fn open(t: &Test, url: &str) -> Browser {
        let (browser_reads, we_write) = pipe();
        let (we_read, browser_writes) = pipe();
        let mut command = t.program("chromium");
        command.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--remote-debugging-pipe",
        ]);
        command.arg(format!(
            "--user-data-dir={}",
            t.path().join("devtools-profile").display()
        ));
        command.arg("about:blank");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (r, w) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());
        // SAFETY: between fork and exec the closure only calls async-signal-safe
        // functions (fcntl, dup2) on descriptors the parent keeps open until spawn returns.
        unsafe {
            command.pre_exec(move || {
                // Copies above 4 first, so that neither dup2 below can close the other's
                // source; dup2 leaves the new descriptors open across exec.
                let r = libc::fcntl(r, libc::F_DUPFD_CLOEXEC, 10);
                let w = libc::fcntl(w, libc::F_DUPFD_CLOEXEC, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((browser_reads, browser_writes));
        let (sender, from) = mpsc::channel();
        let mut reader = std::fs::File::from(we_read);
        std::thread::spawn(move || {
            let mut buffer = Vec::new();
            let mut chunk = vec![0; 1 << 16];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
                while let Some(end) = buffer.iter().position(|&b| b == 0) {
                    let message: Value =
                        serde_json::from_slice(&buffer[..end]).expect("protocol messages are JSON");
                    buffer.drain(..=end);
                    if sender.send(message).is_err() {
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            to: std::fs::File::from(we_write),
            from,
            next_id: 0,
            session: String::new(),
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }))
            ["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Page.enable", json!({}));
        browser.call("Page.navigate", json!({ "url": url }));
        browser.wait_for("Page.loadEventFired");
        browser
    }

    fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({ "id": self.next_id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("chromium reads its pipe");
        self.next_id
    }

    fn next(&mut self, waiting_for: &str) -> Value {
        self.from
            .recv_timeout(CALL_TIMEOUT)
            .unwrap_or_else(|e| panic!("chromium: no {waiting_for} ({e})"))
    }

    /// Call a protocol method and return its result; an error reply fails the test.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        loop {
            let message = self.next(method);
            if message["id"] == id {
                assert!(message["error"].is_null(), "{method}: {message}");
                return message["result"].clone();
            }
        }
    }

    fn wait_for(&mut self, event: &str) {
        while self.next(event)["method"] != event {}
    }

    /// Evaluate `expression` in the page, awaiting it if it is a promise; a thrown
    /// exception fails the test with its text.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "the page threw: {:#}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What DevTools' trace engine made of a trace-event document: every complete slice it
/// put on a thread, as `[pid, tid, thread name, name, ts, dur]`, the warnings it raised,
/// and the trace's bounds (`[min, max]`, microseconds).
pub struct Parsed {
    pub slices: Vec<(u64, u64, String, String, u64, u64)>,
    pub warnings: Vec<String>,
    pub bounds: (u64, u64),
}

/// Parse `trace` (a trace-event JSON document) with DevTools' trace engine in `t`'s
/// headless Chromium.
pub fn parse_trace(t: &Test, trace: &str) -> Parsed {
    let mut browser = Browser::open(t, "devtools://devtools/bundled/devtools_app.html");
    let script = format!(
        r#"(async () => {{
  const Trace = await import('./models/trace/trace.js');
  const document = JSON.parse({trace});
  const model = Trace.TraceModel.Model.createWithAllHandlers();
  await model.parse(document.traceEvents);
  const parsed = model.parsedTrace(0);
  const data = parsed.data || parsed;
  const slices = [];
  for (const [pid, process] of data.Renderer.processes) {{
    for (const [tid, thread] of process.threads) {{
      for (const e of thread.entries) {{
        slices.push([pid, tid, thread.name || '', e.name, e.ts, e.dur]);
      }}
    }}
  }}
  const warnings = [...data.Warnings.perWarning.keys()];
  const bounds = data.Meta.traceBounds;
  return {{ slices, warnings, bounds: [bounds.min, bounds.max] }};
}})()"#,
        trace = serde_json::to_string(trace).unwrap()
    );
    let value = browser.evaluate(&script);
    let number = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_f64().map(|f| f as u64))
            .unwrap_or_else(|| panic!("not a number: {v}"))
    };
    Parsed {
        slices: value["slices"]
            .as_array()
            .unwrap_or_else(|| panic!("no slices: {value}"))
            .iter()
            .map(|s| {
                (
                    number(&s[0]),
                    number(&s[1]),
                    s[2].as_str().unwrap().to_string(),
                    s[3].as_str().unwrap().to_string(),
                    number(&s[4]),
                    number(&s[5]),
                )
            })
            .collect(),
        warnings: value["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.to_string())
            .collect(),
        bounds: (number(&value["bounds"][0]), number(&value["bounds"][1])),
    }
}
