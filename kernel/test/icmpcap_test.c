// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Guest tests of icmpcap.ko. Run by kernel/test/guest-init inside QEMU after
 * the namespaces "a", "b", "c" are set up:
 *
 *   a (va: 10.0.0.1, fd00::1) <--veth--> b (vb: 10.0.0.2, fd00::2, router)
 *   c: loopback only
 *
 * b forwards 10.9.9.0/24 and 2001:db8:9::/64 back to a (route MTU 1280 for
 * IPv6), which makes it send Time Exceeded and Packet Too Big to a.
 *
 * Usage: icmpcap_test NAME...   each test runs in its own process and prints
 * exactly one line: "PASS name" or "FAIL name: reason".
 */
#include "icmpcap_lib.h"

#include <arpa/inet.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NS_A "a"
#define NS_B "b"
#define NS_C "c"

static const char *cur_test;
static char fail_msg[512];

#define FAIL(...)                                                              \
	do {                                                                   \
		snprintf(fail_msg, sizeof(fail_msg), __VA_ARGS__);             \
		return -1;                                                     \
	} while (0)
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			FAIL(__VA_ARGS__);                                     \
	} while (0)

static int init_ns_fd = -1;

static int ns_enter(const char *name)
{
	char path[64];
	int fd, err;

	if (!strcmp(name, "init"))
		return setns(init_ns_fd, CLONE_NEWNET);
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	err = setns(fd, CLONE_NEWNET);
	close(fd);
	return err;
}

static int sock_in(const char *ns, int domain, int type, int proto)
{
	int s;

	if (ns_enter(ns))
		return -1;
	s = socket(domain, type | SOCK_CLOEXEC, proto);
	ns_enter("init");
	return s;
}

static int cap_open_in(const char *ns, struct cap *c, struct nlmsg *m)
{
	int err;

	if (ns_enter(ns))
		return -errno;
	err = cap_open(c, m);
	ns_enter("init");
	return err;
}

static int ifindex_in(const char *ns, const char *ifname)
{
	int idx;

	ns_enter(ns);
	idx = if_nametoindex(ifname);
	ns_enter("init");
	return idx;
}

/* ---- record collection ------------------------------------------------------ */

#define MAX_RECS 4096
struct recs {
	int n;
	struct icmpcap_record *r[MAX_RECS];
};

static void rec_copy(const struct icmpcap_record *rec, void *arg)
{
	struct recs *rs = arg;

	if (rs->n < MAX_RECS) {
		rs->r[rs->n] = malloc(rec->len);
		memcpy(rs->r[rs->n], rec, rec->len);
		rs->n++;
	}
}

static const uint8_t *rec_data(const struct icmpcap_record *r)
{
	return (const uint8_t *)r + ICMPCAP_RECORD_HDR_SIZE;
}

/* Polls and drains until want records arrived or timeout_ms passed. */
static int collect(struct cap *c, struct recs *rs, int want, int timeout_ms)
{
	uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		struct pollfd p = { .fd = c->dev, .events = POLLIN };
		int64_t left = (int64_t)(end - now_ns(CLOCK_MONOTONIC)) / 1000000;

		if (cap_drain(c, rec_copy, rs) < 0)
			return -1;
		if (rs->n >= want || left <= 0)
			return rs->n;
		poll(&p, 1, left > 50 ? 50 : (int)left);
	}
}

static void recs_free(struct recs *rs)
{
	for (int i = 0; i < rs->n; i++)
		free(rs->r[i]);
	rs->n = 0;
}

/* ---- traffic ------------------------------------------------------------------ */

struct addr {
	int v6;
	struct in_addr a4;
	struct in6_addr a6;
};

static struct addr A, B;

static void addrs_init(void)
{
	inet_pton(AF_INET, "10.0.0.1", &A.a4);
	inet_pton(AF_INET, "10.0.0.2", &B.a4);
	inet_pton(AF_INET6, "fd00::1", &A.a6);
	inet_pton(AF_INET6, "fd00::2", &B.a6);
}

static const void *addr_bytes(const struct addr *x, int v6)
{
	return v6 ? (const void *)&x->a6 : (const void *)&x->a4;
}

static uint16_t csum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (b[i] << 8) | b[i + 1];
	if (n & 1)
		s += b[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons(~s);
}

/* Builds an echo request in buf; returns its length. */
static size_t make_echo(uint8_t *buf, int v6, uint16_t id, uint16_t seq, size_t payload)
{
	buf[0] = v6 ? 128 : 8;
	buf[1] = 0;
	buf[2] = buf[3] = 0;
	buf[4] = id >> 8;
	buf[5] = id & 0xff;
	buf[6] = seq >> 8;
	buf[7] = seq & 0xff;
	for (size_t i = 0; i < payload; i++)
		buf[8 + i] = (uint8_t)(i * 7 + 3);
	if (!v6) {
		uint16_t c = csum(buf, 8 + payload);

		memcpy(buf + 2, &c, 2);
	}
	return 8 + payload;
}

static int raw_icmp(const char *ns, int v6, int ttl)
{
	int s = sock_in(ns, v6 ? AF_INET6 : AF_INET, SOCK_RAW, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);

	if (s < 0)
		return -1;
	if (ttl > 0) {
		if (v6)
			setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl));
		else
			setsockopt(s, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
	}
	return s;
}

static int send_to(int s, int v6, const struct addr *dst, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = dst->a4 };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				   .sin6_addr = dst->a6 };

	if (v6)
		return sendto(s, buf, len, 0, (struct sockaddr *)&s6, sizeof(s6));
	return sendto(s, buf, len, 0, (struct sockaddr *)&s4, sizeof(s4));
}

/* Waits for an echo reply with id on raw socket s. */
static int wait_reply(int s, int v6, uint16_t id, int timeout_ms)
{
	uint8_t buf[4096];
	uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		int64_t left = (int64_t)(end - now_ns(CLOCK_MONOTONIC)) / 1000000;
		ssize_t n;
		const uint8_t *icmp;

		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			continue;
		if (v6) {
			icmp = buf;	/* raw ICMPv6 sockets deliver no IP header */
		} else {
			if (n < 20 + 8)
				continue;
			icmp = buf + (buf[0] & 0xf) * 4;
		}
		if (icmp[0] == (v6 ? 129 : 0) && ((icmp[4] << 8) | icmp[5]) == id)
			return 0;
	}
}

/* One echo from ns to dst; returns 0 when the reply came back. */
static int ping_once(const char *ns, int v6, const struct addr *dst, uint16_t id, uint16_t seq,
		     size_t payload)
{
	uint8_t buf[2048];
	int s = raw_icmp(ns, v6, 0), err;
	size_t len = make_echo(buf, v6, id, seq, payload);

	if (s < 0)
		return -1;
	err = send_to(s, v6, dst, 0, buf, len) < 0 ? -1 : wait_reply(s, v6, id, 2000);
	close(s);
	return err;
}

static void echo_types(struct nlmsg *m)
{
	uint8_t t4[32] = { 0 }, t6[32] = { 0 };

	bitmap_set(t4, 0);
	bitmap_set(t4, 8);
	bitmap_set(t6, 128);
	bitmap_set(t6, 129);
	msg_put(m, ICMPCAP_A_TYPES_V4, t4, 32);
	msg_put(m, ICMPCAP_A_TYPES_V6, t6, 32);
}

static void only_type(struct nlmsg *m, int v6, int type)
{
	uint8_t t[32] = { 0 }, none[32] = { 0 };

	bitmap_set(t, type);
	msg_put(m, ICMPCAP_A_TYPES_V4, v6 ? none : t, 32);
	msg_put(m, ICMPCAP_A_TYPES_V6, v6 ? t : none, 32);
}

/* ---- record checks --------------------------------------------------------- */

static int check_common(const struct icmpcap_record *r, int v6, const struct addr *src,
			const struct addr *dst, int hook, int dir, int ifindex, uint64_t t0,
			uint64_t t1, const char *what)
{
	size_t alen = v6 ? 16 : 4;
	static const uint8_t zero[16];

	CHECK(r->family == (v6 ? 6 : 4), "%s: family %u", what, r->family);
	CHECK(!memcmp(r->saddr, addr_bytes(src, v6), alen), "%s: saddr", what);
	CHECK(!memcmp(r->daddr, addr_bytes(dst, v6), alen), "%s: daddr", what);
	CHECK(v6 || (!memcmp(r->saddr + 4, zero, 12) && !memcmp(r->daddr + 4, zero, 12)),
	      "%s: IPv4 address tail not zero", what);
	CHECK(r->hook == hook, "%s: hook %u want %d", what, r->hook, hook);
	CHECK(r->dir == dir, "%s: dir %u want %d", what, r->dir, dir);
	CHECK((int)r->ifindex == ifindex, "%s: ifindex %u want %d", what, r->ifindex, ifindex);
	CHECK(r->ts_ns >= t0 && r->ts_ns <= t1, "%s: ts_ns %llu outside [%llu, %llu]", what,
	      (unsigned long long)r->ts_ns, (unsigned long long)t0, (unsigned long long)t1);
	CHECK(r->__pad0 == 0, "%s: padding not zero", what);
	/* Every test sends from its own process: a pid, when there is one, is ours. */
	CHECK((r->flags & ICMPCAP_REC_F_HAS_PID) ? r->pid == (uint32_t)getpid() : r->pid == 0,
	      "%s: pid %u flags 0x%x, this process is %d", what, r->pid, r->flags, getpid());
	CHECK(!(r->flags & ICMPCAP_REC_F_HAS_PID) || r->dir == ICMPCAP_DIR_OUT,
	      "%s: pid on a record that is not outgoing", what);
	CHECK(r->len == (uint32_t)ICMPCAP_RECORD_HDR_SIZE + r->cap_len, "%s: len %u cap_len %u", what,
	      r->len, r->cap_len);
	CHECK(r->cap_len <= r->orig_len, "%s: cap_len > orig_len", what);
	CHECK(!!(r->flags & ICMPCAP_REC_F_TRUNCATED) == (r->cap_len < r->orig_len),
	      "%s: TRUNCATED flag", what);
	/* IP header in the data agrees with the record. */
	if (r->cap_len >= (v6 ? 40 : 20)) {
		const uint8_t *d = rec_data(r);

		if (v6) {
			CHECK((d[0] >> 4) == 6 && d[6] == 58 && d[7] == r->ttl, "%s: IPv6 header", what);
			CHECK(((d[4] << 8) | d[5]) + 40 == (int)r->orig_len, "%s: payload_len", what);
			CHECK(!memcmp(d + 8, r->saddr, 16) && !memcmp(d + 24, r->daddr, 16),
			      "%s: IPv6 header addresses", what);
		} else {
			CHECK(d[0] == 0x45 && d[9] == 1 && d[8] == r->ttl, "%s: IPv4 header", what);
			CHECK(((d[2] << 8) | d[3]) == (int)r->orig_len, "%s: tot_len", what);
			CHECK(!memcmp(d + 12, r->saddr, 4) && !memcmp(d + 16, r->daddr, 4),
			      "%s: IPv4 header addresses", what);
		}
	}
	return 0;
}

static int check_echo(const struct icmpcap_record *r, int v6, int reply, uint16_t id,
		      uint16_t seq, const uint8_t *sent, size_t sent_len, int ttl, const char *what)
{
	size_t ipl = v6 ? 40 : 20;
	const uint8_t *icmp = rec_data(r) + ipl;

	CHECK(r->icmp_type == (v6 ? (reply ? 129 : 128) : (reply ? 0 : 8)), "%s: type %u", what,
	      r->icmp_type);
	CHECK(r->icmp_code == 0, "%s: code", what);
	CHECK((r->flags & ~ICMPCAP_REC_F_HAS_PID) == ICMPCAP_REC_F_HAS_ECHO, "%s: flags 0x%x", what,
	      r->flags);
	CHECK(r->icmp_id == id && r->icmp_seq == seq, "%s: id/seq %u/%u want %u/%u", what,
	      r->icmp_id, r->icmp_seq, id, seq);
	CHECK(r->ttl == ttl, "%s: ttl %u want %d", what, r->ttl, ttl);
	CHECK(r->orig_len == ipl + sent_len && r->cap_len == r->orig_len, "%s: orig_len %u cap_len %u",
	      what, r->orig_len, r->cap_len);
	CHECK(icmp[0] == r->icmp_type && icmp[1] == 0, "%s: ICMP header bytes", what);
	CHECK(!memcmp(icmp + 4, sent + 4, sent_len - 4), "%s: id/seq/payload bytes", what);
	if (!reply && !v6)
		CHECK(!memcmp(icmp, sent, sent_len), "%s: request bytes (checksum)", what);
	CHECK(csum(icmp, sent_len) == 0 || v6, "%s: ICMP checksum", what);
	return 0;
}

/* ---- tests ----------------------------------------------------------------------- */

/* Echo between a and b, captured in a; inbound: b pings a. */
static int test_echo(int v6, int inbound)
{
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	uint8_t buf[256];
	uint16_t id = 0x4000 + v6 * 16 + inbound, seq = 7;
	size_t len = make_echo(buf, v6, id, seq, 56);
	const struct addr *src = inbound ? &B : &A, *dst = inbound ? &A : &B;
	int va = ifindex_in(NS_A, "va"), s, err;
	const struct icmpcap_record *req = NULL, *rep = NULL;
	uint64_t t0, t1;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_FAMILIES, v6 ? ICMPCAP_FAMILY_F_IPV6 : ICMPCAP_FAMILY_F_IPV4);
	echo_types(&m);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	s = raw_icmp(inbound ? NS_B : NS_A, v6, 77);
	CHECK(s >= 0, "raw socket: %s", strerror(errno));
	t0 = now_ns(CLOCK_REALTIME);
	CHECK(send_to(s, v6, dst, 0, buf, len) == (ssize_t)len, "sendto: %s", strerror(errno));
	CHECK(!wait_reply(s, v6, id, 2000), "no echo reply");
	t1 = now_ns(CLOCK_REALTIME);
	/* Default timer wakeup (2 ms) must wake a sleeping poll. */
	{
		struct pollfd p = { .fd = c.dev, .events = POLLIN };

		CHECK(poll(&p, 1, 2000) == 1 && (p.revents & POLLIN), "poll: no wakeup");
	}
	CHECK(collect(&c, &rs, 2, 500) == 2, "want 2 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++) {
		int t = rs.r[i]->icmp_type;

		if (t == 8 || t == 128)
			req = rs.r[i];
		else
			rep = rs.r[i];
	}
	CHECK(req && rep, "want one request and one reply");
	/* What this process sent carries its pid; what the kernel answered does not. */
	CHECK(!!((inbound ? rep : req)->flags & ICMPCAP_REC_F_HAS_PID) == !inbound,
	      "HAS_PID on the outgoing %s: flags 0x%x", inbound ? "reply" : "request",
	      (inbound ? rep : req)->flags);
	if (check_common(req, v6, src, dst, inbound ? ICMPCAP_HOOK_PRE_ROUTING : ICMPCAP_HOOK_LOCAL_OUT,
			 inbound ? ICMPCAP_DIR_IN : ICMPCAP_DIR_OUT, va, t0, t1, "request") ||
	    check_echo(req, v6, 0, id, seq, buf, len, 77, "request") ||
	    check_common(rep, v6, dst, src, inbound ? ICMPCAP_HOOK_LOCAL_OUT : ICMPCAP_HOOK_PRE_ROUTING,
			 inbound ? ICMPCAP_DIR_OUT : ICMPCAP_DIR_IN, va, t0, t1, "reply") ||
	    check_echo(rep, v6, 1, id, seq, buf, len, 64, "reply"))
		return -1;
	close(s);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

