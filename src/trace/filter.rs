//! The seccomp filter: which system calls go to the supervisor, which are refused, and
//! which pass unseen; and the syscall numbering on each ABI the filter admits.
//!
//! The program is hand-written classic BPF (seccompiler has no user notification). Its
//! shape keeps untrapped calls free: the verdict for every call we do not trap depends
//! only on the architecture and the number, so the kernel's per-filter action cache
//! (5.11+) lets `read`, `mmap`, `close` … through without running the program at all.
//! Only `newfstatat`/`fstatat64`/`statx` look at an argument (`AT_EMPTY_PATH` makes them
//! `fstat`, which glibc ≥ 2.33 uses for every `fstat`, so they pass unseen).
//!
//! ABIs: native x86_64; x32 (the `__X32_SYSCALL_BIT`, numbers mostly shared with
//! x86_64) is trapped through the same table with the bit masked off, plus its own
//! `execve`/`execveat` numbers; i386 (`int 0x80`, 32-bit programs) has its own table.
//! Any other architecture cannot occur on an x86_64 kernel and is allowed.

use std::os::fd::{AsRawFd, OwnedFd};

use super::sys::*;

/// Declares [`Sys`] from one list: each variant with its name, and [`Sys::ALL`] in the
/// same order (the counts of [`super::Supervisor::counts`] are indexed by it).
macro_rules! syscalls {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// A system call the tracer understands, independent of the ABI it came through.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Sys {
            $($(#[$doc])* $variant,)*
        }

        impl Sys {
            /// Every call, in declaration order (`Sys::ALL[s as usize] == s`).
            pub const ALL: &'static [Sys] = &[$(Sys::$variant,)*];

            /// The system call's name, as strace spells it (x86_64).
            pub fn name(self) -> &'static str {
                match self {
                    $(Sys::$variant => $name,)*
                }
            }
        }
    };
}

syscalls! {
    Open = "open",
    Creat = "creat",
    Openat = "openat",
    Openat2 = "openat2",
    Execve = "execve",
    Execveat = "execveat",
    Stat = "stat",
    Lstat = "lstat",
    Newfstatat = "newfstatat",
    Statx = "statx",
    Access = "access",
    Faccessat = "faccessat",
    Faccessat2 = "faccessat2",
    Unlink = "unlink",
    Unlinkat = "unlinkat",
    Rmdir = "rmdir",
    Rename = "rename",
    Renameat = "renameat",
    Renameat2 = "renameat2",
    Mkdir = "mkdir",
    Mkdirat = "mkdirat",
    Symlink = "symlink",
    Symlinkat = "symlinkat",
    Link = "link",
    Linkat = "linkat",
    Chdir = "chdir",
    Fchdir = "fchdir",
    Getdents = "getdents",
    Getdents64 = "getdents64",
    Truncate = "truncate",
    ExitGroup = "exit_group",
    Readlink = "readlink",
    Readlinkat = "readlinkat",
    /// Refused with ENOSYS by the filter; never notified.
    IoUringSetup = "io_uring_setup",
}

/// x86_64 numbers.
const X86_64: &[(u32, Sys)] = &[
    (2, Sys::Open),
    (4, Sys::Stat),
    (6, Sys::Lstat),
    (21, Sys::Access),
    (59, Sys::Execve),
    (76, Sys::Truncate),
    (78, Sys::Getdents),
    (80, Sys::Chdir),
    (81, Sys::Fchdir),
    (82, Sys::Rename),
    (83, Sys::Mkdir),
    (84, Sys::Rmdir),
    (85, Sys::Creat),
    (86, Sys::Link),
    (87, Sys::Unlink),
    (88, Sys::Symlink),
    (89, Sys::Readlink),
    (217, Sys::Getdents64),
    (231, Sys::ExitGroup),
    (257, Sys::Openat),
    (258, Sys::Mkdirat),
    (262, Sys::Newfstatat),
    (263, Sys::Unlinkat),
    (264, Sys::Renameat),
    (265, Sys::Linkat),
    (266, Sys::Symlinkat),
    (267, Sys::Readlinkat),
    (269, Sys::Faccessat),
    (316, Sys::Renameat2),
    (322, Sys::Execveat),
    (332, Sys::Statx),
    (425, Sys::IoUringSetup),
    (437, Sys::Openat2),
    (439, Sys::Faccessat2),
    // x32-only entry points (reached with the x32 bit masked off).
    (520, Sys::Execve),
    (545, Sys::Execveat),
];

