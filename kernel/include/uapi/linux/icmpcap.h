/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * icmpcap user-space ABI: the record format, the shared ring layout and the
 * generic netlink control interface of icmpcap.ko.
 *
 * Shared verbatim by kernel/ (the producer) and native/ (the consumer, and the
 * AF_PACKET and file sources, which emit the same record format so every
 * source looks the same to JavaScript).
 *
 * Rules: only <linux/types.h> types, explicit padding, no pointers, no long,
 * no timeval. The ABI grows by adding; a field never changes its meaning.
 * Sizes are pinned with BUILD_BUG_ON in the module and static_assert in
 * native/.
 */
#ifndef _UAPI_LINUX_ICMPCAP_H
#define _UAPI_LINUX_ICMPCAP_H

#include <linux/types.h>

/*
 * 2: the ring header split into a consumer page (writable) and a producer
 * page (read-only), as kernel/bpf/ringbuf.c maps its rings. An app and a
 * module of different ABI versions refuse each other (SUBSCRIBE's
 * ABI_VERSION; an ABI 1 app's writable mapping of a whole ring fails with
 * EPERM): rebuild and reinstall the module (dkms) with the app.
 */
#define ICMPCAP_ABI_VERSION 2
#define ICMPCAP_DEVICE_NAME "icmpcap" /* /dev/icmpcap */
#define ICMPCAP_GENL_NAME "icmpcap"
#define ICMPCAP_GENL_VERSION 1
#define ICMPCAP_GENL_MCGRP_EVENTS "events"

/* ------------------------------------------------------------------------
 * Record: one per captured ICMP/ICMPv6 packet.
 *
 * A record is a fixed header followed by cap_len bytes of the packet starting
 * at the IP header. Records start on 8-byte boundaries: the next record starts
 * at ICMPCAP_ALIGN(len). Multi-byte fields are in host byte order (including
 * icmp_id and icmp_seq, converted from the wire); addresses are in network
 * byte order as on the wire, IPv4 in the first 4 bytes of the 16.
 * ------------------------------------------------------------------------
 */
#define ICMPCAP_REC_ALIGN 8
/* Works on 32- and 64-bit positions alike (the mask has the width of x). */
#define ICMPCAP_ALIGN(x) (((x) + (ICMPCAP_REC_ALIGN - 1)) & ~((x) - (x) + (ICMPCAP_REC_ALIGN - 1)))

/* flags */
#define ICMPCAP_REC_F_PAD 0x0001       /* filler up to the end of the data area: skip len bytes */
#define ICMPCAP_REC_F_TRUNCATED 0x0002 /* cap_len < orig_len (snap length reached) */
#define ICMPCAP_REC_F_HAS_ECHO 0x0004  /* icmp_id/icmp_seq are meaningful (echo request/reply) */
/*
 * Added in ABI 1 without a version change (bits that were always zero):
 *   FRAGMENT:  the IP packet is a fragment (IPv4 MF or offset != 0, or an
 *              IPv6 Fragment header). A first fragment is decoded as usual.
 *   NOT_FIRST: a non-first fragment: it carries no ICMP header, so
 *              icmp_type, icmp_code, icmp_id and icmp_seq are 0 and mean
 *              nothing. Always set together with FRAGMENT.
 *   SHORT:     the packet ends (orig_len, not the snap length) before a
 *              whole ICMP header (8 bytes): type/code only if present.
 *   HAS_PID:   pid holds the thread-group id of the process that sent the
 *              packet (set at LOCAL_OUT in process context, or from the
 *              owning socket); 0 and unset when unknown.
 */
#define ICMPCAP_REC_F_FRAGMENT 0x0008
#define ICMPCAP_REC_F_NOT_FIRST 0x0010
#define ICMPCAP_REC_F_SHORT 0x0020
#define ICMPCAP_REC_F_HAS_PID 0x0040

/* hook: where the packet was seen */
enum icmpcap_hook {
	ICMPCAP_HOOK_PRE_ROUTING = 0,
	ICMPCAP_HOOK_LOCAL_IN = 1,
	ICMPCAP_HOOK_FORWARD = 2,
	ICMPCAP_HOOK_LOCAL_OUT = 3,
	ICMPCAP_HOOK_POST_ROUTING = 4,
	ICMPCAP_HOOK_NONE = 255, /* not from a netfilter hook (AF_PACKET, file) */
};

