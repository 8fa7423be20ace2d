//! vswitchd's memory on 2 MiB pages (`huge-pages = true`, the default).
//!
//! After a sleep, a frame's way through the worker touches a few dozen
//! 4 KiB pages of code, constants and switch state that are no longer in
//! the TLB; in a virtual machine each of those misses is a two-level page
//! walk, and together they were most of what vswitchd's round trip cost
//! more than VDE's (docs/dev/performance-runs.md). Two things put them on
//! transparent huge pages:
//!
//! - **Code and read-only data** ([`remap_image`]). Linux backs file-mapped
//!   code with 4 KiB pages (unless built with `READ_ONLY_THP_FOR_FS`), so at
//!   start vswitchd copies every 2 MiB chunk of its own image that holds
//!   code or read-only data into anonymous memory backed by a huge page,
//!   and moves that over the original with `mremap`. That is one atomic
//!   step for every thread: the code running the move is in a chunk being
//!   moved, and its bytes are the same before and after. The executable is
//!   linked with 2 MiB segment alignment (build.rs), so no chunk holds
//!   writable data.
//! - **The heap.** vswitchd allocates through jemalloc, configured by
//!   [`MALLOC_CONF`]: one arena (the switch's state, built by the control
//!   thread and read by the workers, sits in one place) whose memory is
//!   advised for huge pages. With `huge-pages = false`, [`disable`] turns
//!   transparent huge pages off for the whole process instead.
//!
//! Best effort: where the kernel has transparent huge pages off
//! (`never`), or the image is not laid out as expected, nothing moves and
//! the reason is returned.

use std::fs;
use std::io;
use std::ops::Range;

use super::sys::cvt;

const HUGE: usize = 2 << 20;
/// `MADV_COLLAPSE` (Linux 6.1), not exported by `libc`.
const MADV_COLLAPSE: libc::c_int = 25;

/// One mapping of the executable file, from `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    range: Range<usize>,
    writable: bool,
    exec: bool,
    ours: bool,
}

fn parse_maps(maps: &str, exe: &str) -> Vec<Mapping> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (lo, hi) = f.next()?.split_once('-')?;
            let perms = f.next()?.as_bytes();
            let path = f.nth(3).unwrap_or("");
            Some(Mapping {
                range: usize::from_str_radix(lo, 16).ok()?..usize::from_str_radix(hi, 16).ok()?,
                writable: perms.get(1) == Some(&b'w'),
                exec: perms.get(2) == Some(&b'x'),
                ours: path == exe,
            })
        })
        .collect()
}

/// A 2 MiB chunk to move: its start and whether it holds code.
#[derive(Debug, PartialEq, Eq)]
struct Chunk {
    start: usize,
    exec: bool,
}

/// The chunks that hold read-only parts of the executable and nothing
/// else mapped (no writable part of it, no other mapping).
fn chunks(maps: &[Mapping]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for m in maps.iter().filter(|m| m.ours && !m.writable) {
        let mut c = m.range.start & !(HUGE - 1);
        while c < m.range.end {
            let span = c..c + HUGE;
            let clean = maps.iter().all(|o| {
                o.range.end <= span.start || o.range.start >= span.end || (o.ours && !o.writable)
            });
            if clean {
                match out.iter_mut().find(|k| k.start == c) {
                    Some(k) => k.exec |= m.exec,
                    None => out.push(Chunk {
                        start: c,
                        exec: m.exec,
                    }),
                }
            }
            c += HUGE;
        }
    }
    out
}

/// jemalloc's options, read at its first allocation (before `main`):
/// huge pages for the heap, and one arena for all threads. Read by
/// jemalloc as the C string `malloc_conf` (its `_rjem_` prefixed name);
/// `_RJEM_MALLOC_CONF` in the environment overrides it.
// SAFETY (of the export): jemalloc declares `const char *malloc_conf`;
// a reference to a byte array is one pointer to its first byte, and the
// bytes end with the NUL jemalloc stops at. Nothing else defines the name.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 21] = b"thp:always,narenas:1\0";

/// Where transparent huge pages can be had: the kernel's setting is
/// `always` or `madvise`. The error says what it is otherwise.
pub fn available() -> io::Result<()> {
    let path = "/sys/kernel/mm/transparent_hugepage/enabled";
    let mode =
        fs::read_to_string(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    if mode.contains("[never]") {
        return Err(io::Error::other(format!(
            "transparent huge pages are off ({path}: never)"
        )));
    }
    Ok(())
}

/// Turns transparent huge pages off for this process
/// (`PR_SET_THP_DISABLE`): the heap's advice is ignored from now on.
pub fn disable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; changes a flag of this
    // process.
    cvt(unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) }).map(drop)
}

