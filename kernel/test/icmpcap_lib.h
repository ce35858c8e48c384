/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Minimal user-space client of icmpcap.ko for the guest tests and the
 * benchmark: generic netlink without libnl, ring mapping and draining.
 * Header-only so every static test program is one translation unit.
 */
#ifndef ICMPCAP_TEST_LIB_H
#define ICMPCAP_TEST_LIB_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>

#include "../include/uapi/linux/icmpcap.h"

#define NL_BUF 65536
#define MAX_RINGS 64

struct nlmsg {
	union {
		struct nlmsghdr nh;
		char buf[NL_BUF];
	};
};

struct nl {
	int fd;
	uint16_t family;
	uint32_t mcgrp;
	uint32_t seq;
	uint32_t portid;
};

/* Parsed reply: attribute pointers into buf. */
struct reply {
	char buf[NL_BUF];
	struct nlattr *a[ICMPCAP_A_MAX + 1];
	int cmd;
};

static inline uint32_t attr_u32(const struct reply *r, int t, uint32_t dflt)
{
	return r->a[t] ? *(uint32_t *)(r->a[t] + 1) : dflt;
}

static inline uint64_t attr_u64(const struct reply *r, int t, uint64_t dflt)
{
	uint64_t v;

	if (!r->a[t])
		return dflt;
	memcpy(&v, r->a[t] + 1, 8);
	return v;
}

static inline void msg_init(struct nlmsg *m, uint16_t type, uint8_t cmd, uint16_t flags)
{
	struct genlmsghdr *g;

	memset(&m->nh, 0, sizeof(m->nh) + GENL_HDRLEN);
	m->nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->nh.nlmsg_type = type;
	m->nh.nlmsg_flags = NLM_F_REQUEST | flags;
	g = NLMSG_DATA(&m->nh);
	g->cmd = cmd;
	g->version = 1;
}

