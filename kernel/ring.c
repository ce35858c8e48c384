// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU single-producer/single-consumer rings shared with user space.
 * Layout and protocol: include/uapi/linux/icmpcap.h; the consumer is
 * native/src/core/ring_reader.cc.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/poll.h>
#include <linux/vmalloc.h>
#include <linux/slab.h>
#include <linux/skbuff.h>
#include <linux/timekeeping.h>

#include "internal.h"

/*
 * Ring memory is charged to the subscriber's memory cgroup, may fail instead
 * of invoking the OOM killer, and fails quietly: a large RING_DATA_SIZE is a
 * user request, not a kernel problem (as kernel/bpf/ringbuf.c allocates).
 */
#define ICMPCAP_RING_GFP (GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN | __GFP_ZERO)

u64 icmpcap_rings_bytes(u32 nr, u32 data_size)
{
	return (u64)nr * (ICMPCAP_RING_HDR_SIZE + (u64)data_size);
}

static void icmpcap_ring_free_pages(struct icmpcap_ring *ring)
{
	u32 i;

	if (ring->base)
		vunmap(ring->base);
	for (i = 0; i < ring->nr_pages && ring->pages[i]; i++)
		__free_page(ring->pages[i]);
	kvfree(ring->pages);
}

/* Hard IRQ context (irq_work). */
static void icmpcap_wake_work(struct irq_work *work)
{
	struct icmpcap_ring *ring = container_of(work, struct icmpcap_ring, wake_work);

	if (wq_has_sleeper(&ring->client->wq))
		wake_up_interruptible_poll(&ring->client->wq, EPOLLIN | EPOLLRDNORM);
}

/*
 * Process context, no lock needed: the rings are private until the caller
 * publishes them. Returns NULL when memory is short.
 */
struct icmpcap_ring *icmpcap_rings_alloc(struct icmpcap_client *client, u32 nr, u32 data_size)
{
	u32 nr_pages = (ICMPCAP_RING_HDR_SIZE + data_size) >> PAGE_SHIFT;
	struct icmpcap_ring *rings;
	u32 i, p;

	rings = kcalloc(nr, sizeof(*rings), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!rings)
		return NULL;
	for (i = 0; i < nr; i++) {
		struct icmpcap_ring *ring = &rings[i];

		ring->pages = kvcalloc(nr_pages, sizeof(*ring->pages), ICMPCAP_RING_GFP);
		if (!ring->pages)
			goto out_free_rings;
		ring->nr_pages = nr_pages;
		for (p = 0; p < nr_pages; p++) {
			ring->pages[p] = alloc_page(ICMPCAP_RING_GFP);
			if (!ring->pages[p])
				goto out_free_rings;
		}
		ring->base = vmap(ring->pages, nr_pages, VM_MAP, PAGE_KERNEL);
		if (!ring->base)
			goto out_free_rings;
		ring->cpage = ring->base + ICMPCAP_RING_CONSUMER_OFF;
		ring->ppage = ring->base + ICMPCAP_RING_PRODUCER_OFF;
		ring->data = ring->base + ICMPCAP_RING_DATA_OFF;
		ring->data_size = data_size;
		ring->client = client;
		u64_stats_init(&ring->syncp);
		init_irq_work(&ring->wake_work, icmpcap_wake_work);
		ring->ppage->data_size = data_size;
		ring->ppage->cpu = i;
		ring->ppage->abi_version = ICMPCAP_ABI_VERSION;
	}
	return rings;

out_free_rings:
	icmpcap_rings_free(rings, i + 1);
	return NULL;
}

/*
 * Process context. No hook may reach the rings any more (the subscription
 * ended with synchronize_net()), so after irq_work_sync() nothing will.
 */
void icmpcap_rings_free(struct icmpcap_ring *rings, u32 nr)
{
	u32 i;

	if (!rings)
		return;
	for (i = 0; i < nr; i++) {
		if (rings[i].base)
			irq_work_sync(&rings[i].wake_work);
		icmpcap_ring_free_pages(&rings[i]);
	}
	kfree(rings);
}

/* Any context. */
void icmpcap_ring_stats(struct icmpcap_ring *ring, u64 *captured, u64 *dropped)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&ring->syncp);
		*captured = u64_stats_read(&ring->captured);
		*dropped = u64_stats_read(&ring->dropped);
	} while (u64_stats_fetch_retry(&ring->syncp, start));
}

