// SPDX-License-Identifier: GPL-2.0
/*
 * Test builds only (make ICMPCAP_TEST=1): ICMPCAP_CMD_TEST_PRODUCE, a
 * synthetic producer that writes real packet records through the hooks'
 * own ring-writing code, for the guest tests and the benchmark.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kthread.h>
#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/slab.h>
#include <linux/skbuff.h>
#include <linux/ip.h>
#include <linux/icmp.h>
#include <net/checksum.h>
#include <net/ip.h>
#include <net/genetlink.h>

#include "internal.h"

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
				if (icmpcap_ring_put(ring, cfg->wakeup_bytes, cfg->wakeup_records, &rec, skb, 0))
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

int icmpcap_cmd_test_produce(struct sk_buff *skb, struct genl_info *info)
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

	file = icmpcap_genl_file(info, true);
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
