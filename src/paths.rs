//! Lexical path arithmetic on bytes: normalising, making absolute, making relative.
//! Every piece that turns a recorded or written path into another form (queries, labels,
//! the `targets` listing) goes through here, so that they agree on what a path means.
//!
//! One meaning of `..`, the lexical one: `a/b/..` is `a`, whatever `b` is (a symlink or
//! not), as `realpath -m -s` and Python's `os.path.normpath` read it. The record holds
//! the names programs used and make names files the same way, so symlinks are never
//! resolved here. `..` at the root stays at the root (`/..` is `/`, as the kernel has
//! it); in a relative path a `..` with nothing left to take back is kept (`a/../../x` is
//! `../x`). `.` and empty components (repeated or trailing slashes) go away; a leading
//! `//` is `/`.
//!
//! What it must never do: look at the file system. Paths are bytes end to end; nothing
//! here assumes UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes as a path.
pub fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// A path as bytes.
pub fn as_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

/// Whether `path` starts at the root.
pub fn is_absolute(path: &[u8]) -> bool {
    path.first() == Some(&b'/')
}

/// Normalise `path` into `out` (replaced): see the module's doc for what `.` and `..`
/// mean. An absolute path stays absolute (`/` at least); a relative one stays relative
/// (`.` at least).
pub fn normalize_into(path: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let rooted = is_absolute(path);
    // Each component is pushed as `/name`; `kept` is how much of `out` is leading `..`s
    // of a relative path, which a later `..` must not take back.
    let mut kept = 0;
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if out.len() > kept => {
                let parent = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(parent);
            }
            b".." => {
                if !rooted {
                    out.extend_from_slice(b"/..");
                    kept = out.len();
                }
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(part);
            }
        }
    }
    if rooted {
        if out.is_empty() {
            out.push(b'/');
        }
    } else if out.is_empty() {
        out.push(b'.');
    } else {
        out.remove(0);
    }
}

/// `path` normalised (see the module's doc).
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    normalize_into(path, &mut out);
    out
}

/// `path` made absolute against the directory `base` (unless it already is) and
/// normalised. `base` is meant to be absolute; an empty one is taken as the root.
pub fn absolute(base: &[u8], path: &[u8]) -> Vec<u8> {
    if is_absolute(path) {
        return normalize(path);
    }
    let mut joined = Vec::with_capacity(base.len() + path.len() + 1);
    joined.extend_from_slice(base);
    if joined.last() != Some(&b'/') {
        joined.push(b'/');
    }
    joined.extend_from_slice(path);
    normalize(&joined)
}

