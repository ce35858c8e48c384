/* Opening the AF_PACKET capture socket: shared by the core (C++) and icmpcap-helper (C). */
#ifndef ICMPCAP_AFPACKET_SOCKET_H
#define ICMPCAP_AFPACKET_SOCKET_H

#include <linux/filter.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ICMPCAP_AFP_FILTER_LEN 10

/*
 * Classic BPF accepting only ICMP (IPv4 protocol 1) and ICMPv6 (IPv6 next header 58).
 * Runs on SOCK_DGRAM packet sockets, where offset 0 is the network header. The return
 * value is the snap length, so the kernel copies at most snaplen bytes into the ring.
 * IPv6 packets with extension headers before ICMPv6 are not matched.
 */
void icmpcap_afp_filter(struct sock_filter out[ICMPCAP_AFP_FILTER_LEN], uint32_t snaplen);

/* Attaches the filter above to fd. Returns 0 or -errno. */
int icmpcap_afp_attach_filter(int fd, uint32_t snaplen);

/*
 * socket(AF_PACKET, SOCK_DGRAM, 0) (protocol 0: nothing is queued before bind), attach the
 * filter, then bind to ifindex (0 = all interfaces) for every protocol. Returns the fd
 * (close-on-exec) or -errno; *failed_op names the failing call.
 */
int icmpcap_afp_open(int ifindex, uint32_t snaplen, const char** failed_op);

#ifdef __cplusplus
}
#endif

#endif
