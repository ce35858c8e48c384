// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Peer comparison in the bench guest: one ICMP echo flood from namespace a to
 * namespace b over veth (b ignores echoes: nothing but the flood), captured
 * in b by
 *   module:   icmpcap.ko (PRE_ROUTING, IPv4), drained by the app's
 *             RingReader (icmpcap_bench_reader.cc) on CPU 1
 *   afpacket: the app's capture helper (native/helper: AF_PACKET TPACKET_V3
 *             bound to vb, classic BPF "icmp or icmp6"), started and read as
 *             the app does (its memfd rings drained by the same RingReader),
 *             helper and reader on CPU 1
 *   tcpdump:  tcpdump -i vb -w /dev/null icmp, on CPU 1
 * with the same buffer budget (2 MiB) and the sender alone on CPU 0.
 *
 * For each: the highest offered rate with zero loss (bisection between a
 * rate every capturer holds and the sender's own limit, at most
 * PEER_MAX_TRIALS trials of PEER_TRIAL_MS, within the caller's deadline),
 * and CPU ns per packet at that common rate: the capturing process (thread
 * and process CPU clocks) plus what the capture adds to the kernel's
 * receive path. The latter runs in softirq on CPU 0, inline in the sender's
 * syscalls (charged to the sender thread: Debian's kernel has no
 * IRQ_TIME_ACCOUNTING) or in ksoftirqd: (sender + ksoftirqd CPU per packet)
 * minus the same without any capture at the same rate.
 *
 * Truth: IcmpMsg InType8 of namespace b (/proc/net/snmp), counted in
 * icmp_rcv() after every capture point saw the packet.
 */
#include "icmpcap_lib.h"
#include "icmpcap_bench_reader.h"
#include "helper_protocol.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "icmpcap_bench_peers.h"

#define PEER_TRIAL_MS 1000
#define PEER_MAX_TRIALS 5
#define PEER_BUF_BYTES (2u << 20)
#define PEER_CAP_LEN 84		/* 20 + 8 + 56, as ping */
#define PEER_ECHO_ID 0x6b62
#define HELPER "/bin/icmpcap-helper"
#define TCPDUMP "/usr/bin/tcpdump"

enum { M_NONE, M_MODULE, M_AFPACKET, M_TCPDUMP, M_COUNT };
static const char *const method_name[M_COUNT] = { "none", "module", "afpacket", "tcpdump" };

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int netns(const char *name)
{
	char path[64];
	int fd, err;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	err = setns(fd, CLONE_NEWNET);
	close(fd);
	return err;
}

static uint64_t thread_cpu_ns(void)
{
	return now_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Run time of every ksoftirqd thread, ns (/proc/PID/schedstat, first field). */
static uint64_t ksoftirqd_ns(void)
{
	static int pids[16], n = -1;
	uint64_t sum = 0;

	if (n < 0) {
		DIR *d = opendir("/proc");
		struct dirent *e;

		n = 0;
		while (d && (e = readdir(d)) && n < 16) {
			char path[300], comm[32] = "";
			FILE *f;

			if (e->d_name[0] < '1' || e->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
			f = fopen(path, "r");
			if (!f)
				continue;
			if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "ksoftirqd/", 10))
				pids[n++] = atoi(e->d_name);
			fclose(f);
		}
		if (d)
			closedir(d);
	}
	for (int i = 0; i < n; i++) {
		char path[64];
		unsigned long long ns = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/schedstat", pids[i]);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		if (f)
			fclose(f);
	}
	return sum;
}

/* Run time of thread tid of process pid so far, ns (schedstat: sum_exec_runtime). */
static uint64_t task_ns(pid_t pid, pid_t tid)
{
	unsigned long long ns = 0;
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tid);
	f = fopen(path, "r");
	if (f && fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	if (f)
		fclose(f);
	return ns;
}

/* IcmpMsg InType8 of the calling thread's namespace. */
static uint64_t in_echos(void)
{
	char head[1024], vals[1024];
	uint64_t v = 0;
	FILE *f = fopen("/proc/thread-self/net/snmp", "r");

	if (!f)
		return 0;
	while (fgets(head, sizeof(head), f)) {
		char *h, *x, *hs, *xs;

		if (strncmp(head, "IcmpMsg:", 8) || !fgets(vals, sizeof(vals), f))
			continue;
		for (h = strtok_r(head, " \n", &hs), x = strtok_r(vals, " \n", &xs); h && x;
		     h = strtok_r(NULL, " \n", &hs), x = strtok_r(NULL, " \n", &xs))
			if (!strcmp(h, "InType8"))
				v = strtoull(x, NULL, 10);
		break;
	}
	fclose(f);
	return v;
}

/* ---- the flood ------------------------------------------------------------ */

struct flood {
	uint64_t rate;		/* packets/s; 0: as fast as the sender goes */
	uint64_t sent, elapsed_ns, cpu_ns;
	int err;
};

static uint16_t csum16(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Echo requests from a to 10.0.0.2 on CPU 0, paced per millisecond, sendmmsg(64). */
static void *flood_thread(void *p)
{
	enum { BATCH = 64, PAYLOAD = 56 };
	static uint8_t pkts[BATCH][8 + PAYLOAD];
	struct flood *fl = p;
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint64_t t0, end, cpu0, due = 0, tick, seq = 0;
	int s;

	pin_to(0);
	if (netns("a")) {
		fl->err = -errno;
		return NULL;
	}
	s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (s < 0) {
		fl->err = -errno;
		return NULL;
	}
	inet_pton(AF_INET, "10.0.0.2", &to.sin_addr);
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = pkts[i], .iov_len = sizeof(pkts[i]) };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to, .msg_namelen = sizeof(to),
							  .msg_iov = &iov[i], .msg_iovlen = 1 } };
		pkts[i][0] = 8;
		pkts[i][4] = PEER_ECHO_ID >> 8;
		pkts[i][5] = PEER_ECHO_ID & 0xff;
		for (int k = 8; k < 8 + PAYLOAD; k++)
			pkts[i][k] = (uint8_t)k;
	}
	cpu0 = thread_cpu_ns();
	t0 = now_ns(CLOCK_MONOTONIC);
	end = t0 + PEER_TRIAL_MS * 1000000ull;
	tick = t0;
	for (;;) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		int n, k;

		if (now >= end)
			break;
		if (fl->rate) {
			due = (now - t0) * fl->rate / 1000000000ull + 1;
			if (fl->sent >= due) {
				struct timespec ts;

				tick += 1000000;
				ts.tv_sec = tick / 1000000000ull;
				ts.tv_nsec = tick % 1000000000ull;
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
				continue;
			}
			n = due - fl->sent > BATCH ? BATCH : (int)(due - fl->sent);
		} else {
			n = BATCH;
		}
		for (k = 0; k < n; k++, seq++) {
			uint8_t *pk = pkts[k];
			uint16_t c;

			pk[2] = pk[3] = 0;
			pk[6] = (uint8_t)(seq >> 8);
			pk[7] = (uint8_t)seq;
			c = csum16(pk, sizeof(pkts[k]));
			pk[2] = c >> 8;
			pk[3] = c & 0xff;
		}
		k = sendmmsg(s, msgs, n, 0);
		if (k > 0)
			fl->sent += k;
		else if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			break;
	}
	fl->elapsed_ns = now_ns(CLOCK_MONOTONIC) - t0;
	fl->cpu_ns = thread_cpu_ns() - cpu0;
	close(s);
	return NULL;
}

