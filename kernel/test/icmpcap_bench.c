// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Guest benchmark of icmpcap.ko (test build): records/s from the in-module
 * synthetic producer drained through the rings by the application's own
 * consumer (native/src/core/ring_reader.cc, see icmpcap_bench_reader.cc), the
 * same records through the classic design (one netlink unicast per record),
 * the producer's and the consumer's cost per record measured apart, and the
 * loss at 1 M records/s.
 *
 * Then the peers: module vs AF_PACKET vs tcpdump on one flood
 * (icmpcap_bench_peers.c).
 *
 * Prints "BENCH key value unit | note" lines that kernel/test/bench.sh turns
 * into bench/results.json, and "PASS/FAIL bench_*" lines for sanity. Bounded:
 * short runs, and a time budget (BENCH_BUDGET_S) after which the remaining
 * rounds and trials are skipped and the figures so far are reported.
 */
#include "icmpcap_lib.h"
#include "icmpcap_bench_reader.h"
#include "icmpcap_bench_peers.h"

#include <pthread.h>
#include <sys/syscall.h>

/* What the hook keeps of a default ping (84 bytes from the IP header on). */
#define CAP_LEN 84
#define REC_BYTES ICMPCAP_ALIGN(ICMPCAP_RECORD_HDR_SIZE + CAP_LEN)
#define ROUNDS 2	/* the ring_vs_netlink note lists rounds 0 and 1 */
#define BENCH_BUDGET_S 200	/* guest seconds; kernel/test/bench.sh allows boot + this */
#define SPLIT_RECORDS 100000
_Static_assert(ROUNDS == 2, "ring_vs_netlink note");