/// The absolute `path` as seen from the absolute directory `base` (both normalised
/// first): `sub/x`, `../x`, or `.` for `base` itself. `None` when either is relative,
/// when it would take more than `max_ups` `..` steps, or when the two share nothing but
/// the root and `path` is not below `base` (`/usr/include/x.h` from `/work/build` reads
/// better as it is).
pub fn relative(path: &[u8], base: &[u8], max_ups: usize) -> Option<Vec<u8>> {
    if !is_absolute(path) || !is_absolute(base) {
        return None;
    }
    let (path, base) = (normalize(path), normalize(base));
    let (p, b) = (components(&path), components(&base));
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let ups = b.len() - common;
    if ups > max_ups || (ups > 0 && common == 0) {
        return None;
    }
    let mut out = Vec::with_capacity(path.len());
    for part in std::iter::repeat(&b".."[..])
        .take(ups)
        .chain(p[common..].iter().copied())
    {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    Some(out)
}

/// The names in a normalised path.
fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|part| !part.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(path: &str) -> String {
        String::from_utf8(normalize(path.as_bytes())).unwrap()
    }

    #[test]
    fn normalize_drops_dots_and_empty_components() {
        assert_eq!(n("/"), "/");
        assert_eq!(n("/a/./b/."), "/a/b");
        assert_eq!(n("//a///b"), "/a/b");
        assert_eq!(n("/a/b/"), "/a/b");
        assert_eq!(n("/a/b//"), "/a/b");
        assert_eq!(n("./a"), "a");
        assert_eq!(n("."), ".");
        assert_eq!(n(""), ".");
        assert_eq!(n("a//b/"), "a/b");
    }

    #[test]
    fn dot_dot_takes_back_one_component_lexically() {
        assert_eq!(n("/a/b/../c"), "/a/c");
        assert_eq!(n("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(n("a/b/../../c"), "c");
        assert_eq!(n("a/.."), ".");
        assert_eq!(n("/a/b/../.."), "/");
    }

    #[test]
    fn dot_dot_past_the_root_stays_at_the_root() {
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/../.."), "/");
        assert_eq!(n("/a/b/../../.."), "/");
        assert_eq!(n("/../x/./y/.."), "/x");
    }

    #[test]
    fn dot_dot_past_the_start_of_a_relative_path_is_kept() {
        assert_eq!(n(".."), "..");
        assert_eq!(n("../.."), "../..");
        assert_eq!(n("a/../../x"), "../x");
        assert_eq!(n("../a/../../b"), "../../b");
        assert_eq!(n("./../x/"), "../x");
    }

    /// Absolute paths as the tracer numbers them (every path it records goes through here).
    #[test]
    fn absolute_paths_stay_under_the_root() {
        for (path, want) in [
            ("/", "/"),
            ("//", "/"),
            ("/a//b/", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/..", "/"),
            ("/../..", "/"),
            ("/a/b/../../..", "/"),
            ("/a/..", "/"),
            ("/x/../../y/./z/", "/y/z"),
            ("/.a/..b/...", "/.a/..b/..."),
            ("/a/b/c/../../d", "/a/d"),
            ("/caf\u{e9}/x", "/caf\u{e9}/x"),
        ] {
            assert_eq!(normalize(path.as_bytes()), want.as_bytes(), "{path}");
        }
        assert_eq!(normalize(b"/caf\xe9/../x"), b"/x");
    }

    #[test]
    fn non_utf8_bytes_pass_through() {
        assert_eq!(normalize(b"/caf\xe9/./x"), b"/caf\xe9/x");
    }

    #[test]
    fn absolute_joins_onto_the_base_unless_absolute() {
        assert_eq!(absolute(b"/x/y", b"../z"), b"/x/z");
        assert_eq!(absolute(b"/x/y/", b"./z/"), b"/x/y/z");
        assert_eq!(absolute(b"/x/y", b"/a/../b"), b"/b");
        assert_eq!(absolute(b"/", b"a"), b"/a");
        assert_eq!(absolute(b"/x", b"../../.."), b"/");
        assert_eq!(absolute(b"", b"a"), b"/a");
        assert_eq!(absolute(b"rel", b"../../a"), b"../a");
    }

    fn r(path: &str, base: &str, max_ups: usize) -> Option<String> {
        relative(path.as_bytes(), base.as_bytes(), max_ups).map(|p| String::from_utf8(p).unwrap())
    }

    #[test]
    fn relative_below_beside_and_far_away() {
        assert_eq!(r("/a/b/c", "/a/b", 0).as_deref(), Some("c"));
        assert_eq!(r("/a/b", "/a/b/", 0).as_deref(), Some("."));
        assert_eq!(r("/a/b/c", "/a/d", 1).as_deref(), Some("../b/c"));
        assert_eq!(r("/a/b/c", "/a/d", 0), None);
        assert_eq!(r("/a", "/a/b/c", 2).as_deref(), Some("../.."));
        assert_eq!(r("/a", "/a/b/c/d", 2), None);
        assert_eq!(r("/usr/x.h", "/work/build", usize::MAX), None);
        assert_eq!(r("/usr/x.h", "/", 0).as_deref(), Some("usr/x.h"));
        assert_eq!(r("/", "/", 0).as_deref(), Some("."));
        assert_eq!(r("/ab/c", "/a", 5), None);
        assert_eq!(r("/a/./b/../c//", "/a/x/..", 0).as_deref(), Some("c"));
        assert_eq!(r("a/b", "/a", 5), None);
        assert_eq!(r("/a/b", "a", 5), None);
    }
}