/* direction */
enum icmpcap_dir {
	ICMPCAP_DIR_IN = 0,
	ICMPCAP_DIR_OUT = 1,
	ICMPCAP_DIR_FORWARD = 2,
	ICMPCAP_DIR_UNKNOWN = 3,
};

/* family: the IP version (4 or 6), not AF_* numbers */
#define ICMPCAP_FAMILY_IPV4 4
#define ICMPCAP_FAMILY_IPV6 6

struct icmpcap_record {
	__u32 len;	/*  0: header + cap_len, unpadded */
	__u16 flags;	/*  4: ICMPCAP_REC_F_* */
	__u8 hook;	/*  6: enum icmpcap_hook */
	__u8 dir;	/*  7: enum icmpcap_dir */
	__u64 ts_ns;	/*  8: CLOCK_REALTIME, nanoseconds since the epoch */
	__u32 ifindex;	/* 16: interface index in the capturing netns (file sources: interface id) */
	__u32 orig_len; /* 20: length of the packet from the IP header on */
	__u16 cap_len;	/* 24: bytes of the packet that follow this header */
	__u8 family;	/* 26: 4 or 6 */
	__u8 ttl;	/* 27: IPv4 TTL or IPv6 hop limit */
	__u8 icmp_type; /* 28 */
	__u8 icmp_code; /* 29 */
	/*
	 * Note: glibc's <netinet/ip_icmp.h> defines icmp_id and icmp_seq as
	 * macros; do not include it in a file that uses this struct, or #undef
	 * them after including it.
	 */
	__u16 icmp_id;	/* 30: echo identifier, host order (0 unless F_HAS_ECHO) */
	__u16 icmp_seq; /* 32: echo sequence, host order (0 unless F_HAS_ECHO) */
	__u16 __pad0;	/* 34: zero */
	__u32 pid;	/* 36: sender's tgid in the init pid namespace when F_HAS_PID, else 0 */
	__u8 saddr[16]; /* 40 */
	__u8 daddr[16]; /* 56 */
	/* 72: __u8 data[cap_len]; */
};
#define ICMPCAP_RECORD_HDR_SIZE 72

/*
 * Netfilter sources (icmpcap.ko): hook/dir/ifindex per hook:
 *   PRE_ROUTING, LOCAL_IN: dir IN, ifindex = input device
 *   FORWARD:               dir FORWARD, ifindex = input device
 *   LOCAL_OUT:             dir OUT, ifindex = output device of the route
 *   POST_ROUTING:          dir FORWARD for forwarded packets, else OUT;
 *                          ifindex = output device
 * An ifindex filter matches the input or the output device. Fragments are
 * captured as PRE_ROUTING sees them (before reassembly) with F_FRAGMENT, and
 * F_NOT_FIRST for those without an ICMP header; type and code filters let
 * those through. ts_ns is taken in the hook.
 */

/* A pad record needs only its first 8 bytes (len, flags). */
#define ICMPCAP_PAD_MIN_SIZE 8

/* ------------------------------------------------------------------------
 * Ring: one single-producer/single-consumer ring per possible CPU.
 *
 * Ring i starts at offset i * ring_stride of /dev/icmpcap, where
 * ring_stride = ICMPCAP_RING_HDR_SIZE + data_size (data_size a power of two,
 * reported by ICMPCAP_CMD_GET_INFO and ICMPCAP_CMD_SUBSCRIBE). A ring is
 * three parts, as a BPF ring buffer is:
 *   ICMPCAP_RING_CONSUMER_OFF  consumer page: struct icmpcap_ring_consumer,
 *                              the only part user space may write
 *   ICMPCAP_RING_PRODUCER_OFF  producer page: struct icmpcap_ring_producer,
 *                              read-only
 *   ICMPCAP_RING_DATA_OFF      data_size bytes of records, read-only
 * A consumer maps the consumer page (offset i * ring_stride, length
 * ICMPCAP_RING_PAGE_SIZE) with PROT_READ | PROT_WRITE and the rest
 * (offset i * ring_stride + ICMPCAP_RING_PRODUCER_OFF, length
 * ring_stride - ICMPCAP_RING_PRODUCER_OFF) with PROT_READ; a passive
 * observer may also map the whole ring (length ring_stride) with PROT_READ.
 * A writable mapping of anything but the consumer page fails with EPERM, and
 * read-only mappings of the producer page cannot be made writable later
 * (mprotect: EACCES).
 *
 * producer_pos and consumer_pos are free-running byte positions; the byte at
 * position p lives at data[p & (data_size - 1)]. The kernel publishes records
 * by storing producer_pos with release semantics after writing them; the
 * consumer loads producer_pos with acquire semantics, reads records, and then
 * stores consumer_pos with release semantics; the kernel loads consumer_pos
 * with acquire semantics before reusing space. A record never wraps: when it
 * does not fit before the end of the data area, the kernel writes a record
 * with ICMPCAP_REC_F_PAD covering the rest and starts at data offset 0.
 * A full ring drops the record and counts it; unread data is never
 * overwritten. The kernel never trusts consumer_pos: a value that is ahead of
 * producer_pos or more than data_size behind it is treated as "ring full".
 * ------------------------------------------------------------------------
 */