/* cpu -1: any CPU (threads inherit the creator's affinity: undo it). */
static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu >= 0) {
		CPU_SET(cpu, &set);
	} else {
		for (long i = 0; i < sysconf(_SC_NPROCESSORS_ONLN) && i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

/* ---- ring consumer ---------------------------------------------------------- */

struct ring_consumer {
	struct cap *c;
	struct bench_reader *br;
	int cpu;		/* -1: not pinned */
	volatile int stop;	/* set when the producer finished */
	uint64_t target;	/* records to expect once stop is set */
	uint64_t taken;		/* records taken from the rings */
	int corrupt;
	uint64_t t_end;		/* last batch delivered */
};

static struct bench_reader *reader_new(struct cap *c)
{
	uint8_t *prod[MAX_RINGS];
	uint64_t *cons[MAX_RINGS];

	for (uint32_t i = 0; i < c->nr_rings; i++) {
		prod[i] = (uint8_t *)c->ring[i];
		cons[i] = (uint64_t *)&c->cons[i]->consumer_pos;
	}
	return bench_reader_new(prod, cons, c->nr_rings, c->data_size, CAP_LEN);
}

/*
 * ModuleSource::run(): drain every ring completely, then sleep in poll() until
 * the kernel's watermark or timer wakeup.
 */
static void *ring_consumer_thread(void *p)
{
	struct ring_consumer *rc = p;

	pin(rc->cpu);
	uint64_t idle_since = 0;

	for (;;) {
		struct pollfd pfd = { .fd = rc->c->dev, .events = POLLIN };
		long n = bench_reader_drain(rc->br, 0);

		if (n == 0)	/* deliver the partial batch before sleeping */
			n = bench_reader_drain(rc->br, 1);
		if (n < 0) {
			rc->corrupt = 1;
			break;
		}
		rc->taken += n;
		if (rc->stop && rc->taken >= rc->target)
			break;
		if (n == 0) {
			/* The producers are done and nothing came for 2 s: give up (FAIL). */
			if (!rc->stop)
				idle_since = 0;
			else if (!idle_since)
				idle_since = now_ns(CLOCK_MONOTONIC);
			else if (now_ns(CLOCK_MONOTONIC) - idle_since > 2000000000ull)
				break;
			poll(&pfd, 1, 20);
		}
	}
	bench_reader_drain(rc->br, 1);
	rc->t_end = bench_reader_done(rc->br);
	return NULL;
}

struct produce_result {
	int err;
	uint64_t generated, captured, dropped, elapsed_ns;
};

static void produce(struct cap *c, uint64_t count, uint64_t rate, uint64_t mask, uint32_t mode,
		    struct produce_result *res)
{
	static struct reply r;
	struct nlmsg m;

	cap_msg(c, &m, ICMPCAP_CMD_TEST_PRODUCE);
	msg_u64(&m, ICMPCAP_A_TEST_COUNT, count);
	msg_u64(&m, ICMPCAP_A_TEST_RATE, rate);
	msg_u64(&m, ICMPCAP_A_TEST_CPU_MASK, mask);
	msg_u32(&m, ICMPCAP_A_TEST_CAP_LEN, CAP_LEN);
	msg_u32(&m, ICMPCAP_A_TEST_MODE, mode);
	res->err = nl_call(&c->nl, &m, &r);
	res->generated = attr_u64(&r, ICMPCAP_A_TEST_GENERATED, 0);
	res->captured = attr_u64(&r, ICMPCAP_A_CAPTURED, 0);
	res->dropped = attr_u64(&r, ICMPCAP_A_DROPPED, 0);
	res->elapsed_ns = attr_u64(&r, ICMPCAP_A_TEST_ELAPSED_NS, 0);
}

static int subscribe(struct cap *c, uint32_t data_size)
{
	struct nlmsg m;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, data_size);
	return cap_open(c, &m);
}

/*
 * Producer kthreads on the CPUs of mask (count records each), the
 * application's consumer on consumer_cpu (-1: wherever the scheduler puts
 * it). rate 0 = as fast as the producers go. Returns records drained per
 * second, from the request to the last batch delivered.
 */
static double run_ring(const char *name, uint32_t data_size, uint64_t count, uint64_t rate,
		       uint64_t mask, int consumer_cpu, struct produce_result *res)
{
	struct ring_consumer rc = { 0 };
	uint64_t t0, drained, bad;
	struct cap c;
	pthread_t t;
	int err, ok;

	memset(res, 0, sizeof(*res));
	err = subscribe(&c, data_size);
	if (err) {
		printf("FAIL %s: subscribe: %s\n", name, strerror(-err));
		return 0;
	}
	rc.c = &c;
	rc.cpu = consumer_cpu;
	rc.br = reader_new(&c);
	if (!rc.br) {
		printf("FAIL %s: RingReader::attach failed\n", name);
		cap_close(&c);
		return 0;
	}
	pthread_create(&t, NULL, ring_consumer_thread, &rc);
	usleep(10000);
	t0 = now_ns(CLOCK_MONOTONIC);
	produce(&c, count, rate, mask, ICMPCAP_TEST_MODE_RING, res);
	rc.target = res->captured;
	rc.stop = 1;
	pthread_join(t, NULL);
	drained = bench_reader_records(rc.br);
	bad = bench_reader_bad(rc.br);
	ok = !res->err && !bad && !rc.corrupt && drained == res->captured &&
	     res->captured + res->dropped == res->generated;
	printf("%s %s: generated %llu captured %llu dropped %llu drained %llu in %llu batches, "
	       "bad %llu err %d%s%s\n", ok ? "PASS" : "FAIL", name,
	       (unsigned long long)res->generated, (unsigned long long)res->captured,
	       (unsigned long long)res->dropped, (unsigned long long)drained,
	       (unsigned long long)bench_reader_batches(rc.br), (unsigned long long)bad, res->err,
	       rc.corrupt ? " corrupt: " : "", rc.corrupt ? bench_reader_error(rc.br) : "");
	bench_reader_free(rc.br);
	cap_close(&c);
	if (!ok || rc.t_end <= t0)
		return 0;
	return drained / ((rc.t_end - t0) / 1e9);
}

/*
 * Where the time goes: the producer alone into a ring nobody reads (large
 * enough to take every record), then the consumer alone draining it.
 */
static void run_split(double *prod_ns, double *cons_ns)
{
	const uint64_t count = SPLIT_RECORDS;
	struct produce_result res;
	struct bench_reader *br;
	uint64_t t0, t1;
	struct cap c;
	long n;
	int err;

	*prod_ns = *cons_ns = 0;
	err = subscribe(&c, 32u << 20);
	if (err) {
		printf("FAIL bench_split: subscribe: %s\n", strerror(-err));
		return;
	}
	br = reader_new(&c);
	pin(1);
	produce(&c, count, 0, 1, ICMPCAP_TEST_MODE_RING, &res);
	t0 = now_ns(CLOCK_MONOTONIC);
	n = br ? bench_reader_drain(br, 1) : -1;
	t1 = now_ns(CLOCK_MONOTONIC);
	if (res.err || res.captured != count || n != (long)count || bench_reader_bad(br)) {
		printf("FAIL bench_split: err %d captured %llu drained %ld\n", res.err,
		       (unsigned long long)res.captured, n);
	} else {
		*prod_ns = (double)res.elapsed_ns / count;
		*cons_ns = (double)(t1 - t0) / count;
		printf("PASS bench_split: producer alone %.0f ns/record, consumer alone %.0f ns/record\n",
		       *prod_ns, *cons_ns);
	}
	if (br)
		bench_reader_free(br);
	cap_close(&c);
	pin(-1);
}

/* ---- netlink-per-record consumer ----------------------------------------------- */

struct nl_consumer {
	struct nl *nl;
	struct bench_reader *batches;	/* the same batches as the ring consumer's */
	int cpu;		/* -1: not pinned */
	uint64_t records;
	uint64_t bad;
	uint64_t t_last;	/* last batch delivered */
	struct produce_result res;
	volatile int got_reply;
};

/*
 * Validates the message like RingReader validates a ring record, then hands
 * the record to the same batches (checked and counted per batch there).
 */
static void nl_record(struct nl_consumer *nc, struct nlmsghdr *nh)
{
	struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(nh) + GENL_HDRLEN);
	const struct icmpcap_record *r = (const void *)(a + 1);

	nc->records++;
	if (nh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN) + NLA_HDRLEN + ICMPCAP_RECORD_HDR_SIZE ||
	    a->nla_type != ICMPCAP_A_RECORD || r->len != (uint32_t)ICMPCAP_RECORD_HDR_SIZE + r->cap_len ||
	    a->nla_len != NLA_HDRLEN + r->len) {
		nc->bad++;
		return;
	}
	bench_batcher_append(nc->batches, r);
}

