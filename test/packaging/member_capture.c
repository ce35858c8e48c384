// SPDX-License-Identifier: GPL-2.0
/*
 * Runs in the QEMU guest against the icmpcap.ko that DKMS built in the packaging test's Debian root, with
 * /dev/icmpcap given the group and mode that the icmpcap-dkms udev rule sets. Drops to an unprivileged
 * user whose only group is GID and then either captures its own ping through the module (allow), or must
 * be refused (deny). Prints one PASS/FAIL line named NAME.
 * Usage: member_capture NAME GID allow|deny
 */
#include <grp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "../../kernel/test/icmpcap_lib.h"

#define NOBODY 65534
/* Not <netinet/ip_icmp.h>: its icmp_id macro clashes with struct icmpcap_record. */
#define ECHO_REQUEST 8
#define ECHO_REPLY 0

struct echo_hdr {
	uint8_t type, code;
	uint16_t csum, id, seq;
};

static void count_echo(const struct icmpcap_record *rec, void *arg)
{
	int *n = arg;

	if (rec->family == 4 && (rec->icmp_type == ECHO_REQUEST || rec->icmp_type == ECHO_REPLY) &&
	    rec->icmp_id == 0x1ca7)
		(*n)++;
}

/* Echo request to 127.0.0.1 through an unprivileged ICMP socket (ping_group_range allows it). */
static int ping_loopback(uint16_t seq)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct echo_hdr h = { .type = ECHO_REQUEST };
	char buf[256];
	struct pollfd p;
	int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);

	if (s < 0)
		return -errno;
	/* The kernel replaces the id of an ICMP datagram socket with its port: bind to pick it. */
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(0x1ca7) };
	if (bind(s, (struct sockaddr *)&me, sizeof(me)))
		return -errno;
	h.seq = htons(seq);
	if (sendto(s, &h, sizeof(h), 0, (struct sockaddr *)&to, sizeof(to)) != sizeof(h))
		return -errno;
	p.fd = s;
	p.events = POLLIN;
	if (poll(&p, 1, 2000) != 1)
		return -ETIMEDOUT;
	if (recv(s, buf, sizeof(buf), 0) < 0)
		return -errno;
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	const char *name;
	struct cap c;
	gid_t gid;
	int allow, err, seen = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4)
		return 2;
	name = argv[1];
	gid = (gid_t)atoi(argv[2]);
	allow = !strcmp(argv[3], "allow");
	if (setgroups(1, &gid) || setgid(NOBODY) || setuid(NOBODY)) {
		printf("FAIL %s: cannot drop to uid %d with group %u: %s\n", name, NOBODY, gid, strerror(errno));
		return 1;
	}
	err = cap_open(&c, NULL);
	if (!allow) {
		if (err == -EACCES || err == -EPERM) {
			printf("PASS %s: refused (%s)\n", name, strerror(-err));
			return 0;
		}
		printf("FAIL %s: a non-member opened /dev/icmpcap (%s)\n", name, err ? strerror(-err) : "allowed");
		return 1;
	}
	if (err) {
		printf("FAIL %s: member of group %u cannot capture: %s\n", name, gid, strerror(-err));
		return 1;
	}
	for (int i = 1; i <= 3; i++) {
		err = ping_loopback((uint16_t)i);
		if (err) {
			printf("FAIL %s: ping 127.0.0.1: %s\n", name, strerror(-err));
			return 1;
		}
	}
	for (int tries = 0; tries < 40 && seen < 6; tries++) {
		struct pollfd p = { .fd = c.dev, .events = POLLIN };

		poll(&p, 1, 50);
		if (cap_drain(&c, count_echo, &seen) < 0) {
			printf("FAIL %s: malformed ring\n", name);
			return 1;
		}
	}
	cap_close(&c);
	/* 3 requests + 3 replies, each seen at LOCAL_OUT and PRE_ROUTING on lo. */
	if (seen < 6) {
		printf("FAIL %s: captured %d echo records, want at least 6\n", name, seen);
		return 1;
	}
	printf("PASS %s: uid %d in group %u captured %d echo records of its ping\n", name, NOBODY, gid, seen);
	return 0;
}
