//! The kinds of file access: what each of the record's `access_kind` ids means, and
//! which kinds make a command a reader or a writer of a path.
//!
//! Every piece that names a kind takes it from here: the tracer classifies calls into
//! [`AccessKind`]s, the recorder counts them, the store writes their ids and asks the
//! DAG's questions through [`AccessKind::sql_ids`], and the hooks (`cmd.reads`,
//! `cmd.writes`) and the Python package (`ACCESS_KINDS`, `READ_KINDS`, `WRITE_KINDS`)
//! sort files with [`AccessKind::is_read`] and [`AccessKind::is_write`]. The one other
//! spelling is the released migration that fills the `access_kind` table
//! (`store/schema_v1.sql`), which is never edited: a store test checks that its rows
//! equal [`AccessKind::ALL`].
//!
//! This module depends on nothing else in the crate, so the tracer and the store can
//! both use it without depending on each other. It never decides how the store lays the
//! kinds out (rows, sets): that is the store's business.

/// How a path was touched. The numbers are the record's `access_kind` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AccessKind {
    /// Opened read-only, and it existed.
    Read = 1,
    /// Opened for writing without `O_TRUNC`/`O_APPEND`; it existed.
    Write = 2,
    /// Opened with `O_CREAT` (or `creat`) and did not exist.
    Create = 3,
    /// Opened with `O_TRUNC` (or `truncate(2)`) and existed.
    Truncate = 4,
    /// Opened with `O_APPEND` and existed.
    Append = 5,
    /// Executed (execve/execveat on an existing file).
    Exec = 6,
    /// Metadata looked at (stat, access, `O_PATH`, readlink if trapped), or an operation
    /// that failed because the path existed (`mkdir`, `O_CREAT|O_EXCL`); it existed.
    Stat = 7,
    /// Looked for and found missing (any call on a path that does not exist).
    Probe = 8,
    /// A directory listed (getdents on a directory fd).
    List = 9,
    /// unlink/unlinkat/rmdir of an existing path.
    Remove = 10,
    /// The old side of a rename.
    RenameFrom = 11,
    /// The new side of a rename.
    RenameTo = 12,
    /// A directory created.
    Mkdir = 13,
    /// A symbolic link created (the link's own path; its target is just text).
    Symlink = 14,
    /// A hard link created (the new path; the old one is recorded as `Stat`).
    Link = 15,
    /// Changed directory into (chdir/fchdir).
    Chdir = 16,
}

impl AccessKind {
    /// Every kind, by id (the `access_kind` table's rows, in order).
    pub const ALL: [AccessKind; 16] = [
        AccessKind::Read,
        AccessKind::Write,
        AccessKind::Create,
        AccessKind::Truncate,
        AccessKind::Append,
        AccessKind::Exec,
        AccessKind::Stat,
        AccessKind::Probe,
        AccessKind::List,
        AccessKind::Remove,
        AccessKind::RenameFrom,
        AccessKind::RenameTo,
        AccessKind::Mkdir,
        AccessKind::Symlink,
        AccessKind::Link,
        AccessKind::Chdir,
    ];

    /// The record's id for the kind (`access_kind.id`, the `kind` columns).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The kind with this `access_kind` id.
    #[inline]
    pub fn from_id(id: u8) -> Option<AccessKind> {
        // `ALL` is in id order from 1 (a test checks it): the tracer decodes every ring
        // record through here.
        let index = usize::from(id).checked_sub(1)?;
        AccessKind::ALL.get(index).copied()
    }