/* ---- capturers ---------------------------------------------------------------- */

struct capturer {
	int method;
	/* module */
	struct cap c;
	/* afpacket */
	int sock;
	uint8_t *rings, *cons;
	size_t rings_len;
	uint32_t nr_rings, stride;
	/* afpacket, tcpdump */
	pid_t pid;
	int err_pipe;
	/* module, afpacket: the app's reader on CPU 1 */
	struct bench_reader *br;
	pthread_t reader;
	volatile int stop;
	volatile pid_t reader_tid;
	uint64_t cpu0;		/* capturing threads' run time when the flood starts */
	uint64_t cpu_ns;	/* ... and what they ran until the flood was captured */
	uint64_t captured, dropped;
	char why[160];
};

static void *reader_thread(void *p)
{
	struct capturer *cp = p;
	int fd = cp->method == M_MODULE ? cp->c.dev : cp->sock;

	pin_to(1);
	cp->reader_tid = syscall(SYS_gettid);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long n = bench_reader_drain(cp->br, 0);

		if (n == 0)
			n = bench_reader_drain(cp->br, 1);
		if (n < 0) {
			snprintf(cp->why, sizeof(cp->why), "corrupt ring: %s",
				 bench_reader_error(cp->br));
			break;
		}
		if (n > 0)
			continue;
		if (cp->stop)
			break;
		poll(&pfd, 1, 20);
		if (cp->method == M_AFPACKET) {
			/* WAKE notices: the reader drains on any of them. */
			struct icmpcap_helper_msg m;

			while (recv(cp->sock, &m, sizeof(m), MSG_DONTWAIT) > 0)
				;
		}
	}
	return NULL;
}

