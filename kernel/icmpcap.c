// SPDX-License-Identifier: GPL-2.0
/*
 * icmpcap: capture ICMP and ICMPv6 with netfilter hooks into per-CPU rings
 * shared with user space through mmap of /dev/icmpcap; control and events
 * over the generic netlink family "icmpcap".
 *
 * The ABI (record, ring layout, netlink commands) is described in
 * include/uapi/linux/icmpcap.h; the consumer is native/src/core/ring_reader.cc.
 *
 * Objects and lifetimes:
 *  - struct icmpcap_client: one per open file of /dev/icmpcap. Owns the rings.
 *    Freed in release(), i.e. after the last close and the last munmap.
 *  - A subscription lives inside a client (state ACTIVE): netfilter hooks in
 *    one network namespace, a filter (RCU), a wakeup timer. It ends on
 *    UNSUBSCRIBE, when the subscribing netlink socket is released, or in
 *    release(). Ending it unregisters the hooks (which waits for running
 *    hooks) before anything they use goes away.
 *  - The module cannot be unloaded while a file is open or mapped: the misc
 *    device's fops hold a module reference from open() to release().
 *
 * Locking:
 *  - icmpcap_mutex serialises all control operations (subscribe, end, filter
 *    updates, test runs setup) and protects client->state and the
 *    subscription fields of every client.
 *  - icmpcap_list_lock (spinlock) protects icmpcap_clients, the list of
 *    active subscriptions, which the netlink release notifier walks in atomic
 *    context.
 *  - The data path takes no lock: each ring has exactly one producer, the CPU
 *    it belongs to, with BH and preemption disabled around each write; the
 *    consumer is user space, synchronised by acquire/release on the positions.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/cred.h>
#include <linux/capability.h>
#include <linux/uidgid.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/irq_work.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/workqueue.h>
#include <linux/version.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/ip.h>
#include <net/ipv6.h>

#include "include/uapi/linux/icmpcap.h"

/* ---- compatibility shims ------------------------------------------------ */

/* vm_flags became read-only in 6.3: vm_flags_clear() replaces the store. */
static inline void icmpcap_vma_clear_flags(struct vm_area_struct *vma, unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

/* hrtimer_init() + .function became hrtimer_setup() in 6.13. */
static inline void icmpcap_hrtimer_setup(struct hrtimer *timer,
					 enum hrtimer_restart (*fn)(struct hrtimer *))
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
	hrtimer_setup(timer, fn, CLOCK_MONOTONIC, HRTIMER_MODE_REL_SOFT);
#else
	hrtimer_init(timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_SOFT);
	timer->function = fn;
#endif
}

#ifdef ICMPCAP_TEST
#define ICMPCAP_BUILD_KIND ", test build"
#else
#define ICMPCAP_BUILD_KIND ""
#endif

/* ---- parameters and limits ---------------------------------------------- */

static unsigned int icmpcap_group;
module_param_named(group, icmpcap_group, uint, 0444);
MODULE_PARM_DESC(group, "gid whose members may capture (default 0: root/CAP_NET_ADMIN only)");

#ifdef ICMPCAP_TEST
/*
 * Test builds: records whose captured bytes did not all come from the skb's
 * linear area (page fragments or frag_list), so the tests can tell that they
 * exercised that path of skb_copy_bits().
 */
static atomic_long_t icmpcap_test_nonlinear = ATOMIC_LONG_INIT(0);

static int icmpcap_test_nonlinear_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%ld\n", atomic_long_read(&icmpcap_test_nonlinear));
}

static const struct kernel_param_ops icmpcap_test_nonlinear_ops = {
	.get = icmpcap_test_nonlinear_get,
};
module_param_cb(test_nonlinear, &icmpcap_test_nonlinear_ops, NULL, 0444);
MODULE_PARM_DESC(test_nonlinear, "test builds: records copied from a non-linear skb");
#endif

#define ICMPCAP_DEFAULT_HOOKS ((1U << ICMPCAP_HOOK_PRE_ROUTING) | (1U << ICMPCAP_HOOK_LOCAL_OUT))
#define ICMPCAP_ALL_HOOKS 0x1fU
#define ICMPCAP_ALL_FAMILIES (ICMPCAP_FAMILY_F_IPV4 | ICMPCAP_FAMILY_F_IPV6)
#define ICMPCAP_ALL_DIRS ((1U << ICMPCAP_DIR_IN) | (1U << ICMPCAP_DIR_OUT) | \
			  (1U << ICMPCAP_DIR_FORWARD))
#define ICMPCAP_DEFAULT_SNAPLEN 256
#define ICMPCAP_DEFAULT_DATA_SIZE (1U << 20)
#define ICMPCAP_MIN_DATA_SIZE 4096U
#define ICMPCAP_MAX_DATA_SIZE (1U << 26)
#define ICMPCAP_DEFAULT_WAKEUP_USEC 2000
/* After this many ticks with nothing pending, tick every 50 ms at most. */
#define ICMPCAP_IDLE_TICKS 100
#define ICMPCAP_IDLE_PERIOD_NS (50 * NSEC_PER_MSEC)
/* At most 10 OVERFLOW events per second and subscription. */
#define ICMPCAP_OVERFLOW_EVENT_GAP (HZ / 10)
/* Two hook families times five hook points. */
#define ICMPCAP_MAX_OPS 10

/* ---- types --------------------------------------------------------------- */

struct icmpcap_client;

struct icmpcap_ring {
	struct icmpcap_ring_header *hdr;	/* vmalloc_user(): header page + data */
	u8 *data;
	u32 data_size;
	/*
	 * Written only by the producer (this ring's CPU, BH off). prod is the
	 * kernel's own copy of producer_pos: the shared page is writable by
	 * user space and never trusted. cons is the last consumer_pos seen
	 * (validated): the producer reloads the shared one only when cons says
	 * a record does not fit, so the cache line the consumer writes is not
	 * pulled over for every record.
	 */
	u64 prod;
	u64 cons;
	u64 captured;
	u64 dropped;
	u64 wake_pos;
	u32 wake_records;
	struct irq_work wake_work;
	struct icmpcap_client *client;
};

struct icmpcap_cfg {
	u32 hooks;
	u32 families;
	u32 snaplen;
	u32 directions;
	u32 wakeup_bytes;
	u32 wakeup_records;
	u32 wakeup_usec;
	u32 nr_ifindexes;
	u32 ifindexes[ICMPCAP_MAX_IFINDEXES];
	u8 types_v4[ICMPCAP_BITMAP_BYTES];
	u8 types_v6[ICMPCAP_BITMAP_BYTES];
	u8 codes[ICMPCAP_BITMAP_BYTES];
	struct rcu_head rcu;
};

enum icmpcap_state {
	ICMPCAP_IDLE,	/* opened, never subscribed */
	ICMPCAP_ACTIVE,	/* hooks registered */
	ICMPCAP_ENDED,	/* subscription over; rings stay until release() */
};

struct icmpcap_client {
	wait_queue_head_t wq;
	/* Ring geometry: set once before rings is published, then constant. */
	struct icmpcap_ring *rings;	/* published with smp_store_release() */
	u32 nr_rings;
	u32 data_size;
	u32 sub_id;
	bool ended;			/* READ_ONCE() in poll */

	/* Protected by icmpcap_mutex. */
	enum icmpcap_state state;
	struct net *net;
	u32 portid;
	struct nf_hook_ops ops[ICMPCAP_MAX_OPS];
	unsigned int nr_ops;
	struct icmpcap_cfg __rcu *cfg;
	bool test_running;

	struct list_head node;		/* icmpcap_clients, icmpcap_list_lock */
	struct work_struct sock_gone_work;
	struct hrtimer timer;		/* batch wakeups + overflow events */
	u64 wakeup_ns;			/* timer period, WRITE_ONCE() under mutex */
	u64 reported_dropped;		/* timer callback only */
	unsigned long overflow_event_at;	/* timer callback only, jiffies */
	unsigned int idle_ticks;	/* timer callback only */
	bool test_abort;		/* READ_ONCE() in the test producers */
};

static DEFINE_MUTEX(icmpcap_mutex);
static DEFINE_SPINLOCK(icmpcap_list_lock);
static LIST_HEAD(icmpcap_clients);
static unsigned int icmpcap_nr_subs;	/* icmpcap_mutex */
static atomic_t icmpcap_next_sub_id = ATOMIC_INIT(0);

static struct genl_family icmpcap_genl_family;
static const struct file_operations icmpcap_fops;

enum icmpcap_mcgrp_ids { ICMPCAP_MCGRP_EVENTS_ID };

static const struct genl_multicast_group icmpcap_mcgrps[] = {
	[ICMPCAP_MCGRP_EVENTS_ID] = { .name = ICMPCAP_GENL_MCGRP_EVENTS },
};

/* ---- permissions ---------------------------------------------------------- */

/*
 * Process context. The device node's group counts when udev gave it one, so
 * that "members of the group owning /dev/icmpcap" works without group=.
 */
static bool icmpcap_allowed(const struct inode *node)
{
	if (capable(CAP_NET_ADMIN))
		return true;
	if (icmpcap_group && in_group_p(KGIDT_INIT(icmpcap_group)))
		return true;
	if (node && !gid_eq(node->i_gid, GLOBAL_ROOT_GID) && in_group_p(node->i_gid))
		return true;
	return false;
}