/* Test builds count records copied from a non-linear skb; -1 when unreadable. */
static long nonlinear_count(void)
{
	FILE *f = fopen("/sys/module/icmpcap/parameters/test_nonlinear", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/*
 * Echo requests whose ICMP payload is not in the skb's linear area, captured
 * whole at LOCAL_OUT in a and checked byte for byte (skb_copy_bits() over
 * page fragments and over a frag_list):
 *  - corked4: a raw socket sends the ICMP header and 100 bytes with MSG_MORE,
 *    then 900 more: ip_append_data() appends the second part to the pending
 *    skb in page fragments (va, a veth, has NETIF_F_SG).
 *  - large4, large6: one echo of 3000 payload bytes ("ping -s 3000") over
 *    va's 1500-byte MTU: ip(6)_append_data() builds one skb per fragment and
 *    the skb seen at LOCAL_OUT carries all but the first in its frag_list.
 * The module's test_nonlinear counter must grow by one per record.
 */
static int test_paged_echo(void)
{
	static uint8_t buf[3][4096];
	static const size_t payload[3] = { 1000, 3000, 3000 };
	static const int v6s[3] = { 0, 0, 1 };
	static const char *const what[3] = { "corked4", "large4", "large6" };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_addr = B.a4 };
	int va = ifindex_in(NS_A, "va"), s, err;
	size_t len[3];
	uint16_t id[3];
	struct recs rs = { 0 };
	struct nlmsg m;
	struct cap c;
	long n0, n1;
	uint64_t t0, t1;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 65535);
	echo_types(&m);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	n0 = nonlinear_count();
	CHECK(n0 >= 0, "no test_nonlinear parameter (not a test build?)");
	for (int i = 0; i < 3; i++) {
		id[i] = 0x5100 + i;
		len[i] = make_echo(buf[i], v6s[i], id[i], i + 1, payload[i]);
	}
	t0 = now_ns(CLOCK_REALTIME);

	s = raw_icmp(NS_A, 0, 0);
	CHECK(s >= 0, "raw socket: %s", strerror(errno));
	CHECK(sendto(s, buf[0], 108, MSG_MORE, (struct sockaddr *)&s4, sizeof(s4)) == 108,
	      "corked4: first sendto: %s", strerror(errno));
	CHECK(sendto(s, buf[0] + 108, len[0] - 108, 0, (struct sockaddr *)&s4, sizeof(s4)) ==
	      (ssize_t)(len[0] - 108), "corked4: second sendto: %s", strerror(errno));
	CHECK(!wait_reply(s, 0, id[0], 2000), "corked4: no echo reply");
	CHECK(send_to(s, 0, &B, 0, buf[1], len[1]) == (ssize_t)len[1], "large4: sendto: %s",
	      strerror(errno));
	CHECK(!wait_reply(s, 0, id[1], 2000), "large4: no echo reply");
	close(s);
	s = raw_icmp(NS_A, 1, 0);
	CHECK(s >= 0, "raw socket: %s", strerror(errno));
	CHECK(send_to(s, 1, &B, 0, buf[2], len[2]) == (ssize_t)len[2], "large6: sendto: %s",
	      strerror(errno));
	CHECK(!wait_reply(s, 1, id[2], 2000), "large6: no echo reply");
	close(s);
	t1 = now_ns(CLOCK_REALTIME);

	CHECK(collect(&c, &rs, 3, 1000) == 3, "want 3 records, got %d", rs.n);
	for (int i = 0; i < 3; i++) {
		const struct icmpcap_record *r = NULL;

		for (int k = 0; k < rs.n; k++)
			if (rs.r[k]->icmp_id == id[i])
				r = rs.r[k];
		CHECK(r, "%s: no record", what[i]);
		if (check_common(r, v6s[i], &A, &B, ICMPCAP_HOOK_LOCAL_OUT, ICMPCAP_DIR_OUT, va, t0, t1,
				 what[i]) ||
		    check_echo(r, v6s[i], 0, id[i], i + 1, buf[i], len[i], 64, what[i]))
			return -1;
	}
	n1 = nonlinear_count();
	CHECK(n1 - n0 == 3, "test_nonlinear grew by %ld, want 3: not every skb was non-linear",
	      n1 - n0);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_echo4_out(void) { return test_echo(0, 0); }
static int test_echo4_in(void) { return test_echo(0, 1); }
static int test_echo6_out(void) { return test_echo(1, 0); }
static int test_echo6_in(void) { return test_echo(1, 1); }

enum err_kind { DEST_UNREACH, TIME_EXCEEDED, PACKET_TOO_BIG };

/* a sends a UDP datagram that makes b answer with an ICMP error. */
static int test_error(int v6, enum err_kind kind, uint32_t snaplen)
{
	static const int types[2][3] = { { 3, 11, -1 }, { 1, 3, 2 } };
	static const int codes[2][3] = { { 3, 0, -1 }, { 4, 0, 0 } };
	int type = types[v6][kind], code = codes[v6][kind];
	struct addr far = { 0 };
	const struct addr *dst = kind == DEST_UNREACH ? &B : &far;
	size_t payload = kind == PACKET_TOO_BIG ? 1400 : 100;
	size_t ipl = v6 ? 40 : 20, orig_dgram = ipl + 8 + payload, quoted, q;
	int va = ifindex_in(NS_A, "va"), s, ttl = kind == TIME_EXCEEDED ? 1 : 64, err;
	uint8_t buf[2048];
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	const struct icmpcap_record *r;
	const uint8_t *d;
	uint64_t t0, t1;

	inet_pton(AF_INET, "10.9.9.9", &far.a4);
	inet_pton(AF_INET6, snaplen == 256 ? "2001:db8:9::9" : "2001:db8:9::2048", &far.a6);
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	only_type(&m, v6, type);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, snaplen);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	s = sock_in(NS_A, v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	CHECK(s >= 0, "udp socket");
	if (v6)
		setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl));
	else
		setsockopt(s, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
	for (size_t i = 0; i < payload; i++)
		buf[i] = (uint8_t)(i * 13 + 5);
	t0 = now_ns(CLOCK_REALTIME);
	CHECK(send_to(s, v6, dst, 33434, buf, payload) == (ssize_t)payload, "sendto: %s",
	      strerror(errno));
	CHECK(collect(&c, &rs, 1, 3000) == 1, "want 1 record, got %d", rs.n);
	t1 = now_ns(CLOCK_REALTIME);
	r = rs.r[0];
	d = rec_data(r);
	/* Linux quotes up to 576 (IPv4) or 1280 (IPv6) bytes of error message. */
	quoted = orig_dgram;
	if (quoted > (v6 ? 1280u - 48 : 576u - 28))
		quoted = v6 ? 1280 - 48 : 576 - 28;
	if (check_common(r, v6, &B, &A, ICMPCAP_HOOK_PRE_ROUTING, ICMPCAP_DIR_IN, va, t0, t1 + 1000000,
			 "error"))
		return -1;
	CHECK(r->icmp_type == type && r->icmp_code == code, "type/code %u/%u want %d/%d",
	      r->icmp_type, r->icmp_code, type, code);
	CHECK(r->flags == (r->cap_len < r->orig_len ? ICMPCAP_REC_F_TRUNCATED : 0) &&
	      r->icmp_id == 0 && r->icmp_seq == 0, "flags 0x%x id %u seq %u", r->flags, r->icmp_id,
	      r->icmp_seq);
	CHECK(r->ttl == 64, "ttl %u", r->ttl);
	CHECK(r->orig_len == ipl + 8 + quoted, "orig_len %u want %zu", r->orig_len, ipl + 8 + quoted);
	CHECK(r->cap_len == (r->orig_len < snaplen ? r->orig_len : snaplen), "cap_len %u", r->cap_len);
	CHECK(d[ipl] == type && d[ipl + 1] == code, "ICMP header in data");
	if (kind == PACKET_TOO_BIG)
		CHECK(d[ipl + 4] == 0 && d[ipl + 5] == 0 && d[ipl + 6] == 0x05 && d[ipl + 7] == 0x00,
		      "MTU field is not 1280");
	/* The quoted datagram: IP header, UDP header, our payload, byte for byte. */
	q = ipl + 8;
	if (v6) {
		/* b decrements the hop limit before it finds the packet too big. */
		int hl = kind == PACKET_TOO_BIG ? ttl - 1 : ttl;

		CHECK((d[q] >> 4) == 6 && d[q + 6] == 17 && d[q + 7] == hl,
		      "quoted IPv6 header: version %u nexthdr %u hop limit %u", d[q] >> 4, d[q + 6],
		      d[q + 7]);
		CHECK(!memcmp(d + q + 8, &A.a6, 16) && !memcmp(d + q + 24, addr_bytes(dst, 1), 16),
		      "quoted IPv6 addresses");
	} else {
		CHECK(d[q] == 0x45 && d[q + 9] == 17 && d[q + 8] == ttl,
		      "quoted IPv4 header: %02x proto %u ttl %u", d[q], d[q + 9], d[q + 8]);
		CHECK(!memcmp(d + q + 12, &A.a4, 4) && !memcmp(d + q + 16, addr_bytes(dst, 0), 4),
		      "quoted IPv4 addresses");
	}
	q += ipl;
	CHECK(((d[q + 2] << 8) | d[q + 3]) == 33434, "quoted UDP port");
	CHECK(((d[q + 4] << 8) | d[q + 5]) == (int)(8 + payload), "quoted UDP length");
	q += 8;
	if (r->cap_len > q) {
		size_t n = r->cap_len - q;

		CHECK(!memcmp(d + q, buf, n), "quoted payload differs (%zu bytes compared)", n);
	}
	close(s);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_dest_unreach4(void) { return test_error(0, DEST_UNREACH, 256); }
static int test_dest_unreach6(void) { return test_error(1, DEST_UNREACH, 256); }
static int test_time_exceeded4(void) { return test_error(0, TIME_EXCEEDED, 256); }
static int test_time_exceeded6(void) { return test_error(1, TIME_EXCEEDED, 256); }
static int test_packet_too_big6(void) { return test_error(1, PACKET_TOO_BIG, 2048); }
static int test_packet_too_big6_snap(void) { return test_error(1, PACKET_TOO_BIG, 256); }

static int pings(int n, int v6, uint16_t id)
{
	for (int i = 0; i < n; i++)
		if (ping_once(NS_A, v6, &B, id, i, 32))
			return -1;
	return 0;
}

static int test_filter_type(void)
{
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	only_type(&m, 0, 0);	/* echo replies only */
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!pings(3, 0, 0x5001) && !pings(2, 1, 0x5002), "ping failed");
	collect(&c, &rs, 100, 300);
	CHECK(rs.n == 3, "want 3 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++)
		CHECK(rs.r[i]->icmp_type == 0 && rs.r[i]->family == 4 && rs.r[i]->icmp_id == 0x5001,
		      "record %d: type %u family %u", i, rs.r[i]->icmp_type, rs.r[i]->family);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

/* CODES: Port Unreachable (3/3) only once code 3 is in the bitmap. */
static int test_filter_code(void)
{
	static struct reply r;
	uint8_t codes[32] = { 0 }, buf[16] = { 0 };
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	int s, err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	only_type(&m, 0, 3);
	bitmap_set(codes, 1);	/* host unreachable only */
	msg_put(&m, ICMPCAP_A_CODES, codes, 32);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	s = sock_in(NS_A, AF_INET, SOCK_DGRAM, 0);
	CHECK(s >= 0, "udp socket");
	CHECK(send_to(s, 0, &B, 33435, buf, sizeof(buf)) == sizeof(buf), "sendto");
	collect(&c, &rs, 100, 500);
	CHECK(rs.n == 0, "code 3 captured with CODES = {1}: %d records", rs.n);
	bitmap_set(codes, 3);
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_put(&m, ICMPCAP_A_CODES, codes, 32);
	err = nl_call(&c.nl, &m, &r);
	CHECK(!err, "UPDATE_FILTER: %s", strerror(-err));
	CHECK(send_to(s, 0, &B, 33435, buf, sizeof(buf)) == sizeof(buf), "sendto");
	collect(&c, &rs, 1, 2000);
	CHECK(rs.n == 1 && rs.r[0]->icmp_type == 3 && rs.r[0]->icmp_code == 3,
	      "CODES = {1, 3}: %d records", rs.n);
	close(s);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_filter_iface(void)
{
	static struct reply r;
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	uint32_t lo = ifindex_in(NS_A, "lo"), va = ifindex_in(NS_A, "va");
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	msg_put(&m, ICMPCAP_A_IFINDEXES, &lo, 4);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!pings(2, 0, 0x5101) && !pings(2, 1, 0x5102), "ping failed");
	collect(&c, &rs, 100, 300);
	CHECK(rs.n == 0, "lo filter: want 0 records, got %d", rs.n);
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_put(&m, ICMPCAP_A_IFINDEXES, &va, 4);
	err = nl_call(&c.nl, &m, &r);
	CHECK(!err, "UPDATE_FILTER: %s", strerror(-err));
	CHECK(r.a[ICMPCAP_A_IFINDEXES] && r.a[ICMPCAP_A_IFINDEXES]->nla_len == NLA_HDRLEN + 4,
	      "UPDATE_FILTER reply lacks IFINDEXES");
	CHECK(!pings(2, 0, 0x5103) && !pings(2, 1, 0x5104), "ping failed");
	collect(&c, &rs, 8, 1000);
	CHECK(rs.n == 8, "va filter: want 8 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++)
		CHECK(rs.r[i]->ifindex == va, "ifindex %u", rs.r[i]->ifindex);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_filter_dir(void)
{
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	msg_u32(&m, ICMPCAP_A_DIRECTIONS, 1u << ICMPCAP_DIR_IN);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!pings(2, 0, 0x5201) && !pings(2, 1, 0x5202), "ping failed");
	collect(&c, &rs, 100, 300);
	CHECK(rs.n == 4, "IN: want 4 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++)
		CHECK(rs.r[i]->dir == ICMPCAP_DIR_IN && (rs.r[i]->icmp_type == 0 ||
		      rs.r[i]->icmp_type == 129), "IN: dir %u type %u", rs.r[i]->dir, rs.r[i]->icmp_type);
	recs_free(&rs);
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_u32(&m, ICMPCAP_A_DIRECTIONS, 1u << ICMPCAP_DIR_OUT);
	err = nl_call(&c.nl, &m, NULL);
	CHECK(!err, "UPDATE_FILTER: %s", strerror(-err));
	CHECK(!pings(2, 0, 0x5203) && !pings(2, 1, 0x5204), "ping failed");
	collect(&c, &rs, 100, 300);
	CHECK(rs.n == 4, "OUT: want 4 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++)
		CHECK(rs.r[i]->dir == ICMPCAP_DIR_OUT && (rs.r[i]->icmp_type == 8 ||
		      rs.r[i]->icmp_type == 128), "OUT: dir %u type %u", rs.r[i]->dir,
		      rs.r[i]->icmp_type);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_snaplen(void)
{
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	uint8_t buf[512];
	size_t len = make_echo(buf, 0, 0x5301, 1, 200);
	int s, err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	only_type(&m, 0, 8);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 40);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	s = raw_icmp(NS_A, 0, 0);
	CHECK(send_to(s, 0, &B, 0, buf, len) == (ssize_t)len, "sendto");
	CHECK(collect(&c, &rs, 1, 2000) == 1, "want 1 record, got %d", rs.n);
	CHECK(rs.r[0]->cap_len == 40 && rs.r[0]->orig_len == 20 + len && rs.r[0]->len == 72 + 40,
	      "cap_len %u orig_len %u len %u", rs.r[0]->cap_len, rs.r[0]->orig_len, rs.r[0]->len);
	CHECK(rs.r[0]->flags == (ICMPCAP_REC_F_TRUNCATED | ICMPCAP_REC_F_HAS_ECHO |
				 ICMPCAP_REC_F_HAS_PID) && rs.r[0]->pid == (uint32_t)getpid(),
	      "flags 0x%x pid %u", rs.r[0]->flags, rs.r[0]->pid);
	CHECK(!memcmp(rec_data(rs.r[0]) + 20, buf, 20), "captured bytes differ");
	close(s);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_netns_isolation(void)
{
	struct nlmsg m;
	struct cap ca, cc;
	struct recs ra = { 0 }, rc = { 0 };
	struct addr lo4 = { 0 };
	int err;

	inet_pton(AF_INET, "127.0.0.1", &lo4.a4);
	inet_pton(AF_INET6, "::1", &lo4.a6);
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	err = cap_open_in(NS_A, &ca, &m);
	CHECK(!err, "subscribe a: %s", strerror(-err));
	err = cap_open_in(NS_C, &cc, &m);
	CHECK(!err, "subscribe c: %s", strerror(-err));
	for (int i = 0; i < 3; i++) {
		CHECK(!ping_once(NS_C, 0, &lo4, 0x5401, i, 16), "ping in c");
		CHECK(!ping_once(NS_C, 1, &lo4, 0x5402, i, 16), "ping6 in c");
		CHECK(!ping_once("init", 0, &lo4, 0x5403, i, 16), "ping in init");
	}
	collect(&cc, &rc, 24, 2000);
	collect(&ca, &ra, 100, 300);
	CHECK(ra.n == 0, "namespace a saw %d records of other namespaces", ra.n);
	/* Loopback: request and reply each at LOCAL_OUT and PRE_ROUTING. */
	CHECK(rc.n == 24, "namespace c: want 24 records, got %d", rc.n);
	for (int i = 0; i < rc.n; i++)
		CHECK(rc.r[i]->icmp_id == 0x5401 || rc.r[i]->icmp_id == 0x5402,
		      "namespace c saw id 0x%x", rc.r[i]->icmp_id);
	recs_free(&ra);
	recs_free(&rc);
	cap_close(&ca);
	cap_close(&cc);
	return 0;
}

static int get_stats(struct cap *c, uint64_t *captured, uint64_t *dropped, uint64_t *percpu_cap,
		     uint64_t *percpu_drop)
{
	static struct reply r;
	struct nlmsg m;
	int err;

	cap_msg(c, &m, ICMPCAP_CMD_GET_STATS);
	err = nl_call(&c->nl, &m, &r);
	if (err)
		return err;
	*captured = attr_u64(&r, ICMPCAP_A_CAPTURED, ~0ull);
	*dropped = attr_u64(&r, ICMPCAP_A_DROPPED, ~0ull);
	if (percpu_cap && r.a[ICMPCAP_A_PERCPU_CAPTURED])
		memcpy(percpu_cap, r.a[ICMPCAP_A_PERCPU_CAPTURED] + 1, c->nr_rings * 8);
	if (percpu_drop && r.a[ICMPCAP_A_PERCPU_DROPPED])
		memcpy(percpu_drop, r.a[ICMPCAP_A_PERCPU_DROPPED] + 1, c->nr_rings * 8);
	return 0;
}

static long count_cb_n;
static void count_cb(const struct icmpcap_record *r, void *arg)
{
	(void)r;
	(void)arg;
	count_cb_n++;
}

/* Two raw senders pinned to CPU 0 and 1 flood while the reader stalls. */
static int test_flood_drop_2cpu(void)
{
	const int per_cpu = 20000;
	uint64_t captured, dropped, pc[MAX_RINGS] = { 0 }, pd[MAX_RINGS] = { 0 };
	uint64_t *sent = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct nlmsg m;
	struct cap c;
	long got;
	int err;

	CHECK(sysconf(_SC_NPROCESSORS_ONLN) >= 2, "needs 2 CPUs");
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	msg_u32(&m, ICMPCAP_A_FAMILIES, ICMPCAP_FAMILY_F_IPV4);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 128);
	msg_u32(&m, ICMPCAP_A_WAKEUP_BYTES, 1024);
	only_type(&m, 0, 8);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	for (int cpu = 0; cpu < 2; cpu++) {
		if (fork() == 0) {
			cpu_set_t set;
			uint8_t buf[128];
			int s = raw_icmp(NS_A, 0, 0);

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
			for (int i = 0; i < per_cpu; i++) {
				size_t len = make_echo(buf, 0, 0x6000 + cpu, i, 32);

				if (send_to(s, 0, &B, 0, buf, len) == (ssize_t)len)
					sent[cpu]++;
			}
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	count_cb_n = 0;
	got = cap_drain(&c, count_cb, NULL);
	CHECK(got >= 0, "malformed ring");
	CHECK(!get_stats(&c, &captured, &dropped, pc, pd), "GET_STATS");
	CHECK((uint64_t)got == captured, "read %ld records, kernel says %llu captured", got,
	      (unsigned long long)captured);
	CHECK(captured + dropped == sent[0] + sent[1],
	      "captured %llu + dropped %llu != generated %llu", (unsigned long long)captured,
	      (unsigned long long)dropped, (unsigned long long)(sent[0] + sent[1]));
	CHECK(dropped > 0, "no drops with a 4 KiB ring");
	CHECK(pc[0] && pc[1] && pd[0] && pd[1], "both CPUs' rings used: cap %llu/%llu drop %llu/%llu",
	      (unsigned long long)pc[0], (unsigned long long)pc[1], (unsigned long long)pd[0],
	      (unsigned long long)pd[1]);
	for (uint32_t i = 0; i < c.nr_rings; i++)
		CHECK(c.ring[i]->dropped == pd[i] && c.ring[i]->captured == pc[i],
		      "ring %u header counters disagree with GET_STATS", i);
	printf("# flood_drop_2cpu: generated %llu captured %llu dropped %llu\n",
	       (unsigned long long)(sent[0] + sent[1]), (unsigned long long)captured,
	       (unsigned long long)dropped);
	cap_close(&c);
	return 0;
}

static int test_produce(struct cap *c, uint64_t count, uint64_t rate, uint64_t cpu_mask,
			uint32_t mode, struct reply *r)
{
	struct nlmsg m;

	cap_msg(c, &m, ICMPCAP_CMD_TEST_PRODUCE);
	msg_u64(&m, ICMPCAP_A_TEST_COUNT, count);
	msg_u64(&m, ICMPCAP_A_TEST_RATE, rate);
	msg_u64(&m, ICMPCAP_A_TEST_CPU_MASK, cpu_mask);
	msg_u32(&m, ICMPCAP_A_TEST_MODE, mode);
	return nl_call(&c->nl, &m, r);
}


/* Overflows the default ring: 1 MiB / 136 bytes is about 7700 records per CPU. */
static int test_produce_small(struct cap *c, struct reply *r)
{
	return test_produce(c, 20000, 0, 1, ICMPCAP_TEST_MODE_RING, r);
}

/* Synthetic producer on every CPU into 4 KiB rings, nobody reading. */
static int test_synth_drop(void)
{
	static struct reply r;
	struct nlmsg m;
	struct cap c;
	uint64_t gen, cap, drop, sc, sd;
	long got;
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 64);
	err = cap_open(&c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	err = test_produce(&c, 100000, 0, 0, ICMPCAP_TEST_MODE_RING, &r);
	CHECK(!err, "TEST_PRODUCE: %s", strerror(-err));
	gen = attr_u64(&r, ICMPCAP_A_TEST_GENERATED, 0);
	cap = attr_u64(&r, ICMPCAP_A_CAPTURED, 0);
	drop = attr_u64(&r, ICMPCAP_A_DROPPED, 0);
	CHECK(gen == 100000ull * sysconf(_SC_NPROCESSORS_ONLN), "generated %llu",
	      (unsigned long long)gen);
	CHECK(cap + drop == gen && drop > 0, "captured %llu + dropped %llu != generated %llu",
	      (unsigned long long)cap, (unsigned long long)drop, (unsigned long long)gen);
	count_cb_n = 0;
	got = cap_drain(&c, count_cb, NULL);
	CHECK(got == (long)cap, "read %ld records, producer wrote %llu", got, (unsigned long long)cap);
	CHECK(!get_stats(&c, &sc, &sd, NULL, NULL) && sc == cap && sd == drop, "GET_STATS disagrees");
	cap_close(&c);
	return 0;
}

struct produce_arg {
	struct cap *c;
	int delay_ms;
	uint64_t count;
	int err;
};

static void *produce_thread(void *p)
{
	static struct reply r;
	struct produce_arg *a = p;

	usleep(a->delay_ms * 1000);
	a->err = test_produce(a->c, a->count, 0, 1, ICMPCAP_TEST_MODE_RING, &r);
	return NULL;
}

/* Measures when a sleeping poll() wakes after a few records. */
static int poll_wake_ms(struct cap *c, uint64_t count)
{
	struct produce_arg a = { .c = c, .delay_ms = 100, .count = count };
	struct pollfd p = { .fd = c->dev, .events = POLLIN };
	pthread_t t;
	uint64_t t0;
	int n;

	cap_drain(c, NULL, NULL);
	pthread_create(&t, NULL, produce_thread, &a);
	t0 = now_ns(CLOCK_MONOTONIC);
	n = poll(&p, 1, 5000);
	t0 = now_ns(CLOCK_MONOTONIC) - t0;
	pthread_join(t, NULL);
	if (n != 1 || a.err)
		return -1;
	return (int)(t0 / 1000000);
}

/* Wakeups come per batch: watermark or timer, not per record. */
static int test_wakeup_batching(void)
{
	static struct reply r;
	struct nlmsg m;
	struct cap c;
	int ms, err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_WAKEUP_USEC, 1000000);
	err = cap_open(&c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	/* 10 small records: far below the byte watermark; only the 1 s timer wakes. */
	ms = poll_wake_ms(&c, 10);
	CHECK(ms >= 0, "poll/produce failed");
	CHECK(ms >= 600, "woken after %d ms: a record below the watermark woke the reader", ms);
	/* Record watermark 5: 10 records wake at once. */
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_u32(&m, ICMPCAP_A_WAKEUP_RECORDS, 5);
	err = nl_call(&c.nl, &m, &r);
	CHECK(!err, "UPDATE_FILTER: %s", strerror(-err));
	ms = poll_wake_ms(&c, 10);
	CHECK(ms >= 0 && ms < 800, "record watermark: woken after %d ms", ms);
	cap_close(&c);
	return 0;
}


/* UPDATE_FILTER that changes the hooks re-registers them. */
static int test_update_hooks(void)
{
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!pings(2, 0, 0x5501) && !pings(2, 1, 0x5502), "ping failed");
	collect(&c, &rs, 100, 300);
	CHECK(rs.n == 4, "LOCAL_OUT: want 4 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++)
		CHECK(rs.r[i]->hook == ICMPCAP_HOOK_LOCAL_OUT, "LOCAL_OUT: hook %u", rs.r[i]->hook);
	recs_free(&rs);
	for (int round = 0; round < 2; round++) {
		cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
		msg_u32(&m, ICMPCAP_A_HOOKS, 1u << (round ? ICMPCAP_HOOK_LOCAL_IN :
							     ICMPCAP_HOOK_PRE_ROUTING));
		msg_u32(&m, ICMPCAP_A_FAMILIES, round ? ICMPCAP_FAMILY_F_IPV6 :
						       ICMPCAP_FAMILY_F_IPV4 | ICMPCAP_FAMILY_F_IPV6);
		err = nl_call(&c.nl, &m, NULL);
		CHECK(!err, "UPDATE_FILTER hooks: %s", strerror(-err));
		CHECK(!pings(2, 0, 0x5503) && !pings(2, 1, 0x5504), "ping failed");
		collect(&c, &rs, 100, 300);
		CHECK(rs.n == (round ? 2 : 4), "round %d: got %d records", round, rs.n);
		for (int i = 0; i < rs.n; i++)
			CHECK(rs.r[i]->hook == (round ? ICMPCAP_HOOK_LOCAL_IN : ICMPCAP_HOOK_PRE_ROUTING) &&
			      rs.r[i]->dir == ICMPCAP_DIR_IN && (!round || rs.r[i]->family == 6),
			      "round %d: hook %u dir %u family %u", round, rs.r[i]->hook, rs.r[i]->dir,
			      rs.r[i]->family);
		recs_free(&rs);
	}
	cap_close(&c);
	return 0;
}

/* FORWARD and POST_ROUTING in the router namespace b. */
static int test_forward_hooks(void)
{
	struct addr far = { 0 };
	struct nlmsg m;
	struct cap c;
	struct recs rs = { 0 };
	uint8_t buf[128];
	int vb = ifindex_in(NS_B, "vb"), err, fwd = 0, post = 0;

	inet_pton(AF_INET, "10.9.9.7", &far.a4);
	inet_pton(AF_INET6, "2001:db8:9::7", &far.a6);
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	msg_u32(&m, ICMPCAP_A_HOOKS, (1u << ICMPCAP_HOOK_FORWARD) | (1u << ICMPCAP_HOOK_POST_ROUTING));
	err = cap_open_in(NS_B, &c, &m);
	CHECK(!err, "subscribe in b: %s", strerror(-err));
	for (int v6 = 0; v6 < 2; v6++) {
		int s = raw_icmp(NS_A, v6, 0);
		size_t len = make_echo(buf, v6, 0x5600 + v6, 1, 24);

		/* b routes it back to a, which drops it: one forward in b. */
		CHECK(send_to(s, v6, &far, 0, buf, len) == (ssize_t)len, "sendto");
		close(s);
	}
	collect(&c, &rs, 4, 2000);
	CHECK(rs.n == 4, "want 4 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++) {
		const struct icmpcap_record *r = rs.r[i];
		int v6 = r->family == 6;

		CHECK(r->dir == ICMPCAP_DIR_FORWARD && r->ifindex == (uint32_t)vb && r->ttl == 63 &&
		      r->icmp_id == 0x5600 + v6 && !memcmp(r->saddr, addr_bytes(&A, v6), v6 ? 16 : 4) &&
		      !memcmp(r->daddr, addr_bytes(&far, v6), v6 ? 16 : 4),
		      "record %d: hook %u dir %u ifindex %u ttl %u id 0x%x", i, r->hook, r->dir,
		      r->ifindex, r->ttl, r->icmp_id);
		fwd += r->hook == ICMPCAP_HOOK_FORWARD;
		post += r->hook == ICMPCAP_HOOK_POST_ROUTING;
	}
	CHECK(fwd == 2 && post == 2, "FORWARD %d POST_ROUTING %d, want 2 and 2", fwd, post);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

/* Events on the "events" group: OVERFLOW, CONFIG_CHANGED, SUBSCRIPTION_END. */
static int test_events(void)
{
	static char rbuf[NL_BUF];
	static struct reply r;
	struct nlmsg m;
	struct nl ev;
	struct cap c;
	int err, overflow = 0, changed = 0, end = 0, grp;
	uint64_t dropped = 0;

	err = cap_open(&c, NULL);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!nl_open_family(&ev) && ev.mcgrp, "events group not found");
	grp = ev.mcgrp;
	CHECK(!setsockopt(ev.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)),
	      "join events: %s", strerror(errno));
	close(c.nl.fd);
	CHECK(!nl_open_family(&c.nl), "netlink");
	/* The subscription belongs to the closed socket: it ends. */
	usleep(300000);
	cap_close(&c);
	err = cap_open(&c, NULL);
	CHECK(!err, "subscribe: %s", strerror(-err));
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 100);
	CHECK(!nl_call(&c.nl, &m, NULL), "UPDATE_FILTER");
	CHECK(!test_produce_small(&c, &r), "TEST_PRODUCE");
	usleep(300000);
	/* Close the file while the socket is still open: reason FILE_CLOSED. */
	for (uint32_t i = 0; i < c.nr_rings; i++)
		ring_unmap(c.stride, c.ring[i], c.cons[i]);
	close(c.dev);
	usleep(100000);
	close(c.nl.fd);
	for (;;) {
		struct pollfd p = { .fd = ev.fd, .events = POLLIN };
		ssize_t n;
		struct nlmsghdr *nh;

		if (poll(&p, 1, 500) <= 0)
			break;
		n = recv(ev.fd, rbuf, sizeof(rbuf), 0);
		for (nh = (struct nlmsghdr *)rbuf; n > 0 && NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type != ev.family)
				continue;
			parse_attrs(&r, nh, ICMPCAP_A_MAX);
			CHECK(r.cmd == ICMPCAP_CMD_EVENT && r.a[ICMPCAP_A_SUB_ID], "bad event message");
			switch (attr_u32(&r, ICMPCAP_A_EVENT_TYPE, 0)) {
			case ICMPCAP_EVENT_OVERFLOW:
				overflow++;
				dropped = attr_u64(&r, ICMPCAP_A_DROPPED, 0);
				break;
			case ICMPCAP_EVENT_CONFIG_CHANGED:
				changed++;
				break;
			case ICMPCAP_EVENT_SUBSCRIPTION_END:
				end |= 1 << attr_u32(&r, ICMPCAP_A_END_REASON, 0);
				break;
			}
		}
	}
	CHECK(overflow >= 1 && dropped > 0, "no OVERFLOW event (%d, dropped %llu)", overflow,
	      (unsigned long long)dropped);
	CHECK(changed == 1, "CONFIG_CHANGED events: %d", changed);
	CHECK(end == ((1 << ICMPCAP_END_SOCKET_CLOSED) | (1 << ICMPCAP_END_FILE_CLOSED)),
	      "SUBSCRIPTION_END reasons 0x%x", end);
	close(ev.fd);
	return 0;
}

static int get_info(struct reply *r, int dev)
{
	struct nl nl;
	struct nlmsg m;
	int err = nl_open_family(&nl);

	if (err)
		return err;
	msg_init(&m, nl.family, ICMPCAP_CMD_GET_INFO, 0);
	if (dev >= 0)
		msg_u32(&m, ICMPCAP_A_DEV_FD, dev);
	err = nl_call(&nl, &m, r);
	close(nl.fd);
	return err;
}

static int nr_subs(void)
{
	static struct reply r;

	if (get_info(&r, -1))
		return -1;
	return (int)attr_u32(&r, ICMPCAP_A_NR_SUBSCRIPTIONS, 9999);
}

static int module_refcnt(void)
{
	char buf[32] = "";
	int fd = open("/sys/module/icmpcap/refcnt", O_RDONLY);

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return atoi(buf);
}

static int read_proc_net(const char *ns, char *buf, size_t size);

/* Ring memory of all subscriptions, as the module accounts it; -1: unknown. */
static long long ring_bytes(void)
{
	static char buf[16384];
	long long v = -1;
	char *p;

	if (!read_proc_net("init", buf, sizeof(buf)) && (p = strstr(buf, "\nring_bytes ")))
		sscanf(p, "\nring_bytes %lld", &v);
	return v;
}

static int test_reader_killed(void)
{
	long long rb0 = ring_bytes(), rb1;
	int pfd[2];
	pid_t pid;
	char ch;
	int st;

	CHECK(nr_subs() == 0 && module_refcnt() == 0, "not idle at start");
	CHECK(!pipe(pfd), "pipe");
	pid = fork();
	if (pid == 0) {
		struct cap c;

		if (cap_open_in(NS_A, &c, NULL))
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		for (;;) {
			struct pollfd p = { .fd = c.dev, .events = POLLIN };

			poll(&p, 1, 100);
			cap_drain(&c, NULL, NULL);
		}
	}
	close(pfd[1]);
	CHECK(read(pfd[0], &ch, 1) == 1, "child did not subscribe");
	CHECK(nr_subs() == 1, "want 1 subscription, have %d", nr_subs());
	CHECK(!pings(5, 0, 0x7001), "ping");
	/* Mid-capture: more traffic in flight while it dies. */
	if (fork() == 0) {
		pings(20, 0, 0x7002);
		_exit(0);
	}
	usleep(20000);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	while (wait(NULL) > 0)
		;
	CHECK(WIFSIGNALED(st), "child not killed");
	CHECK(nr_subs() == 0, "subscription survived its reader (%d)", nr_subs());
	CHECK(module_refcnt() == 0, "module refcnt %d after the reader died", module_refcnt());
	/* Its rings (2 x 1 MiB) were freed. */
	rb1 = ring_bytes();
	CHECK(rb0 == 0 && rb1 == 0, "ring memory %lld bytes before, %lld after", rb0, rb1);
	return 0;
}

/* A requester killed inside a (practically endless) TEST_PRODUCE exits promptly. */
static int test_produce_killed(void)
{
	uint64_t t0;
	pid_t pid;
	int st;

	pid = fork();
	if (pid == 0) {
		static struct reply r;
		struct cap c;

		if (cap_open(&c, NULL))
			_exit(1);
		test_produce(&c, 1000000000000ull, 1000, 0, ICMPCAP_TEST_MODE_RING, &r);
		_exit(2);
	}
	usleep(500000);
	CHECK(nr_subs() == 1, "child did not subscribe");
	t0 = now_ns(CLOCK_MONOTONIC);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	t0 = now_ns(CLOCK_MONOTONIC) - t0;
	CHECK(WIFSIGNALED(st), "child was not killed");
	CHECK(t0 < 2000000000ull, "killed requester took %llu ms to exit",
	      (unsigned long long)(t0 / 1000000));
	CHECK(nr_subs() == 0 && module_refcnt() == 0, "subscription or module reference left");
	return 0;
}

/*
 * Floods loopback in namespace c from a process pinned to cpu: raw echo
 * requests to 127.0.0.1 and ::1 (each passes LOCAL_OUT and PRE_ROUTING, and
 * so does its reply) until killed. Counts what it sent in *sent.
 */
static void flood_loopback(int cpu, volatile uint64_t *sent)
{
	struct addr lo = { 0 };
	uint8_t buf[128];
	cpu_set_t set;
	int s4, s6;

	inet_pton(AF_INET, "127.0.0.1", &lo.a4);
	inet_pton(AF_INET6, "::1", &lo.a6);
	/* Dies with the test; yields to the controllers, which must make progress. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (nice(19) < 0)
		_exit(1);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	s4 = raw_icmp(NS_C, 0, 0);
	s6 = raw_icmp(NS_C, 1, 0);
	for (uint16_t seq = 0;; seq++) {
		int v6 = seq & 1;
		size_t len = make_echo(buf, v6, 0x7700 + cpu, seq, 24);

		if (send_to(v6 ? s6 : s4, v6, &lo, 0, buf, len) == (ssize_t)len)
			sent[cpu]++;
		/* Busy hooks, not a softirq that starves RCU's kthread under TCG. */
		if ((seq & 15) == 15)
			usleep(1000);
	}
}

/*
 * One controller of test_lifetime_stress: in namespace c, opens, subscribes,
 * and ends the subscription in one of five ways, iterations times. Returns
 * the number of records the mapped rings had seen, or -1 on an error.
 */
static long lifetime_controller(int id, int iterations, uint64_t deadline,
				volatile uint64_t *done)
{
	static struct reply r;
	long seen = 0;
	struct nlmsg m;
	struct nl nl;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ns_enter(NS_C) || nl_open_family(&nl))
		return -1;
	for (int i = 0; i < iterations && now_ns(CLOCK_MONOTONIC) < deadline; i++) {
		int dev = open("/dev/icmpcap", O_RDWR | O_CLOEXEC), err;
		struct icmpcap_ring_producer *h;
		uint32_t stride = 0;
		void *whole;

		if (dev < 0)
			return -1;
		msg_init(&m, nl.family, ICMPCAP_CMD_SUBSCRIBE, 0);
		msg_u32(&m, ICMPCAP_A_DEV_FD, dev);
		msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
		msg_u32(&m, ICMPCAP_A_SNAPLEN, 64);
		msg_u32(&m, ICMPCAP_A_WAKEUP_RECORDS, 1);	/* an irq_work per record */
		msg_u32(&m, ICMPCAP_A_WAKEUP_USEC, 1000);
		err = nl_call(&nl, &m, &r);
		if (err) {
			fprintf(stderr, "controller %d: SUBSCRIBE %d: %s\n", id, i, strerror(-err));
			return -1;
		}
		stride = attr_u32(&r, ICMPCAP_A_RING_STRIDE, 0);
		switch ((i + id) % 5) {
		case 0:	/* close with hooks live */
			close(dev);
			break;
		case 1:	/* the last munmap releases the file */
			/* The whole ring, read-only, as an observer maps it. */
			whole = mmap(NULL, stride, PROT_READ, MAP_SHARED, dev, (off_t)stride * (i & 1));
			close(dev);
			if (whole == MAP_FAILED)
				return -1;
			h = (void *)((char *)whole + ICMPCAP_RING_PRODUCER_OFF);
			for (int k = 0; k < 50 && !h->captured; k++)
				sched_yield();
			seen += h->captured;
			munmap(whole, stride);
			break;
		case 2:	/* hook changes under traffic, then close */
			for (int k = 0; k < 3; k++) {
				msg_init(&m, nl.family, ICMPCAP_CMD_UPDATE_FILTER, 0);
				msg_u32(&m, ICMPCAP_A_DEV_FD, dev);
				msg_u32(&m, ICMPCAP_A_HOOKS, k & 1 ? 0x1f : 0x09);
				msg_u32(&m, ICMPCAP_A_FAMILIES, k == 1 ? 1 : 3);
				msg_u32(&m, ICMPCAP_A_SNAPLEN, 32 + 16 * k);
				err = nl_call(&nl, &m, NULL);
				if (err) {
					fprintf(stderr, "controller %d: UPDATE_FILTER: %s\n", id,
						strerror(-err));
					return -1;
				}
			}
			close(dev);
			break;
		case 3:	/* UNSUBSCRIBE, then close */
			msg_init(&m, nl.family, ICMPCAP_CMD_UNSUBSCRIBE, 0);
			msg_u32(&m, ICMPCAP_A_DEV_FD, dev);
			if (nl_call(&nl, &m, NULL))
				return -1;
			close(dev);
			break;
		case 4:	/* the subscribing socket goes first (asynchronous end) */
			close(nl.fd);
			close(dev);
			if (nl_open_family(&nl))
				return -1;
			break;
		}
		done[id]++;
	}
	close(nl.fd);
	return seen;
}

/*
 * Teardown under load. Two flooders pinned to CPU 0 and 1 keep the hooks busy
 * on both CPUs while two controllers end subscriptions every way there is
 * (close, last munmap, UPDATE_FILTER then close, UNSUBSCRIBE, socket close),
 * with an irq_work per record and the shortest timer period. run.sh boots the
 * guest with slub_debug=FZPU init_on_free=1 page_poison=1 panic_on_warn=1: a
 * hook, irq_work or timer that touches a freed client, ring or filter
 * panics the guest (and every later test has no result).
 */
static int test_lifetime_stress(void)
{
	enum { CONTROLLERS = 6 };
	/* Enough for thousands of ends; the time bound keeps a slow host's suite short. */
	const int iterations = 500;
	const uint64_t deadline = now_ns(CLOCK_MONOTONIC) + 40ull * 1000000000;
	volatile uint64_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile uint64_t *sent = shared, *done = shared + 2;
	volatile long *seen = (volatile long *)(shared + 2 + CONTROLLERS);
	uint64_t total = 0;
	long seen_total = 0;
	pid_t flood[2], ctl[CONTROLLERS];
	int st, ok = 1;

	struct nlmsg m;
	struct cap anchor;
	int err;

	CHECK(shared != MAP_FAILED, "mmap");
	CHECK(sysconf(_SC_NPROCESSORS_ONLN) >= 2, "needs 2 CPUs");
	/*
	 * Holds every hook point in c for the whole run: the controllers'
	 * subscriptions come and go without netfilter's static keys flipping
	 * (each flip patches kernel text, which TCG makes very slow); each
	 * subscription's own lifetime is what is under test.
	 */
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 0x1f);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
	msg_u32(&m, ICMPCAP_A_WAKEUP_USEC, 1000000);
	err = cap_open_in(NS_C, &anchor, &m);
	CHECK(!err, "anchor subscription: %s", strerror(-err));
	for (int cpu = 0; cpu < 2; cpu++) {
		flood[cpu] = fork();
		if (flood[cpu] == 0) {
			flood_loopback(cpu, sent);
			_exit(0);
		}
	}
	/* Several controllers: their waits for readers overlap, as real closes do. */
	for (int id = 0; id < CONTROLLERS; id++) {
		ctl[id] = fork();
		if (ctl[id] == 0) {
			long n = lifetime_controller(id, iterations, deadline, done);

			seen[id] = n;
			_exit(n < 0 ? 1 : 0);
		}
	}
	for (int id = 0; id < CONTROLLERS; id++) {
		waitpid(ctl[id], &st, 0);
		ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
		total += done[id];
		seen_total += seen[id];
	}
	for (int cpu = 0; cpu < 2; cpu++) {
		kill(flood[cpu], SIGKILL);
		waitpid(flood[cpu], NULL, 0);
	}
	printf("# lifetime_stress: %llu subscriptions ended under %llu + %llu packets, "
	       "%ld records seen\n", (unsigned long long)total, (unsigned long long)sent[0],
	       (unsigned long long)sent[1], seen_total);
	CHECK(ok, "a controller failed after %llu iterations in all", (unsigned long long)total);
	for (int id = 0; id < CONTROLLERS; id++)
		CHECK(done[id] >= 20, "controller %d ended only %llu subscriptions", id,
		      (unsigned long long)done[id]);
	CHECK(sent[0] > 1000 && sent[1] > 1000, "flood too thin: %llu + %llu packets",
	      (unsigned long long)sent[0], (unsigned long long)sent[1]);
	CHECK(seen_total > 0, "no subscription captured anything: hooks never ran");
	cap_close(&anchor);
	/* Socket-close ends are asynchronous: give the workqueue a moment. */
	for (int k = 0; k < 40 && nr_subs() != 0; k++)
		usleep(50000);
	CHECK(nr_subs() == 0, "%d subscriptions left", nr_subs());
	CHECK(module_refcnt() == 0, "module refcnt %d", module_refcnt());
	return 0;
}

static int test_socket_close(void)
{
	static struct reply r;
	struct pollfd p;
	struct nlmsg m;
	struct nl nl;
	struct cap c;
	uint64_t cap, drop;
	long got;
	int err;

	/* Echoes only: neighbour discovery or MLD left over from earlier tests' IPv6 traffic (a NUD probe
	 * fires up to 5 s after the last use of a neighbour) would add records the test cannot expect. */
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!pings(2, 0, 0x7101), "ping");
	close(c.nl.fd);
	c.nl.fd = -1;
	p = (struct pollfd){ .fd = c.dev, .events = POLLIN };
	/* The end is asynchronous (workqueue); POLLIN is also set: rings hold data. */
	for (int i = 0; i < 40 && !(p.revents & POLLHUP); i++) {
		usleep(50000);
		poll(&p, 1, 0);
	}
	CHECK(p.revents & POLLHUP, "no POLLHUP after the netlink socket closed");
	CHECK(nr_subs() == 0, "subscription survived its socket");
	/* Rings stay readable; stats stay available; the file cannot subscribe again. */
	got = cap_drain(&c, NULL, NULL);
	CHECK(got == 4, "the rings hold %ld records after the end, want the 4 of two pings", got);
	CHECK(!nl_open_family(&nl), "netlink");
	c.nl = nl;
	err = get_stats(&c, &cap, &drop, NULL, NULL);
	CHECK(!err && cap == 4 && drop == 0, "GET_STATS after end: %d, %llu captured, %llu dropped", err,
	      (unsigned long long)cap, (unsigned long long)drop);
	cap_msg(&c, &m, ICMPCAP_CMD_SUBSCRIBE);
	err = nl_call(&c.nl, &m, &r);
	CHECK(err == -EBUSY, "re-SUBSCRIBE on an ended file: %d, want EBUSY", err);
	cap_msg(&c, &m, ICMPCAP_CMD_UNSUBSCRIBE);
	err = nl_call(&c.nl, &m, &r);
	CHECK(err == -ENOENT, "UNSUBSCRIBE of an ended subscription: %d, want ENOENT", err);
	cap_close(&c);
	return 0;
}