#define ICMPCAP_RING_PAGE_SIZE 4096
#define ICMPCAP_RING_CONSUMER_OFF 0
#define ICMPCAP_RING_PRODUCER_OFF 4096
#define ICMPCAP_RING_DATA_OFF 8192
#define ICMPCAP_RING_HDR_SIZE ICMPCAP_RING_DATA_OFF /* consumer + producer page */

/* The consumer page: written by user space, read by the kernel. */
struct icmpcap_ring_consumer {
	__u64 consumer_pos;  /*  0 */
	/* rest of the page reserved, zero */
};

/* The producer page: written by the kernel, read-only to user space. */
struct icmpcap_ring_producer {
	__u64 producer_pos;  /*  0 */
	__u64 data_size;     /*  8: bytes in the data area, a power of two */
	__u32 cpu;	     /* 16: CPU this ring belongs to */
	__u32 abi_version;   /* 20: ICMPCAP_ABI_VERSION */
	__u64 dropped;	     /* 24: records dropped because this ring was full */
	__u64 captured;	     /* 32: records written to this ring */
	/* rest of the page reserved, zero */
};

/* ------------------------------------------------------------------------
 * Generic netlink control interface: family ICMPCAP_GENL_NAME ("icmpcap"),
 * version ICMPCAP_GENL_VERSION, multicast group ICMPCAP_GENL_MCGRP_EVENTS
 * ("events"). Resolve the family id and the group id with CTRL_CMD_GETFAMILY
 * of the "nlctrl" family as usual. The family is namespace-aware: a
 * subscription hooks the network namespace of the netlink socket that sent
 * SUBSCRIBE and sees that namespace's traffic only.
 *
 * Permission: the device node's mode (0660, root and the group a udev rule
 * gives it); open() checks nothing else. Every command but GET_INFO names an
 * open /dev/icmpcap with DEV_FD, and holding that file is the permission.
 * GET_INFO without DEV_FD needs CAP_NET_ADMIN (EPERM otherwise).
 *
 * How to capture:
 *   1. fd = open("/dev/icmpcap", O_RDWR | O_CLOEXEC)      (EPERM: not allowed)
 *   2. SUBSCRIBE with ICMPCAP_A_DEV_FD = fd plus any configuration attribute;
 *      request NLM_F_ACK or read the reply: it carries ABI_VERSION, NR_RINGS,
 *      DATA_SIZE, RING_STRIDE, SUB_ID. Check ABI_VERSION == ICMPCAP_ABI_VERSION.
 *   3. For i in [0, NR_RINGS), with base = i * RING_STRIDE: map the consumer
 *      page, mmap(NULL, ICMPCAP_RING_PAGE_SIZE, PROT_READ | PROT_WRITE,
 *      MAP_SHARED, fd, base), and the producer page with the data,
 *      mmap(NULL, RING_STRIDE - ICMPCAP_RING_PRODUCER_OFF, PROT_READ,
 *      MAP_SHARED, fd, base + ICMPCAP_RING_PRODUCER_OFF). The producer page
 *      has cpu, data_size and abi_version filled in.
 *   4. poll(fd, POLLIN): readable when any ring holds unread data. Wakeups come
 *      at most once per batch (watermark or timer), so drain every ring
 *      completely before polling again. POLLHUP: the subscription ended
 *      (socket closed, UNSUBSCRIBE); the rings stay mapped and readable.
 *   5. The subscription ends with UNSUBSCRIBE, when the netlink socket that
 *      subscribed is closed, or when the last reference to the device file
 *      goes (close + munmap). The rings are freed when the file is released.
 *
 * One subscription per open file description; any number of open files, each
 * with its own rings and its own filter (multiple concurrent subscribers). A
 * file whose subscription ended cannot subscribe again (EBUSY): open the
 * device again. The device file keeps the module loaded (rmmod: EBUSY) while
 * it is open or mapped.
 *
 * mmap errors: ENXIO no subscription on this file yet; EINVAL offset and
 * length are none of the three mappings of a ring described above (ring
 * i < NR_RINGS), or MAP_PRIVATE; EPERM PROT_EXEC, or PROT_WRITE on anything
 * but the consumer page; EACCES PROT_WRITE on an O_RDONLY file. The kernel
 * never reads anything from the shared pages but consumer_pos.
 *
 * Other errors: EINVAL bad attribute value (extack message says which);
 * EBADF DEV_FD not open; ENOTTY DEV_FD is not /dev/icmpcap; EBUSY file already
 * subscribed (or subscription ended); ENOENT no subscription on this file
 * (UNSUBSCRIBE, UPDATE_FILTER); ENOMEM rings too large or the module's ring
 * memory limit reached; EMFILE too many subscriptions in the namespace or for
 * the user (module parameters max_subs_per_ns, max_subs_per_user).
 * Per-namespace state: /proc/net/icmpcap (format: kernel/README.md).
 * ------------------------------------------------------------------------
 */
