// SPDX-License-Identifier: GPL-2.0
/*
 * icmpcap: capture ICMP and ICMPv6 with netfilter hooks into per-CPU rings
 * shared with user space through mmap of /dev/icmpcap; control and events
 * over the generic netlink family "icmpcap". Map of the files: internal.h.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/mm.h>
#include <linux/atomic.h>
#include <linux/netfilter.h>

#include "internal.h"

#ifdef ICMPCAP_TEST
#define ICMPCAP_BUILD_KIND ", test build"
#else
#define ICMPCAP_BUILD_KIND ""
#endif

/* ---- limits --------------------------------------------------------------- */

unsigned int icmpcap_max_subs_per_ns = 4096;
module_param_named(max_subs_per_ns, icmpcap_max_subs_per_ns, uint, 0644);
MODULE_PARM_DESC(max_subs_per_ns, "active subscriptions per network namespace (default 4096)");

unsigned int icmpcap_max_subs_per_user = 2048;
module_param_named(max_subs_per_user, icmpcap_max_subs_per_user, uint, 0644);
MODULE_PARM_DESC(max_subs_per_user, "active subscriptions per user id (default 2048)");

unsigned long icmpcap_max_ring_bytes;
module_param_named(max_ring_bytes, icmpcap_max_ring_bytes, ulong, 0644);
MODULE_PARM_DESC(max_ring_bytes,
		 "bytes of ring memory of all subscriptions together (default: a quarter of RAM)");

/* Ring bytes of every subscription (reserved before they are allocated). */
static atomic64_t icmpcap_ring_bytes = ATOMIC64_INIT(0);

/* Any context. Reserves bytes of ring memory; false when over the limit. */
bool icmpcap_ring_bytes_reserve(u64 bytes)
{
	u64 max = READ_ONCE(icmpcap_max_ring_bytes);
	s64 used = atomic64_add_return(bytes, &icmpcap_ring_bytes);

	if ((u64)used <= max)
		return true;
	atomic64_sub(bytes, &icmpcap_ring_bytes);
	return false;
}

void icmpcap_ring_bytes_release(u64 bytes)
{
	atomic64_sub(bytes, &icmpcap_ring_bytes);
}

u64 icmpcap_ring_bytes_used(void)
{
	return atomic64_read(&icmpcap_ring_bytes);
}

#ifdef ICMPCAP_TEST
/*
 * Test builds: records whose captured bytes did not all come from the skb's
 * linear area (page fragments or frag_list), so the tests can tell that they
 * exercised that path of skb_copy_bits().
 */
atomic_long_t icmpcap_test_nonlinear = ATOMIC_LONG_INIT(0);

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

/* ---- module ------------------------------------------------------------------ */

static int __init icmpcap_init(void)
{
	int err;

	BUILD_BUG_ON(sizeof(struct icmpcap_record) != ICMPCAP_RECORD_HDR_SIZE);
	BUILD_BUG_ON(offsetof(struct icmpcap_record, pid) != 36);
	BUILD_BUG_ON(offsetof(struct icmpcap_record, saddr) != 40);
	BUILD_BUG_ON(offsetof(struct icmpcap_record, daddr) != 56);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_consumer, consumer_pos) != 0);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_producer, producer_pos) != 0);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_producer, abi_version) != 20);
	BUILD_BUG_ON(offsetof(struct icmpcap_ring_producer, captured) != 32);
	BUILD_BUG_ON(sizeof(struct icmpcap_ring_producer) > ICMPCAP_RING_PAGE_SIZE);
	/* Each part of a ring is its own page: mapped with its own protection. */
	BUILD_BUG_ON(ICMPCAP_RING_PAGE_SIZE != PAGE_SIZE);
	BUILD_BUG_ON(ICMPCAP_RING_PRODUCER_OFF != ICMPCAP_RING_CONSUMER_OFF + PAGE_SIZE);
	BUILD_BUG_ON(ICMPCAP_RING_DATA_OFF != ICMPCAP_RING_PRODUCER_OFF + PAGE_SIZE);
	BUILD_BUG_ON(sizeof(struct icmpcap_addr_rule) != 20);
	/* Ring i must start on a page boundary of the mapping. */
	BUILD_BUG_ON(ICMPCAP_RING_HDR_SIZE % PAGE_SIZE);
	BUILD_BUG_ON(ICMPCAP_MIN_DATA_SIZE % PAGE_SIZE);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_PRE_ROUTING != (int)NF_INET_PRE_ROUTING);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_LOCAL_IN != (int)NF_INET_LOCAL_IN);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_FORWARD != (int)NF_INET_FORWARD);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_LOCAL_OUT != (int)NF_INET_LOCAL_OUT);
	BUILD_BUG_ON((int)ICMPCAP_HOOK_POST_ROUTING != (int)NF_INET_POST_ROUTING);
	BUILD_BUG_ON(ICMPCAP_NR_HOOKS != ICMPCAP_HOOK_POST_ROUTING + 1);

	if (!icmpcap_max_ring_bytes)
		icmpcap_max_ring_bytes = (totalram_pages() << PAGE_SHIFT) / 4;

	err = icmpcap_pernet_init();
	if (err)
		return err;
	err = icmpcap_genl_init();
	if (err)
		goto out_unregister_pernet;
	err = icmpcap_dev_init();
	if (err)
		goto out_unregister_genl;
	pr_info("loaded (ABI %u%s)\n", ICMPCAP_ABI_VERSION, ICMPCAP_BUILD_KIND);
	return 0;

out_unregister_genl:
	icmpcap_genl_exit();
out_unregister_pernet:
	icmpcap_pernet_exit();
	return err;
}

static void __exit icmpcap_exit(void)
{
	/* No client can exist: each open file holds a module reference. */
	icmpcap_dev_exit();
	icmpcap_genl_exit();
	icmpcap_pernet_exit();
	/* kfree_rcu() callbacks of filters must not outlive the module text. */
	rcu_barrier();
}

module_init(icmpcap_init);
module_exit(icmpcap_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("icmpcap");
MODULE_DESCRIPTION("ICMP/ICMPv6 capture into per-CPU mmap rings, generic netlink control");
MODULE_VERSION(ICMPCAP_MODULE_VERSION);
