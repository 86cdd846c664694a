//! The typed arguments of each trapped system call: [`Syscall::decode`] turns a
//! notification's [`Sys`] and six raw registers into one value that names what the
//! supervisor needs (which path operand, relative to which directory, which flags
//! matter), so that classification never indexes raw arguments.
//!
//! Decoding is pure register arithmetic: it reads nothing from the tracee and allocates
//! nothing. Paths stay addresses in the tracee, read once, later, into the supervisor's
//! reused buffers; openat2's `struct open_how` stays an address too. Calls that mean the
//! same to the tracer decode to one variant (`open`, `creat` and `openat` to
//! [`Syscall::Open`]; the stat and access calls and `readlink` to [`Syscall::Stat`]), so
//! each family is classified in one place.

use super::filter::Sys;
use super::sys::{AT_EMPTY_PATH, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, RENAME_EXCHANGE};

/// A path operand: the NUL-terminated string at `addr` in the tracee, relative (when
/// not absolute) to the directory `dirfd` (`AT_FDCWD` for the calls without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathArg {
    pub dirfd: i32,
    pub addr: u64,
}

impl PathArg {
    /// Relative to the working directory.
    fn cwd(addr: u64) -> PathArg {
        PathArg {
            dirfd: libc::AT_FDCWD,
            addr,
        }
    }

    /// Relative to the descriptor in register `dirfd` (its low 32 bits, as the kernel
    /// reads an `int`).
    fn at(dirfd: u64, addr: u64) -> PathArg {
        PathArg {
            dirfd: dirfd as i32,
            addr,
        }
    }
}

/// A trapped call, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// `open`, `creat` (whose flags are `O_CREAT|O_WRONLY|O_TRUNC`), `openat`.
    Open { path: PathArg, flags: i32 },
    /// `openat2`: flags and resolve mode are in the `struct open_how` of `size` bytes at
    /// `how`.
    Openat2 { path: PathArg, how: u64, size: u64 },
    /// `execve`, `execveat`: `argv` is the tracee's pointer array; `empty_path`
    /// (`AT_EMPTY_PATH`, i.e. `fexecve`): an empty path means `dirfd` itself.
    Exec {
        path: PathArg,
        argv: u64,
        empty_path: bool,
        follow: bool,
    },
    /// `stat`, `lstat`, `newfstatat`, `statx`, `access`, `faccessat`, `faccessat2`, and
    /// `readlink`, `readlinkat` when trapped: a look at the path, nothing changes.
    /// `empty_path`: an empty path means `dirfd` itself.
    Stat {
        path: PathArg,
        follow: bool,
        empty_path: bool,
    },
    /// `truncate`.
    Truncate { path: PathArg },
    /// `unlink`, `unlinkat` (`AT_REMOVEDIR` included), `rmdir`.
    Remove { path: PathArg },
    /// `mkdir`, `mkdirat`.
    Mkdir { path: PathArg },
    /// `symlink`, `symlinkat`: the link's path (the target is text, not an access).
    Symlink { path: PathArg },
    /// `rename`, `renameat`, `renameat2` (`exchange`: `RENAME_EXCHANGE`).
    Rename {
        old: PathArg,
        new: PathArg,
        exchange: bool,
    },
    /// `link`, `linkat`: `empty_path` (`AT_EMPTY_PATH`) lets an empty old path mean its
    /// dirfd; `follow` (`AT_SYMLINK_FOLLOW`) follows an old path that is a symlink.
    Link {
        old: PathArg,
        new: PathArg,
        empty_path: bool,
        follow: bool,
    },
    /// `chdir`.
    Chdir { path: PathArg },
    /// `fchdir`.
    Fchdir { fd: i32 },
    /// `getdents`, `getdents64`: a listing of the directory open at `fd`.
    Getdents { fd: i32 },
    /// `exit_group`, with the exit code (the status's low 8 bits).
    ExitGroup { code: i32 },
    /// `io_uring_setup`: the filter refuses it, so it is never notified.
    IoUringSetup,
}

