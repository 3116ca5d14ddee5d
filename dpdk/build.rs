//! Generates the DPDK bindings against the system DPDK (found with
//! pkg-config) and compiles the C shim for its static-inline functions.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(false)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "the system DPDK was not found with pkg-config ({e}); \
                 install it with scripts/setup (Debian: libdpdk-dev)"
            )
        });

    // pkg-config's --cflags for libdpdk carry `-include rte_config.h` and
    // -march; hand both compilers the same flags so struct layouts agree.
    let cflags = pkg_config_output(&["--cflags", "libdpdk"]);

    let mut build = cc::Build::new();
    build
        .file("shim/shim.c")
        .define("_GNU_SOURCE", None)
        .opt_level(3)
        .warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("dlvs_dpdk_shim");

    // Link exactly what `pkg-config --libs libdpdk` names; the EAL loads the
    // PMDs (net_pcap, net_tap, ...) itself from its plugin directory.
    for tok in pkg_config_output(&["--libs", "libdpdk"]) {
        if let Some(l) = tok.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={l}");
        } else if let Some(p) = tok.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={p}");
        } else if tok.starts_with("-Wl,") {
            println!("cargo:rustc-link-arg={tok}");
        }
    }
    let _ = lib;

    let mut builder = bindgen::Builder::default()
        .header("shim/shim.h")
        // Only what the safe layer calls (and the types those pull in):
        // the whole of DPDK's headers has packed structs rustc refuses, and
        // every system header drags clang's AMX intrinsics along.
        .allowlist_function("dlvs_.*")
        .allowlist_function(FUNCTIONS)
        .allowlist_var("RTE_MAX_LCORE|RTE_PKTMBUF_HEADROOM|RTE_ETH_MQ_RX_RSS|RTE_MBUF_F_RX_(RSS_HASH|IP_CKSUM_.*|L4_CKSUM_.*)")
        // rte_os.h declares the cpuset functions only under _GNU_SOURCE.
        .clang_arg("-D_GNU_SOURCE")
        .clang_macro_fallback()
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    let mut skip_next = false;
    for f in &cflags {
        if skip_next {
            skip_next = false;
            builder = builder.clang_arg(f.clone());
            continue;
        }
        if f == "-include" {
            skip_next = true;
        }
        builder = builder.clang_arg(f.clone());
    }
    let bindings = builder
        .generate()
        .expect("bindgen failed on the DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(out).expect("writing bindings.rs");
}

/// The DPDK functions the safe layer calls.
const FUNCTIONS: &str = "rte_eal_init|rte_eal_cleanup|rte_strerror|rte_get_main_lcore|\
rte_get_next_lcore|rte_lcore_to_socket_id|rte_socket_id|rte_get_tsc_hz|rte_eal_remote_launch|\
rte_eal_wait_lcore|rte_mbuf_dyn_rx_timestamp_register|rte_pktmbuf_pool_create|rte_mempool_free|\
rte_dev_probe|rte_eth_dev_get_port_by_name|rte_eth_dev_info_get|rte_eth_dev_configure|\
rte_eth_dev_adjust_nb_rx_tx_desc|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup|\
rte_eth_dev_default_mac_addr_set|rte_eth_allmulticast_enable|rte_eth_dev_start|rte_eth_dev_stop|rte_eth_dev_close|\
rte_eth_macaddr_get|rte_eth_link_get_nowait|rte_eth_stats_get|rte_eth_dev_set_mtu|\
rte_lcore_is_enabled|rte_lcore_cpuset|rte_ring_create|rte_ring_free";

fn pkg_config_output(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("pkg-config")
        .args(args)
        .output()
        .expect("running pkg-config");
    assert!(
        out.status.success(),
        "pkg-config {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pkg-config output is UTF-8")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