/// i386 numbers. `stat`/`lstat` here are the old 32-bit-struct calls, `stat64` and
/// friends the ones glibc uses; `truncate64` takes its length in two registers.
const I386: &[(u32, Sys)] = &[
    (5, Sys::Open),
    (8, Sys::Creat),
    (9, Sys::Link),
    (10, Sys::Unlink),
    (11, Sys::Execve),
    (12, Sys::Chdir),
    (18, Sys::Stat),
    (33, Sys::Access),
    (38, Sys::Rename),
    (39, Sys::Mkdir),
    (40, Sys::Rmdir),
    (83, Sys::Symlink),
    (84, Sys::Lstat),
    (85, Sys::Readlink),
    (92, Sys::Truncate),
    (106, Sys::Stat),
    (107, Sys::Lstat),
    (133, Sys::Fchdir),
    (141, Sys::Getdents),
    (193, Sys::Truncate),
    (195, Sys::Stat),
    (196, Sys::Lstat),
    (220, Sys::Getdents64),
    (252, Sys::ExitGroup),
    (295, Sys::Openat),
    (296, Sys::Mkdirat),
    (300, Sys::Newfstatat),
    (301, Sys::Unlinkat),
    (302, Sys::Renameat),
    (303, Sys::Linkat),
    (304, Sys::Symlinkat),
    (305, Sys::Readlinkat),
    (307, Sys::Faccessat),
    (353, Sys::Renameat2),
    (358, Sys::Execveat),
    (383, Sys::Statx),
    (425, Sys::IoUringSetup),
    (437, Sys::Openat2),
    (439, Sys::Faccessat2),
];

/// Which calling convention a notification came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    /// Size of a pointer in the tracee (argv arrays).
    pub fn pointer_size(self) -> usize {
        match self {
            Abi::X86_64 => 8,
            Abi::X32 | Abi::I386 => 4,
        }
    }
}

/// What a notification's `(arch, nr)` means.
pub fn decode(arch: u32, nr: i32) -> Option<(Abi, Sys)> {
    let nr = nr as u32;
    let (abi, table, nr) = match arch {
        AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 => (Abi::X32, X86_64, nr & !X32_SYSCALL_BIT),
        AUDIT_ARCH_X86_64 => (Abi::X86_64, X86_64, nr),
        AUDIT_ARCH_I386 => (Abi::I386, I386, nr),
        _ => return None,
    };
    table
        .iter()
        .find(|(n, _)| *n == nr)
        .map(|&(_, sys)| (abi, sys))
}

/// What the filter traps besides the fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterOptions {
    /// Trap `readlink`/`readlinkat` too (off by default: gcc makes ~2,300 a compile, most
    /// on paths it also opens or stats; see docs/tracer.md).
    pub trap_readlink: bool,
    /// Ask for `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` on the listener (6.6+): the kernel
    /// wakes the supervisor on the tracee's CPU and the tracee on the supervisor's answer
    /// synchronously. Ignored where the kernel lacks it.
    pub sync_wakeup: bool,
    /// The in-process fast path's code page: trapped calls whose instruction pointer lies
    /// in `[page, page + 4096)` pass unseen (the helper there records them itself).
    /// Page-aligned. `None`: everything trapped is notified.
    pub trusted_page: Option<u64>,
}

impl Default for FilterOptions {
    fn default() -> FilterOptions {
        FilterOptions {
            trap_readlink: false,
            sync_wakeup: true,
            trusted_page: None,
        }
    }
}

// Classic BPF opcodes.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_JMP_JGT_K: u16 = 0x25;
const BPF_JMP_JA: u16 = 0x05;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_RET_K: u16 = 0x06;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP: u32 = 8;
fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i // little-endian: the low word comes first
}