    /// The record's name for the kind (`access_kind.name`, `FileAccess.kind` in Python).
    pub const fn name(self) -> &'static str {
        match self {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
            AccessKind::Create => "create",
            AccessKind::Truncate => "truncate",
            AccessKind::Append => "append",
            AccessKind::Exec => "exec",
            AccessKind::Stat => "stat",
            AccessKind::Probe => "probe",
            AccessKind::List => "list",
            AccessKind::Remove => "remove",
            AccessKind::RenameFrom => "rename_from",
            AccessKind::RenameTo => "rename_to",
            AccessKind::Mkdir => "mkdir",
            AccessKind::Symlink => "symlink",
            AccessKind::Link => "link",
            AccessKind::Chdir => "chdir",
        }
    }

    /// The kind with this name (as [`AccessKind::name`] spells it).
    pub fn from_name(name: &str) -> Option<AccessKind> {
        AccessKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether a command that did this depends on the path's content or existence, so
    /// that it is a *reader* of the path: read, exec, stat, list, probe. The DAG draws
    /// an edge into such a command from every earlier writer of the path; it is what a
    /// hook's `cmd.reads` holds and the Python package's `READ_KINDS`.
    pub const fn is_read(self) -> bool {
        matches!(
            self,
            AccessKind::Read
                | AccessKind::Exec
                | AccessKind::Stat
                | AccessKind::List
                | AccessKind::Probe
        )
    }

    /// Whether a command that did this put something at the path (content, a directory,
    /// a link), so that it is a *writer* of the path: write, create, truncate, append,
    /// rename_to, mkdir, symlink, link. The DAG's edges start at such commands
    /// (`Store::compute_edges`, `Store::writers_of`); it is what a hook's `cmd.writes`
    /// holds and the Python package's `WRITE_KINDS`.
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            AccessKind::Write
                | AccessKind::Create
                | AccessKind::Truncate
                | AccessKind::Append
                | AccessKind::RenameTo
                | AccessKind::Mkdir
                | AccessKind::Symlink
                | AccessKind::Link
        )
    }

    /// The ids of the kinds `select` picks, as SQL spells a list of them (`"1, 6, 7"`,
    /// for `kind IN (…)`), so that no query spells ids by hand:
    /// `AccessKind::sql_ids(AccessKind::is_write)`.
    pub fn sql_ids(select: impl Fn(AccessKind) -> bool) -> String {
        let ids: Vec<String> = AccessKind::ALL
            .into_iter()
            .filter(|&k| select(k))
            .map(|k| k.id().to_string())
            .collect();
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::AccessKind;

    #[test]
    fn all_lists_every_kind_once_by_id() {
        let ids: Vec<u8> = AccessKind::ALL.iter().map(|k| k.id()).collect();
        assert_eq!(ids, (1..=16).collect::<Vec<u8>>());
    }

    #[test]
    fn ids_and_names_round_trip() {
        for kind in AccessKind::ALL {
            assert_eq!(AccessKind::from_id(kind.id()), Some(kind));
            assert_eq!(AccessKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(AccessKind::from_id(0), None);
        assert_eq!(AccessKind::from_id(17), None);
        assert_eq!(AccessKind::from_name("wrote"), None);
    }

    #[test]
    fn reads_and_writes_are_the_documented_sets() {
        let named = |select: fn(AccessKind) -> bool| -> Vec<&str> {
            AccessKind::ALL
                .into_iter()
                .filter(|&k| select(k))
                .map(AccessKind::name)
                .collect()
        };
        assert_eq!(
            named(AccessKind::is_read),
            ["read", "exec", "stat", "probe", "list"]
        );
        assert_eq!(
            named(AccessKind::is_write),
            [
                "write",
                "create",
                "truncate",
                "append",
                "rename_to",
                "mkdir",
                "symlink",
                "link"
            ]
        );
        assert_eq!(
            named(|k| !k.is_read() && !k.is_write()),
            ["remove", "rename_from", "chdir"]
        );
    }

    #[test]
    fn sql_ids_lists_the_selected_ids() {
        assert_eq!(
            AccessKind::sql_ids(AccessKind::is_write),
            "2, 3, 4, 5, 12, 13, 14, 15"
        );
        assert_eq!(AccessKind::sql_ids(AccessKind::is_read), "1, 6, 7, 8, 9");
        assert_eq!(AccessKind::sql_ids(|_| false), "");
    }
}