/* Run time of the capturing process(es) and the app's reader thread, ns. */
static uint64_t capture_cpu_ns(const struct capturer *cp)
{
	uint64_t ns = 0;

	if (cp->br)
		ns += task_ns(getpid(), cp->reader_tid);
	if (cp->pid > 0)
		ns += task_ns(cp->pid, cp->pid);
	return ns;
}

static int start_module(struct capturer *cp)
{
	struct nlmsg m;
	uint8_t *prod[MAX_RINGS];
	uint64_t *cons[MAX_RINGS];
	int err;

	msg_init(&m, 0, ICMPCAP_CMD_SUBSCRIBE, 0);
	msg_u32(&m, ICMPCAP_A_HOOKS, 1u << ICMPCAP_HOOK_PRE_ROUTING);
	msg_u32(&m, ICMPCAP_A_FAMILIES, ICMPCAP_FAMILY_F_IPV4);
	msg_u32(&m, ICMPCAP_A_RING_DATA_SIZE, PEER_BUF_BYTES);
	err = cap_open(&cp->c, &m);
	if (err) {
		snprintf(cp->why, sizeof(cp->why), "subscribe: %s", strerror(-err));
		return -1;
	}
	for (uint32_t i = 0; i < cp->c.nr_rings; i++) {
		prod[i] = (uint8_t *)cp->c.ring[i];
		cons[i] = (uint64_t *)&cp->c.cons[i]->consumer_pos;
	}
	cp->br = bench_reader_new(prod, cons, cp->c.nr_rings, cp->c.data_size, PEER_CAP_LEN);
	if (!cp->br) {
		snprintf(cp->why, sizeof(cp->why), "RingReader::attach failed");
		return -1;
	}
	return 0;
}

static void stop_module(struct capturer *cp)
{
	uint64_t last = 0, t = now_ns(CLOCK_MONOTONIC);
	static struct reply r;
	struct nlmsg m;

	/* Caught up: nothing new for 200 ms (the kernel's timer wakes the reader). */
	while (now_ns(CLOCK_MONOTONIC) - t < 200000000ull) {
		uint64_t cur = bench_reader_records(cp->br);

		if (cur != last) {
			last = cur;
			t = now_ns(CLOCK_MONOTONIC);
		}
		usleep(20000);
	}
	cp->cpu_ns = capture_cpu_ns(cp) - cp->cpu0;
	cap_msg(&cp->c, &m, ICMPCAP_CMD_GET_STATS);
	if (!nl_call(&cp->c.nl, &m, &r))
		cp->dropped = attr_u64(&r, ICMPCAP_A_DROPPED, 0);
}

/* recvmsg of one helper message with up to two descriptors. */
static ssize_t helper_recv(int sock, struct icmpcap_helper_msg *m, int fds[2], int *nfds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

	*nfds = 0;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			*nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			if (*nfds > 2)
				*nfds = 2;
			memcpy(fds, CMSG_DATA(cm), *nfds * sizeof(int));
		}
	}
	return n;
}