/// A tiny assembler with forward labels, so that the program reads top to bottom.
struct Asm {
    code: Vec<SockFilter>,
    /// (instruction index, true-branch label, false-branch label); u32::MAX = next.
    fixups: Vec<(usize, u32, u32)>,
    labels: Vec<Option<usize>>,
}

const NEXT: u32 = u32::MAX;

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            fixups: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> u32 {
        self.labels.push(None);
        (self.labels.len() - 1) as u32
    }
    fn bind(&mut self, label: u32) {
        self.labels[label as usize] = Some(self.code.len());
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.code.push(SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }
    fn jump(&mut self, code: u16, k: u32, jt: u32, jf: u32) {
        self.fixups.push((self.code.len(), jt, jf));
        self.code.push(SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }
    fn goto(&mut self, label: u32) {
        self.fixups.push((self.code.len(), label, NEXT));
        self.code.push(SockFilter {
            code: BPF_JMP_JA,
            jt: 0,
            jf: 0,
            k: 0,
        });
    }
    fn finish(mut self) -> Vec<SockFilter> {
        for &(at, jt, jf) in &self.fixups {
            let target = |label: u32| -> usize {
                if label == NEXT {
                    at + 1
                } else {
                    self.labels[label as usize].expect("unbound label")
                }
            };
            let (t, f) = (target(jt), target(jf));
            let insn = &mut self.code[at];
            if insn.code == BPF_JMP_JA {
                insn.k = (t - at - 1) as u32;
            } else {
                let (dt, df) = (t - at - 1, f - at - 1);
                assert!(dt < 256 && df < 256, "filter jump too long");
                insn.jt = dt as u8;
                insn.jf = df as u8;
            }
        }
        self.code
    }
}

/// A program that allows everything (a measurement baseline).
pub fn allow_all() -> Vec<SockFilter> {
    vec![SockFilter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: SECCOMP_RET_ALLOW,
    }]
}

/// Build the filter program.
pub fn program(options: &FilterOptions) -> Vec<SockFilter> {
    let mut a = Asm::new();
    // Every trapped call goes to `notify`, which first lets the trusted page through.
    let notify = a.label();
    let really_notify = a.label();
    let allow = a.label();
    let enosys = a.label();
    let i386 = a.label();
    let x86_fstatat = a.label();
    let x86_statx = a.label();
    let i386_fstatat = a.label();
    let i386_statx = a.label();

    a.stmt(BPF_LD_W_ABS, OFF_ARCH);
    a.jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, NEXT, i386);
    a.stmt(BPF_LD_W_ABS, OFF_NR);
    // x32 shares x86_64's numbers: look them up with the bit masked off.
    a.stmt(BPF_ALU_AND_K, !X32_SYSCALL_BIT);
    table(
        &mut a,
        X86_64,
        options,
        notify,
        enosys,
        x86_fstatat,
        x86_statx,
        allow,
    );

    a.bind(i386);
    a.jump(BPF_JMP_JEQ_K, AUDIT_ARCH_I386, NEXT, allow);
    a.stmt(BPF_LD_W_ABS, OFF_NR);
    table(
        &mut a,
        I386,
        options,
        notify,
        enosys,
        i386_fstatat,
        i386_statx,
        allow,
    );

    // fstatat(fd, "", buf, AT_EMPTY_PATH) is fstat: let it through unseen.
    for (label, flags_arg) in [
        (x86_fstatat, 3),
        (x86_statx, 2),
        (i386_fstatat, 3),
        (i386_statx, 2),
    ] {
        a.bind(label);
        a.stmt(BPF_LD_W_ABS, off_arg_lo(flags_arg));
        a.jump(BPF_JMP_JSET_K, AT_EMPTY_PATH as u32, allow, notify);
    }

    a.bind(notify);
    if let Some(page) = options.trusted_page {
        let (hi, lo) = ((page >> 32) as u32, page as u32 & !4095);
        a.stmt(BPF_LD_W_ABS, OFF_IP + 4);
        a.jump(BPF_JMP_JEQ_K, hi, NEXT, really_notify);
        a.stmt(BPF_LD_W_ABS, OFF_IP);
        a.jump(BPF_JMP_JGE_K, lo, NEXT, really_notify);
        a.jump(BPF_JMP_JGT_K, lo + 4095, really_notify, allow);
    }
    a.bind(really_notify);
    a.stmt(BPF_RET_K, SECCOMP_RET_USER_NOTIF);
    a.bind(allow);
    a.stmt(BPF_RET_K, SECCOMP_RET_ALLOW);
    a.bind(enosys);
    a.stmt(BPF_RET_K, SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    a.finish()
}

