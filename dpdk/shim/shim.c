#include "shim.h"

int dlvs_errno(void) { return rte_errno; }
uint64_t dlvs_rdtsc(void) { return rte_rdtsc(); }

uint16_t dlvs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t dlvs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *dlvs_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
void dlvs_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
uint8_t *dlvs_pktmbuf_data(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }
uint16_t dlvs_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t dlvs_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t dlvs_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
uint16_t dlvs_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint8_t *dlvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return (uint8_t *)rte_pktmbuf_append(m, len); }
uint8_t *dlvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return (uint8_t *)rte_pktmbuf_prepend(m, len); }
int dlvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
int dlvs_pktmbuf_linearize(struct rte_mbuf *m) { return rte_pktmbuf_linearize(m); }

uint64_t dlvs_mbuf_dynfield_u64(const struct rte_mbuf *m, int offset)
{
	return *RTE_MBUF_DYNFIELD(m, offset, const uint64_t *);
}

uint64_t dlvs_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }
uint32_t dlvs_mbuf_rss(const struct rte_mbuf *m) { return m->hash.rss; }
unsigned dlvs_mempool_avail_count(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }
uint64_t dlvs_rss_hf_l3_l4(void) { return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP; }
int dlvs_eexist(void) { return EEXIST; }
int dlvs_enotsup(void) { return ENOTSUP; }

unsigned dlvs_ring_mp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n)
{
	return rte_ring_mp_enqueue_burst(r, objs, n, NULL);
}

unsigned dlvs_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{
	return rte_ring_sc_dequeue_burst(r, objs, n, NULL);
}

unsigned dlvs_ring_sc_deq_flag(void) { return RING_F_SC_DEQ; }
