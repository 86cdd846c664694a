//! `makescope coverage` as data: which installed packages a build used. A package is
//! used when the build opened (read or executed) one of its files, through a symbolic
//! link or not; each used package comes with the files opened and how many it has. A
//! package could have been used when the user names it, or when it is a development
//! package (headers under `/usr/include`, a pkg-config file, or an unversioned `lib*.so`
//! or `lib*.a`) with files under a directory where the build looked for such a file and
//! did not find it (a compiler's include path, a linker's library path: the probes the
//! tracer records); those the build never opened are untouched.
//! User-named path prefixes are reported the same way, and opened paths that no package
//! owns are grouped by prefix (the build's own directory, then the first two
//! components).
//!
//! Package ownership is dpkg's own file lists (`/var/lib/dpkg/info/*.list`); on a system
//! without them that is said, and only prefixes are reported. Paths are compared after
//! the merged-`/usr` aliases of this system (`/lib` → `/usr/lib` when `/lib` is that
//! link), since dpkg lists a file under the name its package shipped it.
//!
//! What it must never do: print, or write the record.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{load, Recorded};
use crate::config::Config;
use crate::paths;
use crate::util::lossy;

/// Where dpkg keeps its file lists.
pub const DPKG_INFO: &str = "/var/lib/dpkg/info";

/// What `coverage` is asked about.
#[derive(Debug, Clone, Default)]
pub struct CoverageOptions {
    /// The build (default: the last one).
    pub build: Option<i64>,
    /// Path prefixes to report on, used or not.
    pub prefixes: Vec<PathBuf>,
    /// Packages to report on, used or not.
    pub packages: Vec<String>,
    /// dpkg's info directory (default [`DPKG_INFO`]).
    pub database: Option<PathBuf>,
}

/// One package the build opened files of.
#[derive(Debug, Clone, PartialEq)]
pub struct Used {
    pub package: String,
    /// The files it owns (entries of its list that are not directories of it).
    pub files: usize,
    /// The ones opened, sorted.
    pub opened: Vec<String>,
}

/// A package or prefix the build could have used and never opened a file of.
#[derive(Debug, Clone, PartialEq)]
pub struct Untouched {
    pub name: String,
    /// Why it was a candidate: `named`, or the directory searched.
    pub why: String,
}

/// Files opened under one prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    pub prefix: String,
    pub opened: Vec<String>,
}

/// A build's dependency coverage.
#[derive(Debug, Clone)]
pub struct Coverage {
    pub build_id: i64,
    /// The package database read, if there was one.
    pub database: Option<PathBuf>,
    pub packages_installed: usize,
    pub used: Vec<Used>,
    pub untouched: Vec<Untouched>,
    /// The user's prefixes: each with what was opened under it (empty: untouched).
    pub prefixes: Vec<Prefix>,
    /// Opened paths no package owns, grouped by prefix.
    pub unowned: Vec<Prefix>,
    /// How many distinct paths the build opened.
    pub opened: usize,
}

/// The merged-`/usr` aliases of this system: `/lib` → `/usr/lib` when `/lib` is a
/// symbolic link to `usr/lib`.
fn usr_aliases() -> Vec<(Vec<u8>, Vec<u8>)> {
    ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]
        .iter()
        .filter(|d| {
            std::fs::read_link(format!("/{d}"))
                .is_ok_and(|t| t == Path::new("usr").join(d) || t == Path::new("/usr").join(d))
        })
        .map(|d| {
            (
                format!("/{d}/").into_bytes(),
                format!("/usr/{d}/").into_bytes(),
            )
        })
        .collect()
}

fn canonical(path: &[u8], aliases: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    for (from, to) in aliases {
        if let Some(rest) = path.strip_prefix(from.as_slice()) {
            let mut out = to.clone();
            out.extend_from_slice(rest);
            return out;
        }
    }
    path.to_vec()
}

/// dpkg's file lists: who owns each path, and each package's files.
struct Database {
    packages: Vec<String>,
    /// Each package's number of files (list entries that hold no other entry).
    files: Vec<usize>,
    owners: HashMap<Vec<u8>, Vec<u32>>,
    /// For each directory but `/`, the development packages with a file under it.
    under: HashMap<Vec<u8>, BTreeSet<u32>>,
}