static void *nl_consumer_thread(void *p)
{
	enum { VLEN = 64, BUFSZ = 512 };
	static char bufs[VLEN][BUFSZ];
	struct nl_consumer *nc = p;
	struct mmsghdr msgs[VLEN];
	struct iovec iov[VLEN];

	pin(nc->cpu);
	for (int i = 0; i < VLEN; i++) {
		iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = BUFSZ };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	for (;;) {
		struct pollfd pfd = { .fd = nc->nl->fd, .events = POLLIN };
		int n = recvmmsg(nc->nl->fd, msgs, VLEN, MSG_DONTWAIT, NULL);

		if (n <= 0) {
			bench_batcher_flush(nc->batches);	/* as before sleeping */
			if (nc->got_reply && poll(&pfd, 1, 200) == 0)
				break;
			if (!nc->got_reply)
				poll(&pfd, 1, 100);
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct nlmsghdr *nh = (struct nlmsghdr *)bufs[i];
			struct genlmsghdr *g = NLMSG_DATA(nh);

			if (nh->nlmsg_type == nc->nl->family && g->cmd == ICMPCAP_CMD_RECORD) {
				nl_record(nc, nh);
			} else if (nh->nlmsg_type == nc->nl->family && g->cmd == ICMPCAP_CMD_TEST_PRODUCE) {
				static struct reply r;

				memcpy(r.buf, nh, nh->nlmsg_len < BUFSZ ? nh->nlmsg_len : BUFSZ);
				parse_attrs(&r, (struct nlmsghdr *)r.buf, ICMPCAP_A_MAX);
				nc->res.generated = attr_u64(&r, ICMPCAP_A_TEST_GENERATED, 0);
				nc->res.captured = attr_u64(&r, ICMPCAP_A_CAPTURED, 0);
				nc->res.dropped = attr_u64(&r, ICMPCAP_A_DROPPED, 0);
				nc->res.elapsed_ns = attr_u64(&r, ICMPCAP_A_TEST_ELAPSED_NS, 0);
			} else if (nh->nlmsg_type == NLMSG_ERROR) {
				nc->res.err = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
				nc->got_reply = 1;
			}
		}
	}
	return NULL;
}