enum icmpcap_cmd {
	ICMPCAP_CMD_UNSPEC = 0,
	/*
	 * Request: DEV_FD (required) + config attributes (all optional, defaults
	 * in brackets): HOOKS [PRE_ROUTING|LOCAL_OUT], FAMILIES [IPV4|IPV6],
	 * SNAPLEN [256], RING_DATA_SIZE [1 MiB], TYPES_V4, TYPES_V6, CODES
	 * [all], IFINDEXES [all], DIRECTIONS [all], WAKEUP_BYTES [data_size/4],
	 * WAKEUP_RECORDS [0: off], WAKEUP_USEC [2000].
	 * Reply (cmd SUBSCRIBE): ABI_VERSION, NR_RINGS, DATA_SIZE, RING_STRIDE,
	 * SUB_ID, plus the effective configuration (same attributes as GET_INFO).
	 */
	ICMPCAP_CMD_SUBSCRIBE = 1,
	/* Request: DEV_FD. Unhooks; the rings stay mapped. Reply: none (ack). */
	ICMPCAP_CMD_UNSUBSCRIBE = 2,
	/*
	 * Request: DEV_FD + any config attribute except RING_DATA_SIZE; absent
	 * attributes keep their value. Filters change atomically (RCU), make
	 * before break: no packet seen by both the old and the new filter is
	 * missed, and a failure changes nothing. Reply: the effective
	 * configuration, like SUBSCRIBE.
	 */
	ICMPCAP_CMD_UPDATE_FILTER = 3,
	/*
	 * Request: DEV_FD optional. Reply: ABI_VERSION, NR_RINGS,
	 * NR_SUBSCRIPTIONS (all namespaces), and with a subscribed DEV_FD the
	 * geometry (DATA_SIZE, RING_STRIDE, SUB_ID) and the configuration.
	 */
	ICMPCAP_CMD_GET_INFO = 4,
	/*
	 * Request: DEV_FD. Reply: CAPTURED, DROPPED (totals), PERCPU_CAPTURED,
	 * PERCPU_DROPPED (arrays of __u64, one per ring; absent when they would
	 * not fit an attribute, above 8,190 rings), SUB_ID.
	 */
	ICMPCAP_CMD_GET_STATS = 5,
	/*
	 * Notification on the "events" group, in the subscriber's namespace:
	 * EVENT_TYPE, SUB_ID, and for OVERFLOW: DROPPED (total so far), for
	 * SUBSCRIPTION_END: END_REASON. OVERFLOW is sent at most every 100 ms
	 * (checked every WAKEUP_USEC) while drops grow.
	 */
	ICMPCAP_CMD_EVENT = 6,
	/*
	 * Test builds only (make ICMPCAP_TEST=1; otherwise EOPNOTSUPP). Request:
	 * DEV_FD, TEST_COUNT (records per online CPU), TEST_RATE (records/s
	 * per CPU, 0: as fast as possible), TEST_CAP_LEN [64], TEST_MODE [RING].
	 * Runs one kthread per online CPU, blocks until all finish, replies
	 * TEST_GENERATED, CAPTURED, DROPPED (this run), TEST_ELAPSED_NS.
	 * Each kthread builds one real IPv4 echo request of TEST_CAP_LEN bytes
	 * (at least 28) and writes one record per new sequence number through
	 * the hook's own ring-writing code: timestamp, header, the first
	 * min(TEST_CAP_LEN, SNAPLEN) bytes of the packet; hook NONE, dir OUT.
	 * TEST_MODE NETLINK sends each record as one unicast ICMPCAP_CMD_RECORD
	 * message (attribute RECORD, same contents) to the requesting socket
	 * instead, without blocking; a full socket drops and counts (the
	 * classic design, for the benchmark).
	 */
	ICMPCAP_CMD_TEST_PRODUCE = 7,
	/* Kernel -> user, TEST_MODE NETLINK only: RECORD. */
	ICMPCAP_CMD_RECORD = 8,
	__ICMPCAP_CMD_MAX,
};
#define ICMPCAP_CMD_MAX (__ICMPCAP_CMD_MAX - 1)

