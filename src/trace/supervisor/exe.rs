//! What an exec names besides its path: the argv it passes (read from the tracee) and
//! the interpreters the kernel opens itself (a script's `#!` line, an ELF file's
//! `PT_INTERP`), read from the file.
//!
//! It never keeps state; it reads the tracee's memory only while the call waits.

use std::os::fd::AsRawFd;

use super::{miss_of, Miss};
use crate::trace::filter::Abi;
use crate::trace::sys::{open, pread_into, read_cstr, read_mem};

/// The program the kernel runs for `path` besides `path` itself: the `#!` interpreter
/// of a script or the `PT_INTERP` of an ELF file (absolute paths only).
pub(super) fn interpreter(path: &[u8], buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut cpath = Vec::with_capacity(path.len() + 1);
    cpath.extend_from_slice(path);
    cpath.push(0);
    let fd = open(&cpath, libc::O_RDONLY).ok()?;
    let pread = |buf: &mut Vec<u8>, offset: u64, len: usize| -> Option<()> {
        pread_into(fd.as_raw_fd(), buf, offset, len).ok()
    };
    pread(buf, 0, 4096)?;
    if buf.starts_with(b"#!") {
        let line = &buf[2..buf.iter().position(|&b| b == b'\n')?];
        let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
        let word = &line[start..];
        let end = word
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(word.len());
        return word.starts_with(b"/").then(|| word[..end].to_vec());
    }
    if buf.len() < 64 || !buf.starts_with(b"\x7fELF") || buf[5] != 1 {
        return None; // not a little-endian ELF file
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u32_at =
        |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as u64;
    let u64_at = |b: &[u8], o: usize| u32_at(b, o) | (u32_at(b, o + 4) << 32);
    let wide = buf[4] == 2;
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(buf, 32), u16_at(buf, 54), u16_at(buf, 56))
    } else {
        (u32_at(buf, 28), u16_at(buf, 42), u16_at(buf, 44))
    };
    if phentsize < 32 || phnum > 256 {
        return None;
    }
    let table = (phentsize * phnum) as usize;
    if phoff as usize + table > buf.len() {
        pread(buf, phoff, table)?;
    } else {
        buf.drain(..phoff as usize);
    }
    for i in 0..phnum as usize {
        let ph = &buf[i * phentsize as usize..];
        if ph.len() < phentsize as usize || u32_at(ph, 0) != 3 {
            continue; // PT_INTERP is 3
        }
        let (offset, size) = if wide {
            (u64_at(ph, 8), u64_at(ph, 32))
        } else {
            (u32_at(ph, 4), u32_at(ph, 16))
        };
        if size == 0 || size > 4096 {
            return None;
        }
        pread(buf, offset, size as usize)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        return buf[..end].starts_with(b"/").then(|| buf[..end].to_vec());
    }
    None
}

/// Most arguments an exec may have that we record (the kernel's own limit is higher).
const MAX_ARGS: usize = 1 << 17;

/// Read an exec's argv: the pointer array, then the strings, in one read when they lie
/// close together (they usually do), one read per string otherwise.
pub(super) fn read_argv(
    tid: i32,
    abi: Abi,
    addr: u64,
    mem: &mut Vec<u8>,
    one: &mut Vec<u8>,
) -> Result<Vec<Vec<u8>>, Miss> {
    let width = abi.pointer_size();
    let mut pointers: Vec<u64> = Vec::new();
    if addr != 0 {
        let mut at = addr;
        'outer: loop {
            mem.clear();
            let chunk = (PAGE_SIZE - (at % PAGE_SIZE)) as usize;
            let n = read_mem(tid, at, chunk, mem).map_err(miss_of)?;
            if n < width {
                return Err(Miss::Invalid);
            }
            for word in mem[..n - n % width].chunks_exact(width) {
                let p = if width == 8 {
                    u64::from_le_bytes(word.try_into().unwrap_or([0; 8]))
                } else {
                    u32::from_le_bytes(word.try_into().unwrap_or([0; 4])) as u64
                };
                if p == 0 {
                    break 'outer;
                }
                pointers.push(p);
                if pointers.len() >= MAX_ARGS {
                    break 'outer;
                }
            }
            at += (n - n % width) as u64;
        }
    }
    let mut argv = Vec::with_capacity(pointers.len());
    let (lo, hi) = match (pointers.iter().min(), pointers.iter().max()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => return Ok(argv),
    };
    // One bulk read covering all the strings when they are within 256 KiB.
    mem.clear();
    let mut got = 0;
    if hi - lo < 256 * 1024 {
        let end = (hi / PAGE_SIZE + 1) * PAGE_SIZE;
        got = read_mem(tid, lo, (end - lo) as usize, mem).unwrap_or(0);
    }
    for &p in &pointers {
        let off = (p - lo) as usize;
        if off < got {
            if let Some(len) = mem[off..got].iter().position(|&b| b == 0) {
                argv.push(mem[off..off + len].to_vec());
                continue;
            }
        }
        read_cstr(tid, p, one).map_err(miss_of)?;
        argv.push(one.clone());
    }
    Ok(argv)
}

const PAGE_SIZE: u64 = 4096;
