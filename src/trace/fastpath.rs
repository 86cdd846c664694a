//! What the fast path's helper does to a traced command's environment, undone. The shim
//! (`enable_fast_path` in `fastpath.h`) preloads the helper into every traced command;
//! a command inside a traced one inherits that, and neither its recorded environment
//! nor a replay of it should carry it. The recorder and `replay` both undo it here.
//!
//! What it must never do: touch any variable the shim did not change.

use crate::protocol::ASAN_LINK_ORDER;

/// The helper's file name in makescope's private directory of a build.
pub const HELPER_FILE: &str = "makescope-preload.so";

/// An environment as the command would have had it without the tracer's fast path (the
/// shim's `enable_fast_path`, in src/trace/fastpath.h, appends the helper to
/// `LD_PRELOAD` and [`ASAN_LINK_ORDER`] to `ASAN_OPTIONS`), or `None` when the helper is
/// not in it. `is_helper` tells the helper among `LD_PRELOAD`'s words: the recorder
/// knows its path, a replay only its file name ([`HELPER_FILE`]).
pub fn without_fast_path(
    environment: &[&[u8]],
    is_helper: impl Fn(&[u8]) -> bool,
) -> Option<Vec<Vec<u8>>> {
    let preload = environment.iter().find(|e| e.starts_with(b"LD_PRELOAD="))?;
    let mut cleaned = without_preload(preload, &is_helper);
    if cleaned.as_deref() == Some(*preload) {
        return None;
    }
    let mut out = Vec::with_capacity(environment.len());
    for &entry in environment {
        if entry.starts_with(b"LD_PRELOAD=") {
            out.extend(cleaned.take());
        } else if let Some(options) = entry.strip_prefix(b"ASAN_OPTIONS=") {
            let kept = options
                .strip_suffix(ASAN_LINK_ORDER.as_bytes())
                .map(|rest| rest.strip_suffix(b":").unwrap_or(rest))
                .unwrap_or(options);
            if !kept.is_empty() {
                out.push([b"ASAN_OPTIONS=".as_slice(), kept].concat());
            }
        } else {
            out.push(entry.to_vec());
        }
    }
    Some(out)
}

/// An `LD_PRELOAD=…` environment entry without the tracer's helper (which the shim
/// appended): `None` when nothing else is left, so the entry is dropped.
fn without_preload(entry: &[u8], is_helper: &impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let value = entry.strip_prefix(b"LD_PRELOAD=").unwrap_or(entry);
    let words: Vec<&[u8]> = value
        .split(|&b| b == b' ' || b == b':')
        .filter(|w| !w.is_empty())
        .collect();
    let kept: Vec<&[u8]> = words.iter().copied().filter(|w| !is_helper(w)).collect();
    if kept.len() == words.len() {
        return Some(entry.to_vec());
    }
    if kept.is_empty() {
        return None;
    }
    let mut out = b"LD_PRELOAD=".to_vec();
    out.extend_from_slice(&kept.join(&b' '));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::c_side::Driver;
    use crate::protocol::ENV_PREFIX;

    const HELPER: &str = "/tmp/makescope-x/makescope-preload.so";

    #[test]
    fn the_helper_leaves_recorded_preloads() {
        let helper = |w: &[u8]| w == HELPER.as_bytes();
        assert_eq!(
            without_preload(b"LD_PRELOAD=/tmp/makescope-x/makescope-preload.so", &helper),
            None
        );
        assert_eq!(
            without_preload(
                b"LD_PRELOAD=libasan.so.8 /tmp/makescope-x/makescope-preload.so",
                &helper
            ),
            Some(b"LD_PRELOAD=libasan.so.8".to_vec())
        );
        assert_eq!(
            without_preload(b"LD_PRELOAD=a.so:b.so", &helper),
            Some(b"LD_PRELOAD=a.so:b.so".to_vec())
        );
        let outside: [&[u8]; 2] = [b"PATH=/bin", b"ASAN_OPTIONS=verify_asan_link_order=0"];
        assert_eq!(without_fast_path(&outside, helper), None);
    }

    /// What the shim adds to a traced line's environment (run in C, as in production),
    /// the recorder takes back out.
    #[test]
    fn the_recorder_takes_out_what_the_shim_adds() {
        let driver = Driver::build();
        for before in [
            vec![("PATH", "/bin")],
            vec![("PATH", "/bin"), ("ASAN_OPTIONS", "detect_leaks=0")],
            vec![("LD_PRELOAD", "libasan.so.8"), ("ASAN_OPTIONS", "")],
            vec![("LD_PRELOAD", "a.so b.so"), ("HOME", "/h")],
        ] {
            let mut command = driver.command(&["enable-fast-path", HELPER]);
            command.envs(before.iter().copied());
            let inside = Driver::output(command);
            let inside = crate::util::split_nul(&inside);
            let mut cleaned: Vec<String> = without_fast_path(&inside, |w| w == HELPER.as_bytes())
                .expect("the helper is in the environment")
                .iter()
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .filter(|e| !e.starts_with(ENV_PREFIX))
                .collect();
            cleaned.sort();
            let mut expected: Vec<String> = before
                .iter()
                .filter(|(name, value)| !(*name == "ASAN_OPTIONS" && value.is_empty()))
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            expected.sort();
            assert_eq!(cleaned, expected, "{before:?}");
        }
    }
}
