// SPDX-License-Identifier: GPL-2.0
/*
 * One netfilter hook set per network namespace, shared by every subscription
 * there: a hook point is registered while at least one subscription needs
 * it, and each packet is parsed once and offered to the namespace's RCU list
 * of subscribers. A thousand captures cost two hook slots, not a thousand
 * (netfilter allows 1,024 per hook point and namespace, and nftables,
 * iptables and conntrack need theirs).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/skbuff.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/sched.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/netns/generic.h>

#include "internal.h"

static unsigned int icmpcap_net_id __read_mostly;

struct icmpcap_net *icmpcap_pernet(const struct net *net)
{
	return net_generic(net, icmpcap_net_id);
}

static bool icmpcap_bit(const u8 *map, unsigned int bit)
{
	return (map[bit >> 3] >> (bit & 7)) & 1;
}

/* What parsing learnt beyond the record fields. */
#define ICMPCAP_KNOWN_TYPE 0x1
#define ICMPCAP_KNOWN_CODE 0x2

/*
 * The ICMP header at off, which may be shorter than 8 bytes (SHORT): type
 * and code as far as present, the echo fields only from a whole header.
 * Returns what is known (ICMPCAP_KNOWN_*).
 */
static int icmpcap_parse_icmp(const struct sk_buff *skb, unsigned int off,
			      struct icmpcap_record *rec, u8 echo, u8 echo_reply)
{
	u8 _h[8];
	const u8 *h;
	unsigned int avail = skb->len > off ? skb->len - off : 0;

	if (avail < sizeof(_h)) {
		rec->flags |= ICMPCAP_REC_F_SHORT;
		if (!avail)
			return 0;
		h = skb_header_pointer(skb, off, min(avail, 2U), _h);
		if (!h)
			return 0;
		rec->icmp_type = h[0];
		if (avail < 2)
			return ICMPCAP_KNOWN_TYPE;
		rec->icmp_code = h[1];
		return ICMPCAP_KNOWN_TYPE | ICMPCAP_KNOWN_CODE;
	}
	h = skb_header_pointer(skb, off, sizeof(_h), _h);
	if (!h)
		return 0;
	rec->icmp_type = h[0];
	rec->icmp_code = h[1];
	if (h[0] == echo || h[0] == echo_reply) {
		rec->flags |= ICMPCAP_REC_F_HAS_ECHO;
		rec->icmp_id = (h[4] << 8) | h[5];
		rec->icmp_seq = (h[6] << 8) | h[7];
	}
	return ICMPCAP_KNOWN_TYPE | ICMPCAP_KNOWN_CODE;
}

/*
 * IPv4 carrying ICMP at nhoff: fills family, ttl, addresses, flags and the
 * ICMP fields. PRE_ROUTING runs before defragmentation: a first fragment is
 * decoded and flagged FRAGMENT, a later one FRAGMENT | NOT_FIRST with no ICMP
 * fields. Returns what is known (ICMPCAP_KNOWN_*), or -1: not ICMP.
 */
int icmpcap_parse_v4(const struct sk_buff *skb, unsigned int nhoff, struct icmpcap_record *rec)
{
	const struct iphdr *iph;
	struct iphdr _iph;
	unsigned int ihl;

	iph = skb_header_pointer(skb, nhoff, sizeof(_iph), &_iph);
	if (!iph || iph->version != 4 || iph->protocol != IPPROTO_ICMP)
		return -1;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return -1;
	rec->family = ICMPCAP_FAMILY_IPV4;
	rec->ttl = iph->ttl;
	memcpy(rec->saddr, &iph->saddr, 4);
	memcpy(rec->daddr, &iph->daddr, 4);
	if (iph->frag_off & htons(IP_MF | IP_OFFSET)) {
		rec->flags |= ICMPCAP_REC_F_FRAGMENT;
		if (iph->frag_off & htons(IP_OFFSET)) {
			rec->flags |= ICMPCAP_REC_F_NOT_FIRST;
			return 0;
		}
	}
	return icmpcap_parse_icmp(skb, nhoff + ihl, rec, ICMP_ECHO, ICMP_ECHOREPLY);
}

