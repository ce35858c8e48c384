// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/net/icmpcap: the state of capture in the reader's network namespace,
 * one "key value" pair per field, for doctor tools and status displays
 * (format: README.md, "/proc/net/icmpcap").
 */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/cred.h>
#include <net/net_namespace.h>

#include "internal.h"

static int icmpcap_proc_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);
	struct icmpcap_net *inet = icmpcap_pernet(net);
	struct icmpcap_client *client;

	mutex_lock(&icmpcap_mutex);
	seq_printf(seq, "version %s\n", ICMPCAP_MODULE_VERSION);
	seq_printf(seq, "abi %u\n", ICMPCAP_ABI_VERSION);
	seq_printf(seq, "subscriptions %u\n", inet->nr_subs);
	seq_printf(seq, "subscriptions_all_namespaces %u\n", icmpcap_nr_subs);
	seq_printf(seq, "hooks_registered %u\n", icmpcap_hooks_registered(inet));
	seq_printf(seq, "max_subs_per_ns %u\n", READ_ONCE(icmpcap_max_subs_per_ns));
	seq_printf(seq, "max_subs_per_user %u\n", READ_ONCE(icmpcap_max_subs_per_user));
	seq_printf(seq, "ring_bytes %llu\n", icmpcap_ring_bytes_used());
	seq_printf(seq, "max_ring_bytes %lu\n", READ_ONCE(icmpcap_max_ring_bytes));
	list_for_each_entry(client, &inet->subs, net_node) {
		const struct icmpcap_cfg *cfg =
			rcu_dereference_protected(client->cfg, lockdep_is_held(&icmpcap_mutex));
		u64 captured = 0, dropped = 0, c, d;
		u32 i;

		for (i = 0; i < client->nr_rings; i++) {
			icmpcap_ring_stats(&client->rings[i], &c, &d);
			captured += c;
			dropped += d;
		}
		seq_printf(seq,
			   "sub %u pid %d uid %u comm %s hooks 0x%x families 0x%x directions 0x%x snaplen %u ifindexes %u addr_rules %u rings %u data_size %u captured %llu dropped %llu\n",
			   client->sub_id, client->pid,
			   from_kuid_munged(seq_user_ns(seq), client->uid), client->comm,
			   cfg->hooks, cfg->families, cfg->directions, cfg->snaplen,
			   cfg->nr_ifindexes, cfg->nr_addr_rules, client->nr_rings,
			   client->data_size, captured, dropped);
		for (i = 0; i < client->nr_rings; i++) {
			struct icmpcap_ring *ring = &client->rings[i];

			if (!cpu_possible(i))
				continue;
			icmpcap_ring_stats(ring, &c, &d);
			seq_printf(seq, "ring %u cpu %u captured %llu dropped %llu unread %llu\n",
				   client->sub_id, i, c, d,
				   READ_ONCE(ring->prod) - READ_ONCE(ring->cpage->consumer_pos));
		}
	}
	mutex_unlock(&icmpcap_mutex);
	return 0;
}

int icmpcap_proc_net_init(struct net *net)
{
	if (!proc_create_net_single("icmpcap", 0444, net->proc_net, icmpcap_proc_show, NULL))
		return -ENOMEM;
	return 0;
}

void icmpcap_proc_net_exit(struct net *net)
{
	remove_proc_entry("icmpcap", net->proc_net);
}