/* ---- ring producer ---------------------------------------------------------- */

static bool icmpcap_bit(const u8 *map, unsigned int bit)
{
	return (map[bit >> 3] >> (bit & 7)) & 1;
}

/* Same context as icmpcap_ring_reserve(): count a record that did not fit. */
static void *icmpcap_ring_full(struct icmpcap_ring *ring)
{
	ring->dropped++;
	WRITE_ONCE(ring->hdr->dropped, ring->dropped);
	return NULL;
}

/*
 * Reserve len bytes (header included) in ring. Caller is the ring's only
 * producer: on the ring's CPU with BH (and so preemption) disabled. Returns
 * the record address and the position to publish, or NULL when the record
 * does not fit: then it is counted as dropped and nothing is written.
 */
static void *icmpcap_ring_reserve(struct icmpcap_ring *ring, u32 len, u64 *new_prod)
{
	u64 size = ring->data_size;
	u64 prod = ring->prod;
	u32 need = ICMPCAP_ALIGN(len);
	u64 cons, used, off, pad = 0;

	off = prod & (size - 1);
	if (off + need > size)
		pad = size - off;
	/*
	 * The consumer only moves forward, so ring->cons is never ahead of
	 * consumer_pos: when the record fits below ring->cons, it fits, and the
	 * shared page need not be read. The acquire load below that returned
	 * ring->cons still orders our writes after the consumer's reads of
	 * that space. (A consumer that moves consumer_pos backwards only loses
	 * its own unread records; the checks below hold for any value.)
	 */
	if (likely(prod - ring->cons + pad + need <= size))
		goto fits;
	/*
	 * Pairs with the release store of consumer_pos in
	 * native/src/core/ring_reader.cc (RingReader::release()): everything the
	 * consumer read before that store is done with, so we may overwrite it.
	 */
	cons = smp_load_acquire(&ring->hdr->consumer_pos);
	used = prod - cons;
	if (used > size)	/* consumer_pos ahead or too far behind: "full" */
		return icmpcap_ring_full(ring);
	/* Valid: prod - size <= cons <= prod. Keep it for the next records. */
	ring->cons = cons;
	if (used + pad + need > size)
		return icmpcap_ring_full(ring);
fits:
	if (pad) {
		struct icmpcap_record *p = (struct icmpcap_record *)(ring->data + off);

		p->len = pad;
		p->flags = ICMPCAP_REC_F_PAD;
		p->hook = 0;
		p->dir = 0;
	}
	*new_prod = prod + pad + need;
	return ring->data + ((prod + pad) & (size - 1));
}

/* Same context as icmpcap_ring_reserve(). */
static void icmpcap_ring_commit(struct icmpcap_ring *ring, u64 new_prod,
				const struct icmpcap_cfg *cfg)
{
	ring->prod = new_prod;
	ring->captured++;
	WRITE_ONCE(ring->hdr->captured, ring->captured);
	/*
	 * Pairs with the acquire load of producer_pos in
	 * native/src/core/ring_reader.cc (RingReader::poll_records()): the record
	 * bytes written above are visible before the position that covers them.
	 */
	smp_store_release(&ring->hdr->producer_pos, new_prod);

	/* At most one wakeup per batch; the timer covers small batches. */
	ring->wake_records++;
	if (new_prod - ring->wake_pos >= cfg->wakeup_bytes ||
	    (cfg->wakeup_records && ring->wake_records >= cfg->wakeup_records)) {
		ring->wake_pos = new_prod;
		ring->wake_records = 0;
		irq_work_queue(&ring->wake_work);
	}
}

/*
 * The ring-writing half of the hook, also used by the synthetic producer of
 * test builds: timestamp, reserve, header, the first rec->cap_len bytes of
 * skb from nhoff (skb_copy_bits(): linear or paged), publish. Same context
 * as icmpcap_ring_reserve(). Returns false when the ring was full (counted).
 */
static __always_inline bool icmpcap_ring_put(struct icmpcap_ring *ring,
					     const struct icmpcap_cfg *cfg,
					     struct icmpcap_record *rec,
					     const struct sk_buff *skb, unsigned int nhoff)
{
	u64 new_prod;
	u8 *dst;

	rec->ts_ns = ktime_get_real_ns();
	dst = icmpcap_ring_reserve(ring, rec->len, &new_prod);
	if (!dst)
		return false;
	memcpy(dst, rec, sizeof(*rec));
	/* Cannot fail: cap_len <= skb->len - nhoff. */
	if (unlikely(skb_copy_bits(skb, nhoff, dst + sizeof(*rec), rec->cap_len)))
		memset(dst + sizeof(*rec), 0, rec->cap_len);
	icmpcap_ring_commit(ring, new_prod, cfg);
	return true;
}

/* Hard IRQ context (irq_work). */
static void icmpcap_wake_work(struct irq_work *work)
{
	struct icmpcap_ring *ring = container_of(work, struct icmpcap_ring, wake_work);

	if (wq_has_sleeper(&ring->client->wq))
		wake_up_interruptible_poll(&ring->client->wq, EPOLLIN | EPOLLRDNORM);
}

/* ---- netfilter hook ------------------------------------------------------ */

static bool icmpcap_parse_v4(struct sk_buff *skb, unsigned int nhoff,
			     struct icmpcap_record *rec)
{
	struct iphdr _iph;
	const struct iphdr *iph;
	struct icmphdr _ich;
	const struct icmphdr *ich;
	unsigned int ihl;

	iph = skb_header_pointer(skb, nhoff, sizeof(_iph), &_iph);
	if (!iph || iph->version != 4 || iph->protocol != IPPROTO_ICMP)
		return false;
	if (iph->frag_off & htons(IP_OFFSET))
		return false;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return false;
	ich = skb_header_pointer(skb, nhoff + ihl, sizeof(_ich), &_ich);
	if (!ich)
		return false;
	rec->family = ICMPCAP_FAMILY_IPV4;
	rec->ttl = iph->ttl;
	memcpy(rec->saddr, &iph->saddr, 4);
	memcpy(rec->daddr, &iph->daddr, 4);
	rec->icmp_type = ich->type;
	rec->icmp_code = ich->code;
	if (ich->type == ICMP_ECHO || ich->type == ICMP_ECHOREPLY) {
		rec->flags |= ICMPCAP_REC_F_HAS_ECHO;
		rec->icmp_id = ntohs(ich->un.echo.id);
		rec->icmp_seq = ntohs(ich->un.echo.sequence);
	}
	return true;
}

static bool icmpcap_parse_v6(struct sk_buff *skb, unsigned int nhoff,
			     struct icmpcap_record *rec)
{
	struct ipv6hdr _ip6h;
	const struct ipv6hdr *ip6h;
	struct icmp6hdr _ich;
	const struct icmp6hdr *ich;
	u8 nexthdr;
	__be16 frag_off;
	int off;

	ip6h = skb_header_pointer(skb, nhoff, sizeof(_ip6h), &_ip6h);
	if (!ip6h || ip6h->version != 6)
		return false;
	nexthdr = ip6h->nexthdr;
	/* Stops at a non-first fragment with nexthdr == NEXTHDR_FRAGMENT. */
	off = ipv6_skip_exthdr(skb, nhoff + sizeof(*ip6h), &nexthdr, &frag_off);
	if (off < 0 || nexthdr != IPPROTO_ICMPV6)
		return false;
	ich = skb_header_pointer(skb, off, sizeof(_ich), &_ich);
	if (!ich)
		return false;
	rec->family = ICMPCAP_FAMILY_IPV6;
	rec->ttl = ip6h->hop_limit;
	memcpy(rec->saddr, &ip6h->saddr, 16);
	memcpy(rec->daddr, &ip6h->daddr, 16);
	rec->icmp_type = ich->icmp6_type;
	rec->icmp_code = ich->icmp6_code;
	if (ich->icmp6_type == ICMPV6_ECHO_REQUEST || ich->icmp6_type == ICMPV6_ECHO_REPLY) {
		rec->flags |= ICMPCAP_REC_F_HAS_ECHO;
		rec->icmp_id = ntohs(ich->icmp6_identifier);
		rec->icmp_seq = ntohs(ich->icmp6_sequence);
	}
	return true;
}

static bool icmpcap_ifindex_ok(const struct icmpcap_cfg *cfg,
			       const struct net_device *in, const struct net_device *out)
{
	unsigned int i;

	if (!cfg->nr_ifindexes)
		return true;
	for (i = 0; i < cfg->nr_ifindexes; i++) {
		if ((in && in->ifindex == cfg->ifindexes[i]) ||
		    (out && out->ifindex == cfg->ifindexes[i]))
			return true;
	}
	return false;
}

/*
 * Softirq for packets received or forwarded; process context with BH enabled
 * for locally generated packets (LOCAL_OUT, POST_ROUTING). Always under
 * rcu_read_lock(). Never sleeps, never allocates, takes no shared lock.
 */