/* Same context as icmpcap_ring_reserve(): count a record that did not fit. */
static void *icmpcap_ring_full(struct icmpcap_ring *ring)
{
	u64_stats_update_begin(&ring->syncp);
	u64_stats_inc(&ring->dropped);
	u64_stats_update_end(&ring->syncp);
	WRITE_ONCE(ring->ppage->dropped, u64_stats_read(&ring->dropped));
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
	u64 need = ICMPCAP_ALIGN((u64)len);
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
	cons = smp_load_acquire(&ring->cpage->consumer_pos);
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
static void icmpcap_ring_commit(struct icmpcap_ring *ring, u64 new_prod, u32 wakeup_bytes,
				u32 wakeup_records)
{
	WRITE_ONCE(ring->prod, new_prod);
	u64_stats_update_begin(&ring->syncp);
	u64_stats_inc(&ring->captured);
	u64_stats_update_end(&ring->syncp);
	WRITE_ONCE(ring->ppage->captured, u64_stats_read(&ring->captured));
	/*
	 * Pairs with the acquire load of producer_pos in
	 * native/src/core/ring_reader.cc (RingReader::poll_records()): the record
	 * bytes written above are visible before the position that covers them.
	 */
	smp_store_release(&ring->ppage->producer_pos, new_prod);

	/* At most one wakeup per batch; the timer covers small batches. */
	ring->wake_records++;
	if (new_prod - ring->wake_pos >= wakeup_bytes ||
	    (wakeup_records && ring->wake_records >= wakeup_records)) {
		ring->wake_pos = new_prod;
		ring->wake_records = 0;
		/*
		 * The wait queue check in icmpcap_wake_work() pairs with the
		 * smp_mb() in icmpcap_poll(); irq_work_queue() orders the
		 * producer_pos store above before the work runs.
		 */
		irq_work_queue(&ring->wake_work);
	}
}

/*
 * The ring-writing half of the hook, also used by the synthetic producer of
 * test builds: timestamp, reserve, header, the first rec->cap_len bytes of
 * skb from nhoff (skb_copy_bits(): linear or paged), publish. Same context
 * as icmpcap_ring_reserve(). Returns false when the ring was full (counted).
 */
bool icmpcap_ring_put(struct icmpcap_ring *ring, u32 wakeup_bytes, u32 wakeup_records,
		      struct icmpcap_record *rec, const struct sk_buff *skb, unsigned int nhoff)
{
	u64 new_prod;
	u8 *dst;

	rec->ts_ns = ktime_get_real_ns();
	dst = icmpcap_ring_reserve(ring, rec->len, &new_prod);
	if (!dst)
		return false;
	memcpy(dst, rec, sizeof(*rec));
	/* Cannot fail: cap_len <= skb->len - nhoff. Linear data, the common case, directly. */
	if (likely(nhoff + rec->cap_len <= skb_headlen(skb)))
		memcpy(dst + sizeof(*rec), skb->data + nhoff, rec->cap_len);
	else if (unlikely(skb_copy_bits(skb, nhoff, dst + sizeof(*rec), rec->cap_len)))
		memset(dst + sizeof(*rec), 0, rec->cap_len);
	/* Readers copy whole spans of records: no stale bytes in the padding. */
	memset(dst + rec->len, 0, ICMPCAP_ALIGN(rec->len) - rec->len);
	icmpcap_ring_commit(ring, new_prod, wakeup_bytes, wakeup_records);
	return true;
}

/*
 * No fault handler: every page is inserted at mmap() time, and a fault means
 * an access outside what was mapped (SIGBUS). Not NULL: a VMA without
 * vm_ops counts as anonymous memory.
 */
static const struct vm_operations_struct icmpcap_ring_vm_ops = {};

/*
 * mmap_lock held; the caller checked length, offset and flags: only a
 * mapping of the consumer page alone may be writable (or become so).
 * Inserts the ring's pages from first_page on, as many as the VMA spans.
 */
int icmpcap_ring_mmap(struct icmpcap_ring *ring, struct vm_area_struct *vma, u32 first_page)
{
	unsigned long nr = vma_pages(vma), p;
	int err;

	if (first_page + nr > ring->nr_pages)
		return -EINVAL;
	vma->vm_ops = &icmpcap_ring_vm_ops;
	for (p = 0; p < nr; p++) {
		err = vm_insert_page(vma, vma->vm_start + (p << PAGE_SHIFT),
				     ring->pages[first_page + p]);
		if (err)
			return err;
	}
	return 0;
}
