//! Where the control threads run.
//!
//! The EAL pins each lcore's thread to its CPUs, and a thread inherits the
//! affinity of the thread that starts it: left alone, the control thread
//! and the metrics server would share the main lcore's CPU with a worker
//! that polls it at 100 %. They get CPUs of their own instead: `[dpdk]
//! control_cpus` if set, else every CPU the process may use (its affinity
//! before the EAL starts) that no worker lcore runs on. When every such CPU
//! runs a worker, the control threads share them all with the workers, and
//! the director says so once at start-up: a busy control side (metrics
//! scrapes, later dlvsadm requests, health checks, table builds) then
//! takes cycles from packet processing.

/// The chosen CPUs and whether they are shared with workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlCpus {
    pub cpus: Vec<usize>,
    /// CPUs in `cpus` on which a worker also polls.
    pub shared: Vec<usize>,
}

/// Why the configured CPUs cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("[dpdk] control_cpus: CPU(s) {missing} are not available to this process (it may use {allowed})")]
pub struct CpuError {
    pub missing: String,
    pub allowed: String,
}

/// Chooses the control CPUs from the process's CPUs, the workers' CPUs,
/// and the configured list.
pub fn choose(
    process: &[usize],
    workers: &[usize],
    configured: Option<&[usize]>,
) -> Result<ControlCpus, CpuError> {
    use crate::config::format_cpu_list;
    let cpus: Vec<usize> = match configured {
        Some(list) => {
            let missing: Vec<usize> = list
                .iter()
                .copied()
                .filter(|c| !process.contains(c))
                .collect();
            if !missing.is_empty() {
                return Err(CpuError {
                    missing: format_cpu_list(&missing),
                    allowed: format_cpu_list(process),
                });
            }
            list.to_vec()
        }
        None => {
            let free: Vec<usize> = process
                .iter()
                .copied()
                .filter(|c| !workers.contains(c))
                .collect();
            if free.is_empty() {
                process.to_vec()
            } else {
                free
            }
        }
    };
    let shared = cpus
        .iter()
        .copied()
        .filter(|c| workers.contains(c))
        .collect();
    Ok(ControlCpus { cpus, shared })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_cpus_by_default() {
        let c = choose(&[0, 1, 2, 3], &[1, 2], None).unwrap();
        assert_eq!(c.cpus, vec![0, 3]);
        assert!(c.shared.is_empty());
    }

    #[test]
    fn every_cpu_a_worker_shares_them_all() {
        let c = choose(&[0, 1], &[0, 1], None).unwrap();
        assert_eq!(c.cpus, vec![0, 1]);
        assert_eq!(c.shared, vec![0, 1]);
    }

    #[test]
    fn configured_cpus_win_and_are_checked() {
        let c = choose(&[0, 1, 2], &[1], Some(&[1])).unwrap();
        assert_eq!(c.cpus, vec![1]);
        assert_eq!(c.shared, vec![1]);
        let e = choose(&[0, 1], &[1], Some(&[0, 5, 6])).unwrap_err();
        assert_eq!(e.missing, "5-6");
        assert!(e.to_string().contains("may use 0-1"), "{e}");
    }
}