static int test_resubscribe(void)
{
	struct cap c;
	struct recs rs = { 0 };
	struct nlmsg m;
	int err;

	for (int round = 0; round < 3; round++) {
		msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
		echo_types(&m);
		err = cap_open_in(NS_A, &c, &m);
		CHECK(!err, "round %d: subscribe: %s", round, strerror(-err));
		CHECK(!pings(1, 0, 0x7200 + round), "ping");
		CHECK(collect(&c, &rs, 2, 1000) == 2, "round %d: %d records", round, rs.n);
		CHECK(rs.r[0]->icmp_id == 0x7200 + round, "round %d: stale record", round);
		recs_free(&rs);
		cap_msg(&c, &m, ICMPCAP_CMD_UNSUBSCRIBE);
		err = nl_call(&c.nl, &m, NULL);
		CHECK(!err, "UNSUBSCRIBE: %s", strerror(-err));
		CHECK(nr_subs() == 0, "UNSUBSCRIBE left a subscription");
		cap_close(&c);
	}
	return 0;
}

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static int load_module(const char *params)
{
	int fd = open("/lib/icmpcap.ko", O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	err = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return err;
}

static int test_unload_while_mapped(void)
{
	struct cap c;
	uint32_t i;
	int err;

	err = cap_open_in(NS_A, &c, NULL);
	CHECK(!err, "subscribe: %s", strerror(-err));
	close(c.dev);
	close(c.nl.fd);
	c.dev = c.nl.fd = -1;
	err = delete_module("icmpcap");
	CHECK(err == -EAGAIN || err == -EBUSY, "unload while mapped: %d, want EBUSY/EAGAIN", err);
	CHECK(!pings(1, 0, 0x7301), "ping with the module pinned");
	CHECK(c.ring[0]->abi_version == ICMPCAP_ABI_VERSION, "mapping unreadable");
	for (i = 0; i < c.nr_rings; i++)
		ring_unmap(c.stride, c.ring[i], c.cons[i]);
	err = delete_module("icmpcap");
	CHECK(!err, "unload after munmap: %s", strerror(-err));
	CHECK(access("/sys/module/icmpcap", F_OK) != 0, "module still present");
	CHECK(!pings(1, 0, 0x7302), "ping without the module");
	err = load_module("");
	CHECK(!err, "reload: %s", strerror(-err));
	err = cap_open_in(NS_A, &c, NULL);
	CHECK(!err, "subscribe after reload: %s", strerror(-err));
	cap_close(&c);
	return 0;
}

/*
 * In a child: drops root (uid/gid 65534, supplementary group gid when
 * groups is 1); returns the errors of open, GET_INFO without DEV_FD, and
 * SUBSCRIBE with its own file when open worked, else with dev (a file it
 * inherited, -1: none).
 */
static int as_user(gid_t gid, int groups, int dev, int *e_open, int *e_info, int *e_sub)
{
	int pfd[2], res[3] = { 0 };
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		static struct reply r;
		struct nlmsg m;
		struct nl nl;
		int fd;

		if (setgroups(groups, &gid) || setgid(65534) || setuid(65534))
			_exit(1);
		fd = open("/dev/icmpcap", O_RDWR);
		res[0] = fd < 0 ? -errno : 0;
		res[1] = get_info(&r, -1);
		if (fd >= 0)
			dev = fd;
		if (!nl_open_family(&nl)) {
			msg_init(&m, nl.family, ICMPCAP_CMD_SUBSCRIBE, 0);
			msg_u32(&m, ICMPCAP_A_DEV_FD, dev < 0 ? 1000 : dev);
			msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
			res[2] = nl_call(&nl, &m, &r);
		} else {
			res[2] = -9999;
		}
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], res, sizeof(res)) != sizeof(res))
		return -1;
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	*e_open = res[0];
	*e_info = res[1];
	*e_sub = res[2];
	return 0;
}

