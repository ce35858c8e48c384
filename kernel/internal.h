/* SPDX-License-Identifier: GPL-2.0 */
/*
 * icmpcap internals shared by the module's files:
 *   main.c   module parameters, limits, init/exit
 *   ring.c   per-CPU rings: memory, the producer (reserve/commit), wakeups
 *   hooks.c  one netfilter hook set per network namespace, packet parsing,
 *            filters, dispatch to the namespace's subscribers
 *   dev.c    /dev/icmpcap: open/release/poll/mmap, subscription lifetime
 *   genl.c   the generic netlink family "icmpcap" (spec: netlink/icmpcap.yaml)
 *   proc.c   /proc/net/icmpcap
 *   test.c   the synthetic producer of ICMPCAP_CMD_TEST_PRODUCE (test builds)
 *
 * Objects and lifetimes:
 *  - struct icmpcap_client: one per open file of /dev/icmpcap. Owns the rings.
 *    Freed in release(), i.e. after the last close and the last munmap.
 *  - A subscription lives inside a client (state ACTIVE): it sits on its
 *    namespace's RCU list of subscribers, holds references on the hooks its
 *    filter needs, and has a filter (RCU) and a wakeup timer. It ends on
 *    UNSUBSCRIBE, when the subscribing netlink socket is released, or in
 *    release(). Ending it takes it off the list and then waits for every
 *    hook that may still see it (synchronize_net()), as packet_release()
 *    does, before the timer, the irq_works or any memory go.
 *  - struct icmpcap_net: per network namespace (net_generic()). Its hooks are
 *    registered while at least one subscription needs them; subscriptions
 *    hold a reference on their namespace, so it outlives them.
 *  - The module cannot be unloaded while a file is open or mapped: the misc
 *    device's fops hold a module reference from open() to release().
 *
 * Locking:
 *  - icmpcap_mutex serialises all control operations and protects
 *    client->state and the subscription fields of every client, the
 *    namespace subscriber lists (writers) and hook references.
 *  - icmpcap_clients_lock (spinlock) protects icmpcap_clients, the list of
 *    active subscriptions, which the netlink release notifier walks in
 *    atomic context.
 *  - The data path takes no lock: each ring has exactly one producer, the CPU
 *    it belongs to, with BH and preemption disabled around each write; the
 *    consumer is user space, synchronised by acquire/release on the positions.
 */
#ifndef ICMPCAP_INTERNAL_H
#define ICMPCAP_INTERNAL_H

#include <linux/types.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/wait.h>
#include <linux/irq_work.h>
#include <linux/hrtimer.h>
#include <linux/workqueue.h>
#include <linux/u64_stats_sync.h>
#include <linux/uidgid.h>
#include <linux/sched.h>
#include <linux/netfilter.h>
#include <net/genetlink.h>

#include "include/uapi/linux/icmpcap.h"

#define ICMPCAP_MODULE_VERSION "2"

#define ICMPCAP_DEFAULT_HOOKS ((1U << ICMPCAP_HOOK_PRE_ROUTING) | (1U << ICMPCAP_HOOK_LOCAL_OUT))
#define ICMPCAP_ALL_HOOKS 0x1fU
#define ICMPCAP_NR_HOOKS 5
#define ICMPCAP_ALL_FAMILIES (ICMPCAP_FAMILY_F_IPV4 | ICMPCAP_FAMILY_F_IPV6)
#define ICMPCAP_ALL_DIRS ((1U << ICMPCAP_DIR_IN) | (1U << ICMPCAP_DIR_OUT) | \
			  (1U << ICMPCAP_DIR_FORWARD))
#define ICMPCAP_DEFAULT_SNAPLEN 256
#define ICMPCAP_DEFAULT_DATA_SIZE (1U << 20)
#define ICMPCAP_MIN_DATA_SIZE 4096U
#define ICMPCAP_MAX_DATA_SIZE (1U << 26)
#define ICMPCAP_DEFAULT_WAKEUP_USEC 2000

/* ---- limits (main.c, module parameters) ---------------------------------- */

extern unsigned int icmpcap_max_subs_per_ns;
extern unsigned int icmpcap_max_subs_per_user;
extern unsigned long icmpcap_max_ring_bytes;
bool icmpcap_ring_bytes_reserve(u64 bytes);
void icmpcap_ring_bytes_release(u64 bytes);
u64 icmpcap_ring_bytes_used(void);

/* ---- ring.c ---------------------------------------------------------------- */

struct icmpcap_client;

struct icmpcap_ring {
	void *base;				/* vmap() of pages */
	struct icmpcap_ring_consumer *cpage;	/* base: user space writes it */
	struct icmpcap_ring_producer *ppage;	/* base + 4 KiB: read-only to users */
	u8 *data;				/* base + 8 KiB: read-only to users */
	struct page **pages;
	u32 nr_pages;
	u32 data_size;
	/*
	 * Written only by the producer (this ring's CPU, BH off). prod is the
	 * kernel's own copy of producer_pos (the producer page is read-only
	 * to user space, but the positions are checked against it, never
	 * read back); others read it with READ_ONCE(). cons
	 * is the last consumer_pos seen (validated): the producer reloads the
	 * shared one only when cons says a record does not fit, so the cache
	 * line the consumer writes is not pulled over for every record.
	 */
	u64 prod;
	u64 cons;
	u64 wake_pos;
	u32 wake_records;
	/* Producer writes, GET_STATS/timer/proc read (u64_stats_fetch_*). */
	struct u64_stats_sync syncp;
	u64_stats_t captured;
	u64_stats_t dropped;
	struct irq_work wake_work;
	struct icmpcap_client *client;
};