#[allow(clippy::too_many_arguments)]
fn table(
    a: &mut Asm,
    entries: &[(u32, Sys)],
    options: &FilterOptions,
    notify: u32,
    enosys: u32,
    fstatat: u32,
    statx: u32,
    allow: u32,
) {
    let mut cases: Vec<(u32, u32)> = entries
        .iter()
        .filter_map(|&(nr, sys)| {
            let target = match sys {
                Sys::IoUringSetup => enosys,
                Sys::Newfstatat => fstatat,
                Sys::Statx => statx,
                Sys::Readlink | Sys::Readlinkat if !options.trap_readlink => return None,
                _ => notify,
            };
            Some((nr, target))
        })
        .collect();
    cases.sort_unstable();
    debug_assert!(
        cases.windows(2).all(|w| w[0].0 != w[1].0),
        "a number twice in a table"
    );
    search(a, &cases, allow);
}

/// Dispatch on the number in the accumulator by binary search (a few comparisons for
/// any number, where a chain of `JEQ`s took one per trapped call): the kernel runs the
/// program once per system call number and ABI when a filter is installed, to fill its
/// action cache, and that took ~0.16 ms of every traced recipe line with the chain
/// (perf on 300 trivial commands, `do_seccomp`; BENCHMARKS.md, "Fourth session").
fn search(a: &mut Asm, cases: &[(u32, u32)], otherwise: u32) {
    if cases.len() <= 3 {
        for &(nr, target) in cases {
            a.jump(BPF_JMP_JEQ_K, nr, target, NEXT);
        }
        a.goto(otherwise);
        return;
    }
    let (low, high) = cases.split_at(cases.len() / 2);
    let upper = a.label();
    a.jump(BPF_JMP_JGE_K, high[0].0, upper, NEXT);
    search(a, low, otherwise);
    a.bind(upper);
    search(a, high, otherwise);
}