enum icmpcap_attr {
	ICMPCAP_A_UNSPEC = 0,
	ICMPCAP_A_PAD = 1,		/* padding for 64-bit attributes */
	ICMPCAP_A_DEV_FD = 2,		/* NLA_U32: fd of an open /dev/icmpcap in the sender */
	ICMPCAP_A_HOOKS = 3,		/* NLA_U32: bitmask of 1 << enum icmpcap_hook (0-4) */
	ICMPCAP_A_FAMILIES = 4,		/* NLA_U32: ICMPCAP_FAMILY_F_* */
	ICMPCAP_A_SNAPLEN = 5,		/* NLA_U32: bytes kept from the IP header on, 0..65535 */
	ICMPCAP_A_RING_DATA_SIZE = 6,	/* NLA_U32: per ring, power of two, 4096..64 MiB */
	ICMPCAP_A_TYPES_V4 = 7,		/* NLA_BINARY, 32 bytes: bit t (byte t/8, bit t%8) keeps ICMP type t */
	ICMPCAP_A_TYPES_V6 = 8,		/* NLA_BINARY, 32 bytes: same for ICMPv6 types */
	ICMPCAP_A_CODES = 9,		/* NLA_BINARY, 32 bytes: same for codes (both families) */
	ICMPCAP_A_IFINDEXES = 10,	/* NLA_BINARY: __u32[0..ICMPCAP_MAX_IFINDEXES]; empty = all */
	ICMPCAP_A_DIRECTIONS = 11,	/* NLA_U32: bitmask of 1 << enum icmpcap_dir (IN, OUT, FORWARD) */
	ICMPCAP_A_WAKEUP_BYTES = 12,	/* NLA_U32: wake poll() when a ring holds this many new bytes */
	ICMPCAP_A_WAKEUP_RECORDS = 13,	/* NLA_U32: ... or this many new records (0: off) */
	/* NLA_U32: ... or after this delay (100..1000000 us; up to 50 ms once idle) */
	ICMPCAP_A_WAKEUP_USEC = 14,
	ICMPCAP_A_ABI_VERSION = 15,	/* NLA_U32, reply */
	ICMPCAP_A_NR_RINGS = 16,	/* NLA_U32, reply: rings to map (nr_cpu_ids) */
	ICMPCAP_A_DATA_SIZE = 17,	/* NLA_U32, reply: data_size of every ring */
	ICMPCAP_A_RING_STRIDE = 18,	/* NLA_U32, reply: mmap length and offset step */
	ICMPCAP_A_SUB_ID = 19,		/* NLA_U32, reply/event: subscription id, unique per load */
	ICMPCAP_A_NR_SUBSCRIPTIONS = 20, /* NLA_U32, reply: active subscriptions */
	ICMPCAP_A_CAPTURED = 21,	/* NLA_U64, reply: records written */
	ICMPCAP_A_DROPPED = 22,		/* NLA_U64, reply/event: records dropped, ring full */
	ICMPCAP_A_PERCPU_CAPTURED = 23,	/* NLA_BINARY, reply: __u64[NR_RINGS] */
	ICMPCAP_A_PERCPU_DROPPED = 24,	/* NLA_BINARY, reply: __u64[NR_RINGS] */
	ICMPCAP_A_EVENT_TYPE = 25,	/* NLA_U32, event: enum icmpcap_event */
	ICMPCAP_A_END_REASON = 26,	/* NLA_U32, event: enum icmpcap_end_reason */
	ICMPCAP_A_TEST_COUNT = 27,	/* NLA_U64, test builds: records per CPU */
	ICMPCAP_A_TEST_RATE = 28,	/* NLA_U64, test builds: records/s per CPU, 0 = max */
	ICMPCAP_A_TEST_CAP_LEN = 29,	/* NLA_U32, test builds: length of the synthetic packet */
	ICMPCAP_A_TEST_MODE = 30,	/* NLA_U32, test builds: enum icmpcap_test_mode */
	ICMPCAP_A_TEST_GENERATED = 31,	/* NLA_U64, test reply: records generated */
	ICMPCAP_A_TEST_ELAPSED_NS = 32,	/* NLA_U64, test reply: wall time of the run */
	ICMPCAP_A_RECORD = 33,		/* NLA_BINARY: one struct icmpcap_record + data */
	ICMPCAP_A_TEST_CPU_MASK = 34,	/* NLA_U64, test builds: CPUs 0-63 to run on, 0 = all online */
	/*
	 * NLA_BINARY: struct icmpcap_addr_rule[0..ICMPCAP_MAX_ADDR_RULES]
	 * (SUBSCRIBE, UPDATE_FILTER). Empty or absent: every address. Otherwise
	 * a packet is kept when it matches at least one rule (a capture filter's
	 * "host"/"net"/"src"/"dst" clauses, OR-ed).
	 */
	ICMPCAP_A_ADDR_RULES = 35,
	__ICMPCAP_A_MAX,
};
#define ICMPCAP_A_MAX (__ICMPCAP_A_MAX - 1)

