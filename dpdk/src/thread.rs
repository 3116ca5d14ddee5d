//! CPU affinity of the calling thread.
//!
//! The EAL pins each lcore's thread to its CPUs; threads a program starts
//! afterwards inherit the affinity of the thread that starts them. The
//! director moves its control threads off the CPUs that poll with these.

use crate::error::DpdkError;
use crate::ffi;

/// The CPUs in a bindgen `cpu_set_t` (`rte_cpuset_t`).
pub(crate) fn cpus_of(set: &ffi::rte_cpuset_t) -> Vec<usize> {
    let bits = usize::BITS as usize;
    set.__bits
        .iter()
        .enumerate()
        .flat_map(|(w, &word)| {
            (0..bits)
                .filter(move |b| (word >> b) & 1 == 1)
                .map(move |b| w * bits + b)
        })
        .collect()
}

/// The CPUs the calling thread may run on.
pub fn affinity() -> Result<Vec<usize>, DpdkError> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the size and pointer describe
    // `set`, which lives for the call.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Err(DpdkError::Call {
            call: "sched_getaffinity",
            reason: std::io::Error::last_os_error().to_string(),
        });
    }
    let max = 8 * std::mem::size_of_val(&set);
    // SAFETY: CPU_ISSET reads bit i of `set`, and i is below its bit size.
    Ok((0..max)
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

/// Restricts the calling thread to `cpus` (threads it starts later
/// inherit this). An empty list or a CPU beyond the set's size is refused.
pub fn set_affinity(cpus: &[usize]) -> Result<(), DpdkError> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of_val(&set);
    if cpus.is_empty() || cpus.iter().any(|&c| c >= max) {
        return Err(DpdkError::Call {
            call: "sched_setaffinity",
            reason: format!("CPU list {cpus:?} is empty or beyond CPU {}", max - 1),
        });
    }
    for &c in cpus {
        // SAFETY: c is below the set's bit size (checked above).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the size and pointer describe
    // `set`, which lives for the call.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        return Err(DpdkError::Call {
            call: "sched_setaffinity",
            reason: format!("CPUs {cpus:?}: {}", std::io::Error::last_os_error()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_round_trips() {
        let before = affinity().unwrap();
        assert!(!before.is_empty());
        let one = [before[0]];
        // A thread of its own, so the test runner's threads keep theirs.
        std::thread::spawn(move || {
            set_affinity(&one).unwrap();
            assert_eq!(affinity().unwrap(), one);
            assert!(set_affinity(&[]).is_err());
            assert!(set_affinity(&[1 << 20]).is_err());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn cpuset_bits() {
        let mut set = ffi::rte_cpuset_t::default();
        set.__bits[0] = 0b1010;
        set.__bits[1] = 1;
        assert_eq!(cpus_of(&set), vec![1, 3, usize::BITS as usize]);
    }
}
