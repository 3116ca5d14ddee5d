/* Out-of-line wrappers for DPDK functions that are static inline in the
 * headers (bindgen cannot link against those). Keep each one trivial: all
 * policy lives on the Rust side. */
#ifndef DLVS_DPDK_SHIM_H
#define DLVS_DPDK_SHIM_H

#include <errno.h>
#include <rte_config.h>
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

int dlvs_errno(void);
uint64_t dlvs_rdtsc(void);
uint16_t dlvs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t dlvs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *dlvs_pktmbuf_alloc(struct rte_mempool *mp);
void dlvs_pktmbuf_free(struct rte_mbuf *m);
uint8_t *dlvs_pktmbuf_data(struct rte_mbuf *m);
uint16_t dlvs_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t dlvs_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t dlvs_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t dlvs_pktmbuf_headroom(const struct rte_mbuf *m);
uint8_t *dlvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
uint8_t *dlvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
int dlvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int dlvs_pktmbuf_linearize(struct rte_mbuf *m);
uint64_t dlvs_mbuf_dynfield_u64(const struct rte_mbuf *m, int offset);
uint64_t dlvs_mbuf_ol_flags(const struct rte_mbuf *m);
uint32_t dlvs_mbuf_rss(const struct rte_mbuf *m);
unsigned dlvs_mempool_avail_count(const struct rte_mempool *mp);
uint64_t dlvs_rss_hf_l3_l4(void);
int dlvs_eexist(void);
int dlvs_enotsup(void);
unsigned dlvs_ring_mp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned dlvs_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned dlvs_ring_sc_deq_flag(void);

#endif