static unsigned int icmpcap_nf_hook(void *priv, struct sk_buff *skb,
				    const struct nf_hook_state *state)
{
	struct icmpcap_client *client = priv;
	const struct icmpcap_cfg *cfg = rcu_dereference(client->cfg);
	unsigned int nhoff = skb_network_offset(skb);
	struct icmpcap_record rec;
	struct icmpcap_ring *ring;
	const u8 *types;
	bool forwarded;
	u32 orig_len, cap_len;

	if (!cfg)
		return NF_ACCEPT;
	memset(&rec, 0, sizeof(rec));
	if (state->pf == NFPROTO_IPV4) {
		if (!icmpcap_parse_v4(skb, nhoff, &rec))
			return NF_ACCEPT;
		types = cfg->types_v4;
		forwarded = IPCB(skb)->flags & IPSKB_FORWARDED;
	} else {
		if (!icmpcap_parse_v6(skb, nhoff, &rec))
			return NF_ACCEPT;
		types = cfg->types_v6;
		/*
		 * ip6_forward() sets IP6SKB_FORWARDED only for multicast routing;
		 * a forwarded skb keeps the index of the device it came in on,
		 * a locally generated one has none.
		 */
		forwarded = (IP6CB(skb)->flags & IP6SKB_FORWARDED) || skb->skb_iif;
	}
	if (!icmpcap_bit(types, rec.icmp_type) || !icmpcap_bit(cfg->codes, rec.icmp_code))
		return NF_ACCEPT;

	rec.hook = state->hook;
	switch (state->hook) {
	case NF_INET_PRE_ROUTING:
	case NF_INET_LOCAL_IN:
		rec.dir = ICMPCAP_DIR_IN;
		break;
	case NF_INET_FORWARD:
		rec.dir = ICMPCAP_DIR_FORWARD;
		break;
	case NF_INET_POST_ROUTING:
		rec.dir = forwarded ? ICMPCAP_DIR_FORWARD : ICMPCAP_DIR_OUT;
		break;
	default:
		rec.dir = ICMPCAP_DIR_OUT;
		break;
	}
	if (!(cfg->directions & (1U << rec.dir)))
		return NF_ACCEPT;
	if (!icmpcap_ifindex_ok(cfg, state->in, state->out))
		return NF_ACCEPT;
	if (state->in && rec.dir != ICMPCAP_DIR_OUT)
		rec.ifindex = state->in->ifindex;
	else if (state->out)
		rec.ifindex = state->out->ifindex;

	orig_len = skb->len - nhoff;
	cap_len = min(orig_len, cfg->snaplen);
	rec.orig_len = orig_len;
	rec.cap_len = cap_len;
	rec.len = ICMPCAP_RECORD_HDR_SIZE + cap_len;
	if (cap_len < orig_len)
		rec.flags |= ICMPCAP_REC_F_TRUNCATED;

	/* Makes this CPU the ring's only writer: no softirq, no migration. */
	local_bh_disable();
	ring = &client->rings[smp_processor_id()];
#ifdef ICMPCAP_TEST
	if (icmpcap_ring_put(ring, cfg, &rec, skb, nhoff) && nhoff + cap_len > skb_headlen(skb))
		atomic_long_inc(&icmpcap_test_nonlinear);
#else
	icmpcap_ring_put(ring, cfg, &rec, skb, nhoff);
#endif
	local_bh_enable();
	return NF_ACCEPT;
}

/* ---- events ---------------------------------------------------------------- */

/* Any context but hard IRQ; gfp must match it. */
static void icmpcap_send_event(struct icmpcap_client *client, u32 type, u32 reason,
			       u64 dropped, gfp_t gfp)
{
	struct sk_buff *msg;
	void *hdr;

	if (!client->net || !genl_has_listeners(&icmpcap_genl_family, client->net,
						ICMPCAP_MCGRP_EVENTS_ID))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, gfp);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &icmpcap_genl_family, 0, ICMPCAP_CMD_EVENT);
	if (!hdr)
		goto out_free_msg;
	if (nla_put_u32(msg, ICMPCAP_A_EVENT_TYPE, type) ||
	    nla_put_u32(msg, ICMPCAP_A_SUB_ID, client->sub_id))
		goto out_free_msg;
	if (reason && nla_put_u32(msg, ICMPCAP_A_END_REASON, reason))
		goto out_free_msg;
	if (type == ICMPCAP_EVENT_OVERFLOW &&
	    nla_put_u64_64bit(msg, ICMPCAP_A_DROPPED, dropped, ICMPCAP_A_PAD))
		goto out_free_msg;
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&icmpcap_genl_family, client->net, msg, 0,
				ICMPCAP_MCGRP_EVENTS_ID, gfp);
	return;

out_free_msg:
	nlmsg_free(msg);
}

/*
 * Softirq (HRTIMER_MODE_REL_SOFT). Wakes the reader when a batch smaller
 * than the watermark has waited one period, and reports new drops.
 */
static enum hrtimer_restart icmpcap_timer_fn(struct hrtimer *timer)
{
	struct icmpcap_client *client = container_of(timer, struct icmpcap_client, timer);
	bool pending = false;
	u64 dropped = 0, period;
	u32 i;

	for (i = 0; i < client->nr_rings; i++) {
		struct icmpcap_ring *ring = &client->rings[i];

		if (READ_ONCE(ring->prod) != READ_ONCE(ring->hdr->consumer_pos))
			pending = true;
		dropped += READ_ONCE(ring->dropped);
	}
	if (pending && wq_has_sleeper(&client->wq))
		wake_up_interruptible_poll(&client->wq, EPOLLIN | EPOLLRDNORM);
	if (dropped != client->reported_dropped &&
	    time_after_eq(jiffies, client->overflow_event_at + ICMPCAP_OVERFLOW_EVENT_GAP)) {
		client->reported_dropped = dropped;
		client->overflow_event_at = jiffies;
		icmpcap_send_event(client, ICMPCAP_EVENT_OVERFLOW, 0, dropped, GFP_ATOMIC);
	}
	/* Idle for a while: tick slower, an idle capture costs almost nothing. */
	period = READ_ONCE(client->wakeup_ns);
	if (pending || dropped != client->reported_dropped)
		client->idle_ticks = 0;
	else if (client->idle_ticks < ICMPCAP_IDLE_TICKS)
		client->idle_ticks++;
	if (client->idle_ticks >= ICMPCAP_IDLE_TICKS)
		period = max_t(u64, period, ICMPCAP_IDLE_PERIOD_NS);
	hrtimer_forward_now(timer, ns_to_ktime(period));
	return HRTIMER_RESTART;
}

/* ---- subscription lifecycle ------------------------------------------------ */

static void icmpcap_free_rings(struct icmpcap_client *client)
{
	u32 i;

	if (!client->rings)
		return;
	for (i = 0; i < client->nr_rings; i++) {
		irq_work_sync(&client->rings[i].wake_work);
		vfree(client->rings[i].hdr);
	}
	kfree(client->rings);
	client->rings = NULL;
}

/* Process context; icmpcap_mutex held. Rings are published on success. */
static int icmpcap_alloc_rings(struct icmpcap_client *client, u32 data_size)
{
	struct icmpcap_ring *rings;
	u32 nr = nr_cpu_ids, i;

	lockdep_assert_held(&icmpcap_mutex);
	rings = kcalloc(nr, sizeof(*rings), GFP_KERNEL);
	if (!rings)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		struct icmpcap_ring *ring = &rings[i];

		ring->hdr = vmalloc_user(ICMPCAP_RING_HDR_SIZE + data_size);
		if (!ring->hdr)
			goto out_free_rings;
		ring->data = (u8 *)ring->hdr + ICMPCAP_RING_HDR_SIZE;
		ring->data_size = data_size;
		ring->client = client;
		init_irq_work(&ring->wake_work, icmpcap_wake_work);
		ring->hdr->data_size = data_size;
		ring->hdr->cpu = i;
		ring->hdr->abi_version = ICMPCAP_ABI_VERSION;
	}
	client->nr_rings = nr;
	client->data_size = data_size;
	/* Pairs with smp_load_acquire() in icmpcap_mmap() and icmpcap_poll(). */
	smp_store_release(&client->rings, rings);
	return 0;

out_free_rings:
	while (i--)
		vfree(rings[i].hdr);
	kfree(rings);
	return -ENOMEM;
}

/* icmpcap_mutex held; the ops must not be registered. */
static unsigned int icmpcap_build_ops(struct icmpcap_client *client, u32 hooks, u32 families)
{
	static const u8 pfs[] = { NFPROTO_IPV4, NFPROTO_IPV6 };
	unsigned int n = 0, f, h;

	lockdep_assert_held(&icmpcap_mutex);
	for (f = 0; f < ARRAY_SIZE(pfs); f++) {
		if (!(families & (1U << f)))
			continue;
		for (h = 0; h <= ICMPCAP_HOOK_POST_ROUTING; h++) {
			struct nf_hook_ops *ops = &client->ops[n];

			if (!(hooks & (1U << h)))
				continue;
			memset(ops, 0, sizeof(*ops));
			ops->hook = icmpcap_nf_hook;
			ops->pf = pfs[f];
			ops->hooknum = h;
			/* Before any filter on the way in and out, last elsewhere. */
			ops->priority = (h == NF_INET_PRE_ROUTING || h == NF_INET_LOCAL_OUT) ?
					NF_IP_PRI_FIRST : NF_IP_PRI_LAST;
			ops->priv = client;
			n++;
		}
	}
	return n;
}