static inline void msg_put(struct nlmsg *m, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)(m->buf + NLMSG_ALIGN(m->nh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	m->nh.nlmsg_len = NLMSG_ALIGN(m->nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static inline void msg_u32(struct nlmsg *m, uint16_t type, uint32_t v)
{
	msg_put(m, type, &v, 4);
}

static inline void msg_u64(struct nlmsg *m, uint16_t type, uint64_t v)
{
	msg_put(m, type, &v, 8);
}

static inline void parse_attrs(struct reply *r, struct nlmsghdr *nh, int max)
{
	struct genlmsghdr *g = NLMSG_DATA(nh);
	int len = nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	struct nlattr *a = (struct nlattr *)((char *)g + GENL_HDRLEN);

	memset(r->a, 0, sizeof(r->a));
	r->cmd = g->cmd;
	while (len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len) {
		int t = a->nla_type & NLA_TYPE_MASK;

		if (t <= max && t <= ICMPCAP_A_MAX)
			r->a[t] = a;
		len -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
}

/* Sends m and waits for the ack; the last data reply lands in r. -errno on error. */
static inline int nl_call(struct nl *nl, struct nlmsg *m, struct reply *r)
{
	static char rbuf[NL_BUF];
	uint32_t seq = ++nl->seq;

	m->nh.nlmsg_seq = seq;
	m->nh.nlmsg_flags |= NLM_F_ACK;
	if (send(nl->fd, m->buf, m->nh.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl->fd, rbuf, sizeof(rbuf), 0);
		struct nlmsghdr *nh;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (nh = (struct nlmsghdr *)rbuf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_seq != seq)
				continue;	/* events, records, stale replies */
			if (nh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nh);

				return e->error;
			}
			if (r) {
				memcpy(r->buf, nh, nh->nlmsg_len < NL_BUF ? nh->nlmsg_len : NL_BUF);
				parse_attrs(r, (struct nlmsghdr *)r->buf,
					    nl->family == GENL_ID_CTRL ? CTRL_ATTR_MAX : ICMPCAP_A_MAX);
			}
		}
	}
}

static inline int nl_open_family(struct nl *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t sl = sizeof(sa);
	/* Per thread: the fuzzers open their sockets concurrently. */
	static __thread struct reply r;
	struct nlmsg m;
	int err;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(nl->fd, (struct sockaddr *)&sa, &sl) < 0) {
		err = -errno;
		close(nl->fd);
		return err;
	}
	nl->portid = sa.nl_pid;
	nl->family = GENL_ID_CTRL;
	msg_init(&m, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	msg_put(&m, CTRL_ATTR_FAMILY_NAME, ICMPCAP_GENL_NAME, sizeof(ICMPCAP_GENL_NAME));
	err = nl_call(nl, &m, &r);
	if (err || !r.a[CTRL_ATTR_FAMILY_ID]) {
		close(nl->fd);
		return err ? err : -ENOENT;
	}
	nl->family = *(uint16_t *)(r.a[CTRL_ATTR_FAMILY_ID] + 1);
	if (r.a[CTRL_ATTR_MCAST_GROUPS]) {
		struct nlattr *grp = r.a[CTRL_ATTR_MCAST_GROUPS];
		int len = grp->nla_len - NLA_HDRLEN;
		struct nlattr *g = grp + 1;

		while (len >= NLA_HDRLEN && g->nla_len >= NLA_HDRLEN) {
			int l2 = g->nla_len - NLA_HDRLEN;
			struct nlattr *x = g + 1;

			while (l2 >= NLA_HDRLEN && x->nla_len >= NLA_HDRLEN) {
				if (x->nla_type == CTRL_ATTR_MCAST_GRP_ID)
					nl->mcgrp = *(uint32_t *)(x + 1);
				l2 -= NLA_ALIGN(x->nla_len);
				x = (struct nlattr *)((char *)x + NLA_ALIGN(x->nla_len));
			}
			len -= NLA_ALIGN(g->nla_len);
			g = (struct nlattr *)((char *)g + NLA_ALIGN(g->nla_len));
		}
	}
	return 0;
}

/* ---- capture handle ------------------------------------------------------ */

struct cap {
	int dev;
	struct nl nl;
	uint32_t nr_rings, data_size, stride, sub_id;
	/* Producer page + data (read-only), and the consumer page, of each ring. */
	struct icmpcap_ring_producer *ring[MAX_RINGS];
	struct icmpcap_ring_consumer *cons[MAX_RINGS];
};

/* Length of the read-only mapping of a ring: producer page and data. */
#define RING_RO_LEN(c) ((size_t)(c)->stride - ICMPCAP_RING_PRODUCER_OFF)
#define RING_DATA(p) ((uint8_t *)(p) + ICMPCAP_RING_DATA_OFF - ICMPCAP_RING_PRODUCER_OFF)

/*
 * Maps ring i of dev as a consumer does (as kernel/bpf/ringbuf.c's users do):
 * the consumer page read-write, the producer page and the data read-only.
 */
static inline int ring_map(int dev, uint32_t stride, uint32_t i, struct icmpcap_ring_producer **p,
			   struct icmpcap_ring_consumer **c)
{
	off_t base = (off_t)i * stride;
	void *m;

	m = mmap(NULL, ICMPCAP_RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, dev,
		 base + ICMPCAP_RING_CONSUMER_OFF);
	if (m == MAP_FAILED)
		return -errno;
	*c = m;
	m = mmap(NULL, stride - ICMPCAP_RING_PRODUCER_OFF, PROT_READ, MAP_SHARED, dev,
		 base + ICMPCAP_RING_PRODUCER_OFF);
	if (m == MAP_FAILED) {
		int err = -errno;

		munmap(*c, ICMPCAP_RING_PAGE_SIZE);
		return err;
	}
	*p = m;
	return 0;
}

static inline void ring_unmap(uint32_t stride, struct icmpcap_ring_producer *p,
			      struct icmpcap_ring_consumer *c)
{
	munmap(p, stride - ICMPCAP_RING_PRODUCER_OFF);
	munmap(c, ICMPCAP_RING_PAGE_SIZE);
}

/*
 * Opens the device, subscribes with the attributes already in m (command
 * SUBSCRIBE, DEV_FD added here) and maps every ring. m may be NULL.
 */
static inline int cap_open(struct cap *c, struct nlmsg *m_in)
{
	static __thread struct reply r; /* threads open captures concurrently */
	struct nlmsg m;
	uint32_t i;
	int err;

	memset(c, 0, sizeof(*c));
	c->dev = open("/dev/icmpcap", O_RDWR | O_CLOEXEC);
	if (c->dev < 0)
		return -errno;
	err = nl_open_family(&c->nl);
	if (err)
		goto out_close_dev;
	if (m_in) {
		memcpy(&m, m_in, m_in->nh.nlmsg_len);
		m.nh.nlmsg_type = c->nl.family;
	} else {
		msg_init(&m, c->nl.family, ICMPCAP_CMD_SUBSCRIBE, 0);
	}
	msg_u32(&m, ICMPCAP_A_DEV_FD, c->dev);
	err = nl_call(&c->nl, &m, &r);
	if (err)
		goto out_close_nl;
	if (attr_u32(&r, ICMPCAP_A_ABI_VERSION, 0) != ICMPCAP_ABI_VERSION) {
		err = -EPROTO;
		goto out_close_nl;
	}
	c->nr_rings = attr_u32(&r, ICMPCAP_A_NR_RINGS, 0);
	c->data_size = attr_u32(&r, ICMPCAP_A_DATA_SIZE, 0);
	c->stride = attr_u32(&r, ICMPCAP_A_RING_STRIDE, 0);
	c->sub_id = attr_u32(&r, ICMPCAP_A_SUB_ID, 0);
	if (c->nr_rings > MAX_RINGS || c->stride != ICMPCAP_RING_HDR_SIZE + c->data_size) {
		err = -EPROTO;
		goto out_close_nl;
	}
	for (i = 0; i < c->nr_rings; i++) {
		err = ring_map(c->dev, c->stride, i, &c->ring[i], &c->cons[i]);
		if (err)
			goto out_unmap;
	}
	return 0;

out_unmap:
	while (i--)
		ring_unmap(c->stride, c->ring[i], c->cons[i]);
out_close_nl:
	close(c->nl.fd);
out_close_dev:
	close(c->dev);
	return err;
}

static inline void cap_close(struct cap *c)
{
	uint32_t i;

	for (i = 0; i < c->nr_rings; i++)
		if (c->ring[i])
			ring_unmap(c->stride, c->ring[i], c->cons[i]);
	if (c->nl.fd > 0)
		close(c->nl.fd);
	if (c->dev > 0)
		close(c->dev);
	memset(c, 0, sizeof(*c));
}

/* Builds a request for c's subscription: command cmd with DEV_FD. */
static inline void cap_msg(struct cap *c, struct nlmsg *m, uint8_t cmd)
{
	msg_init(m, c->nl.family, cmd, 0);
	msg_u32(m, ICMPCAP_A_DEV_FD, c->dev);
}

typedef void (*rec_fn)(const struct icmpcap_record *rec, void *arg);

/*
 * Drains every ring; returns the number of records (pads excluded) or -1 on a
 * malformed ring. Acquire load of producer_pos pairs with the release store
 * in icmpcap_ring_commit(); release store of consumer_pos pairs with the
 * acquire load in icmpcap_ring_reserve().
 */
static inline long cap_drain(struct cap *c, rec_fn fn, void *arg)
{
	long n = 0;
	uint32_t i;

	for (i = 0; i < c->nr_rings; i++) {
		struct icmpcap_ring_producer *h = c->ring[i];
		uint8_t *data = RING_DATA(h);
		uint64_t mask = h->data_size - 1;
		uint64_t prod = __atomic_load_n(&h->producer_pos, __ATOMIC_ACQUIRE);
		uint64_t cons = c->cons[i]->consumer_pos;

		while (cons < prod) {
			const struct icmpcap_record *rec = (void *)(data + (cons & mask));
			uint64_t off = cons & mask;

			if (rec->len < ICMPCAP_PAD_MIN_SIZE || off + ICMPCAP_ALIGN(rec->len) > h->data_size)
				return -1;
			if (!(rec->flags & ICMPCAP_REC_F_PAD)) {
				if (rec->len != (uint32_t)ICMPCAP_RECORD_HDR_SIZE + rec->cap_len)
					return -1;
				if (fn)
					fn(rec, arg);
				n++;
			}
			cons += ICMPCAP_ALIGN(rec->len);
		}
		__atomic_store_n(&c->cons[i]->consumer_pos, cons, __ATOMIC_RELEASE);
	}
	return n;
}

static inline uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline void bitmap_set(uint8_t *map, unsigned int bit)
{
	map[bit >> 3] |= 1u << (bit & 7);
}

#endif
