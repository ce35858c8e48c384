#include "afpacket_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void icmpcap_afp_filter(struct sock_filter out[ICMPCAP_AFP_FILTER_LEN], uint32_t snaplen) {
  const struct sock_filter prog[ICMPCAP_AFP_FILTER_LEN] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 2),
      /* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9), /* IPv4 protocol */
      /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 4, 5),
      /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 4),
      /* 5 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6), /* IPv6 next header */
      /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 58, 1, 2),
      /* 7 */ BPF_STMT(BPF_RET | BPF_K, 0), /* unreachable filler, keeps offsets simple */
      /* 8 */ BPF_STMT(BPF_RET | BPF_K, 0), /* accept: patched to snaplen below */
      /* 9 */ BPF_STMT(BPF_RET | BPF_K, 0), /* drop */
  };
  memcpy(out, prog, sizeof(prog));
  out[8].k = snaplen;
}

int icmpcap_afp_attach_filter(int fd, uint32_t snaplen) {
  struct sock_filter code[ICMPCAP_AFP_FILTER_LEN];
  icmpcap_afp_filter(code, snaplen);
  struct sock_fprog prog = {.len = ICMPCAP_AFP_FILTER_LEN, .filter = code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) return -errno;
  return 0;
}

int icmpcap_afp_open(int ifindex, uint32_t snaplen, const char** failed_op) {
  int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *failed_op = "socket(AF_PACKET)";
    return -errno;
  }
  int rc = icmpcap_afp_attach_filter(fd, snaplen);
  if (rc < 0) {
    *failed_op = "setsockopt(SO_ATTACH_FILTER)";
    close(fd);
    return rc;
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, (struct sockaddr*)&sll, sizeof(sll)) < 0) {
    rc = -errno;
    *failed_op = "bind(AF_PACKET)";
    close(fd);
    return rc;
  }
  return fd;
}