/// Install `program` with a new listener in the calling thread. Allocation-free:
/// safe between fork and exec in a multi-threaded parent.
pub fn install(program: &[SockFilter], options: &FilterOptions) -> std::io::Result<OwnedFd> {
    set_no_new_privs()?;
    let prog = SockFprog {
        len: program.len() as u16,
        filter: program.as_ptr(),
    };
    // WAIT_KILLABLE_RECV (5.19): once the supervisor has the notification, a non-fatal
    // signal cannot interrupt the call and make it restart (or fail with EINTR).
    // SPEC_ALLOW (4.17): the filter observes, it does not sandbox; kernels that mitigate
    // speculative store bypass for seccomp'd tasks would otherwise slow every tracee.
    let base = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    let fd = match seccomp_set_filter(base | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog) {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => seccomp_set_filter(base, &prog),
        result => result,
    }?;
    if options.sync_wakeup {
        // Absent before 6.6: only a speed-up, so its failure is ignored.
        let _ = notif_set_flags(fd.as_raw_fd(), SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_abi() {
        assert_eq!(
            decode(AUDIT_ARCH_X86_64, 257),
            Some((Abi::X86_64, Sys::Openat))
        );
        assert_eq!(
            decode(AUDIT_ARCH_X86_64, (X32_SYSCALL_BIT | 257) as i32),
            Some((Abi::X32, Sys::Openat))
        );
        assert_eq!(
            decode(AUDIT_ARCH_X86_64, (X32_SYSCALL_BIT | 520) as i32),
            Some((Abi::X32, Sys::Execve))
        );
        assert_eq!(decode(AUDIT_ARCH_I386, 11), Some((Abi::I386, Sys::Execve)));
        assert_eq!(decode(AUDIT_ARCH_X86_64, 0), None);
    }

    /// A classic-BPF interpreter for what `program` emits, on `struct seccomp_data`
    /// (nr, arch, instruction pointer, six arguments).
    fn run(program: &[SockFilter], nr: u32, arch: u32, ip: u64, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&nr.to_le_bytes());
        data.extend_from_slice(&arch.to_le_bytes());
        data.extend_from_slice(&ip.to_le_bytes());
        for arg in args {
            data.extend_from_slice(&arg.to_le_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = &program[pc];
            pc += 1;
            let jump = |taken: bool| if taken { insn.jt } else { insn.jf } as usize;
            match insn.code {
                BPF_LD_W_ABS => {
                    let k = insn.k as usize;
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                }
                BPF_ALU_AND_K => acc &= insn.k,
                BPF_JMP_JEQ_K => pc += jump(acc == insn.k),
                BPF_JMP_JGE_K => pc += jump(acc >= insn.k),
                BPF_JMP_JGT_K => pc += jump(acc > insn.k),
                BPF_JMP_JSET_K => pc += jump(acc & insn.k != 0),
                BPF_JMP_JA => pc += insn.k as usize,
                BPF_RET_K => return insn.k,
                other => panic!("unexpected instruction {other:#x}"),
            }
        }
    }

    /// The program's verdict for every number of every ABI is what `decode` and the
    /// options say: notified, refused (io_uring), or allowed (readlink unless asked,
    /// everything the tracer does not know, calls from the trusted page, `fstatat` with
    /// `AT_EMPTY_PATH`).
    #[test]
    fn program_traps_exactly_the_decoded_calls() {
        let page = 0x100_0000_0000u64;
        for trap_readlink in [false, true] {
            let options = FilterOptions {
                trap_readlink,
                trusted_page: Some(page),
                ..FilterOptions::default()
            };
            let p = program(&options);
            for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0x4000_00b7] {
                for nr in (0..1100).chain((0..1100).map(|n| n | X32_SYSCALL_BIT)) {
                    let expected = match decode(arch, nr as i32).map(|(_, sys)| sys) {
                        None => SECCOMP_RET_ALLOW,
                        Some(Sys::IoUringSetup) => SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
                        Some(Sys::Readlink | Sys::Readlinkat) if !trap_readlink => {
                            SECCOMP_RET_ALLOW
                        }
                        Some(_) => SECCOMP_RET_USER_NOTIF,
                    };
                    assert_eq!(
                        run(&p, nr, arch, 0x5555_0000, [0; 6]),
                        expected,
                        "{arch:#x} {nr}"
                    );
                    if expected == SECCOMP_RET_USER_NOTIF {
                        assert_eq!(run(&p, nr, arch, page + 20, [0; 6]), SECCOMP_RET_ALLOW);
                        assert_eq!(run(&p, nr, arch, page + 4096, [0; 6]), expected);
                    }
                    let sys = decode(arch, nr as i32).map(|(_, sys)| sys);
                    let empty = AT_EMPTY_PATH;
                    if sys == Some(Sys::Newfstatat) {
                        assert_eq!(
                            run(&p, nr, arch, 0, [0, 0, 0, empty, 0, 0]),
                            SECCOMP_RET_ALLOW
                        );
                    }
                    if sys == Some(Sys::Statx) {
                        assert_eq!(
                            run(&p, nr, arch, 0, [0, 0, empty, 0, 0, 0]),
                            SECCOMP_RET_ALLOW
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn program_fits() {
        for trap_readlink in [false, true] {
            let p = program(&FilterOptions {
                trap_readlink,
                trusted_page: Some(0x100_0000_0000),
                ..FilterOptions::default()
            });
            assert!(p.len() < 200, "{}", p.len());
        }
    }
}