/* Process context; icmpcap_mutex held. Ends an active subscription. */
static void icmpcap_sub_end(struct icmpcap_client *client, u32 reason)
{
	struct icmpcap_cfg *cfg;

	lockdep_assert_held(&icmpcap_mutex);
	if (client->state != ICMPCAP_ACTIVE)
		return;
	WRITE_ONCE(client->test_abort, true);
	/* Waits for hooks running on other CPUs (synchronize_net()). */
	nf_unregister_net_hooks(client->net, client->ops, client->nr_ops);
	client->nr_ops = 0;
	hrtimer_cancel(&client->timer);

	spin_lock_bh(&icmpcap_list_lock);
	list_del_init(&client->node);
	spin_unlock_bh(&icmpcap_list_lock);

	icmpcap_send_event(client, ICMPCAP_EVENT_SUBSCRIPTION_END, reason, 0, GFP_KERNEL);
	cfg = rcu_replace_pointer(client->cfg, NULL, lockdep_is_held(&icmpcap_mutex));
	/* A test producer may still hold it under rcu_read_lock(). */
	kfree_rcu(cfg, rcu);
	put_net(client->net);
	client->net = NULL;
	client->state = ICMPCAP_ENDED;
	icmpcap_nr_subs--;
	WRITE_ONCE(client->ended, true);
	wake_up_interruptible_poll(&client->wq, EPOLLHUP);
}

/* Process context (system workqueue): the subscribing socket was released. */
static void icmpcap_sock_gone_work(struct work_struct *work)
{
	struct icmpcap_client *client = container_of(work, struct icmpcap_client,
						     sock_gone_work);

	mutex_lock(&icmpcap_mutex);
	icmpcap_sub_end(client, ICMPCAP_END_SOCKET_CLOSED);
	mutex_unlock(&icmpcap_mutex);
}

/*
 * NETLINK_URELEASE: a netlink socket is being released (process context, but
 * the chain may be atomic on some kernels: only queue work here).
 */
static int icmpcap_netlink_notify(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct netlink_notify *n = ptr;
	struct icmpcap_client *client;

	if (event != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC)
		return NOTIFY_DONE;
	spin_lock_bh(&icmpcap_list_lock);
	list_for_each_entry(client, &icmpcap_clients, node) {
		if (client->portid == n->portid && net_eq(client->net, n->net))
			schedule_work(&client->sock_gone_work);
	}
	spin_unlock_bh(&icmpcap_list_lock);
	return NOTIFY_DONE;
}

static struct notifier_block icmpcap_netlink_notifier = {
	.notifier_call = icmpcap_netlink_notify,
};

/* ---- character device --------------------------------------------------------- */

static int icmpcap_open(struct inode *inode, struct file *file)
{
	struct icmpcap_client *client;

	if (!icmpcap_allowed(inode))
		return -EPERM;
	client = kzalloc(sizeof(*client), GFP_KERNEL);
	if (!client)
		return -ENOMEM;
	init_waitqueue_head(&client->wq);
	INIT_LIST_HEAD(&client->node);
	INIT_WORK(&client->sock_gone_work, icmpcap_sock_gone_work);
	icmpcap_hrtimer_setup(&client->timer, icmpcap_timer_fn);
	client->state = ICMPCAP_IDLE;
	file->private_data = client;
	return nonseekable_open(inode, file);
}

/* Last close and last munmap: nothing can reach the client any more. */
static int icmpcap_release(struct inode *inode, struct file *file)
{
	struct icmpcap_client *client = file->private_data;

	mutex_lock(&icmpcap_mutex);
	icmpcap_sub_end(client, ICMPCAP_END_FILE_CLOSED);
	mutex_unlock(&icmpcap_mutex);
	/* Off the list now, so the notifier cannot queue it again. */
	cancel_work_sync(&client->sock_gone_work);
	icmpcap_free_rings(client);
	kfree(client);
	return 0;
}

static __poll_t icmpcap_poll(struct file *file, struct poll_table_struct *wait)
{
	struct icmpcap_client *client = file->private_data;
	struct icmpcap_ring *rings;
	__poll_t mask = 0;
	u32 i;

	poll_wait(file, &client->wq, wait);
	/* Pairs with smp_store_release() in icmpcap_alloc_rings(): geometry first. */
	rings = smp_load_acquire(&client->rings);
	if (!rings)
		return 0;
	for (i = 0; i < client->nr_rings; i++) {
		if (READ_ONCE(rings[i].prod) != READ_ONCE(rings[i].hdr->consumer_pos)) {
			mask |= EPOLLIN | EPOLLRDNORM;
			break;
		}
	}
	if (READ_ONCE(client->ended))
		mask |= EPOLLHUP;
	return mask;
}

/*
 * mmap_lock held. Ring i: offset exactly i * ring_stride, length exactly
 * ring_stride, shared, never executable.
 */
static int icmpcap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct icmpcap_client *client = file->private_data;
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 stride, stride_pages, idx;
	struct icmpcap_ring *rings;

	/* Pairs with smp_store_release() in icmpcap_alloc_rings(): geometry first. */
	rings = smp_load_acquire(&client->rings);
	if (!rings)
		return -ENXIO;
	/* VM_MAYSHARE: MAP_SHARED of an O_RDONLY file has no VM_SHARED. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	stride = ICMPCAP_RING_HDR_SIZE + (u64)client->data_size;
	stride_pages = stride >> PAGE_SHIFT;
	if (len != stride || vma->vm_pgoff % stride_pages)
		return -EINVAL;
	idx = vma->vm_pgoff / stride_pages;
	if (idx >= client->nr_rings)
		return -EINVAL;
	icmpcap_vma_clear_flags(vma, VM_MAYEXEC);
	return remap_vmalloc_range(vma, rings[idx].hdr, 0);
}

static const struct file_operations icmpcap_fops = {
	.owner = THIS_MODULE,
	.open = icmpcap_open,
	.release = icmpcap_release,
	.poll = icmpcap_poll,
	.mmap = icmpcap_mmap,
};

static struct miscdevice icmpcap_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = ICMPCAP_DEVICE_NAME,
	.fops = &icmpcap_fops,
	/* open() enforces the group rule and returns EPERM to others. */
	.mode = 0666,
};

/* ---- generic netlink -------------------------------------------------------- */

static struct netlink_range_validation icmpcap_snaplen_range = {
	.min = 0, .max = 65535,
};
static struct netlink_range_validation icmpcap_data_size_range = {
	.min = ICMPCAP_MIN_DATA_SIZE, .max = ICMPCAP_MAX_DATA_SIZE,
};
static struct netlink_range_validation icmpcap_wakeup_bytes_range = {
	.min = 1, .max = ICMPCAP_MAX_DATA_SIZE,
};
static struct netlink_range_validation icmpcap_wakeup_usec_range = {
	.min = 100, .max = 1000000,
};
static struct netlink_range_validation icmpcap_fd_range = {
	.min = 0, .max = INT_MAX,
};

static const struct nla_policy icmpcap_policy[ICMPCAP_A_MAX + 1] = {
	[ICMPCAP_A_PAD] = { .type = NLA_REJECT },
	[ICMPCAP_A_DEV_FD] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_fd_range),
	[ICMPCAP_A_HOOKS] = NLA_POLICY_MASK(NLA_U32, ICMPCAP_ALL_HOOKS),
	[ICMPCAP_A_FAMILIES] = NLA_POLICY_MASK(NLA_U32, ICMPCAP_ALL_FAMILIES),
	[ICMPCAP_A_SNAPLEN] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_snaplen_range),
	[ICMPCAP_A_RING_DATA_SIZE] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_data_size_range),
	[ICMPCAP_A_TYPES_V4] = NLA_POLICY_EXACT_LEN(ICMPCAP_BITMAP_BYTES),
	[ICMPCAP_A_TYPES_V6] = NLA_POLICY_EXACT_LEN(ICMPCAP_BITMAP_BYTES),
	[ICMPCAP_A_CODES] = NLA_POLICY_EXACT_LEN(ICMPCAP_BITMAP_BYTES),
	[ICMPCAP_A_IFINDEXES] = { .type = NLA_BINARY, .len = ICMPCAP_MAX_IFINDEXES * 4 },
	[ICMPCAP_A_DIRECTIONS] = NLA_POLICY_MASK(NLA_U32, ICMPCAP_ALL_DIRS),
	[ICMPCAP_A_WAKEUP_BYTES] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_wakeup_bytes_range),
	[ICMPCAP_A_WAKEUP_RECORDS] = { .type = NLA_U32 },
	[ICMPCAP_A_WAKEUP_USEC] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_wakeup_usec_range),
	[ICMPCAP_A_ABI_VERSION] = { .type = NLA_REJECT },
	[ICMPCAP_A_NR_RINGS] = { .type = NLA_REJECT },
	[ICMPCAP_A_DATA_SIZE] = { .type = NLA_REJECT },
	[ICMPCAP_A_RING_STRIDE] = { .type = NLA_REJECT },
	[ICMPCAP_A_SUB_ID] = { .type = NLA_REJECT },
	[ICMPCAP_A_NR_SUBSCRIPTIONS] = { .type = NLA_REJECT },
	[ICMPCAP_A_CAPTURED] = { .type = NLA_REJECT },
	[ICMPCAP_A_DROPPED] = { .type = NLA_REJECT },
	[ICMPCAP_A_PERCPU_CAPTURED] = { .type = NLA_REJECT },
	[ICMPCAP_A_PERCPU_DROPPED] = { .type = NLA_REJECT },
	[ICMPCAP_A_EVENT_TYPE] = { .type = NLA_REJECT },
	[ICMPCAP_A_END_REASON] = { .type = NLA_REJECT },
	[ICMPCAP_A_TEST_COUNT] = { .type = NLA_U64 },
	[ICMPCAP_A_TEST_RATE] = { .type = NLA_U64 },
	[ICMPCAP_A_TEST_CAP_LEN] = NLA_POLICY_FULL_RANGE(NLA_U32, &icmpcap_snaplen_range),
	[ICMPCAP_A_TEST_MODE] = NLA_POLICY_MAX(NLA_U32, ICMPCAP_TEST_MODE_NETLINK),
	[ICMPCAP_A_TEST_GENERATED] = { .type = NLA_REJECT },
	[ICMPCAP_A_TEST_ELAPSED_NS] = { .type = NLA_REJECT },
	[ICMPCAP_A_RECORD] = { .type = NLA_REJECT },
	[ICMPCAP_A_TEST_CPU_MASK] = { .type = NLA_U64 },
};