/* Same producers and CPUs as run_ring(); the receiver in place of the consumer. */
static double run_netlink(const char *name, uint64_t count, uint64_t mask, int consumer_cpu,
			  struct nl_consumer *nc)
{
	struct nlmsg m;
	struct cap c;
	pthread_t t;
	uint64_t t0;
	/*
	 * The kernel doubles it: room for about 150000 of these messages
	 * (truesize about 1280 bytes), more than one run sends, so a slow
	 * receiver costs time but never records, and the reply to
	 * TEST_PRODUCE (sent to this socket after the records) always fits.
	 */
	int err, ok, sz = 96 << 20;

	memset(nc, 0, sizeof(*nc));
	err = cap_open(&c, NULL);
	if (err) {
		printf("FAIL %s: subscribe: %s\n", name, strerror(-err));
		return 0;
	}
	/* As well as the design allows: a large receive buffer, batched receive. */
	setsockopt(c.nl.fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	nc->nl = &c.nl;
	nc->cpu = consumer_cpu;
	nc->batches = bench_batcher_new(CAP_LEN);
	pthread_create(&t, NULL, nl_consumer_thread, nc);
	usleep(10000);
	cap_msg(&c, &m, ICMPCAP_CMD_TEST_PRODUCE);
	msg_u64(&m, ICMPCAP_A_TEST_COUNT, count);
	msg_u64(&m, ICMPCAP_A_TEST_CPU_MASK, mask);
	msg_u32(&m, ICMPCAP_A_TEST_CAP_LEN, CAP_LEN);
	msg_u32(&m, ICMPCAP_A_TEST_MODE, ICMPCAP_TEST_MODE_NETLINK);
	m.nh.nlmsg_flags |= NLM_F_ACK;
	m.nh.nlmsg_seq = 1;
	t0 = now_ns(CLOCK_MONOTONIC);
	/* Blocks until the producers finished; the consumer thread reads meanwhile. */
	if (send(c.nl.fd, m.buf, m.nh.nlmsg_len, 0) < 0)
		nc->res.err = -errno;
	nc->got_reply = 1;
	pthread_join(t, NULL);
	cap_close(&c);
	bench_batcher_flush(nc->batches);
	nc->t_last = bench_reader_done(nc->batches);
	nc->bad += bench_reader_bad(nc->batches);
	ok = !nc->res.err && !nc->bad && nc->records == nc->res.captured &&
	     bench_reader_records(nc->batches) == nc->records &&
	     nc->res.captured + nc->res.dropped == nc->res.generated;
	printf("%s %s: generated %llu sent %llu dropped %llu received %llu bad %llu err %d\n",
	       ok ? "PASS" : "FAIL", name, (unsigned long long)nc->res.generated,
	       (unsigned long long)nc->res.captured, (unsigned long long)nc->res.dropped,
	       (unsigned long long)nc->records, (unsigned long long)nc->bad, nc->res.err);
	bench_reader_free(nc->batches);
	if (!ok || nc->t_last <= t0)
		return 0;
	return nc->records / ((nc->t_last - t0) / 1e9);
}

static uint64_t rate_of(const struct produce_result *res)
{
	return res->elapsed_ns ? res->generated * 1000000000ull / res->elapsed_ns : 0;
}

/* Best and all values of one measurement over the rounds. */
struct series {
	double v[ROUNDS];
	double best;
	char list[ROUNDS * 16];
};

static void series_add(struct series *se, int round, double v, int lower_is_better)
{
	size_t n = strlen(se->list);

	se->v[round] = v;
	if (!round || (lower_is_better ? v < se->best : v > se->best))
		se->best = v;
	snprintf(se->list + n, sizeof(se->list) - n, "%s%.0f", round ? ", " : "", v);
}

int main(void)
{
	struct series prod = { 0 }, cons = { 0 }, ring1 = { 0 }, ring2 = { 0 };
	struct series nl1 = { 0 }, nl2 = { 0 };
	struct produce_result r1[ROUNDS], r2[ROUNDS], res;
	int ncpu = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1, rounds = 0;
	uint64_t all = (1u << ncpu) - 1, gen1 = 0, drop1 = 0, gen2 = 0, drop2 = 0;
	uint64_t nlgen = 0, nldrop = 0;
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	uint64_t deadline = start + BENCH_BUDGET_S * 1000000000ull;
	struct nl_consumer nc;
	double ring, netlink;

	setvbuf(stdout, NULL, _IOLBF, 0);

	/*
	 * The host is shared and TCG figures move by 2-3x from one second to
	 * the next: both designs are measured in the same rounds, interleaved,
	 * and each keeps its best round. A second round only while the first
	 * part of the budget lasts.
	 */
	for (int i = 0; i < ROUNDS; i++) {
		double p, c;

		if (i && now_ns(CLOCK_MONOTONIC) - start > BENCH_BUDGET_S * 1000000000ull / 3) {
			printf("# bench: time budget: %d round(s) of the ring/netlink comparison\n", i);
			break;
		}
		rounds++;
		/* 0. Producer and consumer apart: which one limits the pair. */
		run_split(&p, &c);
		series_add(&prod, i, p, 1);
		series_add(&cons, i, c, 1);
		/*
		 * 1. Rings. a: one producer kthread on CPU 0, the consumer pinned
		 * to CPU 1. b: a producer kthread on every CPU, the consumer
		 * unpinned (it shares a CPU with a producer).
		 * 2. Classic design: same producers, CPUs and record contents.
		 */
		series_add(&ring1, i, run_ring("bench_ring_1cpu", 8u << 20, 1500000, 0, 1, 1, &r1[i]), 0);
		series_add(&nl1, i, run_netlink("bench_netlink_1cpu", 60000, 1, 1, &nc), 0);
		nlgen += nc.res.generated;
		nldrop += nc.res.dropped;
		series_add(&ring2, i, run_ring("bench_ring_all_cpus", 8u << 20, 750000, 0, all, -1,
					       &r2[i]), 0);
		series_add(&nl2, i, run_netlink("bench_netlink_all_cpus", 30000, all, -1, &nc), 0);
		nlgen += nc.res.generated;
		nldrop += nc.res.dropped;
		gen1 += r1[i].generated;
		drop1 += r1[i].dropped;
		gen2 += r2[i].generated;
		drop2 += r2[i].dropped;
	}

	ring = ring1.best > ring2.best ? ring1.best : ring2.best;
	netlink = nl1.best > nl2.best ? nl1.best : nl2.best;
	printf("BENCH ring_records_per_s %.0f records/s | best of %d interleaved round(s) x 2 layouts, "
	       "drained by the app's reader: RingReader (native/src/core/ring_reader.cc, span "
	       "copies) into 4096-record/1 MiB batches as ModuleSource does, each batch then "
	       "checked record by record on the same thread: 1 producer kthread on CPU 0 + "
	       "consumer pinned to CPU 1: %s/s (%llu dropped of %llu); %d producer kthreads (one "
	       "per CPU) + unpinned consumer: %s/s (%llu dropped of %llu). Records: a real IPv4 "
	       "echo request (%d bytes) through icmpcap_ring_put() as in the hook, %u bytes each, "
	       "8 MiB rings. Apart, same rounds: producer %s ns/record, consumer %s ns/record; "
	       "QEMU TCG guest, 2 vCPUs, clocksource=tsc, shared host\n",
	       ring, rounds, ring1.list, (unsigned long long)drop1, (unsigned long long)gen1, ncpu,
	       ring2.list, (unsigned long long)drop2, (unsigned long long)gen2, CAP_LEN,
	       (unsigned)REC_BYTES, prod.list, cons.list);
	printf("BENCH netlink_records_per_s %.0f records/s | best of the same rounds and layouts, "
	       "one non-blocking genlmsg_unicast per record with the same contents, receiver with "
	       "recvmmsg(64) and a 96 MiB SO_RCVBUFFORCE (room for every message of a run) "
	       "appending each record to the same batches (checked and counted the same way): "
	       "1 kthread on CPU 0 + receiver pinned to CPU 1: %s/s; %d kthreads + unpinned "
	       "receiver: %s/s (%llu of %llu dropped on a full socket); same guest and run\n",
	       netlink, nl1.list, ncpu, nl2.list, (unsigned long long)nldrop,
	       (unsigned long long)nlgen);
	printf("BENCH ring_vs_netlink %.1f x | ring_records_per_s / netlink_records_per_s, same run "
	       "(per round and layout: 1 producer %.1f, %.1f x; one per CPU %.1f, %.1f x)\n",
	       netlink > 0 ? ring / netlink : 0, nl1.v[0] > 0 ? ring1.v[0] / nl1.v[0] : 0,
	       nl1.v[1] > 0 ? ring1.v[1] / nl1.v[1] : 0, nl2.v[0] > 0 ? ring2.v[0] / nl2.v[0] : 0,
	       nl2.v[1] > 0 ? ring2.v[1] / nl2.v[1] : 0);
	printf("BENCH ring_producer_ns_per_record %.0f ns | best of %d: synthetic producer alone on "
	       "CPU 0, %d records through icmpcap_ring_put() into a 32 MiB ring nobody reads "
	       "(%s ns); same run\n", prod.best, rounds, SPLIT_RECORDS, prod.list);
	printf("BENCH ring_consumer_ns_per_record %.0f ns | best of %d: the app's reader "
	       "(RingReader::poll_records(), span copies, as ModuleSource drives it) alone on CPU 1 "
	       "draining those %d records into batches, each checked record by record (%s ns); "
	       "same run\n", cons.best, rounds, SPLIT_RECORDS, cons.list);

	/* 3. Loss at 1 M records/s with the app's consumer keeping up. */
	run_ring("bench_loss_1m", 32u << 20, 1000000, 1000000, 1, 1, &res);
	printf("BENCH loss_at_1m_per_s %llu records | records dropped of %llu generated at a target "
	       "of 1,000,000 records/s for 1 s (achieved %llu records/s) by 1 producer kthread on "
	       "CPU 0, the app's RingReader on CPU 1, 32 MiB rings (about 0.2 s of buffer), %u-byte "
	       "records\n",
	       (unsigned long long)res.dropped, (unsigned long long)res.generated,
	       (unsigned long long)rate_of(&res), (unsigned)REC_BYTES);

	/* 4. Peers on a real flood, with what is left of the budget. */
	bench_peers(deadline);
	printf("# bench: %.0f s in the guest\n", (now_ns(CLOCK_MONOTONIC) - start) / 1e9);
	return 0;
}