/* As HelperSource::open(): spawn, READY with the memfds, map, attach. */
static int start_afpacket(struct capturer *cp)
{
	char ring_bytes[16], snap[8], ifindex[16];
	struct icmpcap_helper_msg m;
	uint8_t *prod[ICMPCAP_HELPER_MAX_RINGS];
	uint64_t *cons[ICMPCAP_HELPER_MAX_RINGS];
	int sv[2], fds[2], nfds;

	snprintf(ring_bytes, sizeof(ring_bytes), "%u", PEER_BUF_BYTES);
	snprintf(snap, sizeof(snap), "%u", 256u);	/* the app's default snap length */
	snprintf(ifindex, sizeof(ifindex), "%u", if_nametoindex("vb"));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	cp->pid = fork();
	if (cp->pid == 0) {
		pin_to(1);
		dup2(sv[1], ICMPCAP_HELPER_FD);
		execl(HELPER, HELPER, "--snaplen", snap, "--ring-bytes", ring_bytes, "--ifindex",
		      ifindex, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	cp->sock = sv[0];
	if (helper_recv(cp->sock, &m, fds, &nfds) != sizeof(m) || m.magic != ICMPCAP_HELPER_MAGIC ||
	    m.kind != ICMPCAP_HELPER_READY || nfds != 2) {
		snprintf(cp->why, sizeof(cp->why), "helper: no READY (kind %u err %d op %.40s)",
			 m.kind, m.err, m.op);
		return -1;
	}
	cp->rings_len = (size_t)m.ring_stride * m.nr_rings;
	cp->nr_rings = m.nr_rings;
	cp->stride = m.ring_stride;
	cp->rings = mmap(NULL, cp->rings_len, PROT_READ, MAP_SHARED, fds[0], 0);
	cp->cons = mmap(NULL, ICMPCAP_HELPER_CONSUMER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			fds[1], 0);
	close(fds[0]);
	close(fds[1]);
	if (cp->rings == MAP_FAILED || cp->cons == MAP_FAILED) {
		snprintf(cp->why, sizeof(cp->why), "helper: mmap: %s", strerror(errno));
		return -1;
	}
	for (uint32_t i = 0; i < m.nr_rings; i++) {
		prod[i] = cp->rings + (size_t)i * m.ring_stride + ICMPCAP_RING_PRODUCER_OFF;
		cons[i] = (uint64_t *)(cp->cons + i * ICMPCAP_HELPER_CONSUMER_STRIDE);
	}
	cp->br = bench_reader_new(prod, cons, m.nr_rings, m.data_size, PEER_CAP_LEN);
	if (!cp->br) {
		snprintf(cp->why, sizeof(cp->why), "helper: RingReader::attach failed");
		return -1;
	}
	return 0;
}

/* Sends kind and waits for SYNCED (SYNC: the helper published what the kernel accepted). */
static void helper_sync(struct capturer *cp, uint32_t kind)
{
	struct icmpcap_helper_msg m = { .magic = ICMPCAP_HELPER_MAGIC, .kind = kind };
	struct pollfd pfd = { .fd = cp->sock, .events = POLLIN };
	uint64_t end = now_ns(CLOCK_MONOTONIC) + 3000000000ull;

	send(cp->sock, &m, sizeof(m), 0);
	while (now_ns(CLOCK_MONOTONIC) < end && poll(&pfd, 1, 100) >= 0) {
		int fds[2], nfds;

		if (!(pfd.revents & POLLIN))
			continue;
		if (helper_recv(cp->sock, &m, fds, &nfds) <= 0 || m.kind == ICMPCAP_HELPER_SYNCED)
			break;
	}
}

static void stop_afpacket(struct capturer *cp)
{
	uint64_t last = 0, t;
	int st;

	/* Caught up: the reader read nothing new for 200 ms after a SYNC. */
	helper_sync(cp, ICMPCAP_HELPER_SYNC);
	t = now_ns(CLOCK_MONOTONIC);
	while (now_ns(CLOCK_MONOTONIC) - t < 200000000ull) {
		uint64_t cur = bench_reader_records(cp->br);

		if (cur != last) {
			last = cur;
			t = now_ns(CLOCK_MONOTONIC);
		}
		usleep(20000);
	}
	cp->cpu_ns = capture_cpu_ns(cp) - cp->cpu0;
	cp->stop = 1;
	pthread_join(cp->reader, NULL);
	helper_sync(cp, ICMPCAP_HELPER_STOP);
	bench_reader_drain(cp->br, 1);
	waitpid(cp->pid, &st, 0);
	cp->pid = 0;
	cp->dropped = 0;
	for (uint32_t i = 0; i < cp->nr_rings; i++) {
		const struct icmpcap_ring_producer *h =
			(const void *)(cp->rings + (size_t)i * cp->stride + ICMPCAP_RING_PRODUCER_OFF);

		cp->dropped += h->dropped;
	}
}

static int start_tcpdump(struct capturer *cp)
{
	char line[256];
	size_t len = 0;
	int pfd[2];
	uint64_t end;

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	cp->pid = fork();
	if (cp->pid == 0) {
		pin_to(1);
		dup2(pfd[1], 2);
		dup2(open("/dev/null", O_RDWR), 1);
		execl(TCPDUMP, "tcpdump", "-i", "vb", "-w", "/dev/null", "-B", "2048", "-Z", "root",
		      "icmp", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	cp->err_pipe = pfd[0];
	/* "listening on vb, ...": the capture is set up. */
	end = now_ns(CLOCK_MONOTONIC) + 10000000000ull;
	while (now_ns(CLOCK_MONOTONIC) < end && len < sizeof(line) - 1) {
		struct pollfd p = { .fd = cp->err_pipe, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(cp->err_pipe, line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += n;
		line[len] = 0;
		if (strstr(line, "listening on"))
			return 0;
	}
	line[len] = 0;
	snprintf(cp->why, sizeof(cp->why), "tcpdump did not start: %.100s", line);
	return -1;
}

static void stop_tcpdump(struct capturer *cp)
{
	char out[2048];
	size_t len = 0;
	ssize_t n;
	char *p;
	int st;

	/*
	 * tcpdump reads a TPACKET_V3 block when it is full or retires after
	 * its 1000 ms timeout: wait for that, then take its run time before it
	 * starts shutting down.
	 */
	usleep(1300000);
	cp->cpu_ns = capture_cpu_ns(cp) - cp->cpu0;
	kill(cp->pid, SIGINT);
	while (len < sizeof(out) - 1 && (n = read(cp->err_pipe, out + len, sizeof(out) - 1 - len)) > 0)
		len += n;
	out[len] = 0;
	waitpid(cp->pid, &st, 0);
	cp->pid = 0;
	p = strstr(out, " packets captured");
	while (p && p > out && p[-1] >= '0' && p[-1] <= '9')
		p--;
	cp->captured = p ? strtoull(p, NULL, 10) : 0;
	p = strstr(out, " packets dropped by kernel");
	while (p && p > out && p[-1] >= '0' && p[-1] <= '9')
		p--;
	cp->dropped = p ? strtoull(p, NULL, 10) : 0;
	if (!strstr(out, " packets captured"))
		snprintf(cp->why, sizeof(cp->why), "tcpdump: no summary: %.100s", out);
	close(cp->err_pipe);
}

/* ---- one trial ---------------------------------------------------------------------- */

struct trial {
	uint64_t offered, truth, captured, dropped;
	double pps;			/* truth / elapsed */
	double sender_ns;		/* (sender + ksoftirqd CPU) per packet */
	double proc_ns;			/* capturing process(es) CPU per packet */
	int ok;				/* zero loss */
	char why[160];
};

static int run_trial(int method, uint64_t rate, struct trial *t)
{
	struct capturer cp = { .method = method, .sock = -1, .err_pipe = -1 };
	struct flood fl = { .rate = rate };
	uint64_t echos0, soft0;
	pthread_t ft;
	int err = 0;

	memset(t, 0, sizeof(*t));
	t->offered = rate;
	if (method == M_MODULE)
		err = start_module(&cp);
	else if (method == M_AFPACKET)
		err = start_afpacket(&cp);
	else if (method == M_TCPDUMP)
		err = start_tcpdump(&cp);
	if (!err && cp.br)
		err = pthread_create(&cp.reader, NULL, reader_thread, &cp);
	if (err) {
		snprintf(t->why, sizeof(t->why), "%s", cp.why[0] ? cp.why : "start failed");
		goto out;
	}
	usleep(50000);
	while (cp.br && !cp.reader_tid)
		usleep(1000);
	echos0 = in_echos();
	soft0 = ksoftirqd_ns();
	cp.cpu0 = capture_cpu_ns(&cp);
	pthread_create(&ft, NULL, flood_thread, &fl);
	pthread_join(ft, NULL);
	if (fl.err) {
		snprintf(t->why, sizeof(t->why), "sender: %s", strerror(-fl.err));
		goto out;
	}
	if (method == M_MODULE) {
		stop_module(&cp);
		cp.stop = 1;
		pthread_join(cp.reader, NULL);
		cp.captured = bench_reader_records(cp.br);
	} else if (method == M_AFPACKET) {
		stop_afpacket(&cp);
		cp.captured = bench_reader_records(cp.br);
	} else if (method == M_TCPDUMP) {
		stop_tcpdump(&cp);
	} else {
		usleep(100000);
	}
	t->truth = in_echos() - echos0;
	t->pps = fl.elapsed_ns ? t->truth * 1e9 / fl.elapsed_ns : 0;
	t->sender_ns = t->truth ? (double)(fl.cpu_ns + ksoftirqd_ns() - soft0) / t->truth : 0;
	t->proc_ns = t->truth ? (double)cp.cpu_ns / t->truth : 0;
	t->captured = cp.captured;
	t->dropped = cp.dropped;
	/*
	 * Zero loss: every echo request of the flood captured. The helper also
	 * captures the namespace's ICMPv6 (neighbour discovery): the reader
	 * counts records that are not 84-byte echo requests apart ("bad").
	 */
	if (cp.br)
		cp.captured -= bench_reader_bad(cp.br);
	t->ok = method == M_NONE || (t->truth && cp.captured == t->truth && !cp.why[0]);
	if (cp.why[0])
		snprintf(t->why, sizeof(t->why), "%s", cp.why);
	printf("# peers %s: offered %llu/s sent %llu received %llu (%.0f/s) captured %llu "
	       "dropped %llu: %s; sender+softirq %.0f ns/pkt, capturer %.0f ns/pkt%s%s\n",
	       method_name[method], (unsigned long long)rate, (unsigned long long)fl.sent,
	       (unsigned long long)t->truth, t->pps, (unsigned long long)t->captured,
	       (unsigned long long)t->dropped, t->ok ? "zero loss" : "LOSS", t->sender_ns,
	       t->proc_ns, t->why[0] ? " " : "", t->why);
out:
	if (cp.br)
		bench_reader_free(cp.br);
	if (method == M_MODULE && cp.c.dev > 0)
		cap_close(&cp.c);
	if (cp.rings && cp.rings != MAP_FAILED)
		munmap(cp.rings, cp.rings_len);
	if (cp.cons && cp.cons != MAP_FAILED)
		munmap(cp.cons, ICMPCAP_HELPER_CONSUMER_BYTES);
	if (cp.sock >= 0)
		close(cp.sock);
	if (cp.pid > 0 && waitpid(cp.pid, NULL, WNOHANG) == 0) {
		kill(cp.pid, SIGKILL);
		waitpid(cp.pid, NULL, 0);
	}
	return t->why[0] && !t->truth ? -1 : 0;
}

/* ---- the comparison ------------------------------------------------------------------ */

int bench_peers(uint64_t deadline)
{
	struct trial base_max, fast[M_COUNT], at[M_COUNT], best[M_COUNT];
	int trials[M_COUNT] = { 0 };
	uint64_t common, max;
	int m;

	memset(fast, 0, sizeof(fast));
	memset(at, 0, sizeof(at));
	memset(best, 0, sizeof(best));
	if (netns("b")) {
		printf("FAIL bench_peers: netns b: %s\n", strerror(errno));
		return -1;
	}
	/* Nothing but the flood: b answers no echo. */
	if (system("echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all"))
		printf("# peers: cannot set icmp_echo_ignore_all\n");
	/* The sender alone, unpaced: its limit, and its CPU per packet. */
	if (run_trial(M_NONE, 0, &base_max)) {
		printf("FAIL bench_peers: sender: %s\n", base_max.why);
		return -1;
	}
	max = (uint64_t)base_max.pps;
	common = max / 2 / 500 * 500;
	if (common < 500)
		common = 500;
	for (m = M_MODULE; m < M_COUNT; m++) {
		uint64_t lo, hi, rate;

		/*
		 * 1. Unpaced: zero loss here is the sender's limit; its sender CPU
		 * per packet (no pacing sleeps) gives the receive-path cost.
		 * 2. The common rate: the capturing process's CPU per packet.
		 * 3. Bisection below the first rate that lost.
		 */
		if (run_trial(m, 0, &fast[m])) {
			printf("FAIL bench_peers_%s: %s\n", method_name[m], fast[m].why);
			continue;
		}
		if (run_trial(m, common, &at[m])) {
			printf("FAIL bench_peers_%s: %s\n", method_name[m], at[m].why);
			continue;
		}
		trials[m] = 2;
		if (fast[m].ok)
			best[m] = fast[m];
		if (at[m].ok && at[m].pps > best[m].pps)
			best[m] = at[m];
		if (fast[m].ok)
			continue;
		lo = at[m].ok ? common : 0;
		hi = at[m].ok ? (uint64_t)fast[m].pps : common;
		while (trials[m] < PEER_MAX_TRIALS && hi - lo > hi / 16) {
			struct trial t;

			if (now_ns(CLOCK_MONOTONIC) > deadline) {
				printf("# peers %s: time limit reached after %d trials\n",
				       method_name[m], trials[m]);
				break;
			}
			rate = (lo + hi) / 2;
			if (run_trial(m, rate, &t))
				break;
			trials[m]++;
			if (t.ok) {
				if (t.pps > best[m].pps)
					best[m] = t;
				lo = rate;
			} else {
				hi = rate;
			}
		}
	}
	for (m = M_MODULE; m < M_COUNT; m++) {
		double extra = fast[m].sender_ns - base_max.sender_ns;

		printf("BENCH zero_loss_pps_%s %.0f packets/s | highest rate with zero loss in %d "
		       "trials of %d ms (unpaced: %.0f/s %s; then %llu/s and a bisection): ICMP echo "
		       "flood a->b over veth (the sender alone reaches %llu/s), sender on CPU 0, "
		       "capture in b on CPU 1 with a 2 MiB buffer; %s; truth = IcmpMsg InType8 of b; "
		       "QEMU TCG guest, same run as the other kernel.zero_loss_pps_* keys\n",
		       method_name[m], best[m].pps, trials[m], PEER_TRIAL_MS, fast[m].pps,
		       fast[m].ok ? "held: the sender's limit with this capture on" : "lost",
		       (unsigned long long)common, (unsigned long long)max,
		       m == M_MODULE ? "icmpcap.ko PRE_ROUTING, read by the app's RingReader" :
		       m == M_AFPACKET ? "the app's capture helper (AF_PACKET TPACKET_V3 + BPF, "
					 "bound to vb) read by the app's RingReader" :
					 "tcpdump -i vb -w /dev/null -B 2048 icmp");
		printf("BENCH cpu_ns_per_packet_%s %.0f ns | capturing process %.0f ns/packet at "
		       "%llu packets/s (%s; run time of %s from the flood's start until it was all "
		       "read, /proc/PID/task/TID/schedstat) + receive-path softirq %.0f ns/packet "
		       "(unpaced: (sender thread + ksoftirqd) CPU per packet %.0f with the capture "
		       "minus %.0f without; the hooks and AF_PACKET run inline in the sender's "
		       "syscalls on CPU 0, and Debian's kernel has no IRQ_TIME_ACCOUNTING); same run\n",
		       method_name[m], at[m].proc_ns + extra, at[m].proc_ns,
		       (unsigned long long)common, at[m].ok ? "zero loss" : "with loss",
		       m == M_MODULE ? "the app's reader thread" :
		       m == M_AFPACKET ? "the helper process and the app's reader thread" :
					 "the tcpdump process",
		       extra, fast[m].sender_ns, base_max.sender_ns);
	}
	return 0;
}