/*
 * Resolves ICMPCAP_A_DEV_FD in the sender's file table (genl doit runs in the
 * sender's context). Returns a referenced file, NULL when absent, or ERR_PTR.
 */
static struct file *icmpcap_dev_file(struct genl_info *info)
{
	struct nlattr *attr = info->attrs[ICMPCAP_A_DEV_FD];
	struct file *file;

	if (!attr)
		return NULL;
	file = fget(nla_get_u32(attr));
	if (!file) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "DEV_FD is not an open file");
		return ERR_PTR(-EBADF);
	}
	if (file->f_op != &icmpcap_fops) {
		fput(file);
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "DEV_FD is not /dev/icmpcap");
		return ERR_PTR(-ENOTTY);
	}
	return file;
}

/* Permission check then DEV_FD lookup, common to every command. */
static struct file *icmpcap_genl_begin(struct genl_info *info, bool need_fd)
{
	struct file *file = icmpcap_dev_file(info);

	if (IS_ERR(file))
		return file;
	if (!icmpcap_allowed(file ? file_inode(file) : NULL)) {
		if (file)
			fput(file);
		NL_SET_ERR_MSG(info->extack, "not allowed: needs CAP_NET_ADMIN or the icmpcap group");
		return ERR_PTR(-EPERM);
	}
	if (!file && need_fd) {
		NL_SET_ERR_MSG(info->extack, "DEV_FD is required");
		return ERR_PTR(-EINVAL);
	}
	return file;
}

static void icmpcap_cfg_defaults(struct icmpcap_cfg *cfg, u32 data_size)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->hooks = ICMPCAP_DEFAULT_HOOKS;
	cfg->families = ICMPCAP_ALL_FAMILIES;
	cfg->snaplen = ICMPCAP_DEFAULT_SNAPLEN;
	cfg->directions = ICMPCAP_ALL_DIRS;
	cfg->wakeup_bytes = data_size / 4;
	cfg->wakeup_usec = ICMPCAP_DEFAULT_WAKEUP_USEC;
	memset(cfg->types_v4, 0xff, sizeof(cfg->types_v4));
	memset(cfg->types_v6, 0xff, sizeof(cfg->types_v6));
	memset(cfg->codes, 0xff, sizeof(cfg->codes));
}

/* Applies the config attributes present in info to cfg, validating them. */
static int icmpcap_cfg_parse(struct genl_info *info, struct icmpcap_cfg *cfg, u32 data_size)
{
	struct nlattr **a = info->attrs;
	struct nlattr *attr;

	if (a[ICMPCAP_A_HOOKS])
		cfg->hooks = nla_get_u32(a[ICMPCAP_A_HOOKS]);
	if (a[ICMPCAP_A_FAMILIES])
		cfg->families = nla_get_u32(a[ICMPCAP_A_FAMILIES]);
	if (a[ICMPCAP_A_SNAPLEN])
		cfg->snaplen = nla_get_u32(a[ICMPCAP_A_SNAPLEN]);
	if (a[ICMPCAP_A_DIRECTIONS])
		cfg->directions = nla_get_u32(a[ICMPCAP_A_DIRECTIONS]);
	if (a[ICMPCAP_A_WAKEUP_BYTES])
		cfg->wakeup_bytes = nla_get_u32(a[ICMPCAP_A_WAKEUP_BYTES]);
	if (a[ICMPCAP_A_WAKEUP_RECORDS])
		cfg->wakeup_records = nla_get_u32(a[ICMPCAP_A_WAKEUP_RECORDS]);
	if (a[ICMPCAP_A_WAKEUP_USEC])
		cfg->wakeup_usec = nla_get_u32(a[ICMPCAP_A_WAKEUP_USEC]);
	if (a[ICMPCAP_A_TYPES_V4])
		nla_memcpy(cfg->types_v4, a[ICMPCAP_A_TYPES_V4], ICMPCAP_BITMAP_BYTES);
	if (a[ICMPCAP_A_TYPES_V6])
		nla_memcpy(cfg->types_v6, a[ICMPCAP_A_TYPES_V6], ICMPCAP_BITMAP_BYTES);
	if (a[ICMPCAP_A_CODES])
		nla_memcpy(cfg->codes, a[ICMPCAP_A_CODES], ICMPCAP_BITMAP_BYTES);
	attr = a[ICMPCAP_A_IFINDEXES];
	if (attr) {
		if (nla_len(attr) % sizeof(u32)) {
			NL_SET_ERR_MSG_ATTR(info->extack, attr, "IFINDEXES: array of __u32");
			return -EINVAL;
		}
		cfg->nr_ifindexes = nla_len(attr) / sizeof(u32);
		memcpy(cfg->ifindexes, nla_data(attr), nla_len(attr));
	}
	if (!cfg->hooks) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[ICMPCAP_A_HOOKS], "HOOKS: empty");
		return -EINVAL;
	}
	if (!cfg->families) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[ICMPCAP_A_FAMILIES], "FAMILIES: empty");
		return -EINVAL;
	}
	/* Guarantees that a record always fits in an empty ring, pad included. */
	if (ICMPCAP_ALIGN(ICMPCAP_RECORD_HDR_SIZE + cfg->snaplen) > data_size / 2) {
		NL_SET_ERR_MSG(info->extack, "SNAPLEN: records must fit twice in RING_DATA_SIZE");
		return -EINVAL;
	}
	if (cfg->wakeup_bytes > data_size) {
		NL_SET_ERR_MSG(info->extack, "WAKEUP_BYTES: larger than RING_DATA_SIZE");
		return -EINVAL;
	}
	return 0;
}

static int icmpcap_put_cfg(struct sk_buff *msg, const struct icmpcap_cfg *cfg)
{
	if (nla_put_u32(msg, ICMPCAP_A_HOOKS, cfg->hooks) ||
	    nla_put_u32(msg, ICMPCAP_A_FAMILIES, cfg->families) ||
	    nla_put_u32(msg, ICMPCAP_A_SNAPLEN, cfg->snaplen) ||
	    nla_put_u32(msg, ICMPCAP_A_DIRECTIONS, cfg->directions) ||
	    nla_put_u32(msg, ICMPCAP_A_WAKEUP_BYTES, cfg->wakeup_bytes) ||
	    nla_put_u32(msg, ICMPCAP_A_WAKEUP_RECORDS, cfg->wakeup_records) ||
	    nla_put_u32(msg, ICMPCAP_A_WAKEUP_USEC, cfg->wakeup_usec) ||
	    nla_put(msg, ICMPCAP_A_TYPES_V4, ICMPCAP_BITMAP_BYTES, cfg->types_v4) ||
	    nla_put(msg, ICMPCAP_A_TYPES_V6, ICMPCAP_BITMAP_BYTES, cfg->types_v6) ||
	    nla_put(msg, ICMPCAP_A_CODES, ICMPCAP_BITMAP_BYTES, cfg->codes) ||
	    nla_put(msg, ICMPCAP_A_IFINDEXES, cfg->nr_ifindexes * sizeof(u32), cfg->ifindexes))
		return -EMSGSIZE;
	return 0;
}

/* icmpcap_mutex held: client state and cfg are stable. */
static int icmpcap_reply_info(struct genl_info *info, u8 cmd, struct icmpcap_client *client)
{
	const struct icmpcap_cfg *cfg = NULL;
	struct sk_buff *msg;
	void *hdr;

	lockdep_assert_held(&icmpcap_mutex);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &icmpcap_genl_family, 0, cmd);
	if (!hdr)
		goto out_free_msg;
	if (nla_put_u32(msg, ICMPCAP_A_ABI_VERSION, ICMPCAP_ABI_VERSION) ||
	    nla_put_u32(msg, ICMPCAP_A_NR_RINGS, nr_cpu_ids) ||
	    nla_put_u32(msg, ICMPCAP_A_NR_SUBSCRIPTIONS, icmpcap_nr_subs))
		goto out_free_msg;
	if (client && client->rings) {
		if (nla_put_u32(msg, ICMPCAP_A_DATA_SIZE, client->data_size) ||
		    nla_put_u32(msg, ICMPCAP_A_RING_STRIDE,
				ICMPCAP_RING_HDR_SIZE + client->data_size) ||
		    nla_put_u32(msg, ICMPCAP_A_SUB_ID, client->sub_id))
			goto out_free_msg;
	}
	if (client)
		cfg = rcu_dereference_protected(client->cfg, lockdep_is_held(&icmpcap_mutex));
	if (cfg && icmpcap_put_cfg(msg, cfg))
		goto out_free_msg;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