struct icmpcap_ring *icmpcap_rings_alloc(struct icmpcap_client *client, u32 nr, u32 data_size);
void icmpcap_rings_free(struct icmpcap_ring *rings, u32 nr);
u64 icmpcap_rings_bytes(u32 nr, u32 data_size);
void icmpcap_ring_stats(struct icmpcap_ring *ring, u64 *captured, u64 *dropped);
bool icmpcap_ring_put(struct icmpcap_ring *ring, u32 wakeup_bytes, u32 wakeup_records,
		      struct icmpcap_record *rec, const struct sk_buff *skb, unsigned int nhoff);
int icmpcap_ring_mmap(struct icmpcap_ring *ring, struct vm_area_struct *vma, u32 first_page);

/* ---- configuration (genl.c parses, hooks.c reads under RCU) ----------------- */

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
	u32 nr_addr_rules;
	struct icmpcap_addr_rule addr_rules[ICMPCAP_MAX_ADDR_RULES];
	u8 types_v4[ICMPCAP_BITMAP_BYTES];
	u8 types_v6[ICMPCAP_BITMAP_BYTES];
	u8 codes[ICMPCAP_BITMAP_BYTES];
	struct rcu_head rcu;
};

/* ---- dev.c: clients and subscriptions ---------------------------------------- */

enum icmpcap_state {
	ICMPCAP_IDLE,	/* opened, never subscribed */
	ICMPCAP_ACTIVE,	/* on its namespace's list, hooks held */
	ICMPCAP_ENDED,	/* subscription over; rings stay until release() */
};

struct icmpcap_client {
	wait_queue_head_t wq;
	/* Ring geometry: set before rings is published, then constant. */
	struct icmpcap_ring *rings;	/* published with smp_store_release() */
	u32 nr_rings;
	u32 data_size;
	u32 sub_id;
	bool ended;			/* READ_ONCE() in poll */

	/* Protected by icmpcap_mutex. */
	enum icmpcap_state state;
	struct net *net;
	u32 portid;
	struct icmpcap_cfg __rcu *cfg;
	u32 held_hooks;			/* hooks/families this client holds refs on */
	u32 held_families;
	bool test_running;
	kuid_t uid;			/* subscriber's uid: per-user cap */
	pid_t pid;			/* subscriber's tgid (proc) */
	char comm[TASK_COMM_LEN];

	struct list_head net_node;	/* icmpcap_net.subs: RCU, icmpcap_mutex */
	struct list_head node;		/* icmpcap_clients, icmpcap_clients_lock */
	struct work_struct sock_gone_work;
	struct hrtimer timer;		/* batch wakeups + overflow events */
	u64 wakeup_ns;			/* timer period, WRITE_ONCE() under mutex */
	u64 reported_dropped;		/* timer callback only */
	unsigned long overflow_event_at;	/* timer callback only, jiffies */
	unsigned int idle_ticks;	/* timer callback only */
	bool test_abort;		/* READ_ONCE() in the test producers */
};

extern struct mutex icmpcap_mutex;
extern unsigned int icmpcap_nr_subs;
extern const struct file_operations icmpcap_fops;

void icmpcap_sub_end(struct icmpcap_client *client, u32 reason);
void icmpcap_sub_start(struct icmpcap_client *client, struct icmpcap_cfg *cfg,
		       struct net *net, u32 portid);
unsigned int icmpcap_user_subs(kuid_t uid);
int icmpcap_dev_init(void);
void icmpcap_dev_exit(void);

/* ---- hooks.c: per-namespace hook set ---------------------------------------- */

struct icmpcap_net {
	struct net *net;
	struct list_head subs;		/* RCU readers: hooks; writers: icmpcap_mutex */
	unsigned int nr_subs;		/* icmpcap_mutex */
	/* [family][hook]: subscriptions needing it; registered while > 0. */
	unsigned int hook_refs[2][ICMPCAP_NR_HOOKS];
	struct nf_hook_ops ops[2][ICMPCAP_NR_HOOKS];
};

struct icmpcap_net *icmpcap_pernet(const struct net *net);
int icmpcap_hooks_get(struct icmpcap_net *inet, u32 hooks, u32 families);
void icmpcap_hooks_put(struct icmpcap_net *inet, u32 hooks, u32 families);
unsigned int icmpcap_hooks_registered(const struct icmpcap_net *inet);
int icmpcap_parse_v4(const struct sk_buff *skb, unsigned int nhoff,
		     struct icmpcap_record *rec);
int icmpcap_pernet_init(void);
void icmpcap_pernet_exit(void);

/* ---- genl.c ------------------------------------------------------------------- */

extern struct genl_family icmpcap_genl_family;
void icmpcap_send_event(struct icmpcap_client *client, u32 type, u32 reason, u64 dropped,
			gfp_t gfp);
struct file *icmpcap_genl_file(struct genl_info *info, bool need_fd);
int icmpcap_genl_init(void);
void icmpcap_genl_exit(void);

/* ---- proc.c --------------------------------------------------------------------- */

int icmpcap_proc_net_init(struct net *net);
void icmpcap_proc_net_exit(struct net *net);

/* ---- test.c (test builds only) ----------------------------------------------------- */

#ifdef ICMPCAP_TEST
int icmpcap_cmd_test_produce(struct sk_buff *skb, struct genl_info *info);
extern atomic_long_t icmpcap_test_nonlinear;
#endif

#endif /* ICMPCAP_INTERNAL_H */