/*
 * Permission is the node's (0660 root:root until udev or chgrp gives it a
 * group) and then the file: a non-member cannot open the device, cannot
 * list subscriptions, and cannot name someone else's file; a file it was
 * given (inherited across fork) works, as any descriptor does.
 */
static int test_non_member(void)
{
	static struct reply r;
	int eo, ei, es, dev, err;
	struct stat st;
	struct nlmsg m;
	struct cap c;

	CHECK(!stat("/dev/icmpcap", &st) && (st.st_mode & 07777) == 0660 && st.st_uid == 0,
	      "/dev/icmpcap: mode %o uid %u, want 0660 root", st.st_mode & 07777, st.st_uid);
	/* A live subscription that the non-member tries to end. */
	err = cap_open_in(NS_A, &c, NULL);
	CHECK(!err, "subscribe: %s", strerror(-err));
	dev = open("/dev/icmpcap", O_RDWR);
	CHECK(dev >= 0, "root open");
	CHECK(!as_user(1000, 1, -1, &eo, &ei, &es), "child");
	CHECK(eo == -EACCES, "open as non-member: %d, want EACCES", eo);
	CHECK(ei == -EPERM, "GET_INFO without DEV_FD as non-member: %d, want EPERM", ei);
	CHECK(es == -EBADF, "SUBSCRIBE naming no file of its own: %d, want EBADF", es);
	CHECK(nr_subs() == 1, "subscriptions changed: %d", nr_subs());
	/* A file it holds (inherited): it may subscribe with it. */
	CHECK(!as_user(1000, 1, dev, &eo, &ei, &es), "child");
	CHECK(es == 0, "SUBSCRIBE with an inherited file: %d, want 0", es);
	CHECK(!get_info(&r, dev) && r.a[ICMPCAP_A_SUB_ID], "the inherited file is not subscribed");
	/* The subscription ends with its socket (the child's, now closed). */
	for (int k = 0; k < 40 && nr_subs() != 1; k++)
		usleep(50000);
	CHECK(nr_subs() == 1, "the child's subscription outlived its socket: %d", nr_subs());
	/* UNSUBSCRIBE of someone else's subscription: it holds no such file. */
	if (fork() == 0) {
		struct nl nl;

		close(c.dev);
		if (setgid(65534) || setuid(65534) || nl_open_family(&nl))
			_exit(2);
		msg_init(&m, nl.family, ICMPCAP_CMD_UNSUBSCRIBE, 0);
		msg_u32(&m, ICMPCAP_A_DEV_FD, c.dev);
		/* The number is free or (reused by the socket) not the device. */
		err = nl_call(&nl, &m, NULL);
		_exit(err == -EBADF || err == -ENOTTY ? 0 : 1);
	}
	{
		int ws;

		wait(&ws);
		CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "UNSUBSCRIBE as non-member not EBADF/ENOTTY");
	}
	CHECK(nr_subs() == 1, "subscription ended by a non-member");
	close(dev);
	cap_close(&c);
	return 0;
}