out_free_msg:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int icmpcap_cmd_subscribe(struct sk_buff *skb, struct genl_info *info)
{
	struct icmpcap_client *client;
	struct icmpcap_cfg *cfg;
	struct file *file;
	u32 data_size = ICMPCAP_DEFAULT_DATA_SIZE;
	int err;

	file = icmpcap_genl_begin(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;

	if (info->attrs[ICMPCAP_A_RING_DATA_SIZE]) {
		data_size = nla_get_u32(info->attrs[ICMPCAP_A_RING_DATA_SIZE]);
		if (!is_power_of_2(data_size)) {
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[ICMPCAP_A_RING_DATA_SIZE],
					    "RING_DATA_SIZE: not a power of two");
			err = -EINVAL;
			goto out_put_file;
		}
	}
	cfg = kmalloc(sizeof(*cfg), GFP_KERNEL);
	if (!cfg) {
		err = -ENOMEM;
		goto out_put_file;
	}
	icmpcap_cfg_defaults(cfg, data_size);
	err = icmpcap_cfg_parse(info, cfg, data_size);
	if (err)
		goto out_free_cfg;

	mutex_lock(&icmpcap_mutex);
	if (client->state != ICMPCAP_IDLE) {
		NL_SET_ERR_MSG(info->extack, "this file already has a subscription: open the device again");
		err = -EBUSY;
		goto out_unlock;
	}
	err = icmpcap_alloc_rings(client, data_size);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "cannot allocate the rings");
		goto out_unlock;
	}
	client->net = get_net(genl_info_net(info));
	client->portid = info->snd_portid;
	client->sub_id = atomic_inc_return(&icmpcap_next_sub_id);
	client->test_abort = false;
	rcu_assign_pointer(client->cfg, cfg);
	client->nr_ops = icmpcap_build_ops(client, cfg->hooks, cfg->families);
	err = nf_register_net_hooks(client->net, client->ops, client->nr_ops);
	if (err)
		goto out_put_net;

	spin_lock_bh(&icmpcap_list_lock);
	list_add(&client->node, &icmpcap_clients);
	spin_unlock_bh(&icmpcap_list_lock);
	client->state = ICMPCAP_ACTIVE;
	icmpcap_nr_subs++;
	WRITE_ONCE(client->wakeup_ns, (u64)cfg->wakeup_usec * NSEC_PER_USEC);
	hrtimer_start(&client->timer, ns_to_ktime(client->wakeup_ns), HRTIMER_MODE_REL_SOFT);

	err = icmpcap_reply_info(info, ICMPCAP_CMD_SUBSCRIBE, client);
	mutex_unlock(&icmpcap_mutex);
	fput(file);
	/* The subscription stands even if the reply could not be sent. */
	return err;

out_put_net:
	RCU_INIT_POINTER(client->cfg, NULL);
	client->nr_ops = 0;
	put_net(client->net);
	client->net = NULL;
	/*
	 * The rings are published and may be mapped already: keep them until
	 * release() and retire the file, as if the subscription had ended.
	 */
	client->state = ICMPCAP_ENDED;
	WRITE_ONCE(client->ended, true);
out_unlock:
	mutex_unlock(&icmpcap_mutex);
out_free_cfg:
	kfree(cfg);
out_put_file:
	fput(file);
	return err;
}

static int icmpcap_cmd_unsubscribe(struct sk_buff *skb, struct genl_info *info)
{
	struct icmpcap_client *client;
	struct file *file;
	int err = 0;

	file = icmpcap_genl_begin(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;
	mutex_lock(&icmpcap_mutex);
	if (client->state != ICMPCAP_ACTIVE) {
		NL_SET_ERR_MSG(info->extack, "no active subscription on this file");
		err = -ENOENT;
	} else {
		icmpcap_sub_end(client, ICMPCAP_END_UNSUBSCRIBE);
	}
	mutex_unlock(&icmpcap_mutex);
	fput(file);
	return err;
}

static int icmpcap_cmd_update_filter(struct sk_buff *skb, struct genl_info *info)
{
	struct icmpcap_cfg *cfg, *old;
	struct icmpcap_client *client;
	struct nf_hook_ops old_ops[ICMPCAP_MAX_OPS];
	unsigned int old_nr;
	struct file *file;
	int err;

	file = icmpcap_genl_begin(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;
	if (info->attrs[ICMPCAP_A_RING_DATA_SIZE]) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[ICMPCAP_A_RING_DATA_SIZE],
				    "RING_DATA_SIZE cannot change: subscribe again");
		err = -EINVAL;
		goto out_put_file;
	}
	cfg = kmalloc(sizeof(*cfg), GFP_KERNEL);
	if (!cfg) {
		err = -ENOMEM;
		goto out_put_file;
	}
	mutex_lock(&icmpcap_mutex);
	if (client->state != ICMPCAP_ACTIVE) {
		NL_SET_ERR_MSG(info->extack, "no active subscription on this file");
		err = -ENOENT;
		goto out_unlock;
	}
	old = rcu_dereference_protected(client->cfg, lockdep_is_held(&icmpcap_mutex));
	memcpy(cfg, old, sizeof(*cfg));
	err = icmpcap_cfg_parse(info, cfg, client->data_size);
	if (err)
		goto out_unlock;

	if (cfg->hooks != old->hooks || cfg->families != old->families) {
		/* netfilter finds registered hooks by address: unregister client->ops. */
		nf_unregister_net_hooks(client->net, client->ops, client->nr_ops);
		memcpy(old_ops, client->ops, sizeof(old_ops));
		old_nr = client->nr_ops;
		client->nr_ops = icmpcap_build_ops(client, cfg->hooks, cfg->families);
		err = nf_register_net_hooks(client->net, client->ops, client->nr_ops);
		if (err) {
			/* Put the old hooks back; this cannot fail for lack of entries. */
			memcpy(client->ops, old_ops, sizeof(old_ops));
			client->nr_ops = old_nr;
			if (nf_register_net_hooks(client->net, client->ops, client->nr_ops)) {
				pr_warn("cannot restore hooks of subscription %u\n", client->sub_id);
				client->nr_ops = 0;
			}
			goto out_unlock;
		}
	}
	rcu_assign_pointer(client->cfg, cfg);
	kfree_rcu(old, rcu);
	WRITE_ONCE(client->wakeup_ns, (u64)cfg->wakeup_usec * NSEC_PER_USEC);
	icmpcap_send_event(client, ICMPCAP_EVENT_CONFIG_CHANGED, 0, 0, GFP_KERNEL);
	err = icmpcap_reply_info(info, ICMPCAP_CMD_UPDATE_FILTER, client);
	mutex_unlock(&icmpcap_mutex);
	fput(file);
	return err;

out_unlock:
	mutex_unlock(&icmpcap_mutex);
	kfree(cfg);
out_put_file:
	fput(file);
	return err;
}

static int icmpcap_cmd_get_info(struct sk_buff *skb, struct genl_info *info)
{
	struct file *file;
	int err;

	file = icmpcap_genl_begin(info, false);
	if (IS_ERR(file))
		return PTR_ERR(file);
	mutex_lock(&icmpcap_mutex);
	err = icmpcap_reply_info(info, ICMPCAP_CMD_GET_INFO, file ? file->private_data : NULL);
	mutex_unlock(&icmpcap_mutex);
	if (file)
		fput(file);
	return err;
}

static int icmpcap_cmd_get_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct icmpcap_client *client;
	struct nlattr *cap_attr, *drop_attr;
	u64 captured = 0, dropped = 0;
	struct sk_buff *msg;
	struct file *file;
	void *hdr;
	u32 i;
	int err;

	file = icmpcap_genl_begin(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;
	mutex_lock(&icmpcap_mutex);
	if (!client->rings) {
		NL_SET_ERR_MSG(info->extack, "no subscription on this file");
		err = -ENOENT;
		goto out_unlock;
	}
	err = -ENOMEM;
	msg = genlmsg_new(2 * nla_total_size(client->nr_rings * sizeof(u64)) + 256, GFP_KERNEL);
	if (!msg)
		goto out_unlock;
	err = -EMSGSIZE;
	hdr = genlmsg_put_reply(msg, info, &icmpcap_genl_family, 0, ICMPCAP_CMD_GET_STATS);
	if (!hdr)
		goto out_free_msg;
	cap_attr = nla_reserve(msg, ICMPCAP_A_PERCPU_CAPTURED, client->nr_rings * sizeof(u64));
	drop_attr = nla_reserve(msg, ICMPCAP_A_PERCPU_DROPPED, client->nr_rings * sizeof(u64));
	if (!cap_attr || !drop_attr)
		goto out_free_msg;
	for (i = 0; i < client->nr_rings; i++) {
		u64 c = READ_ONCE(client->rings[i].captured);
		u64 d = READ_ONCE(client->rings[i].dropped);

		((u64 *)nla_data(cap_attr))[i] = c;
		((u64 *)nla_data(drop_attr))[i] = d;
		captured += c;
		dropped += d;
	}
	if (nla_put_u64_64bit(msg, ICMPCAP_A_CAPTURED, captured, ICMPCAP_A_PAD) ||
	    nla_put_u64_64bit(msg, ICMPCAP_A_DROPPED, dropped, ICMPCAP_A_PAD) ||
	    nla_put_u32(msg, ICMPCAP_A_SUB_ID, client->sub_id))
		goto out_free_msg;
	genlmsg_end(msg, hdr);
	mutex_unlock(&icmpcap_mutex);
	fput(file);
	return genlmsg_reply(msg, info);

out_free_msg:
	nlmsg_free(msg);
out_unlock:
	mutex_unlock(&icmpcap_mutex);
	fput(file);
	return err;
}