/// What [`remap_image`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remapped {
    /// Bytes of the image moved to anonymous memory (whole 2 MiB chunks).
    pub moved: usize,
    /// Of those, bytes the kernel backs with huge pages (`AnonHugePages`
    /// in /proc/self/smaps): less than `moved` when it had no free huge
    /// page at the time.
    pub huge: usize,
}

/// Moves the executable's chunks of code and read-only data onto huge
/// pages.
pub fn remap_image() -> io::Result<Remapped> {
    available()?;
    let exe = fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy().into_owned();
    let maps = parse_maps(&fs::read_to_string("/proc/self/maps")?, &exe);
    let chunks = chunks(&maps);
    if chunks.is_empty() {
        return Err(io::Error::other(
            "no 2 MiB chunk of the executable holds only code or read-only data",
        ));
    }
    let mut moved = 0;
    for c in &chunks {
        let parts: Vec<Range<usize>> = maps
            .iter()
            .filter(|m| m.ours && !m.writable)
            .map(|m| m.range.start.max(c.start)..m.range.end.min(c.start + HUGE))
            .filter(|r| r.start < r.end)
            .collect();
        move_chunk(c, &parts)?;
        moved += HUGE;
    }
    let starts: Vec<usize> = chunks.iter().map(|c| c.start).collect();
    let huge = huge_kib(&fs::read_to_string("/proc/self/smaps")?, &starts) * 1024;
    Ok(Remapped { moved, huge })
}

/// The `AnonHugePages` (KiB) of the mappings of /proc/self/smaps that
/// start at one of `starts`.
fn huge_kib(smaps: &str, starts: &[usize]) -> usize {
    let mut counted = false;
    let mut kib = 0;
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("AnonHugePages:") {
            if counted {
                kib += rest
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<usize>()
                    .unwrap_or(0);
            }
        } else if let Some((lo, _)) = line
            .split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'))
            && let Ok(lo) = usize::from_str_radix(lo, 16)
        {
            counted = starts.contains(&lo);
        }
    }
    kib
}