/* The udev path: the node's group, given with a real chgrp, is the permission. */
static int test_group_member(void)
{
	int eo, ei, es;
	struct stat st;

	CHECK(!system("chgrp 4242 /dev/icmpcap"), "chgrp 4242 /dev/icmpcap failed");
	CHECK(!stat("/dev/icmpcap", &st) && st.st_gid == 4242, "chgrp had no effect");
	CHECK(!as_user(4242, 1, -1, &eo, &ei, &es), "child");
	CHECK(eo == 0 && es == 0, "member of the node's group: open %d subscribe %d", eo, es);
	CHECK(ei == -EPERM, "GET_INFO without DEV_FD needs CAP_NET_ADMIN: %d", ei);
	CHECK(!as_user(4243, 1, -1, &eo, &ei, &es), "child");
	CHECK(eo == -EACCES, "non-member of the node's group: open %d", eo);
	CHECK(!system("chgrp 0 /dev/icmpcap"), "chgrp 0 /dev/icmpcap failed");
	CHECK(!as_user(4242, 1, -1, &eo, &ei, &es), "child");
	CHECK(eo == -EACCES, "former group after chgrp 0: open %d", eo);
	for (int k = 0; k < 40 && nr_subs() != 0; k++)
		usleep(50000);
	CHECK(nr_subs() == 0, "leftover subscription");
	return 0;
}

/* In a child: stores a byte at p; returns the signal that killed it, or 0. */
static int store_signal(volatile uint8_t *p)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		*p = 0x5a;
		_exit(0);
	}
	waitpid(pid, &st, 0);
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

/*
 * As kernel/bpf/ringbuf.c: only the consumer page may be mapped writable. The
 * producer page (producer_pos, counters) and the records are read-only to
 * user space and cannot be made writable, so a consumer can corrupt neither
 * what the kernel publishes nor what it has not read yet.
 */