impl Syscall {
    /// The typed call behind `sys` with registers `a` (the same on every ABI: the
    /// kernel's `seccomp_data` holds each argument zero-extended to 64 bits).
    #[inline]
    pub fn decode(sys: Sys, a: &[u64; 6]) -> Syscall {
        const CREAT_FLAGS: i32 = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
        let set = |word: u64, flag: u64| word & flag != 0;
        match sys {
            Sys::Open => Syscall::Open {
                path: PathArg::cwd(a[0]),
                flags: a[1] as i32,
            },
            Sys::Creat => Syscall::Open {
                path: PathArg::cwd(a[0]),
                flags: CREAT_FLAGS,
            },
            Sys::Openat => Syscall::Open {
                path: PathArg::at(a[0], a[1]),
                flags: a[2] as i32,
            },
            Sys::Openat2 => Syscall::Openat2 {
                path: PathArg::at(a[0], a[1]),
                how: a[2],
                size: a[3],
            },
            Sys::Execve => Syscall::Exec {
                path: PathArg::cwd(a[0]),
                argv: a[1],
                empty_path: false,
                follow: true,
            },
            Sys::Execveat => Syscall::Exec {
                path: PathArg::at(a[0], a[1]),
                argv: a[2],
                empty_path: set(a[4], AT_EMPTY_PATH),
                follow: !set(a[4], AT_SYMLINK_NOFOLLOW),
            },
            Sys::Stat | Sys::Access => Syscall::Stat {
                path: PathArg::cwd(a[0]),
                follow: true,
                empty_path: false,
            },
            Sys::Lstat => Syscall::Stat {
                path: PathArg::cwd(a[0]),
                follow: false,
                empty_path: false,
            },
            // With AT_EMPTY_PATH, newfstatat is fstat, which the filter lets pass.
            Sys::Newfstatat => Syscall::Stat {
                path: PathArg::at(a[0], a[1]),
                follow: !set(a[3], AT_SYMLINK_NOFOLLOW),
                empty_path: false,
            },
            Sys::Faccessat2 => Syscall::Stat {
                path: PathArg::at(a[0], a[1]),
                follow: !set(a[3], AT_SYMLINK_NOFOLLOW),
                empty_path: set(a[3], AT_EMPTY_PATH),
            },
            Sys::Statx => Syscall::Stat {
                path: PathArg::at(a[0], a[1]),
                follow: !set(a[2], AT_SYMLINK_NOFOLLOW),
                empty_path: false,
            },
            // faccessat(2) has no flags argument (glibc's `faccessat` with flags uses
            // faccessat2).
            Sys::Faccessat => Syscall::Stat {
                path: PathArg::at(a[0], a[1]),
                follow: true,
                empty_path: false,
            },
            Sys::Readlink => Syscall::Stat {
                path: PathArg::cwd(a[0]),
                follow: false,
                empty_path: false,
            },
            Sys::Readlinkat => Syscall::Stat {
                path: PathArg::at(a[0], a[1]),
                follow: false,
                empty_path: true,
            },
            Sys::Truncate => Syscall::Truncate {
                path: PathArg::cwd(a[0]),
            },
            Sys::Unlink | Sys::Rmdir => Syscall::Remove {
                path: PathArg::cwd(a[0]),
            },
            Sys::Unlinkat => Syscall::Remove {
                path: PathArg::at(a[0], a[1]),
            },
            Sys::Mkdir => Syscall::Mkdir {
                path: PathArg::cwd(a[0]),
            },
            Sys::Mkdirat => Syscall::Mkdir {
                path: PathArg::at(a[0], a[1]),
            },
            Sys::Symlink => Syscall::Symlink {
                path: PathArg::cwd(a[1]),
            },
            Sys::Symlinkat => Syscall::Symlink {
                path: PathArg::at(a[1], a[2]),
            },
            Sys::Rename => Syscall::Rename {
                old: PathArg::cwd(a[0]),
                new: PathArg::cwd(a[1]),
                exchange: false,
            },
            Sys::Renameat => Syscall::Rename {
                old: PathArg::at(a[0], a[1]),
                new: PathArg::at(a[2], a[3]),
                exchange: false,
            },
            Sys::Renameat2 => Syscall::Rename {
                old: PathArg::at(a[0], a[1]),
                new: PathArg::at(a[2], a[3]),
                exchange: set(a[4], RENAME_EXCHANGE),
            },
            Sys::Link => Syscall::Link {
                old: PathArg::cwd(a[0]),
                new: PathArg::cwd(a[1]),
                empty_path: false,
                follow: false,
            },
            Sys::Linkat => Syscall::Link {
                old: PathArg::at(a[0], a[1]),
                new: PathArg::at(a[2], a[3]),
                empty_path: set(a[4], AT_EMPTY_PATH),
                follow: set(a[4], AT_SYMLINK_FOLLOW),
            },
            Sys::Chdir => Syscall::Chdir {
                path: PathArg::cwd(a[0]),
            },
            Sys::Fchdir => Syscall::Fchdir { fd: a[0] as i32 },
            Sys::Getdents | Sys::Getdents64 => Syscall::Getdents { fd: a[0] as i32 },
            Sys::ExitGroup => Syscall::ExitGroup {
                code: (a[0] & 0xff) as i32,
            },
            Sys::IoUringSetup => Syscall::IoUringSetup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FDCWD: i32 = libc::AT_FDCWD;
    const P: u64 = 0x7fff_1000;
    const Q: u64 = 0x7fff_2000;

    fn cwd(addr: u64) -> PathArg {
        PathArg { dirfd: FDCWD, addr }
    }

    fn at(dirfd: i32, addr: u64) -> PathArg {
        PathArg { dirfd, addr }
    }

    /// Decode each `(sys, registers)` row and compare with the typed call expected.
    fn check(rows: &[(Sys, [u64; 6], Syscall)]) {
        for (sys, args, expected) in rows {
            assert_eq!(Syscall::decode(*sys, args), *expected, "{}", sys.name());
        }
    }

    #[test]
    fn opens_decode_their_path_and_flags() {
        let (rdonly, wronly_creat) = (
            libc::O_RDONLY as u64,
            (libc::O_WRONLY | libc::O_CREAT) as u64,
        );
        check(&[
            (
                Sys::Open,
                [P, rdonly, 0, 0, 0, 0],
                Syscall::Open {
                    path: cwd(P),
                    flags: 0,
                },
            ),
            (
                Sys::Creat,
                [P, 0o644, 0, 0, 0, 0],
                Syscall::Open {
                    path: cwd(P),
                    flags: libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                },
            ),
            (
                Sys::Openat,
                [3, P, wronly_creat, 0o644, 0, 0],
                Syscall::Open {
                    path: at(3, P),
                    flags: libc::O_WRONLY | libc::O_CREAT,
                },
            ),
            // A dirfd register holds an int: AT_FDCWD as a 32-bit program passes it.
            (
                Sys::Openat,
                [FDCWD as u32 as u64, P, 0, 0, 0, 0],
                Syscall::Open {
                    path: cwd(P),
                    flags: 0,
                },
            ),
            (
                Sys::Openat2,
                [FDCWD as u64, P, Q, 24, 0, 0],
                Syscall::Openat2 {
                    path: cwd(P),
                    how: Q,
                    size: 24,
                },
            ),
        ]);
    }

    #[test]
    fn execs_decode_argv_and_their_flags() {
        check(&[
            (
                Sys::Execve,
                [P, Q, 0, 0, 0, 0],
                Syscall::Exec {
                    path: cwd(P),
                    argv: Q,
                    empty_path: false,
                    follow: true,
                },
            ),
            (
                Sys::Execveat,
                [5, P, Q, 0, AT_EMPTY_PATH, 0],
                Syscall::Exec {
                    path: at(5, P),
                    argv: Q,
                    empty_path: true,
                    follow: true,
                },
            ),
            (
                Sys::Execveat,
                [5, P, Q, 0, AT_SYMLINK_NOFOLLOW, 0],
                Syscall::Exec {
                    path: at(5, P),
                    argv: Q,
                    empty_path: false,
                    follow: false,
                },
            ),
        ]);
    }

    #[test]
    fn stats_accesses_and_readlinks_decode_to_a_look() {
        let look = |path, follow, empty_path| Syscall::Stat {
            path,
            follow,
            empty_path,
        };
        let nofollow = AT_SYMLINK_NOFOLLOW;
        check(&[
            (Sys::Stat, [P, Q, 0, 0, 0, 0], look(cwd(P), true, false)),
            (Sys::Access, [P, 0, 0, 0, 0, 0], look(cwd(P), true, false)),
            (Sys::Lstat, [P, Q, 0, 0, 0, 0], look(cwd(P), false, false)),
            (
                Sys::Newfstatat,
                [4, P, Q, 0, 0, 0],
                look(at(4, P), true, false),
            ),
            (
                Sys::Newfstatat,
                [4, P, Q, nofollow, 0, 0],
                look(at(4, P), false, false),
            ),
            (
                Sys::Statx,
                [4, P, nofollow, 0, Q, 0],
                look(at(4, P), false, false),
            ),
            (Sys::Statx, [4, P, 0, 0, Q, 0], look(at(4, P), true, false)),
            // faccessat has no flags: its fourth register is whatever was left there.
            (
                Sys::Faccessat,
                [4, P, 0, nofollow | AT_EMPTY_PATH, 0, 0],
                look(at(4, P), true, false),
            ),
            (
                Sys::Faccessat2,
                [4, P, 0, nofollow, 0, 0],
                look(at(4, P), false, false),
            ),
            (
                Sys::Faccessat2,
                [4, P, 0, AT_EMPTY_PATH, 0, 0],
                look(at(4, P), true, true),
            ),
            (
                Sys::Readlink,
                [P, Q, 64, 0, 0, 0],
                look(cwd(P), false, false),
            ),
            (
                Sys::Readlinkat,
                [4, P, Q, 64, 0, 0],
                look(at(4, P), false, true),
            ),
        ]);
    }

    #[test]
    fn removals_and_truncate_decode_their_path() {
        check(&[
            (
                Sys::Unlink,
                [P, 0, 0, 0, 0, 0],
                Syscall::Remove { path: cwd(P) },
            ),
            (
                Sys::Rmdir,
                [P, 0, 0, 0, 0, 0],
                Syscall::Remove { path: cwd(P) },
            ),
            (
                Sys::Unlinkat,
                [6, P, libc::AT_REMOVEDIR as u64, 0, 0, 0],
                Syscall::Remove { path: at(6, P) },
            ),
            (
                Sys::Truncate,
                [P, 100, 0, 0, 0, 0],
                Syscall::Truncate { path: cwd(P) },
            ),
        ]);
    }

    #[test]
    fn mkdir_and_symlink_decode_the_path_they_make() {
        check(&[
            (
                Sys::Mkdir,
                [P, 0o755, 0, 0, 0, 0],
                Syscall::Mkdir { path: cwd(P) },
            ),
            (
                Sys::Mkdirat,
                [7, P, 0o755, 0, 0, 0],
                Syscall::Mkdir { path: at(7, P) },
            ),
            // symlink(target, linkpath): the target is text.
            (
                Sys::Symlink,
                [Q, P, 0, 0, 0, 0],
                Syscall::Symlink { path: cwd(P) },
            ),
            (
                Sys::Symlinkat,
                [Q, 7, P, 0, 0, 0],
                Syscall::Symlink { path: at(7, P) },
            ),
        ]);
    }

    #[test]
    fn renames_and_links_decode_both_paths() {
        check(&[
            (
                Sys::Rename,
                [P, Q, 0, 0, 0, 0],
                Syscall::Rename {
                    old: cwd(P),
                    new: cwd(Q),
                    exchange: false,
                },
            ),
            (
                Sys::Renameat,
                [3, P, 4, Q, RENAME_EXCHANGE, 0],
                Syscall::Rename {
                    old: at(3, P),
                    new: at(4, Q),
                    exchange: false,
                },
            ),
            (
                Sys::Renameat2,
                [3, P, 4, Q, RENAME_EXCHANGE, 0],
                Syscall::Rename {
                    old: at(3, P),
                    new: at(4, Q),
                    exchange: true,
                },
            ),
            (
                Sys::Link,
                [P, Q, 0, 0, 0, 0],
                Syscall::Link {
                    old: cwd(P),
                    new: cwd(Q),
                    empty_path: false,
                    follow: false,
                },
            ),
            (
                Sys::Linkat,
                [3, P, 4, Q, AT_SYMLINK_FOLLOW, 0],
                Syscall::Link {
                    old: at(3, P),
                    new: at(4, Q),
                    empty_path: false,
                    follow: true,
                },
            ),
            (
                Sys::Linkat,
                [3, P, 4, Q, AT_EMPTY_PATH, 0],
                Syscall::Link {
                    old: at(3, P),
                    new: at(4, Q),
                    empty_path: true,
                    follow: false,
                },
            ),
        ]);
    }

    #[test]
    fn directory_calls_and_exit_decode_their_operand() {
        check(&[
            (
                Sys::Chdir,
                [P, 0, 0, 0, 0, 0],
                Syscall::Chdir { path: cwd(P) },
            ),
            (Sys::Fchdir, [9, 0, 0, 0, 0, 0], Syscall::Fchdir { fd: 9 }),
            (
                Sys::Getdents,
                [9, Q, 4096, 0, 0, 0],
                Syscall::Getdents { fd: 9 },
            ),
            (
                Sys::Getdents64,
                [9, Q, 4096, 0, 0, 0],
                Syscall::Getdents { fd: 9 },
            ),
            (
                Sys::ExitGroup,
                [0x1_0203, 0, 0, 0, 0, 0],
                Syscall::ExitGroup { code: 3 },
            ),
            (
                Sys::ExitGroup,
                [u64::MAX, 0, 0, 0, 0, 0],
                Syscall::ExitGroup { code: 255 },
            ),
            (Sys::IoUringSetup, [8, Q, 0, 0, 0, 0], Syscall::IoUringSetup),
        ]);
    }

    /// Every call the tracer knows decodes (no `Sys` is left to a catch-all).
    #[test]
    fn every_sys_decodes() {
        for &sys in Sys::ALL {
            let _ = Syscall::decode(sys, &[P; 6]);
        }
        for (i, &sys) in Sys::ALL.iter().enumerate() {
            assert_eq!(sys as usize, i);
        }
    }
}
