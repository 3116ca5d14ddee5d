//! Memory helpers for large per-lcore tables: cache prefetch, and tables
//! backed by transparent huge pages where the kernel offers them.
//!
//! A connection table of millions of entries spread over 4 KiB pages
//! costs a TLB miss (a page walk) on top of the cache miss of nearly every
//! lookup; 2 MiB pages remove most of those. DPDK's own huge pages are
//! not used for this: on machines without them (`--no-huge`) its memory
//! is ordinary pages too, and its size is fixed by `-m`.

/// Asks the CPU to bring the cache line holding address `addr` into all
/// cache levels (`rte_prefetch0`). A hint: it reads nothing
/// architecturally, never faults and changes nothing, whatever `addr` is.
#[inline(always)]
fn prefetch_line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache: it dereferences
    // nothing and cannot fault, for any address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Prefetches the cache line holding the start of `*r`.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    prefetch_line(r as *const T as usize);
}

/// [`prefetch`] of every cache line `r` covers (an object may straddle
/// two).
#[inline(always)]
pub fn prefetch_all<T>(r: &T) {
    let start = r as *const T as usize;
    let last = start + std::mem::size_of::<T>().max(1) - 1;
    let mut line = start & !63;
    while line <= last {
        prefetch_line(line);
        line += 64;
    }
}

/// The size of a transparent huge page on x86_64 Linux.
const HUGE: usize = 2 << 20;

/// A vector of `n` copies of `value` whose memory the kernel is asked to
/// back with transparent huge pages (`madvise(MADV_HUGEPAGE)`) before the
/// first write faults it in. Whether it does depends on
/// `/sys/kernel/mm/transparent_hugepage/enabled` (`always` or `madvise`)
/// and on free contiguous memory; either way the vector is the same.
pub fn huge_vec<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    let bytes = n * std::mem::size_of::<T>();
    if bytes >= HUGE {
        let start = v.as_ptr() as usize;
        // The whole huge pages inside the allocation.
        let first = start.next_multiple_of(HUGE);
        let end = (start + bytes) & !(HUGE - 1);
        if end > first {
            // SAFETY: [first, end) lies inside the allocation `v` owns
            // (rounded inwards to huge-page boundaries), which is mapped;
            // MADV_HUGEPAGE changes how the kernel backs those pages, never
            // their contents or validity (pages already faulted in, if the
            // allocator reused memory, stay as they are). A failure (no THP
            // support) leaves ordinary pages: ignored.
            let _ = unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE)
            };
        }
    }
    v.resize(n, value);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_vec_holds_its_values() {
        let v = huge_vec(3 << 20, 7u8);
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&b| b == 7));
        let small = huge_vec(5, 1u64);
        assert_eq!(small, vec![1; 5]);
        prefetch(&v[12345]);
        prefetch_all(&[0u64; 20]);
    }
}