static int test_ring_pages_ro(void)
{
	struct recs rs = { 0 };
	struct nlmsg m;
	struct cap c;
	void *p;
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	only_type(&m, 0, 8);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	/* The whole ring, the producer page, or the data, writable: refused. */
	{
		const struct {
			size_t len;
			off_t off;
			const char *what;
		} w[] = {
			{ c.stride, 0, "the whole ring" },
			{ RING_RO_LEN(&c), ICMPCAP_RING_PRODUCER_OFF, "producer page and data" },
			{ ICMPCAP_RING_PAGE_SIZE, ICMPCAP_RING_PRODUCER_OFF, "the producer page" },
			{ ICMPCAP_RING_PAGE_SIZE, ICMPCAP_RING_DATA_OFF, "a data page" },
		};

		for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
			p = mmap(NULL, w[i].len, PROT_READ | PROT_WRITE, MAP_SHARED, c.dev, w[i].off);
			CHECK(p == MAP_FAILED && (errno == EPERM || errno == EACCES),
			      "writable mapping of %s: %s, want EPERM", w[i].what,
			      p == MAP_FAILED ? strerror(errno) : "mapped");
		}
	}
	/* Nor can the read-only mapping become writable. */
	CHECK(mprotect(c.ring[0], RING_RO_LEN(&c), PROT_READ | PROT_WRITE) != 0 && errno == EACCES,
	      "mprotect made the producer page writable: %s", strerror(errno));
	/* A store into the producer page or the data faults, in a child. */
	CHECK(store_signal((uint8_t *)&c.ring[0]->producer_pos) != 0,
	      "a store into producer_pos did not fault");
	CHECK(store_signal(RING_DATA(c.ring[0])) != 0, "a store into the data did not fault");
	/* The consumer page is the consumer's (a reserved byte: consumer_pos stays right). */
	CHECK(store_signal((uint8_t *)c.cons[0] + 64) == 0, "a store into the consumer page failed");
	/* consumer_pos stays the consumer's, and capture works through it. */
	CHECK(!pings(3, 0, 0x7a01), "ping");
	collect(&c, &rs, 3, 2000);
	CHECK(rs.n == 3, "%d records, want 3", rs.n);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_bad_mmap(void)
{
	uint64_t cap0, drop0, cap1, drop1, pc[MAX_RINGS], pd[MAX_RINGS];
	struct nlmsg m;
	struct cap c;
	void *p;
	int dev, err, ro;

	dev = open("/dev/icmpcap", O_RDWR);
	CHECK(dev >= 0, "open");
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, dev, 0);
	CHECK(p == MAP_FAILED && errno == ENXIO, "mmap before SUBSCRIBE: %s, want ENXIO",
	      p == MAP_FAILED ? strerror(errno) : "mapped");
	close(dev);
	/* In a, where the pings below go; LOCAL_OUT echo requests only. */
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 64);
	only_type(&m, 0, 8);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	struct {
		size_t len;
		off_t off;
		int prot, flags, err;
		const char *what;
	} cases[] = {
		{ c.stride - 4096, 0, PROT_READ, MAP_SHARED, EINVAL, "short length" },
		{ c.stride + 4096, 0, PROT_READ, MAP_SHARED, EINVAL, "long length" },
		{ c.stride, 4096, PROT_READ, MAP_SHARED, EINVAL, "offset inside a ring" },
		{ c.stride, (off_t)c.stride * c.nr_rings, PROT_READ, MAP_SHARED, EINVAL, "ring past the end" },
		{ c.stride, (off_t)c.stride * 100000, PROT_READ, MAP_SHARED, EINVAL, "huge offset" },
		{ c.stride, 0, PROT_READ | PROT_WRITE, MAP_PRIVATE, EINVAL, "MAP_PRIVATE" },
		{ c.stride, 0, PROT_READ | PROT_EXEC, MAP_SHARED, EPERM, "PROT_EXEC" },
		{ 2 * (size_t)c.stride, 0, PROT_READ, MAP_SHARED, EINVAL, "two rings at once" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = mmap(NULL, cases[i].len, cases[i].prot, cases[i].flags, c.dev, cases[i].off);
		CHECK(p == MAP_FAILED && errno == cases[i].err, "%s: %s, want %s", cases[i].what,
		      p == MAP_FAILED ? strerror(errno) : "mapped", strerror(cases[i].err));
	}
	CHECK(mprotect(c.ring[0], RING_RO_LEN(&c), PROT_READ | PROT_EXEC) != 0,
	      "mprotect PROT_EXEC allowed");
	p = mremap(c.ring[0], RING_RO_LEN(&c), 2 * c.stride, MREMAP_MAYMOVE);
	CHECK(p == MAP_FAILED, "mremap grew a ring");
	/* Records are read-only to user space; consumer_pos is the consumer's. */
	CHECK(store_signal(RING_DATA(c.ring[0])) != 0, "a store into the data area did not fault");
	CHECK(store_signal((uint8_t *)c.ring[0] + RING_RO_LEN(&c) - 1) != 0,
	      "a store into the last data page did not fault");
	CHECK(store_signal((uint8_t *)&c.cons[0]->consumer_pos) == 0,
	      "a store into consumer_pos failed");
	/* Read-only observer mapping: fine. */
	p = mmap(NULL, c.stride, PROT_READ, MAP_SHARED, c.dev, 0);
	CHECK(p != MAP_FAILED, "read-only mapping: %s", strerror(errno));
	munmap(p, c.stride);

	/*
	 * Garbage consumer_pos on every ring: the producer goes on below the last
	 * valid position it saw, and once it must look again it finds the ring
	 * "full": it drops and counts, and writes nothing past that position.
	 * 4 KiB rings hold 30 of these records; 40 requests leave one CPU.
	 */
	CHECK(!get_stats(&c, &cap0, &drop0, NULL, NULL), "GET_STATS");
	for (uint32_t i = 0; i < c.nr_rings; i++)
		c.cons[i]->consumer_pos = 0xdeadbeefcafeull + i;
	{
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	CHECK(!pings(40, 0, 0x7401), "ping");
	CHECK(!get_stats(&c, &cap1, &drop1, pc, pd), "GET_STATS");
	CHECK(cap1 - cap0 <= 30 && drop1 - drop0 >= 10 && cap1 + drop1 - cap0 - drop0 == 40 &&
	      c.ring[0]->producer_pos <= 4096,
	      "garbage consumer_pos: captured +%llu, dropped +%llu, producer_pos %llu (want <= 30, >= 10, <= 4096)",
	      (unsigned long long)(cap1 - cap0), (unsigned long long)(drop1 - drop0),
	      (unsigned long long)c.ring[0]->producer_pos);
	/* A consumer that puts consumer_pos right gets the next records whole. */
	for (uint32_t i = 0; i < c.nr_rings; i++)
		c.cons[i]->consumer_pos = c.ring[i]->producer_pos;
	CHECK(!pings(3, 0, 0x7402), "ping");
	{
		struct recs rs = { 0 };

		collect(&c, &rs, 3, 2000);
		CHECK(rs.n == 3, "after repair: %d records, want 3", rs.n);
		for (int i = 0; i < rs.n; i++)
			CHECK(rs.r[i]->icmp_id == 0x7402 && rs.r[i]->icmp_seq == i,
			      "after repair: record %d id 0x%x seq %u", i, rs.r[i]->icmp_id,
			      rs.r[i]->icmp_seq);
		recs_free(&rs);
	}
	/* A read-only file: subscribes, maps read-only, never writable. */
	ro = open("/dev/icmpcap", O_RDONLY);
	CHECK(ro >= 0, "open O_RDONLY");
	{
		static struct reply r;

		msg_init(&m, c.nl.family, ICMPCAP_CMD_SUBSCRIBE, 0);
		msg_u32(&m, ICMPCAP_A_DEV_FD, ro);
		msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
		err = nl_call(&c.nl, &m, &r);
		CHECK(!err, "SUBSCRIBE with an O_RDONLY file: %s", strerror(-err));
		p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
		CHECK(p == MAP_FAILED && errno == EACCES, "writable mapping of an O_RDONLY file: %s",
		      p == MAP_FAILED ? strerror(errno) : "mapped");
		p = mmap(NULL, ICMPCAP_RING_PAGE_SIZE, PROT_READ, MAP_SHARED, ro, 0);
		CHECK(p != MAP_FAILED, "read-only mapping of an O_RDONLY file: %s", strerror(errno));
		CHECK(mprotect(p, ICMPCAP_RING_PAGE_SIZE, PROT_READ | PROT_WRITE) != 0,
		      "mprotect made it writable");
		munmap(p, ICMPCAP_RING_PAGE_SIZE);
	}
	close(ro);
	cap_close(&c);
	CHECK(nr_subs() == 0, "leftover subscription");
	return 0;
}

struct fuzz_arg {
	uint32_t seed;
	int iterations;
	int accepted, reopen, err;
	char msg[128];
};

/* One fuzzer: random and mutated messages to the family from namespace a. */
static void *fuzz_thread(void *p)
{
	static const uint8_t cmds[] = { 0, 1, 2, 3, 4, 5, 6, 8, 9, 200 };
	struct fuzz_arg *fa = p;
	char *rbuf = malloc(NL_BUF);
	struct nlmsg *mp = malloc(sizeof(*mp));
	uint32_t seed = fa->seed;
	struct nl nl;
	int dev = open("/dev/icmpcap", O_RDWR | O_CLOEXEC);

	if (dev < 0 || !rbuf || !mp || nl_open_family(&nl)) {
		snprintf(fa->msg, sizeof(fa->msg), "setup failed");
		fa->err = -1;
		return NULL;
	}
#define RND() (seed = seed * 1103515245u + 12345u, seed >> 8)
	for (int it = 0; it < fa->iterations; it++) {
		struct nlmsg *m = mp;
		uint8_t cmd = cmds[RND() % sizeof(cmds)];
		int nattr = RND() % 6;
		ssize_t n;

		msg_init(m, nl.family, cmd, NLM_F_ACK);
		if (RND() % 4)
			msg_u32(m, ICMPCAP_A_DEV_FD, RND() % 8 ? (uint32_t)dev : RND() % 64);
		for (int a = 0; a < nattr; a++) {
			uint8_t val[300];
			uint16_t t = RND() % (ICMPCAP_A_MAX + 3);
			uint16_t len;

			switch (RND() % 4) {
			case 0: len = 4; break;
			case 1: len = 8; break;
			case 2: len = 32; break;
			default: len = RND() % sizeof(val); break;
			}
			for (int i = 0; i < len; i++)
				val[i] = RND();
			if (t == ICMPCAP_A_RING_DATA_SIZE)	/* keep allocations small */
				memcpy(val, &(uint32_t){ 4096u << (RND() % 4) }, 4);
			if (t == ICMPCAP_A_TEST_COUNT)
				memcpy(val, &(uint64_t){ RND() % 100 }, 8);
			if (RND() % 8 == 0)
				t |= NLA_F_NESTED;
			msg_put(m, t, val, len);
		}
		/* Mutate: flip bytes after the header, or truncate the attribute area. */
		if (RND() % 3 == 0) {
			int flips = 1 + RND() % 4;

			for (int i = 0; i < flips; i++) {
				uint32_t pos = NLMSG_HDRLEN + RND() % (m->nh.nlmsg_len - NLMSG_HDRLEN);

				m->buf[pos] ^= 1u << (RND() % 8);
			}
			if (((struct genlmsghdr *)NLMSG_DATA(&m->nh))->cmd == ICMPCAP_CMD_TEST_PRODUCE)
				((struct genlmsghdr *)NLMSG_DATA(&m->nh))->cmd = 4;
		}
		if (RND() % 10 == 0)
			m->nh.nlmsg_len = NLMSG_HDRLEN + RND() % (m->nh.nlmsg_len - NLMSG_HDRLEN + 1);
		m->nh.nlmsg_seq = it;
		if (send(nl.fd, m->buf, m->nh.nlmsg_len, 0) < 0 && errno != EINVAL && errno != ENOBUFS) {
			snprintf(fa->msg, sizeof(fa->msg), "send %d: %s", it, strerror(errno));
			fa->err = -1;
			break;
		}
		while ((n = recv(nl.fd, rbuf, NL_BUF, MSG_DONTWAIT)) > 0) {
			struct nlmsghdr *nh = (struct nlmsghdr *)rbuf;

			for (; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n))
				if (nh->nlmsg_type == NLMSG_ERROR &&
				    ((struct nlmsgerr *)NLMSG_DATA(nh))->error == 0)
					fa->accepted++;
		}
		/* Start over with a fresh file now and then: SUBSCRIBE may have succeeded. */
		if (it % 2000 == 1999) {
			close(dev);
			dev = open("/dev/icmpcap", O_RDWR | O_CLOEXEC);
			if (dev < 0) {
				snprintf(fa->msg, sizeof(fa->msg), "reopen: %s", strerror(errno));
				fa->err = -1;
				break;
			}
			fa->reopen++;
		}
	}
#undef RND
	close(dev);
	close(nl.fd);
	free(rbuf);
	free(mp);
	return NULL;
}

/*
 * Two threads send 25,000 random and mutated messages each to the family
 * from namespace a while a third process pings there, so subscriptions that
 * a fuzzer creates see traffic and end under it.
 */
static int test_fuzz_netlink(void)
{
	struct fuzz_arg fa[2] = { { .seed = 12345, .iterations = 25000 },
				  { .seed = 777, .iterations = 25000 } };
	pthread_t t[2];
	pid_t traffic;

	traffic = fork();
	if (traffic == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (int i = 0;; i++)
			ping_once(NS_A, i & 1, &B, 0x7500, i, 32);
	}
	CHECK(!ns_enter(NS_A), "setns a");
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, fuzz_thread, &fa[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	kill(traffic, SIGKILL);
	waitpid(traffic, NULL, 0);
	ns_enter("init");
	for (int i = 0; i < 2; i++)
		CHECK(!fa[i].err, "fuzzer %d: %s", i, fa[i].msg);
	printf("# fuzz_netlink: 2 x 25000 messages, %d + %d accepted, %d + %d reopens\n",
	       fa[0].accepted, fa[1].accepted, fa[0].reopen, fa[1].reopen);
	/* Some must get through, or the fuzzer only exercised the parser's first check. */
	CHECK(fa[0].accepted > 0 && fa[1].accepted > 0, "accepted %d + %d messages",
	      fa[0].accepted, fa[1].accepted);
	for (int k = 0; k < 40 && nr_subs() != 0; k++)
		usleep(50000);
	CHECK(nr_subs() == 0, "leftover subscription");
	CHECK(module_refcnt() == 0, "module refcnt %d", module_refcnt());
	return 0;
}

/* ---- records: fragments, short headers, extension headers, pids, addresses ---- */

/*
 * One echo of 3000 payload bytes from a to b: LOCAL_OUT sees the request
 * whole (it is fragmented after POST_ROUTING), PRE_ROUTING sees the reply's
 * fragments before reassembly: the first decoded and flagged FRAGMENT, the
 * others FRAGMENT | NOT_FIRST with no ICMP fields. Their ICMP bytes add up.
 */
static int test_fragments(int v6)
{
	static uint8_t buf[4096];
	const size_t payload = 3000, ipl = v6 ? 48 : 20;	/* IPv6: + fragment header */
	uint16_t id = 0x7800 + v6;
	size_t len = make_echo(buf, v6, id, 5, payload), icmp_bytes = 0;
	int s, err, first = 0, later = 0, out = 0;
	struct recs rs = { 0 };
	struct nlmsg m;
	struct cap c;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_FAMILIES, v6 ? ICMPCAP_FAMILY_F_IPV6 : ICMPCAP_FAMILY_F_IPV4);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 65535);
	echo_types(&m);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	s = raw_icmp(NS_A, v6, 0);
	CHECK(s >= 0 && send_to(s, v6, &B, 0, buf, len) == (ssize_t)len, "sendto: %s",
	      strerror(errno));
	CHECK(!wait_reply(s, v6, id, 3000), "no echo reply");
	close(s);
	collect(&c, &rs, 4, 2000);
	for (int i = 0; i < rs.n; i++) {
		const struct icmpcap_record *r = rs.r[i];

		if (r->hook == ICMPCAP_HOOK_LOCAL_OUT) {
			CHECK(r->flags == (ICMPCAP_REC_F_HAS_ECHO | ICMPCAP_REC_F_HAS_PID) &&
			      r->icmp_id == id && r->orig_len == (v6 ? 40 : 20) + len,
			      "request at LOCAL_OUT: flags 0x%x id 0x%x orig_len %u", r->flags,
			      r->icmp_id, r->orig_len);
			out++;
			continue;
		}
		CHECK(r->hook == ICMPCAP_HOOK_PRE_ROUTING && (r->flags & ICMPCAP_REC_F_FRAGMENT),
		      "record %d: hook %u flags 0x%x: not a fragment", i, r->hook, r->flags);
		CHECK(r->cap_len == r->orig_len, "record %d: cut short", i);
		if (r->flags & ICMPCAP_REC_F_NOT_FIRST) {
			CHECK(r->flags == (ICMPCAP_REC_F_FRAGMENT | ICMPCAP_REC_F_NOT_FIRST) &&
			      !r->icmp_type && !r->icmp_code && !r->icmp_id && !r->icmp_seq,
			      "later fragment: flags 0x%x type %u code %u id %u seq %u", r->flags,
			      r->icmp_type, r->icmp_code, r->icmp_id, r->icmp_seq);
			later++;
		} else {
			CHECK(r->flags == (ICMPCAP_REC_F_FRAGMENT | ICMPCAP_REC_F_HAS_ECHO) &&
			      r->icmp_type == (v6 ? 129 : 0) && r->icmp_id == id && r->icmp_seq == 5,
			      "first fragment: flags 0x%x type %u id 0x%x seq %u", r->flags,
			      r->icmp_type, r->icmp_id, r->icmp_seq);
			first++;
		}
		CHECK(!memcmp(r->saddr, addr_bytes(&B, v6), v6 ? 16 : 4), "fragment source");
		icmp_bytes += r->orig_len - ipl;
	}
	CHECK(out == 1 && first == 1 && later >= 2, "request %d, first fragments %d, later %d",
	      out, first, later);
	CHECK(icmp_bytes == len, "fragments carry %zu ICMP bytes, the reply has %zu", icmp_bytes,
	      len);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static int test_fragments4(void) { return test_fragments(0); }
static int test_fragments6(void) { return test_fragments(1); }