#ifdef ICMPCAP_TEST
/* ---- synthetic producer (test builds only) ----------------------------------- */

struct icmpcap_test_run {
	struct icmpcap_client *client;
	struct net *net;
	u32 portid;
	u32 mode;
	u32 pkt_len;		/* length of the synthetic packet from the IP header on */
	u64 count;
	u64 rate;
	bool abort;		/* the requester was killed */
	bool nomem;		/* a producer could not allocate its packet */
	atomic_t remaining;
	struct completion done;
	atomic64_t generated;
	atomic64_t captured;
	atomic64_t dropped;
};

/*
 * Process context. What the hook sees at LOCAL_OUT for "ping -s (len - 28)":
 * an IPv4 echo request of len bytes (at least the two headers) from
 * 192.0.2.1 to 192.0.2.2 (TEST-NET-1), identifier id, sequence 0, a counting
 * payload, valid checksums. Linear.
 */
static struct sk_buff *icmpcap_test_skb(u32 len, u16 id)
{
	struct sk_buff *skb;
	struct icmphdr *ich;
	struct iphdr *iph;
	u8 *payload;
	u32 i;

	len = max_t(u32, len, sizeof(*iph) + sizeof(*ich));
	skb = alloc_skb(len, GFP_KERNEL);
	if (!skb)
		return NULL;
	skb_reset_network_header(skb);
	iph = skb_put_zero(skb, len);
	iph->version = 4;
	iph->ihl = sizeof(*iph) / 4;
	iph->tot_len = htons(len);
	iph->ttl = 64;
	iph->protocol = IPPROTO_ICMP;
	iph->saddr = htonl(0xc0000201);
	iph->daddr = htonl(0xc0000202);
	iph->check = ip_fast_csum(iph, iph->ihl);
	ich = (struct icmphdr *)(iph + 1);
	ich->type = ICMP_ECHO;
	ich->un.echo.id = htons(id);
	payload = (u8 *)(ich + 1);
	for (i = 0; i < len - sizeof(*iph) - sizeof(*ich); i++)
		payload[i] = i;
	ich->checksum = ip_compute_csum(ich, len - sizeof(*iph));
	return skb;
}

/* The next echo request: sequence seq, checksum updated as the sender would. */
static void icmpcap_test_next_seq(struct sk_buff *skb, struct icmpcap_record *rec, u16 seq)
{
	struct icmphdr *ich = (struct icmphdr *)(skb_network_header(skb) + sizeof(struct iphdr));
	__be16 new = htons(seq);

	csum_replace2(&ich->checksum, ich->un.echo.sequence, new);
	ich->un.echo.sequence = new;
	rec->icmp_seq = seq;
}

/*
 * Process context. One netlink message per record, with the same contents as
 * the ring record (header + the first cap_len bytes of the packet): the
 * classic design.
 */
static void icmpcap_test_send_nl(struct icmpcap_test_run *run, struct icmpcap_record *rec,
				 const struct sk_buff *skb, u64 *captured, u64 *dropped)
{
	struct sk_buff *msg;
	struct nlattr *attr;
	void *hdr;

	rec->ts_ns = ktime_get_real_ns();
	msg = genlmsg_new(nla_total_size(rec->len), GFP_KERNEL);
	if (!msg)
		goto out_dropped;
	hdr = genlmsg_put(msg, 0, 0, &icmpcap_genl_family, 0, ICMPCAP_CMD_RECORD);
	attr = hdr ? nla_reserve(msg, ICMPCAP_A_RECORD, rec->len) : NULL;
	if (!attr) {
		nlmsg_free(msg);
		goto out_dropped;
	}
	memcpy(nla_data(attr), rec, sizeof(*rec));
	if (skb_copy_bits(skb, 0, nla_data(attr) + sizeof(*rec), rec->cap_len))
		memset(nla_data(attr) + sizeof(*rec), 0, rec->cap_len);
	genlmsg_end(msg, hdr);
	/* Non-blocking: a full receive queue drops (and frees) the message. */
	if (genlmsg_unicast(run->net, msg, run->portid))
		goto out_dropped;
	(*captured)++;
	return;

out_dropped:
	(*dropped)++;
}

#define ICMPCAP_TEST_BATCH 64

/*
 * Kthread bound to one CPU; returns when done and waits for kthread_stop().
 * Each record goes through icmpcap_ring_put(), as in the hook, from a real
 * packet: per record a new sequence number, a timestamp, reserve, header,
 * skb_copy_bits() of the packet, publish (and a wakeup at the watermark).
 */