/// Is this file what a build uses a development package for: a header, a pkg-config
/// file, a library to link (not a versioned runtime one)?
fn is_development_file(path: &[u8]) -> bool {
    let name = &path[path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
    path.starts_with(b"/usr/include/")
        || [&b".h"[..], b".hh", b".hpp", b".pc"]
            .iter()
            .any(|end| name.ends_with(end))
        || (name.starts_with(b"lib") && (name.ends_with(b".so") || name.ends_with(b".a")))
}

impl Database {
    fn read(dir: &Path, aliases: &[(Vec<u8>, Vec<u8>)]) -> Result<Database> {
        let mut lists: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read dpkg's file lists in {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "list"))
            .collect();
        lists.sort();
        let mut db = Database {
            packages: Vec::new(),
            files: Vec::new(),
            owners: HashMap::new(),
            under: HashMap::new(),
        };
        for list in lists {
            let Some(stem) = list.file_stem() else {
                continue;
            };
            let name = lossy(stem.as_bytes());
            let name = name.split(':').next().unwrap_or_default().to_string();
            let Ok(text) = std::fs::read(&list) else {
                continue;
            };
            let number = db.packages.len() as u32;
            db.packages.push(name);
            let mut entries: Vec<Vec<u8>> = text
                .split(|&b| b == b'\n')
                .filter(|l| l.len() > 1 && l[0] == b'/' && l != b"/.")
                .map(|l| canonical(l, aliases))
                .collect();
            entries.sort();
            entries.dedup();
            let mut files = Vec::new();
            for (i, entry) in entries.iter().enumerate() {
                let holds_more = entries.get(i + 1).is_some_and(|next| {
                    next.len() > entry.len() && next.starts_with(entry) && next[entry.len()] == b'/'
                });
                if !holds_more {
                    files.push(entry);
                }
            }
            db.files.push(files.len());
            if files.iter().any(|f| is_development_file(f)) {
                for file in files {
                    let mut end = file.len();
                    while let Some(slash) = file[..end].iter().rposition(|&b| b == b'/') {
                        if slash == 0 {
                            break;
                        }
                        let set = db.under.entry(file[..slash].to_vec()).or_default();
                        if !set.insert(number) {
                            break;
                        }
                        end = slash;
                    }
                }
            }
            for entry in entries {
                db.owners.entry(entry).or_default().push(number);
            }
        }
        Ok(db)
    }
}

/// The chosen build's coverage.
pub fn coverage(config: &Config, options: &CoverageOptions) -> Result<Coverage> {
    let recorded = load(config, options.build)?;
    measure(&recorded, options)
}

/// The coverage of a loaded build.
pub fn measure(recorded: &Recorded, options: &CoverageOptions) -> Result<Coverage> {
    let database_dir = options
        .database
        .clone()
        .unwrap_or_else(|| PathBuf::from(DPKG_INFO));
    let aliases = usr_aliases();
    let database = if database_dir.is_dir() {
        Some(Database::read(&database_dir, &aliases)?)
    } else if !options.packages.is_empty() {
        bail!(
            "there is no package database at {} (dpkg's file lists): packages cannot be named here; \
             use --prefix",
            database_dir.display()
        );
    } else {
        None
    };
    if let Some(db) = &database {
        for named in &options.packages {
            if !db.packages.iter().any(|p| p == named) {
                bail!(
                    "no installed package is called `{named}` (dpkg's lists in {})",
                    database_dir.display()
                );
            }
        }
    }
    let store = &recorded.store;
    let usage = store.path_use(recorded.build.id)?;
    let opened: Vec<Vec<u8>> = store
        .paths_in_order(&usage.opened)?
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let mut searched_dirs: BTreeSet<Vec<u8>> = BTreeSet::new();
    for path in store.paths_in_order(&usage.searched)? {
        if !is_development_file(&path) {
            continue;
        }
        if let Some(slash) = path.iter().rposition(|&b| b == b'/') {
            searched_dirs.insert(canonical(&path[..slash.max(1)], &aliases));
        }
    }

    let mut used: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut unowned: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let top = &recorded.build.directory;
    for path in &opened {
        let shown = lossy(path).into_owned();
        let mut owned = false;
        if let Some(db) = &database {
            let mut names = vec![canonical(path, &aliases)];
            // Packages install below these; a build's own tree (most of what it opens)
            // is not looked at twice.
            let system = [&b"/usr/"[..], b"/etc/", b"/opt/", b"/var/"]
                .iter()
                .any(|p| names[0].starts_with(p));
            let real = system
                .then(|| std::fs::canonicalize(paths::as_path(path)).ok())
                .flatten();
            if let Some(real) = real {
                let real = canonical(paths::as_bytes(&real), &aliases);
                if real != names[0] {
                    names.push(real);
                }
            }
            for name in names {
                if let Some(owners) = db.owners.get(&name) {
                    owned = true;
                    for &p in owners {
                        used.entry(p).or_default().insert(shown.clone());
                    }
                }
            }
        }
        if !owned {
            unowned.entry(group(path, top)).or_default().push(shown);
        }
    }

    let mut untouched: Vec<Untouched> = Vec::new();
    let mut packages_installed = 0;
    let used_list: Vec<Used> = match &database {
        None => Vec::new(),
        Some(db) => {
            packages_installed = db.packages.len();
            // Why each is a candidate, and how many packages that reason covers: the
            // fewer, the more it says (`-I/usr/include/libxml2` holds one package's
            // headers, `/usr/include` everyone's).
            let mut why: BTreeMap<u32, (usize, String)> = BTreeMap::new();
            for named in &options.packages {
                for (i, p) in db.packages.iter().enumerate() {
                    if p == named {
                        why.insert(i as u32, (0, "named".into()));
                    }
                }
            }
            for dir in &searched_dirs {
                let Some(packages) = db.under.get(dir) else {
                    continue;
                };
                for &p in packages {
                    let reason = (packages.len(), format!("searched {}", lossy(dir)));
                    let entry = why.entry(p).or_insert_with(|| reason.clone());
                    if reason < *entry {
                        *entry = reason;
                    }
                }
            }
            let mut reasons: Vec<(usize, String, String)> = why
                .into_iter()
                .filter(|(p, _)| !used.contains_key(p))
                .map(|(p, (breadth, why))| (breadth, db.packages[p as usize].clone(), why))
                .collect();
            reasons.sort();
            untouched = reasons
                .into_iter()
                .map(|(_, name, why)| Untouched { name, why })
                .collect();
            let mut list: Vec<Used> = used
                .into_iter()
                .map(|(p, files)| Used {
                    package: db.packages[p as usize].clone(),
                    files: db.files[p as usize],
                    opened: files.into_iter().collect(),
                })
                .collect();
            list.sort_by(|a, b| {
                b.opened
                    .len()
                    .cmp(&a.opened.len())
                    .then(a.package.cmp(&b.package))
            });
            list
        }
    };

    let prefixes = options
        .prefixes
        .iter()
        .map(|prefix| {
            let wanted = paths::normalize(paths::as_bytes(prefix));
            let opened_here = opened
                .iter()
                .filter(|p| {
                    p.starts_with(&wanted)
                        && (p.len() == wanted.len()
                            || wanted.ends_with(b"/")
                            || p[wanted.len()] == b'/')
                })
                .map(|p| lossy(p).into_owned())
                .collect();
            Prefix {
                prefix: lossy(&wanted).into_owned(),
                opened: opened_here,
            }
        })
        .collect();
    let mut unowned: Vec<Prefix> = unowned
        .into_iter()
        .map(|(prefix, mut opened)| {
            opened.sort();
            Prefix { prefix, opened }
        })
        .collect();
    unowned.sort_by(|a, b| {
        b.opened
            .len()
            .cmp(&a.opened.len())
            .then(a.prefix.cmp(&b.prefix))
    });
    Ok(Coverage {
        build_id: recorded.build.id,
        database: database.is_some().then_some(database_dir),
        packages_installed,
        used: used_list,
        untouched,
        prefixes,
        unowned,
        opened: opened.len(),
    })
}

/// The prefix an unowned path is grouped under: the build's directory, or its first two
/// components.
fn group(path: &[u8], top: &[u8]) -> String {
    if path.starts_with(top) && (path.len() == top.len() || path.get(top.len()) == Some(&b'/')) {
        return lossy(top).into_owned();
    }
    let mut end = path.len();
    let mut slashes = 0;
    for (i, &b) in path.iter().enumerate().skip(1) {
        if b == b'/' {
            slashes += 1;
            if slashes == 2 {
                end = i;
                break;
            }
        }
    }
    lossy(&path[..end]).into_owned()
}

impl Coverage {
    /// `makescope coverage --json`.
    pub fn to_json(&self) -> Value {
        let prefixes = |list: &[Prefix]| -> Value {
            json!(list
                .iter()
                .map(|p| json!({"prefix": p.prefix, "opened": p.opened.len(), "files": p.opened}))
                .collect::<Vec<_>>())
        };
        json!({
            "build": self.build_id,
            "package_database": self.database.as_ref().map(|d| d.display().to_string()),
            "packages_installed": self.packages_installed,
            "paths_opened": self.opened,
            "used": self.used.iter().map(|u| json!({
                "package": u.package, "files": u.files, "opened": u.opened.len(), "opened_files": u.opened,
            })).collect::<Vec<_>>(),
            "untouched": self.untouched.iter().map(|u| json!({"package": u.name, "why": u.why})).collect::<Vec<_>>(),
            "prefixes": prefixes(&self.prefixes),
            "unowned": prefixes(&self.unowned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unowned_paths_group_under_the_build_or_two_components() {
        assert_eq!(group(b"/w/b/x.c", b"/w/b"), "/w/b");
        assert_eq!(group(b"/w/bc/x.c", b"/w/b"), "/w/bc");
        assert_eq!(group(b"/etc/ld.so.cache", b"/w"), "/etc/ld.so.cache");
        assert_eq!(group(b"/usr/local/include/x.h", b"/w"), "/usr/local");
    }

    #[test]
    fn aliases_rewrite_only_their_prefix() {
        let aliases = vec![(b"/lib/".to_vec(), b"/usr/lib/".to_vec())];
        assert_eq!(
            canonical(b"/lib/x/libz.so.1", &aliases),
            b"/usr/lib/x/libz.so.1"
        );
        assert_eq!(canonical(b"/library/x", &aliases), b"/library/x");
    }
}