/* ICMP that ends before 8 bytes is recorded, flagged SHORT, not skipped. */
static int test_short_icmp(void)
{
	static const uint8_t v4[2] = { 13, 5 }, v6[4] = { 128, 0, 0, 0 };
	struct recs rs = { 0 };
	struct nlmsg m;
	struct cap c;
	int s4, s6, err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	s4 = raw_icmp(NS_A, 0, 0);
	s6 = raw_icmp(NS_A, 1, 0);
	CHECK(send_to(s4, 0, &B, 0, v4, sizeof(v4)) == sizeof(v4), "send 2 bytes: %s",
	      strerror(errno));
	CHECK(send_to(s6, 1, &B, 0, v6, sizeof(v6)) == sizeof(v6), "send 4 bytes: %s",
	      strerror(errno));
	collect(&c, &rs, 2, 2000);
	CHECK(rs.n == 2, "want 2 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++) {
		const struct icmpcap_record *r = rs.r[i];
		int is6 = r->family == 6;

		CHECK(r->flags == (ICMPCAP_REC_F_SHORT | ICMPCAP_REC_F_HAS_PID) &&
		      r->pid == (uint32_t)getpid(), "%s: flags 0x%x pid %u", is6 ? "v6" : "v4",
		      r->flags, r->pid);
		CHECK(r->icmp_type == (is6 ? 128 : 13) && r->icmp_code == (is6 ? 0 : 5) &&
		      !r->icmp_id && !r->icmp_seq, "%s: type %u code %u id %u seq %u",
		      is6 ? "v6" : "v4", r->icmp_type, r->icmp_code, r->icmp_id, r->icmp_seq);
		CHECK(r->orig_len == (is6 ? 44u : 22u) && r->cap_len == r->orig_len,
		      "%s: orig_len %u cap_len %u", is6 ? "v6" : "v4", r->orig_len, r->cap_len);
	}
	close(s4);
	close(s6);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

/*
 * Joining a multicast group makes the kernel send an MLDv2 report: ICMPv6
 * type 143 behind a hop-by-hop header (router alert). It is found.
 */
static int test_mld_hop_by_hop(void)
{
	struct ipv6_mreq mr = { .ipv6mr_interface = ifindex_in(NS_A, "va") };
	uint8_t t6[32] = { 0 }, none[32] = { 0 };
	struct recs rs = { 0 };
	struct nlmsg m;
	struct cap c;
	int s, err, found = 0;

	inet_pton(AF_INET6, "ff12::4242", &mr.ipv6mr_multiaddr);
	bitmap_set(t6, 143);
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	msg_put(&m, ICMPCAP_A_TYPES_V4, none, 32);
	msg_put(&m, ICMPCAP_A_TYPES_V6, t6, 32);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	s = sock_in(NS_A, AF_INET6, SOCK_DGRAM, 0);
	CHECK(s >= 0 && !setsockopt(s, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof(mr)),
	      "join ff12::4242: %s", strerror(errno));
	collect(&c, &rs, 1, 3000);
	CHECK(rs.n >= 1, "no MLDv2 report captured");
	for (int i = 0; i < rs.n; i++) {
		const struct icmpcap_record *r = rs.r[i];
		const uint8_t *d = rec_data(r);

		CHECK(r->family == 6 && r->icmp_type == 143 && r->icmp_code == 0 &&
		      !(r->flags & (ICMPCAP_REC_F_SHORT | ICMPCAP_REC_F_FRAGMENT)),
		      "record %d: family %u type %u flags 0x%x", i, r->family, r->icmp_type, r->flags);
		CHECK(r->cap_len > 48 && d[6] == 0 && d[40] == 58 && d[48] == 143,
		      "record %d: not IPv6 + hop-by-hop + ICMPv6 143", i);
		found++;
	}
	close(s);
	recs_free(&rs);
	cap_close(&c);
	return found ? 0 : -1;
}

/* The pid of what a real ping sends is the pid of that ping. */
static int test_ping_pid(void)
{
	struct recs rs = { 0 };
	struct nlmsg m;
	struct cap c;
	pid_t pid;
	int err, st, req = 0;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_FAMILIES, ICMPCAP_FAMILY_F_IPV4);
	echo_types(&m);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	pid = fork();
	if (pid == 0) {
		if (ns_enter(NS_A))
			_exit(126);
		execl("/bin/ping", "ping", "-c", "3", "-i", "0.2", "-q", "10.0.0.2", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ping failed: status 0x%x", st);
	collect(&c, &rs, 6, 2000);
	CHECK(rs.n == 6, "want 6 records, got %d", rs.n);
	for (int i = 0; i < rs.n; i++) {
		const struct icmpcap_record *r = rs.r[i];

		if (r->icmp_type == 8) {
			CHECK((r->flags & ICMPCAP_REC_F_HAS_PID) && r->pid == (uint32_t)pid,
			      "request %u: pid %u flags 0x%x, ping was %d", r->icmp_seq, r->pid,
			      r->flags, pid);
			req++;
		} else {
			CHECK(!(r->flags & ICMPCAP_REC_F_HAS_PID) && !r->pid,
			      "reply %u carries pid %u", r->icmp_seq, r->pid);
		}
	}
	CHECK(req == 3, "%d requests", req);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

static void addr_rule(struct icmpcap_addr_rule *r, int family, int plen, int side, const char *a)
{
	memset(r, 0, sizeof(*r));
	r->family = family;
	r->prefix_len = plen;
	r->side = side;
	inet_pton(family == 6 ? AF_INET6 : AF_INET, a, r->addr);
}

/* Address rules are OR-ed with each other and AND-ed with the other filters. */
static int test_addr_rules(void)
{
	static struct reply r;
	struct icmpcap_addr_rule rules[2];
	struct recs rs = { 0 };
	struct nlmsg m;
	struct cap c;
	int err, n4 = 0, n6 = 0;

	addr_rule(&rules[0], 4, 32, ICMPCAP_ADDR_SRC, "10.0.0.1");
	addr_rule(&rules[1], 6, 64, ICMPCAP_ADDR_DST, "fd00::");
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	msg_put(&m, ICMPCAP_A_ADDR_RULES, rules, sizeof(rules));
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!pings(2, 0, 0x7901) && !pings(2, 1, 0x7902), "ping failed");
	/* Its reply comes in fragments from 10.0.0.2: none matches a rule. */
	CHECK(!ping_once(NS_A, 0, &B, 0x7903, 0, 2000), "large ping failed");
	collect(&c, &rs, 100, 500);
	for (int i = 0; i < rs.n; i++) {
		const struct icmpcap_record *x = rs.r[i];

		if (x->family == 4) {
			CHECK(x->icmp_type == 8 && !memcmp(x->saddr, &A.a4, 4),
			      "v4 record type %u not from 10.0.0.1", x->icmp_type);
			n4++;
		} else {
			n6++;
		}
	}
	/* v4: requests from 10.0.0.1 (2 + the large one); v6: requests and replies. */
	CHECK(n4 == 3 && n6 == 4, "v4 %d (want 3), v6 %d (want 4)", n4, n6);
	recs_free(&rs);
	/* Bits past the prefix: refused, and the filter stays as it was. */
	addr_rule(&rules[0], 4, 8, ICMPCAP_ADDR_ANY, "10.0.0.1");
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_put(&m, ICMPCAP_A_ADDR_RULES, rules, sizeof(rules[0]));
	err = nl_call(&c.nl, &m, &r);
	CHECK(err == -EINVAL, "rule with host bits: %d, want EINVAL", err);
	addr_rule(&rules[0], 4, 33, ICMPCAP_ADDR_ANY, "10.0.0.1");
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_put(&m, ICMPCAP_A_ADDR_RULES, rules, sizeof(rules[0]));
	CHECK(nl_call(&c.nl, &m, &r) == -EINVAL, "prefix 33 for IPv4 accepted");
	/* b's address as destination only: requests to b, not replies from it. */
	addr_rule(&rules[0], 4, 24, ICMPCAP_ADDR_DST, "10.0.0.0");
	addr_rule(&rules[1], 4, 32, ICMPCAP_ADDR_ANY, "10.9.9.9");
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_put(&m, ICMPCAP_A_ADDR_RULES, rules, sizeof(rules));
	err = nl_call(&c.nl, &m, &r);
	CHECK(!err, "UPDATE_FILTER: %s", strerror(-err));
	CHECK(r.a[ICMPCAP_A_ADDR_RULES] &&
	      r.a[ICMPCAP_A_ADDR_RULES]->nla_len == NLA_HDRLEN + sizeof(rules),
	      "reply lacks the rules");
	CHECK(!pings(2, 0, 0x7904) && !pings(1, 1, 0x7905), "ping failed");
	collect(&c, &rs, 100, 500);
	/* Requests to 10.0.0.2 and replies to 10.0.0.1 both have a dst in 10.0.0.0/24. */
	CHECK(rs.n == 4, "dst 10.0.0.0/24: %d records, want 4", rs.n);
	for (int i = 0; i < rs.n; i++)
		CHECK(rs.r[i]->family == 4, "IPv6 passed IPv4-only rules");
	recs_free(&rs);
	/* No rules: every address again. */
	cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
	msg_put(&m, ICMPCAP_A_ADDR_RULES, NULL, 0);
	CHECK(!nl_call(&c.nl, &m, NULL), "UPDATE_FILTER without rules");
	CHECK(!pings(1, 0, 0x7906) && !pings(1, 1, 0x7907), "ping failed");
	collect(&c, &rs, 4, 1000);
	CHECK(rs.n == 4, "no rules: %d records, want 4", rs.n);
	recs_free(&rs);
	cap_close(&c);
	return 0;
}

/* ---- /proc/net/icmpcap ----------------------------------------------------------- */

/* Reads /proc/net/icmpcap as seen from namespace ns into buf. */
static int read_proc_net(const char *ns, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	if (ns_enter(ns))
		return -1;
	fd = open("/proc/self/net/icmpcap", O_RDONLY);
	ns_enter("init");
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

static int test_proc_net(void)
{
	static char buf[16384];
	char want[256];
	struct nlmsg m;
	struct cap c;
	uint64_t captured = 0;
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	echo_types(&m);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 123);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	CHECK(!pings(2, 0, 0x7a01), "ping failed");
	CHECK(!read_proc_net(NS_A, buf, sizeof(buf)), "read /proc/net/icmpcap in a: %s",
	      strerror(errno));
	snprintf(want, sizeof(want), "abi %u\n", ICMPCAP_ABI_VERSION);
	CHECK(strstr(buf, "version ") && strstr(buf, want) && strstr(buf, "subscriptions 1\n") &&
	      strstr(buf, "hooks_registered 4\n"), "header lines: %.300s", buf);
	snprintf(want, sizeof(want), "sub %u pid %d uid 0 comm icmpcap_test hooks 0x9 families 0x3 "
		 "directions 0x7 snaplen 123 ifindexes 0 addr_rules 0 rings %u data_size %u "
		 "captured 4 dropped 0\n", c.sub_id, getpid(), c.nr_rings, c.data_size);
	CHECK(strstr(buf, want), "no line \"%s\" in:\n%.200s", want, buf);
	for (uint32_t i = 0; i < c.nr_rings; i++) {
		unsigned long long cap, drop, unread;
		char *p;

		snprintf(want, sizeof(want), "ring %u cpu %u ", c.sub_id, i);
		p = strstr(buf, want);
		CHECK(p && sscanf(p + strlen(want), "captured %llu dropped %llu unread %llu", &cap,
				  &drop, &unread) == 3, "no line for ring %u", i);
		CHECK(cap == c.ring[i]->captured && !drop && unread == c.ring[i]->producer_pos,
		      "ring %u: captured %llu dropped %llu unread %llu", i, cap, drop, unread);
		captured += cap;
	}
	CHECK(captured == 4, "rings captured %llu, want 4", (unsigned long long)captured);
	/* Another namespace sees its own state only. */
	CHECK(!read_proc_net(NS_C, buf, sizeof(buf)), "read /proc/net/icmpcap in c");
	CHECK(strstr(buf, "subscriptions 0\n") && strstr(buf, "hooks_registered 0\n") &&
	      !strstr(buf, "\nsub "), "namespace c shows a's subscription:\n%.200s", buf);
	cap_close(&c);
	CHECK(!read_proc_net(NS_A, buf, sizeof(buf)) && strstr(buf, "subscriptions 0\n") &&
	      strstr(buf, "hooks_registered 0\n"), "after close:\n%.200s", buf);
	return 0;
}

/* ---- limits and hook slots --------------------------------------------------------- */

static int param_write(const char *name, unsigned long v)
{
	char path[128], val[32];
	int fd, n, err = 0;

	snprintf(path, sizeof(path), "/sys/module/icmpcap/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = snprintf(val, sizeof(val), "%lu", v);
	if (write(fd, val, n) != n)
		err = -errno;
	close(fd);
	return err;
}

static unsigned long param_read(const char *name)
{
	char path[128];
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/icmpcap/parameters/%s", name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

#define HOOK_SLOT_SUBS 1100

struct closer_arg {
	int *devs;
	int from, to;
};

static void *closer(void *p)
{
	struct closer_arg *a = p;

	for (int i = a->from; i < a->to; i++)
		close(a->devs[i]);
	return NULL;
}

/*
 * 1,100 subscriptions in one namespace: netfilter allows 1,024 hooks per hook
 * point there, so one hook set per subscription would leave nftables none;
 * with one set per namespace nftables still adds base chains at the same
 * hook points, and packets reach every subscriber. Then the caps.
 */
static int test_hook_slots(void)
{
	static int devs[HOOK_SLOT_SUBS + 1];
	static char buf[8192];
	static struct reply r;
	unsigned long per_user = param_read("max_subs_per_user");
	unsigned long per_ns = param_read("max_subs_per_ns");
	unsigned long ring_bytes = param_read("max_ring_bytes");
	struct rlimit rl = { 8192, 8192 };
	struct closer_arg ca[4];
	pthread_t t[4];
	uint64_t cap, drop;
	struct nlmsg m;
	struct nl nl;
	int err, n = 0;

	CHECK(!setrlimit(RLIMIT_NOFILE, &rl), "RLIMIT_NOFILE");
	CHECK(!ns_enter(NS_C) && !nl_open_family(&nl), "netlink in c");
	for (n = 0; n < HOOK_SLOT_SUBS; n++) {
		devs[n] = open("/dev/icmpcap", O_RDWR | O_CLOEXEC);
		CHECK(devs[n] >= 0, "open %d: %s", n, strerror(errno));
		msg_init(&m, nl.family, ICMPCAP_CMD_SUBSCRIBE, 0);
		msg_u32(&m, ICMPCAP_A_DEV_FD, devs[n]);
		msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
		msg_u32(&m, ICMPCAP_A_SNAPLEN, 64);
		msg_u32(&m, ICMPCAP_A_WAKEUP_USEC, 1000000);
		err = nl_call(&nl, &m, &r);
		CHECK(!err, "SUBSCRIBE %d: %s", n, strerror(-err));
	}
	CHECK(!read_proc_net(NS_C, buf, sizeof(buf)), "read /proc/net/icmpcap");
	CHECK(strstr(buf, "subscriptions 1100\n") && strstr(buf, "hooks_registered 4\n"),
	      "proc: %.400s", buf);
	err = system("(/usr/sbin/ip netns exec c nft add table inet icmpcap_t && "
		     "/usr/sbin/ip netns exec c nft add chain inet icmpcap_t pre "
		     "'{ type filter hook prerouting priority 0; }' && "
		     "/usr/sbin/ip netns exec c nft add chain inet icmpcap_t out "
		     "'{ type filter hook output priority 0; }') >/tmp/nft.out 2>&1");
	if (err) {
		int fd = open("/tmp/nft.out", O_RDONLY);
		ssize_t k = fd >= 0 ? read(fd, buf, 300) : 0;

		buf[k > 0 ? k : 0] = 0;
		FAIL("nft could not add base chains beside 1,100 captures (status 0x%x): %.300s", err,
		     buf);
	}
	{
		struct addr lo = { 0 };

		inet_pton(AF_INET, "127.0.0.1", &lo.a4);
		CHECK(!ping_once(NS_C, 0, &lo, 0x7b01, 0, 16), "ping in c with nft chains");
	}
	/* First and last subscriber: request and reply, each at both hooks. */
	for (int k = 0; k < 2; k++) {
		struct cap c = { .dev = devs[k ? n - 1 : 0], .nl = nl, .nr_rings = 0 };

		CHECK(!get_stats(&c, &cap, &drop, NULL, NULL) && cap == 4 && !drop,
		      "subscriber %d: captured %llu dropped %llu, want 4 and 0", k ? n - 1 : 0,
		      (unsigned long long)cap, (unsigned long long)drop);
	}
	/* Caps: per namespace, per user, ring memory; each refuses with EMFILE/ENOMEM. */
	CHECK(per_user >= HOOK_SLOT_SUBS && per_ns >= HOOK_SLOT_SUBS && ring_bytes,
	      "limit parameters: per user %lu, per namespace %lu, ring bytes %lu", per_user, per_ns,
	      ring_bytes);
	devs[n] = open("/dev/icmpcap", O_RDWR | O_CLOEXEC);
	CHECK(devs[n] >= 0, "open");
	{
		static const struct {
			const char *param;
			unsigned long value;
			int err;
		} caps[] = {
			{ "max_subs_per_ns", HOOK_SLOT_SUBS, -EMFILE },
			{ "max_subs_per_user", HOOK_SLOT_SUBS, -EMFILE },
			{ "max_ring_bytes", 65536, -ENOMEM },
		};

		for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
			CHECK(!param_write(caps[k].param, caps[k].value), "set %s", caps[k].param);
			msg_init(&m, nl.family, ICMPCAP_CMD_SUBSCRIBE, 0);
			msg_u32(&m, ICMPCAP_A_DEV_FD, devs[n]);
			msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
			err = nl_call(&nl, &m, &r);
			CHECK(err == caps[k].err, "%s=%lu: SUBSCRIBE %d, want %d", caps[k].param,
			      caps[k].value, err, caps[k].err);
			CHECK(!param_write("max_subs_per_ns", per_ns) &&
			      !param_write("max_subs_per_user", per_user) &&
			      !param_write("max_ring_bytes", ring_bytes), "restore limits");
		}
		/* The refused file may still subscribe once the limits allow it. */
		err = nl_call(&nl, &m, &r);
		CHECK(!err, "SUBSCRIBE after the caps were lifted: %s", strerror(-err));
	}
	n++;
	CHECK(!system("/usr/sbin/ip netns exec c nft delete table inet icmpcap_t"), "nft delete table");
	for (int k = 0; k < 4; k++) {
		ca[k] = (struct closer_arg){ devs, k * n / 4, (k + 1) * n / 4 };
		pthread_create(&t[k], NULL, closer, &ca[k]);
	}
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
	close(nl.fd);
	ns_enter("init");
	CHECK(nr_subs() == 0, "%d subscriptions left", nr_subs());
	CHECK(!read_proc_net(NS_C, buf, sizeof(buf)) && strstr(buf, "hooks_registered 0\n"),
	      "hooks left registered:\n%.300s", buf);
	return 0;
}

/* ---- make before break ------------------------------------------------------------ */

/*
 * UPDATE_FILTER that changes hooks and families while echo requests leave a:
 * LOCAL_OUT IPv4 is in every filter, so every request is captured exactly
 * once, none in a gap between the old hooks and the new.
 */
struct gap_arg {
	uint8_t seen[65536];
	uint64_t sent;
	int total, bad;
	char msg[128];
};

static void gap_check(const struct icmpcap_record *x, void *p)
{
	struct gap_arg *g = p;

	if (x->hook != ICMPCAP_HOOK_LOCAL_OUT)
		return;
	if (x->icmp_id != 0x7c00 || x->icmp_seq >= g->sent || g->seen[x->icmp_seq]) {
		if (!g->bad++)
			snprintf(g->msg, sizeof(g->msg), "seq %u id 0x%x: duplicate or unknown",
				 x->icmp_seq, x->icmp_id);
		return;
	}
	g->seen[x->icmp_seq] = 1;
	g->total++;
}

static int test_update_no_gap(void)
{
	static struct gap_arg g;
	volatile uint64_t *sent = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile int *stop = (volatile int *)(sent + 1);
	uint64_t cap, drop;
	struct nlmsg m;
	struct cap c;
	pid_t pid;
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_LOCAL_OUT);
	msg_u32(&m, ICMPCAP_A_FAMILIES, ICMPCAP_FAMILY_F_IPV4);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4 << 20);
	only_type(&m, 0, 8);
	err = cap_open_in(NS_A, &c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	pid = fork();
	if (pid == 0) {
		uint8_t buf[64];
		int s = raw_icmp(NS_A, 0, 0);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* At most 12,000: with POST_ROUTING copies they fit one 4 MiB ring. */
		for (uint32_t i = 0; i < 12000 && !*stop; i++) {
			size_t len = make_echo(buf, 0, 0x7c00, i, 16);

			if (send_to(s, 0, &B, 0, buf, len) != (ssize_t)len)
				_exit(1);
			sent[0] = i + 1;
		}
		_exit(0);
	}
	for (int k = 0; k < 100; k++) {
		cap_msg(&c, &m, ICMPCAP_CMD_UPDATE_FILTER);
		msg_u32(&m, ICMPCAP_A_HOOKS, (1u << ICMPCAP_HOOK_LOCAL_OUT) |
				(k & 1 ? 1u << ICMPCAP_HOOK_POST_ROUTING : 1u << ICMPCAP_HOOK_LOCAL_IN));
		msg_u32(&m, ICMPCAP_A_FAMILIES, k % 3 ? ICMPCAP_FAMILY_F_IPV4 : 3);
		err = nl_call(&c.nl, &m, NULL);
		CHECK(!err, "UPDATE_FILTER %d: %s", k, strerror(-err));
	}
	*stop = 1;
	waitpid(pid, NULL, 0);
	CHECK(sent[0] > 0, "nothing sent");
	g.sent = sent[0];
	usleep(100000);
	CHECK(cap_drain(&c, gap_check, &g) >= 0, "malformed ring");
	CHECK(!g.bad, "%s (%d bad records)", g.msg, g.bad);
	CHECK(!get_stats(&c, &cap, &drop, NULL, NULL) && !drop, "dropped %llu",
	      (unsigned long long)drop);
	for (uint64_t i = 0; i < sent[0]; i++)
		CHECK(g.seen[i], "request %llu of %llu missed (%d captured at LOCAL_OUT)",
		      (unsigned long long)i, (unsigned long long)sent[0], g.total);
	printf("# update_no_gap: %llu requests, 100 filter changes, none missed\n",
	       (unsigned long long)sent[0]);
	cap_close(&c);
	return 0;
}

/* ---- concurrent producers ------------------------------------------------------------ */

struct drain_arg {
	struct cap *c;
	volatile int stop;
	uint64_t n, dup, disorder, foreign;
	uint8_t *seen[2];
	int last[2];
};

static void seq_check(const struct icmpcap_record *r, void *p)
{
	struct drain_arg *a = p;
	unsigned int cpu = r->icmp_id;

	if (cpu > 1) {
		a->foreign++;
		return;
	}
	if (a->seen[cpu][r->icmp_seq])
		a->dup++;
	a->seen[cpu][r->icmp_seq] = 1;
	if ((int)r->icmp_seq <= a->last[cpu])
		a->disorder++;
	a->last[cpu] = r->icmp_seq;
	a->n++;
}

static void *drain_thread(void *p)
{
	struct drain_arg *a = p;

	while (!a->stop) {
		struct pollfd pf = { .fd = a->c->dev, .events = POLLIN };

		poll(&pf, 1, 10);
		cap_drain(a->c, seq_check, a);
	}
	cap_drain(a->c, seq_check, a);
	return NULL;
}

/*
 * The synthetic producer on both CPUs (identifier = CPU, sequence 0..N-1)
 * while a reader drains concurrently through several wraps of 4 MiB rings:
 * every sequence number arrives exactly once, in order, and nothing drops.
 */
static int test_produce_concurrent(void)
{
	const uint64_t per_cpu = 60000;
	static uint8_t seen0[65536], seen1[65536];
	static struct reply r;
	struct drain_arg a = { .seen = { seen0, seen1 }, .last = { -1, -1 } };
	struct nlmsg m;
	struct cap c;
	pthread_t t;
	uint64_t gen, cap, drop;
	int err;

	CHECK(sysconf(_SC_NPROCESSORS_ONLN) >= 2, "needs 2 CPUs");
	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4 << 20);
	msg_u32(&m, ICMPCAP_A_SNAPLEN, 64);
	msg_u32(&m, ICMPCAP_A_WAKEUP_BYTES, 64 << 10);
	err = cap_open(&c, &m);
	CHECK(!err, "subscribe: %s", strerror(-err));
	a.c = &c;
	pthread_create(&t, NULL, drain_thread, &a);
	err = test_produce(&c, per_cpu, 40000, 3, ICMPCAP_TEST_MODE_RING, &r);
	a.stop = 1;
	pthread_join(t, NULL);
	CHECK(!err, "TEST_PRODUCE: %s", strerror(-err));
	gen = attr_u64(&r, ICMPCAP_A_TEST_GENERATED, 0);
	cap = attr_u64(&r, ICMPCAP_A_CAPTURED, 0);
	drop = attr_u64(&r, ICMPCAP_A_DROPPED, 0);
	CHECK(gen == 2 * per_cpu && cap == gen && !drop, "generated %llu captured %llu dropped %llu",
	      (unsigned long long)gen, (unsigned long long)cap, (unsigned long long)drop);
	CHECK(!a.dup && !a.disorder && !a.foreign, "%llu duplicates, %llu out of order, %llu foreign",
	      (unsigned long long)a.dup, (unsigned long long)a.disorder,
	      (unsigned long long)a.foreign);
	for (int cpu = 0; cpu < 2; cpu++)
		for (uint64_t i = 0; i < per_cpu; i++)
			CHECK(a.seen[cpu][i], "CPU %d: sequence %llu never arrived", cpu,
			      (unsigned long long)i);
	CHECK(a.n == gen, "read %llu records of %llu", (unsigned long long)a.n,
	      (unsigned long long)gen);
	cap_close(&c);
	return 0;
}

/*
 * A SUBSCRIBE whose reply cannot be queued (the requesting socket's receive
 * buffer is full of events) must not leave a live subscription nobody knows
 * about: the file ends up without one.
 */
static int test_subscribe_reply_lost(void)
{
	static char rbuf[NL_BUF];
	static struct reply r;
	int rcvbuf = 1, grp, dev, err, before;
	struct nlmsg m;
	struct cap other;
	struct nl nl;

	err = cap_open(&other, NULL);
	CHECK(!err, "subscribe: %s", strerror(-err));
	before = nr_subs();
	CHECK(!nl_open_family(&nl) && nl.mcgrp, "netlink");
	grp = nl.mcgrp;
	CHECK(!setsockopt(nl.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) &&
	      !setsockopt(nl.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)),
	      "socket options: %s", strerror(errno));
	/* Events (CONFIG_CHANGED) until the socket's minimal buffer is full. */
	for (int i = 0; i < 16; i++) {
		cap_msg(&other, &m, ICMPCAP_CMD_UPDATE_FILTER);
		msg_u32(&m, ICMPCAP_A_SNAPLEN, 100 + i);
		CHECK(!nl_call(&other.nl, &m, NULL), "UPDATE_FILTER");
	}
	dev = open("/dev/icmpcap", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0, "open");
	msg_init(&m, nl.family, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_DEV_FD, dev);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, 4096);
	m.nh.nlmsg_seq = 4242;
	CHECK(send(nl.fd, m.buf, m.nh.nlmsg_len, 0) == (ssize_t)m.nh.nlmsg_len, "send: %s",
	      strerror(errno));
	/* Drain what did arrive (events; neither reply nor ack fit). */
	while (recv(nl.fd, rbuf, sizeof(rbuf), MSG_DONTWAIT) > 0 || errno == ENOBUFS)
		;
	CHECK(nr_subs() == before, "%d subscriptions, want %d: the unanswered one lives on",
	      nr_subs(), before);
	{
		struct nl nl2;

		CHECK(!nl_open_family(&nl2), "netlink");
		msg_init(&m, nl2.family, ICMPCAP_CMD_UNSUBSCRIBE, 0);
		msg_u32(&m, ICMPCAP_A_DEV_FD, dev);
		err = nl_call(&nl2, &m, &r);
		CHECK(err == -ENOENT, "UNSUBSCRIBE of the unanswered subscription: %d, want ENOENT",
		      err);
		close(nl2.fd);
	}
	close(dev);
	close(nl.fd);
	cap_close(&other);
	return 0;
}