/*
 * IPv6 whose extension headers (hop-by-hop, routing, fragment, destination
 * options, AH) lead to ICMPv6; same contract as icmpcap_parse_v4().
 */
static int icmpcap_parse_v6(const struct sk_buff *skb, unsigned int nhoff,
			    struct icmpcap_record *rec)
{
	const struct ipv6hdr *ip6h;
	struct ipv6hdr _ip6h;
	__be16 frag_off = 0;
	u8 nexthdr;
	int off;

	ip6h = skb_header_pointer(skb, nhoff, sizeof(_ip6h), &_ip6h);
	if (!ip6h || ip6h->version != 6)
		return -1;
	nexthdr = ip6h->nexthdr;
	/*
	 * Walks the extension headers; at a non-first fragment it stops on the
	 * fragment header itself (nexthdr NEXTHDR_FRAGMENT, off its start).
	 */
	off = ipv6_skip_exthdr(skb, nhoff + sizeof(*ip6h), &nexthdr, &frag_off);
	if (off < 0)
		return -1;
	if (nexthdr == NEXTHDR_FRAGMENT && (frag_off & htons(IP6_OFFSET))) {
		const struct frag_hdr *fh;
		struct frag_hdr _fh;

		fh = skb_header_pointer(skb, off, sizeof(_fh), &_fh);
		if (!fh || fh->nexthdr != IPPROTO_ICMPV6)
			return -1;
		rec->flags |= ICMPCAP_REC_F_FRAGMENT | ICMPCAP_REC_F_NOT_FIRST;
	} else if (nexthdr != IPPROTO_ICMPV6) {
		return -1;
	} else if (frag_off & htons(IP6_OFFSET | IP6_MF)) {
		rec->flags |= ICMPCAP_REC_F_FRAGMENT;
	}
	rec->family = ICMPCAP_FAMILY_IPV6;
	rec->ttl = ip6h->hop_limit;
	memcpy(rec->saddr, &ip6h->saddr, 16);
	memcpy(rec->daddr, &ip6h->daddr, 16);
	if (rec->flags & ICMPCAP_REC_F_NOT_FIRST)
		return 0;
	return icmpcap_parse_icmp(skb, off, rec, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY);
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

static bool icmpcap_prefix_match(const u8 *addr, const u8 *prefix, unsigned int len)
{
	unsigned int bytes = len / 8, bits = len % 8;

	if (memcmp(addr, prefix, bytes))
		return false;
	return !bits || !((addr[bytes] ^ prefix[bytes]) & (0xff00 >> bits));
}

/* Address rules are OR-ed; none means every address. */
static bool icmpcap_addr_ok(const struct icmpcap_cfg *cfg, const struct icmpcap_record *rec)
{
	unsigned int i;

	if (!cfg->nr_addr_rules)
		return true;
	for (i = 0; i < cfg->nr_addr_rules; i++) {
		const struct icmpcap_addr_rule *r = &cfg->addr_rules[i];

		if (r->family != rec->family)
			continue;
		if (r->side != ICMPCAP_ADDR_DST &&
		    icmpcap_prefix_match(rec->saddr, r->addr, r->prefix_len))
			return true;
		if (r->side != ICMPCAP_ADDR_SRC &&
		    icmpcap_prefix_match(rec->daddr, r->addr, r->prefix_len))
			return true;
	}
	return false;
}

/*
 * Every filter but hook and family. Type and code filters pass what cannot
 * be judged (a non-first fragment, a header cut short): it may match.
 */
static bool icmpcap_filter_ok(const struct icmpcap_cfg *cfg, const struct icmpcap_record *rec,
			      int known, const struct nf_hook_state *state)
{
	const u8 *types = rec->family == ICMPCAP_FAMILY_IPV4 ? cfg->types_v4 : cfg->types_v6;

	if ((known & ICMPCAP_KNOWN_TYPE) && !icmpcap_bit(types, rec->icmp_type))
		return false;
	if ((known & ICMPCAP_KNOWN_CODE) && !icmpcap_bit(cfg->codes, rec->icmp_code))
		return false;
	if (!(cfg->directions & (1U << rec->dir)))
		return false;
	return icmpcap_ifindex_ok(cfg, state->in, state->out) && icmpcap_addr_ok(cfg, rec);
}

/*
 * The sending process, for packets this host sends: LOCAL_OUT and
 * POST_ROUTING run in the sender's context when a process sends (sendmsg()
 * goes down to the hooks synchronously); replies and errors the kernel
 * generates run in softirq, and kernel threads have no process to name.
 */
static void icmpcap_set_pid(struct icmpcap_record *rec, const struct sk_buff *skb)
{
	if (!in_task() || !skb->sk || (current->flags & PF_KTHREAD))
		return;
	rec->pid = task_tgid_nr(current);
	rec->flags |= ICMPCAP_REC_F_HAS_PID;
}

/*
 * Softirq for packets received or forwarded; process context with BH enabled
 * for locally generated packets (LOCAL_OUT, POST_ROUTING). Always under
 * rcu_read_lock(), which keeps every client on inet->subs alive (ending a
 * subscription waits with synchronize_net()). Never sleeps, never
 * allocates, takes no lock.
 */
static unsigned int icmpcap_nf_hook(void *priv, struct sk_buff *skb,
				    const struct nf_hook_state *state)
{
	struct icmpcap_net *inet = priv;
	unsigned int nhoff = skb_network_offset(skb);
	struct icmpcap_client *client;
	struct icmpcap_record rec;
	u32 family_bit, orig_len;
	bool forwarded;
	int known, cpu;

	memset(&rec, 0, sizeof(rec));
	if (state->pf == NFPROTO_IPV4) {
		known = icmpcap_parse_v4(skb, nhoff, &rec);
		family_bit = ICMPCAP_FAMILY_F_IPV4;
		forwarded = IPCB(skb)->flags & IPSKB_FORWARDED;
	} else {
		known = icmpcap_parse_v6(skb, nhoff, &rec);
		family_bit = ICMPCAP_FAMILY_F_IPV6;
		/*
		 * ip6_forward() sets IP6SKB_FORWARDED only for multicast routing;
		 * a forwarded skb keeps the index of the device it came in on,
		 * a locally generated one has none.
		 */
		forwarded = (IP6CB(skb)->flags & IP6SKB_FORWARDED) || skb->skb_iif;
	}
	if (known < 0)
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
	if (state->in && rec.dir != ICMPCAP_DIR_OUT)
		rec.ifindex = state->in->ifindex;
	else if (state->out)
		rec.ifindex = state->out->ifindex;
	if (rec.dir == ICMPCAP_DIR_OUT)
		icmpcap_set_pid(&rec, skb);
	orig_len = skb->len - nhoff;
	rec.orig_len = orig_len;

	/* Makes this CPU the rings' only writer: no softirq, no migration. */
	local_bh_disable();
	cpu = smp_processor_id();
	list_for_each_entry_rcu(client, &inet->subs, net_node) {
		const struct icmpcap_cfg *cfg = rcu_dereference(client->cfg);
		u32 cap_len;

		if (!cfg || !(cfg->hooks & (1U << state->hook)) || !(cfg->families & family_bit) ||
		    !icmpcap_filter_ok(cfg, &rec, known, state))
			continue;
		cap_len = min(orig_len, cfg->snaplen);
		rec.cap_len = cap_len;
		rec.len = ICMPCAP_RECORD_HDR_SIZE + cap_len;
		if (cap_len < orig_len)
			rec.flags |= ICMPCAP_REC_F_TRUNCATED;
		else
			rec.flags &= ~ICMPCAP_REC_F_TRUNCATED;
#ifdef ICMPCAP_TEST
		if (icmpcap_ring_put(&client->rings[cpu], cfg->wakeup_bytes, cfg->wakeup_records,
				     &rec, skb, nhoff) && nhoff + cap_len > skb_headlen(skb))
			atomic_long_inc(&icmpcap_test_nonlinear);
#else
		icmpcap_ring_put(&client->rings[cpu], cfg->wakeup_bytes, cfg->wakeup_records,
				 &rec, skb, nhoff);
#endif
	}
	local_bh_enable();
	return NF_ACCEPT;
}

/* ---- hook references ------------------------------------------------------- */

static const u8 icmpcap_pfs[2] = { NFPROTO_IPV4, NFPROTO_IPV6 };

static void icmpcap_hook_put_one(struct icmpcap_net *inet, unsigned int f, unsigned int h)
{
	if (--inet->hook_refs[f][h] == 0)
		nf_unregister_net_hook(inet->net, &inet->ops[f][h]);
}

/*
 * Process context, icmpcap_mutex held. Takes a reference on every hook point
 * in hooks x families, registering the ones nobody used; all or nothing.
 */
int icmpcap_hooks_get(struct icmpcap_net *inet, u32 hooks, u32 families)
{
	unsigned int i, n = 2 * ICMPCAP_NR_HOOKS;
	int err = 0;

	lockdep_assert_held(&icmpcap_mutex);
	for (i = 0; i < n; i++) {
		unsigned int f = i / ICMPCAP_NR_HOOKS, h = i % ICMPCAP_NR_HOOKS;

		if (!(families & (1U << f)) || !(hooks & (1U << h)))
			continue;
		if (!inet->hook_refs[f][h]) {
			err = nf_register_net_hook(inet->net, &inet->ops[f][h]);
			if (err)
				break;
		}
		inet->hook_refs[f][h]++;
	}
	if (!err)
		return 0;
	while (i--) {
		unsigned int f = i / ICMPCAP_NR_HOOKS, h = i % ICMPCAP_NR_HOOKS;

		if ((families & (1U << f)) && (hooks & (1U << h)))
			icmpcap_hook_put_one(inet, f, h);
	}
	return err;
}

/*
 * Process context, icmpcap_mutex held. Drops what icmpcap_hooks_get() took.
 * Hooks may still be running on other CPUs when this returns.
 */
void icmpcap_hooks_put(struct icmpcap_net *inet, u32 hooks, u32 families)
{
	unsigned int f, h;

	lockdep_assert_held(&icmpcap_mutex);
	for (f = 0; f < 2; f++)
		for (h = 0; h < ICMPCAP_NR_HOOKS; h++)
			if ((families & (1U << f)) && (hooks & (1U << h)))
				icmpcap_hook_put_one(inet, f, h);
}

/* icmpcap_mutex held: hook points registered in the namespace. */
unsigned int icmpcap_hooks_registered(const struct icmpcap_net *inet)
{
	unsigned int f, h, n = 0;

	for (f = 0; f < 2; f++)
		for (h = 0; h < ICMPCAP_NR_HOOKS; h++)
			n += !!inet->hook_refs[f][h];
	return n;
}

/* ---- per-namespace state ------------------------------------------------------ */

static int __net_init icmpcap_net_init(struct net *net)
{
	struct icmpcap_net *inet = icmpcap_pernet(net);
	unsigned int f, h;

	inet->net = net;
	INIT_LIST_HEAD(&inet->subs);
	for (f = 0; f < 2; f++) {
		for (h = 0; h < ICMPCAP_NR_HOOKS; h++) {
			struct nf_hook_ops *ops = &inet->ops[f][h];

			ops->hook = icmpcap_nf_hook;
			ops->pf = icmpcap_pfs[f];
			ops->hooknum = h;
			/* Before any filter on the way in and out, last elsewhere. */
			ops->priority = (h == NF_INET_PRE_ROUTING || h == NF_INET_LOCAL_OUT) ?
					NF_IP_PRI_FIRST : NF_IP_PRI_LAST;
			ops->priv = inet;
		}
	}
	return icmpcap_proc_net_init(net);
}

/* Subscriptions hold their namespace: none is left here, nor any hook. */
static void __net_exit icmpcap_net_exit(struct net *net)
{
	struct icmpcap_net *inet = icmpcap_pernet(net);

	WARN_ON_ONCE(!list_empty(&inet->subs));
	icmpcap_proc_net_exit(net);
}

static struct pernet_operations icmpcap_net_ops = {
	.init = icmpcap_net_init,
	.exit = icmpcap_net_exit,
	.id = &icmpcap_net_id,
	.size = sizeof(struct icmpcap_net),
};

int icmpcap_pernet_init(void)
{
	return register_pernet_subsys(&icmpcap_net_ops);
}

void icmpcap_pernet_exit(void)
{
	unregister_pernet_subsys(&icmpcap_net_ops);
}