fn move_chunk(c: &Chunk, parts: &[Range<usize>]) -> io::Result<()> {
    let check = |r: libc::c_int, what: &str| {
        cvt(r)
            .map(drop)
            .map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))
    };
    // SAFETY: a fresh private anonymous mapping, no address requested:
    // it overlaps nothing of ours.
    let tmp = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * HUGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if tmp == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base = tmp as usize;
    let aligned = (base + HUGE - 1) & !(HUGE - 1);
    let result = (|| {
        // SAFETY: `aligned..aligned + HUGE` lies inside the mapping made
        // above (2 chunks long, so one aligned chunk fits).
        let r = unsafe { libc::madvise(aligned as *mut _, HUGE, libc::MADV_HUGEPAGE) };
        check(r, "madvise(MADV_HUGEPAGE)")?;
        for p in parts {
            // SAFETY: `p` is a readable mapping of our executable (from
            // /proc/self/maps, read-only, so nothing writes it meanwhile)
            // inside the chunk; the destination is the same offset in the
            // fresh chunk, which is writable and does not overlap it.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    p.start as *const u8,
                    (aligned + p.start - c.start) as *mut u8,
                    p.end - p.start,
                );
            }
        }
        // If the faults above got small pages, make them one huge page now;
        // an older kernel without MADV_COLLAPSE answers EINVAL, which only
        // means the huge page depends on the faults.
        // SAFETY: as for MADV_HUGEPAGE.
        unsafe { libc::madvise(aligned as *mut _, HUGE, MADV_COLLAPSE) };
        let prot = libc::PROT_READ | if c.exec { libc::PROT_EXEC } else { 0 };
        // SAFETY: the fresh chunk, no longer written.
        let r = unsafe { libc::mprotect(aligned as *mut _, HUGE, prot) };
        check(r, "mprotect").map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => io::Error::new(
                e.kind(),
                format!(
                    "{e}: this process may not make memory executable (systemd's \
                     MemoryDenyWriteExecute=, or prctl PR_SET_MDWE); the heap is still on huge pages"
                ),
            ),
            _ => e,
        })?;
        // SAFETY: moves the fresh chunk over `c.start..c.start + HUGE`,
        // which holds only read-only parts of the executable (see
        // `chunks`) and holes; every byte that was readable there is
        // readable at the same address afterwards with the same contents
        // (copied above) and at least the same permissions. The kernel
        // swaps the two under the mm lock, so no thread sees a hole.
        let r = unsafe {
            libc::mremap(
                aligned as *mut _,
                HUGE,
                HUGE,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                c.start as *mut libc::c_void,
            )
        };
        if r == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("mremap: {e}")));
        }
        Ok(())
    })();
    // What is left of the temporary mapping: all of it after a failure,
    // the parts before and after the aligned chunk after a move (munmap of
    // a range with nothing mapped is a no-op).
    // SAFETY: ranges of the mapping made above; after a move,
    // `aligned..aligned + HUGE` is no longer mapped there.
    unsafe {
        if result.is_err() {
            libc::munmap(tmp, 2 * HUGE);
        } else {
            libc::munmap(tmp, aligned - base);
            libc::munmap((aligned + HUGE) as *mut _, base + 2 * HUGE - aligned - HUGE);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/sbin/vswitchd";

    fn m(lo: usize, hi: usize, perms: &str, path: &str) -> String {
        format!("{lo:x}-{hi:x} {perms} 00000000 08:01 42 {path}\n")
    }

    #[test]
    fn parses_proc_maps() {
        let text = m(0x5600_0000_0000, 0x5600_0010_0000, "r--p", EXE)
            + &m(0x7f00_0000_0000, 0x7f00_0000_1000, "rw-p", "")
            + "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n";
        let maps = parse_maps(&text, EXE);
        assert_eq!(maps.len(), 3);
        assert!(maps[0].ours && !maps[0].writable && !maps[0].exec);
        assert_eq!(maps[0].range, 0x5600_0000_0000..0x5600_0010_0000);
        assert!(!maps[1].ours && maps[1].writable);
        assert!(!maps[2].ours);
    }

    /// The chunks of a process whose executable is mapped as `maps`
    /// (start, end, permissions; "" for an anonymous mapping), as
    /// (start, holds code).
    fn chunks_of(maps: &[(usize, usize, &str, &str)]) -> Vec<(usize, bool)> {
        let text: String = maps
            .iter()
            .map(|&(lo, hi, p, path)| m(lo, hi, p, path))
            .collect();
        chunks(&parse_maps(&text, EXE))
            .iter()
            .map(|c| (c.start, c.exec))
            .collect()
    }

    #[test]
    fn chunks_hold_only_read_only_parts_of_the_executable() {
        let b = 0x5600_0000_0000;
        let got = chunks_of(&[
            (b, b + 0x10_b000, "r--p", EXE),
            (b + HUGE, b + HUGE + 0x3a_b000, "r-xp", EXE),
            (b + 3 * HUGE, b + 3 * HUGE + 0x3_0000, "rw-p", EXE),
            (b + 3 * HUGE + 0x3_0000, b + 3 * HUGE + 0x4_0000, "rw-p", ""),
        ]);
        assert_eq!(got, [(b, false), (b + HUGE, true), (b + 2 * HUGE, true)]);
    }

    /// The move itself, on this test binary (linked without vswitchd's
    /// 2 MiB alignment, so only the chunks wholly inside its code move):
    /// the moved chunks are anonymous memory afterwards, and the code in
    /// them (this test's, and every other test's running meanwhile) keeps
    /// running. Needs no root.
    #[test]
    fn remap_image_moves_chunks_and_code_keeps_running() {
        if available().is_err() {
            return;
        }
        let exe = fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy().into_owned();
        let before = chunks(&parse_maps(
            &fs::read_to_string("/proc/self/maps").unwrap(),
            &exe,
        ));
        match remap_image() {
            Ok(r) => {
                assert_eq!(r.moved, before.len() * HUGE);
                assert!(r.huge <= r.moved);
                let after = parse_maps(&fs::read_to_string("/proc/self/maps").unwrap(), &exe);
                for c in &before {
                    assert!(
                        !after.iter().any(|m| m.ours && m.range.contains(&c.start)),
                        "chunk {:#x} still maps the file",
                        c.start
                    );
                }
            }
            Err(e) => assert!(before.is_empty(), "{e}"),
        }
        // Code in the moved chunks runs (this very function included).
        assert_eq!(huge_kib("", &[]), 0);
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn counts_huge_pages_of_the_moved_chunks() {
        let smaps = "\
55fa0f200000-55fa0f400000 r--p 00000000 00:00 0
Size:               2048 kB
AnonHugePages:      2048 kB
55fa0f400000-55fa0f600000 r-xp 00000000 00:00 0
Size:               2048 kB
AnonHugePages:         0 kB
55fa0f600000-55fa0f604000 rw-p 00400000 fe:00 10010927                   /usr/sbin/vswitchd
AnonHugePages:      2048 kB
";
        assert_eq!(huge_kib(smaps, &[0x55fa_0f20_0000, 0x55fa_0f40_0000]), 2048);
        assert_eq!(huge_kib(smaps, &[]), 0);
    }

    #[test]
    fn a_chunk_shared_with_writable_data_stays() {
        let b = 0x5600_0000_0000;
        let got = chunks_of(&[
            (b, b + 0x10_b000, "r--p", EXE),
            (b + 0x10_c000, b + 0x4b_7000, "r-xp", EXE),
            (b + 0x4b_7000, b + 0x4e_8000, "rw-p", EXE),
        ]);
        // The first chunk holds the read-only data and the start of the
        // code, the second only code; the third holds code and the
        // writable data, and stays.
        assert_eq!(got, [(b, true), (b + HUGE, true)]);
    }
}
