// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/icmpcap: one client per open file, its rings, and the lifetime of
 * the subscription it carries (see internal.h).
 *
 * Permission is the device node's: it is created 0660 root:root and a udev
 * rule (or chgrp) gives it the group whose members may capture. The module
 * checks nothing about the caller on open(); what a caller may do with a
 * subscription follows from holding the open file (netlink commands name it
 * with DEV_FD), as for any other file descriptor.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/cred.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/version.h>
#include <net/net_namespace.h>

#include "internal.h"

/* Only shim left: vm_flags became read-only in 6.3 (vm_flags_set()). */
static inline void icmpcap_vma_flags(struct vm_area_struct *vma, unsigned long set,
				     unsigned long clear)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

DEFINE_MUTEX(icmpcap_mutex);
unsigned int icmpcap_nr_subs;		/* icmpcap_mutex */
static DEFINE_SPINLOCK(icmpcap_clients_lock);
static LIST_HEAD(icmpcap_clients);
static atomic_t icmpcap_next_sub_id = ATOMIC_INIT(0);

/* After this many ticks with nothing pending, tick every 50 ms at most. */
#define ICMPCAP_IDLE_TICKS 100
#define ICMPCAP_IDLE_PERIOD_NS (50 * NSEC_PER_MSEC)
/* At most 10 OVERFLOW events per second and subscription. */
#define ICMPCAP_OVERFLOW_EVENT_GAP (HZ / 10)

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
		u64 c, d;

		if (READ_ONCE(ring->prod) != READ_ONCE(ring->cpage->consumer_pos))
			pending = true;
		icmpcap_ring_stats(ring, &c, &d);
		dropped += d;
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

/* icmpcap_mutex held: active subscriptions of uid (all namespaces). */
unsigned int icmpcap_user_subs(kuid_t uid)
{
	struct icmpcap_client *client;
	unsigned int n = 0;

	lockdep_assert_held(&icmpcap_mutex);
	list_for_each_entry(client, &icmpcap_clients, node)
		n += uid_eq(client->uid, uid);
	return n;
}

/*
 * Process context, icmpcap_mutex held; client IDLE with its rings published
 * and the references on the hooks cfg needs taken (icmpcap_hooks_get()).
 * Puts the client on the namespace's list: from here the hooks write into
 * its rings.
 */
void icmpcap_sub_start(struct icmpcap_client *client, struct icmpcap_cfg *cfg,
		       struct net *net, u32 portid)
{
	struct icmpcap_net *inet = icmpcap_pernet(net);

	lockdep_assert_held(&icmpcap_mutex);
	client->held_hooks = cfg->hooks;
	client->held_families = cfg->families;
	client->net = get_net(net);
	client->portid = portid;
	client->sub_id = atomic_inc_return(&icmpcap_next_sub_id);
	client->uid = current_uid();
	client->pid = task_tgid_nr(current);
	get_task_comm(client->comm, current);
	client->test_abort = false;
	rcu_assign_pointer(client->cfg, cfg);

	spin_lock_bh(&icmpcap_clients_lock);
	list_add(&client->node, &icmpcap_clients);
	spin_unlock_bh(&icmpcap_clients_lock);
	/* Publishes the client (rings, cfg) to the hooks. */
	list_add_tail_rcu(&client->net_node, &inet->subs);
	inet->nr_subs++;
	client->state = ICMPCAP_ACTIVE;
	icmpcap_nr_subs++;
	WRITE_ONCE(client->wakeup_ns, (u64)cfg->wakeup_usec * NSEC_PER_USEC);
	hrtimer_start(&client->timer, ns_to_ktime(client->wakeup_ns), HRTIMER_MODE_REL_SOFT);
}

/*
 * Process context, icmpcap_mutex held. Takes an active subscription off its
 * namespace's list and drops its hooks; the caller must then call
 * icmpcap_sub_quiesce() without the mutex (when this returns true), before
 * which hooks on other CPUs may still be writing into the rings.
 */