/* ---- runner --------------------------------------------------------------------- */

struct test {
	const char *name;
	int (*fn)(void);
};

/* Seconds a test may take before it counts as hung. */
static unsigned int test_timeout(const struct test *t)
{
	return !strcmp(t->name, "lifetime_stress") || !strcmp(t->name, "hook_slots") ? 150 : 60;
}

static const struct test tests[] = {
	{ "echo4_out", test_echo4_out },
	{ "echo4_in", test_echo4_in },
	{ "echo6_out", test_echo6_out },
	{ "echo6_in", test_echo6_in },
	{ "dest_unreach4", test_dest_unreach4 },
	{ "dest_unreach6", test_dest_unreach6 },
	{ "time_exceeded4", test_time_exceeded4 },
	{ "time_exceeded6", test_time_exceeded6 },
	{ "packet_too_big6", test_packet_too_big6 },
	{ "packet_too_big6_snaplen", test_packet_too_big6_snap },
	{ "filter_type", test_filter_type },
	{ "filter_code", test_filter_code },
	{ "filter_iface", test_filter_iface },
	{ "filter_dir", test_filter_dir },
	{ "snaplen", test_snaplen },
	{ "paged_echo", test_paged_echo },
	{ "netns_isolation", test_netns_isolation },
	{ "update_hooks", test_update_hooks },
	{ "forward_hooks", test_forward_hooks },
	{ "flood_drop_2cpu", test_flood_drop_2cpu },
	{ "synth_drop", test_synth_drop },
	{ "wakeup_batching", test_wakeup_batching },
	{ "events", test_events },
	{ "reader_killed", test_reader_killed },
	{ "produce_killed", test_produce_killed },
	{ "socket_close", test_socket_close },
	{ "lifetime_stress", test_lifetime_stress },
	{ "resubscribe", test_resubscribe },
	{ "bad_mmap", test_bad_mmap },
	{ "ring_pages_ro", test_ring_pages_ro },
	{ "non_member", test_non_member },
	{ "fuzz_netlink", test_fuzz_netlink },
	{ "unload_while_mapped", test_unload_while_mapped },
	{ "group_member", test_group_member },
	{ "fragments4", test_fragments4 },
	{ "fragments6", test_fragments6 },
	{ "short_icmp", test_short_icmp },
	{ "mld_hop_by_hop", test_mld_hop_by_hop },
	{ "ping_pid", test_ping_pid },
	{ "addr_rules", test_addr_rules },
	{ "proc_net", test_proc_net },
	{ "update_no_gap", test_update_no_gap },
	{ "produce_concurrent", test_produce_concurrent },
	{ "subscribe_reply_lost", test_subscribe_reply_lost },
	{ "hook_slots", test_hook_slots },
};

static void run(const struct test *t)
{
	int pfd[2], st;
	pid_t pid;
	ssize_t n;

	fflush(stdout);
	if (pipe(pfd))
		return;
	pid = fork();
	if (pid == 0) {
		int rc;

		close(pfd[0]);
		cur_test = t->name;
		alarm(test_timeout(t));
		rc = t->fn();
		if (write(pfd[1], rc ? fail_msg : "", rc ? strlen(fail_msg) + 1 : 1) < 0)
			_exit(3);
		fflush(stdout);
		_exit(rc ? 1 : 0);
	}
	close(pfd[1]);
	n = read(pfd[0], fail_msg, sizeof(fail_msg) - 1);
	fail_msg[n > 0 ? n : 0] = 0;
	close(pfd[0]);
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		printf("PASS %s\n", t->name);
	else if (WIFSIGNALED(st))
		printf("FAIL %s: killed by signal %d%s\n", t->name, WTERMSIG(st),
		       WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
	else
		printf("FAIL %s: %s\n", t->name, fail_msg[0] ? fail_msg : "no reason");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	init_ns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	addrs_init();
	if (argc < 2 || !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	for (int a = 1; a < argc; a++) {
		size_t i;

		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
			if (!strcmp(argv[a], tests[i].name) || !strcmp(argv[a], "all"))
				run(&tests[i]);
		}
	}
	return 0;
}