#define ICMPCAP_FAMILY_F_IPV4 0x1
#define ICMPCAP_FAMILY_F_IPV6 0x2

#define ICMPCAP_MAX_IFINDEXES 64

/* One address rule of ICMPCAP_A_ADDR_RULES (20 bytes, no padding). */
enum icmpcap_addr_side {
	ICMPCAP_ADDR_ANY = 0, /* source or destination */
	ICMPCAP_ADDR_SRC = 1,
	ICMPCAP_ADDR_DST = 2,
};
struct icmpcap_addr_rule {
	__u8 family;	 /* 0: 4 or 6; the rule never matches the other family */
	__u8 prefix_len; /* 1: 0..32 (IPv4) or 0..128 (IPv6) */
	__u8 side;	 /* 2: enum icmpcap_addr_side */
	__u8 __pad;	 /* 3: zero */
	__u8 addr[16];	 /* 4: network order, IPv4 in the first 4 bytes; bits past prefix_len zero */
};
#define ICMPCAP_MAX_ADDR_RULES 16
#define ICMPCAP_BITMAP_BYTES 32 /* 256 bits */

enum icmpcap_event {
	ICMPCAP_EVENT_OVERFLOW = 1,	    /* a ring was full: records dropped */
	ICMPCAP_EVENT_SUBSCRIPTION_END = 2, /* see END_REASON */
	ICMPCAP_EVENT_CONFIG_CHANGED = 3,   /* UPDATE_FILTER succeeded */
};

enum icmpcap_end_reason {
	ICMPCAP_END_UNSUBSCRIBE = 1,	/* UNSUBSCRIBE command */
	ICMPCAP_END_SOCKET_CLOSED = 2,	/* subscribing netlink socket released */
	ICMPCAP_END_FILE_CLOSED = 3,	/* device file released */
};

enum icmpcap_test_mode {
	ICMPCAP_TEST_MODE_RING = 0,
	ICMPCAP_TEST_MODE_NETLINK = 1,
};

#endif /* _UAPI_LINUX_ICMPCAP_H */