static bool icmpcap_sub_unlink(struct icmpcap_client *client, u32 reason)
{
	struct icmpcap_net *inet;
	struct icmpcap_cfg *cfg;

	lockdep_assert_held(&icmpcap_mutex);
	if (client->state != ICMPCAP_ACTIVE)
		return false;
	WRITE_ONCE(client->test_abort, true);
	inet = icmpcap_pernet(client->net);
	list_del_rcu(&client->net_node);
	inet->nr_subs--;
	icmpcap_hooks_put(inet, client->held_hooks, client->held_families);
	client->held_hooks = 0;
	client->held_families = 0;

	spin_lock_bh(&icmpcap_clients_lock);
	list_del_init(&client->node);
	spin_unlock_bh(&icmpcap_clients_lock);

	icmpcap_send_event(client, ICMPCAP_EVENT_SUBSCRIPTION_END, reason, 0, GFP_KERNEL);
	cfg = rcu_replace_pointer(client->cfg, NULL, lockdep_is_held(&icmpcap_mutex));
	/* Hooks and a test producer may still hold it under rcu_read_lock(). */
	kfree_rcu(cfg, rcu);
	client->state = ICMPCAP_ENDED;
	icmpcap_nr_subs--;
	return true;
}

/*
 * Process context, no lock: the second half of ending a subscription.
 * nf_unregister_net_hook() does not wait for hooks running on other CPUs (it
 * swaps in a stub and frees with call_rcu()), and a hook that found the
 * client on the list before list_del_rcu() may still be writing a record or
 * queueing an irq_work. Wait for all of them, as packet_release() does,
 * before the timer, the irq_works and (in release()) the memory go.
 */
static void icmpcap_sub_quiesce(struct icmpcap_client *client)
{
	u32 i;

	synchronize_net();
	hrtimer_cancel(&client->timer);
	for (i = 0; i < client->nr_rings; i++)
		irq_work_sync(&client->rings[i].wake_work);
	/* The timer was the last user of the namespace. */
	put_net(client->net);
	client->net = NULL;
	WRITE_ONCE(client->ended, true);
	wake_up_interruptible_poll(&client->wq, EPOLLHUP);
}

/* Process context; takes icmpcap_mutex. */
void icmpcap_sub_end(struct icmpcap_client *client, u32 reason)
{
	bool unlinked;

	mutex_lock(&icmpcap_mutex);
	unlinked = icmpcap_sub_unlink(client, reason);
	mutex_unlock(&icmpcap_mutex);
	if (unlinked)
		icmpcap_sub_quiesce(client);
}

/* Process context (system workqueue): the subscribing socket was released. */
static void icmpcap_sock_gone_work(struct work_struct *work)
{
	struct icmpcap_client *client = container_of(work, struct icmpcap_client,
						     sock_gone_work);

	icmpcap_sub_end(client, ICMPCAP_END_SOCKET_CLOSED);
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
	spin_lock_bh(&icmpcap_clients_lock);
	list_for_each_entry(client, &icmpcap_clients, node) {
		if (client->portid == n->portid && net_eq(client->net, n->net))
			schedule_work(&client->sock_gone_work);
	}
	spin_unlock_bh(&icmpcap_clients_lock);
	return NOTIFY_DONE;
}

static struct notifier_block icmpcap_netlink_notifier = {
	.notifier_call = icmpcap_netlink_notify,
};

/* ---- file operations ----------------------------------------------------------- */

static int icmpcap_open(struct inode *inode, struct file *file)
{
	struct icmpcap_client *client;

	client = kzalloc(sizeof(*client), GFP_KERNEL_ACCOUNT);
	if (!client)
		return -ENOMEM;
	init_waitqueue_head(&client->wq);
	INIT_LIST_HEAD(&client->node);
	INIT_LIST_HEAD(&client->net_node);
	INIT_WORK(&client->sock_gone_work, icmpcap_sock_gone_work);
	hrtimer_init(&client->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_SOFT);
	client->timer.function = icmpcap_timer_fn;
	client->state = ICMPCAP_IDLE;
	file->private_data = client;
	return nonseekable_open(inode, file);
}

