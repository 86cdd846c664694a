//! Lexical path work on bytes: joining a tracee's path onto its root, cwd or dirfd, and
//! normalising the result. Paths are bytes end to end; nothing here assumes UTF-8.
//!
//! Normalisation is lexical (`a/b/../c` → `a/c`) and never resolves symlinks: the record
//! holds the name the program used. Existence checks use the joined, un-normalised path,
//! so that the kernel's own resolution (symlinks before `..`) decides them.

/// Append `rel` to `base` (absolute) with a `/` between, into `out` (replaced).
pub fn join(base: &[u8], rel: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(base);
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(rel);
}

/// Normalise the absolute path `path` into `out` (replaced): no `.`, `..` or repeated
/// `/`, no trailing `/` (except the root itself). `..` at the root stays at the root.
pub fn normalize(path: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                let keep = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(keep);
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(part);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        normalize(p, &mut out);
        out
    }

    #[test]
    fn normalises_lexically() {
        assert_eq!(n(b"/"), b"/");
        assert_eq!(n(b"//a//b/"), b"/a/b");
        assert_eq!(n(b"/a/./b/../c"), b"/a/c");
        assert_eq!(n(b"/../.."), b"/");
        assert_eq!(n(b"/a/b/../../.."), b"/");
        assert_eq!(n(b"/caf\xe9/x"), b"/caf\xe9/x");
    }

    #[test]
    fn joins() {
        let mut out = Vec::new();
        join(b"/", b"a", &mut out);
        assert_eq!(out, b"/a");
        join(b"/x", b"a", &mut out);
        assert_eq!(out, b"/x/a");
    }
}