static int icmpcap_test_thread(void *data)
{
	struct icmpcap_test_run *run = data;
	struct icmpcap_client *client = run->client;
	u64 i = 0, captured = 0, dropped = 0, start = ktime_get_ns();
	struct icmpcap_record rec;
	struct sk_buff *skb;

	skb = icmpcap_test_skb(run->pkt_len, raw_smp_processor_id());
	if (!skb) {
		WRITE_ONCE(run->nomem, true);
		goto out;
	}
	/* The header the hook would write (but hook NONE: not from netfilter). */
	memset(&rec, 0, sizeof(rec));
	icmpcap_parse_v4(skb, 0, &rec);
	rec.hook = ICMPCAP_HOOK_NONE;
	rec.dir = ICMPCAP_DIR_OUT;
	rec.orig_len = skb->len;

	while (i < run->count && !READ_ONCE(client->test_abort) && !READ_ONCE(run->abort)) {
		u64 n = min_t(u64, ICMPCAP_TEST_BATCH, run->count - i), j;
		const struct icmpcap_cfg *cfg;
		struct icmpcap_ring *ring;

		rcu_read_lock();
		cfg = rcu_dereference(client->cfg);
		if (!cfg) {
			rcu_read_unlock();
			break;
		}
		/* As in the hook; SNAPLEN may change between batches. */
		rec.cap_len = min(rec.orig_len, cfg->snaplen);
		rec.len = ICMPCAP_RECORD_HDR_SIZE + rec.cap_len;
		rec.flags &= ~ICMPCAP_REC_F_TRUNCATED;
		if (rec.cap_len < rec.orig_len)
			rec.flags |= ICMPCAP_REC_F_TRUNCATED;

		if (run->mode == ICMPCAP_TEST_MODE_NETLINK) {
			rcu_read_unlock();
			for (j = 0; j < n; j++, i++) {
				icmpcap_test_next_seq(skb, &rec, i);
				icmpcap_test_send_nl(run, &rec, skb, &captured, &dropped);
			}
		} else {
			/* The hook's context: BH off, this CPU's ring. */
			local_bh_disable();
			ring = &client->rings[smp_processor_id()];
			for (j = 0; j < n; j++, i++) {
				icmpcap_test_next_seq(skb, &rec, i);
				if (icmpcap_ring_put(ring, cfg, &rec, skb, 0))
					captured++;
				else
					dropped++;
			}
			local_bh_enable();
			rcu_read_unlock();
		}
		if (run->rate) {
			u64 due = start + div64_u64(i * NSEC_PER_SEC, run->rate);
			u64 now = ktime_get_ns();

			if (due > now + 20 * NSEC_PER_USEC)
				usleep_range((due - now) / NSEC_PER_USEC,
					     (due - now) / NSEC_PER_USEC + 20);
			else
				cond_resched();
		} else {
			cond_resched();
		}
	}
	kfree_skb(skb);
out:
	atomic64_add(i, &run->generated);
	atomic64_add(captured, &run->captured);
	atomic64_add(dropped, &run->dropped);
	if (atomic_dec_and_test(&run->remaining))
		complete(&run->done);

	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

static int icmpcap_cmd_test_produce(struct sk_buff *skb, struct genl_info *info)
{
	struct task_struct **tasks;
	struct icmpcap_test_run *run;
	struct icmpcap_client *client;
	struct sk_buff *msg;
	struct file *file;
	u64 mask = 0, t0;
	unsigned int cpu, nr = 0;
	void *hdr;
	int err;

	file = icmpcap_genl_begin(info, true);
	if (IS_ERR(file))
		return PTR_ERR(file);
	client = file->private_data;
	err = -ENOMEM;
	run = kzalloc(sizeof(*run), GFP_KERNEL);
	tasks = kcalloc(nr_cpu_ids, sizeof(*tasks), GFP_KERNEL);
	if (!run || !tasks)
		goto out_free_run;
	run->client = client;
	run->portid = info->snd_portid;
	run->net = get_net(genl_info_net(info));
	run->count = info->attrs[ICMPCAP_A_TEST_COUNT] ?
		     nla_get_u64(info->attrs[ICMPCAP_A_TEST_COUNT]) : 1000;
	run->rate = info->attrs[ICMPCAP_A_TEST_RATE] ?
		    nla_get_u64(info->attrs[ICMPCAP_A_TEST_RATE]) : 0;
	run->pkt_len = info->attrs[ICMPCAP_A_TEST_CAP_LEN] ?
		       nla_get_u32(info->attrs[ICMPCAP_A_TEST_CAP_LEN]) : 64;
	run->pkt_len = max_t(u32, run->pkt_len, sizeof(struct iphdr) + sizeof(struct icmphdr));
	run->mode = info->attrs[ICMPCAP_A_TEST_MODE] ?
		    nla_get_u32(info->attrs[ICMPCAP_A_TEST_MODE]) : ICMPCAP_TEST_MODE_RING;
	if (info->attrs[ICMPCAP_A_TEST_CPU_MASK])
		mask = nla_get_u64(info->attrs[ICMPCAP_A_TEST_CPU_MASK]);
	init_completion(&run->done);

	mutex_lock(&icmpcap_mutex);
	err = -ENOENT;
	if (client->state != ICMPCAP_ACTIVE)
		goto out_unlock;
	err = -EBUSY;
	if (client->test_running)
		goto out_unlock;
	err = -EINVAL;
	if (ICMPCAP_ALIGN(ICMPCAP_RECORD_HDR_SIZE + run->pkt_len) > client->data_size / 2)
		goto out_unlock;
	client->test_running = true;
	/* Hold the CPUs we start threads on. */
	cpus_read_lock();
	atomic_set(&run->remaining, 1);
	for_each_online_cpu(cpu) {
		if (mask && (cpu >= 64 || !(mask & BIT_ULL(cpu))))
			continue;
		tasks[cpu] = kthread_create_on_cpu(icmpcap_test_thread, run, cpu,
						   "icmpcap_test/%u");
		if (IS_ERR(tasks[cpu])) {
			tasks[cpu] = NULL;
			continue;
		}
		atomic_inc(&run->remaining);
		nr++;
	}
	t0 = ktime_get_ns();
	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		if (tasks[cpu])
			wake_up_process(tasks[cpu]);
	cpus_read_unlock();
	mutex_unlock(&icmpcap_mutex);

	/*
	 * The file reference keeps the client (and its rings) alive meanwhile.
	 * A fatal signal stops the producers at their next batch.
	 */
	if (!atomic_dec_and_test(&run->remaining) && wait_for_completion_killable(&run->done)) {
		WRITE_ONCE(run->abort, true);
		wait_for_completion(&run->done);
	}
	t0 = ktime_get_ns() - t0;
	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		if (tasks[cpu])
			kthread_stop(tasks[cpu]);

	mutex_lock(&icmpcap_mutex);
	client->test_running = false;
	mutex_unlock(&icmpcap_mutex);

	err = -ENOMEM;
	if (READ_ONCE(run->nomem))
		goto out_free_run_net;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		goto out_free_run_net;
	hdr = genlmsg_put_reply(msg, info, &icmpcap_genl_family, 0, ICMPCAP_CMD_TEST_PRODUCE);
	if (!hdr || nla_put_u64_64bit(msg, ICMPCAP_A_TEST_GENERATED,
				      atomic64_read(&run->generated), ICMPCAP_A_PAD) ||
	    nla_put_u64_64bit(msg, ICMPCAP_A_CAPTURED, atomic64_read(&run->captured),
			      ICMPCAP_A_PAD) ||
	    nla_put_u64_64bit(msg, ICMPCAP_A_DROPPED, atomic64_read(&run->dropped),
			      ICMPCAP_A_PAD) ||
	    nla_put_u64_64bit(msg, ICMPCAP_A_TEST_ELAPSED_NS, t0, ICMPCAP_A_PAD) ||
	    nla_put_u32(msg, ICMPCAP_A_NR_RINGS, nr)) {
		nlmsg_free(msg);
		err = -EMSGSIZE;
		goto out_free_run_net;
	}
	genlmsg_end(msg, hdr);
	err = genlmsg_reply(msg, info);
	goto out_free_run_net;

out_unlock:
	mutex_unlock(&icmpcap_mutex);
out_free_run_net:
	put_net(run->net);
out_free_run:
	kfree(tasks);
	kfree(run);
	fput(file);
	return err;
}
#else
static int icmpcap_cmd_test_produce(struct sk_buff *skb, struct genl_info *info)
{
	struct file *file = icmpcap_genl_begin(info, false);

	if (IS_ERR(file))
		return PTR_ERR(file);
	if (file)
		fput(file);
	NL_SET_ERR_MSG(info->extack, "not a test build (make ICMPCAP_TEST=1)");
	return -EOPNOTSUPP;
}
#endif

static const struct genl_small_ops icmpcap_genl_ops[] = {
	{ .cmd = ICMPCAP_CMD_SUBSCRIBE, .doit = icmpcap_cmd_subscribe },
	{ .cmd = ICMPCAP_CMD_UNSUBSCRIBE, .doit = icmpcap_cmd_unsubscribe },
	{ .cmd = ICMPCAP_CMD_UPDATE_FILTER, .doit = icmpcap_cmd_update_filter },
	{ .cmd = ICMPCAP_CMD_GET_INFO, .doit = icmpcap_cmd_get_info },
	{ .cmd = ICMPCAP_CMD_GET_STATS, .doit = icmpcap_cmd_get_stats },
	{ .cmd = ICMPCAP_CMD_TEST_PRODUCE, .doit = icmpcap_cmd_test_produce },
};

static struct genl_family icmpcap_genl_family = {
	.name = ICMPCAP_GENL_NAME,
	.version = ICMPCAP_GENL_VERSION,
	.maxattr = ICMPCAP_A_MAX,
	.policy = icmpcap_policy,
	.netnsok = true,
	/* Handlers serialise on icmpcap_mutex; TEST_PRODUCE blocks without it. */
	.parallel_ops = true,
	.module = THIS_MODULE,
	.small_ops = icmpcap_genl_ops,
	.n_small_ops = ARRAY_SIZE(icmpcap_genl_ops),
	.mcgrps = icmpcap_mcgrps,
	.n_mcgrps = ARRAY_SIZE(icmpcap_mcgrps),
};

/* ---- module ------------------------------------------------------------------ */

static int __init icmpcap_init(void)
{
	int err;

	BUILD_BUG_ON(sizeof(struct icmpcap_record) != ICMPCAP_RECORD_HDR_SIZE);
	BUILD_BUG_ON(offsetof(struct icmpcap_record, saddr) != 40);
	BUILD_BUG_ON(offsetof(struct icmpcap_record, daddr) != 56);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_header, producer_pos) != 0);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_header, consumer_pos) != 64);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_header, data_size) != 128);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_header, captured) != 152);
	BUILD_BUG_ON(sizeof(struct icmpcap_ring_header) > ICMPCAP_RING_HDR_SIZE);
	/* Ring i must start on a page boundary of the mapping. */
	BUILD_BUG_ON(ICMPCAP_RING_HDR_SIZE % PAGE_SIZE);
	BUILD_BUG_ON(ICMPCAP_MIN_DATA_SIZE % PAGE_SIZE);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_PRE_ROUTING != (int)NF_INET_PRE_ROUTING);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_LOCAL_IN != (int)NF_INET_LOCAL_IN);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_FORWARD != (int)NF_INET_FORWARD);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_LOCAL_OUT != (int)NF_INET_LOCAL_OUT);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_POST_ROUTING != (int)NF_INET_POST_ROUTING);

	err = genl_register_family(&icmpcap_genl_family);
	if (err)
		return err;
	err = netlink_register_notifier(&icmpcap_netlink_notifier);
	if (err)
		goto out_unregister_genl;
	err = misc_register(&icmpcap_misc);
	if (err)
		goto out_unregister_notifier;
	pr_info("loaded (group=%u%s)\n", icmpcap_group, ICMPCAP_BUILD_KIND);
	return 0;

out_unregister_notifier:
	netlink_unregister_notifier(&icmpcap_netlink_notifier);
out_unregister_genl:
	genl_unregister_family(&icmpcap_genl_family);
	return err;
}

static void __exit icmpcap_exit(void)
{
	/* No client can exist: each open file holds a module reference. */
	misc_deregister(&icmpcap_misc);
	netlink_unregister_notifier(&icmpcap_netlink_notifier);
	genl_unregister_family(&icmpcap_genl_family);
	/* kfree_rcu() callbacks of filters must not outlive the module text. */
	rcu_barrier();
}

module_init(icmpcap_init);
module_exit(icmpcap_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("icmpcap");
MODULE_DESCRIPTION("ICMP/ICMPv6 capture into per-CPU mmap rings, generic netlink control");
MODULE_VERSION("1");