/* Last close and last munmap: nothing but hooks can reach the client. */
static int icmpcap_release(struct inode *inode, struct file *file)
{
	struct icmpcap_client *client = file->private_data;

	icmpcap_sub_end(client, ICMPCAP_END_FILE_CLOSED);
	/* Off the list now, so the notifier cannot queue it again. */
	cancel_work_sync(&client->sock_gone_work);
	if (client->rings) {
		icmpcap_rings_free(client->rings, client->nr_rings);
		icmpcap_ring_bytes_release(icmpcap_rings_bytes(client->nr_rings,
							       client->data_size));
	}
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
	/*
	 * Pairs with the smp_mb() in wq_has_sleeper() of icmpcap_wake_work()
	 * and icmpcap_timer_fn(): either they see this task on the wait queue
	 * or we see the producer position they saw.
	 */
	smp_mb();
	/* Pairs with smp_store_release() in SUBSCRIBE: geometry first. */
	rings = smp_load_acquire(&client->rings);
	if (!rings)
		return 0;
	for (i = 0; i < client->nr_rings; i++) {
		if (READ_ONCE(rings[i].prod) != READ_ONCE(rings[i].cpage->consumer_pos)) {
			mask |= EPOLLIN | EPOLLRDNORM;
			break;
		}
	}
	if (READ_ONCE(client->ended))
		mask |= EPOLLHUP;
	return mask;
}

/*
 * mmap_lock held. Ring i (at i * ring_stride) is mapped in one of three
 * ways: its consumer page alone, read-write or read-only; its producer page
 * and data, read-only; or all of it, read-only. Shared, never executable.
 * As kernel/bpf/ringbuf.c does, a writable mapping of anything but the
 * consumer page is refused with EPERM, and VM_MAYWRITE is cleared on the
 * others so mprotect() cannot make them writable later.
 */
static int icmpcap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct icmpcap_client *client = file->private_data;
	unsigned long pages = vma_pages(vma);
	u64 stride_pages, idx, first;
	struct icmpcap_ring *rings;

	/* Pairs with smp_store_release() in SUBSCRIBE: geometry first. */
	rings = smp_load_acquire(&client->rings);
	if (!rings)
		return -ENXIO;
	/* VM_MAYSHARE: MAP_SHARED of an O_RDONLY file has no VM_SHARED. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	stride_pages = (ICMPCAP_RING_HDR_SIZE + (u64)client->data_size) >> PAGE_SHIFT;
	idx = div64_u64_rem(vma->vm_pgoff, stride_pages, &first);
	if (idx >= client->nr_rings)
		return -EINVAL;
	if (first == ICMPCAP_RING_CONSUMER_OFF >> PAGE_SHIFT && pages == 1) {
		icmpcap_vma_flags(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC);
		return icmpcap_ring_mmap(&rings[idx], vma, first);
	}
	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	if (!((first == ICMPCAP_RING_PRODUCER_OFF >> PAGE_SHIFT &&
	       pages == stride_pages - first) ||
	      (first == 0 && pages == stride_pages)))
		return -EINVAL;
	icmpcap_vma_flags(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC | VM_MAYWRITE);
	return icmpcap_ring_mmap(&rings[idx], vma, first);
}

const struct file_operations icmpcap_fops = {
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
	/* Root and the group udev gives the node (README: udev rule). */
	.mode = 0660,
};

int icmpcap_dev_init(void)
{
	int err;

	err = netlink_register_notifier(&icmpcap_netlink_notifier);
	if (err)
		return err;
	err = misc_register(&icmpcap_misc);
	if (err)
		goto out_unregister_notifier;
	return 0;

out_unregister_notifier:
	netlink_unregister_notifier(&icmpcap_netlink_notifier);
	return err;
}

void icmpcap_dev_exit(void)
{
	misc_deregister(&icmpcap_misc);
	netlink_unregister_notifier(&icmpcap_netlink_notifier);
}
