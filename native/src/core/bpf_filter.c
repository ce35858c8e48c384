#include "bpf_filter.h"

#include <errno.h>
#include <string.h>

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86dd
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88a8
#define PACKET_OUTGOING_ 4
#define MAX_EXT_HEADERS 6

/* Scratch memory words of the program. */
enum { M_BASE = 0, M_NEXT = 1, M_VAL = 2, M_BIT = 3 };

/*
 * A small assembler: conditional jumps go to labels through an unconditional `ja` (32-bit
 * offset), so no branch ever exceeds the 8-bit reach of jt/jf however long the program.
 */
enum { L_DROP, L_ACCEPT, L_V4, L_V6, L_ICMP6, L_FIXED };
#define MAX_LABELS 64

struct asm_state {
  struct sock_filter* out;
  int n, max, err;
  int label_pos[MAX_LABELS];
  int nr_labels;
  int fix_at[ICMPCAP_BPF_MAX_INSNS];
  int fix_label[ICMPCAP_BPF_MAX_INSNS];
  int nr_fix;
};

static void emit(struct asm_state* a, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  if (a->n >= a->max) {
    a->err = 1;
    return;
  }
  a->out[a->n].code = code;
  a->out[a->n].jt = jt;
  a->out[a->n].jf = jf;
  a->out[a->n].k = k;
  a->n++;
}
static void stmt(struct asm_state* a, uint16_t code, uint32_t k) { emit(a, code, k, 0, 0); }
static int new_label(struct asm_state* a) {
  if (a->nr_labels >= MAX_LABELS) {
    a->err = 1;
    return 0;
  }
  a->label_pos[a->nr_labels] = -1;
  return a->nr_labels++;
}
static void place(struct asm_state* a, int label) { a->label_pos[label] = a->n; }
static void jump(struct asm_state* a, int label) {
  if (a->nr_fix >= ICMPCAP_BPF_MAX_INSNS) {
    a->err = 1;
    return;
  }
  a->fix_at[a->nr_fix] = a->n;
  a->fix_label[a->nr_fix++] = label;
  stmt(a, BPF_JMP | BPF_JA, 0);
}
/* if (A <op> k) goto label */
static void jump_if(struct asm_state* a, uint16_t op, uint32_t k, int label) {
  emit(a, BPF_JMP | op | BPF_K, k, 0, 1);
  jump(a, label);
}
/* if !(A <op> k) goto label */
static void jump_unless(struct asm_state* a, uint16_t op, uint32_t k, int label) {
  emit(a, BPF_JMP | op | BPF_K, k, 1, 0);
  jump(a, label);
}
static int resolve(struct asm_state* a) {
  for (int i = 0; i < a->nr_fix; i++) {
    const int target = a->label_pos[a->fix_label[i]];
    if (target < 0 || target <= a->fix_at[i]) return -EINVAL;
    a->out[a->fix_at[i]].k = (uint32_t)(target - a->fix_at[i] - 1);
  }
  return a->err ? -EINVAL : a->n;
}

/* Loads relative to the IP header (X holds its offset). */
static void ld_ind(struct asm_state* a, uint16_t size, uint32_t k) {
  stmt(a, BPF_LD | size | BPF_IND, k);
}

static int bitmap_all(const uint8_t* bm) {
  for (int i = 0; i < ICMPCAP_BITMAP_BYTES; i++)
    if (bm[i] != 0xff) return 0;
  return 1;
}
static int bitmap_none(const uint8_t* bm) {
  for (int i = 0; i < ICMPCAP_BITMAP_BYTES; i++)
    if (bm[i]) return 0;
  return 1;
}

/* Drops unless bit A of the 256-bit bitmap is set. Clobbers X (restored from M_BASE). */
static void test_bitmap(struct asm_state* a, const uint8_t* bm, int drop) {
  uint32_t w[8];
  for (int i = 0; i < 8; i++)
    w[i] = (uint32_t)bm[4 * i] | (uint32_t)bm[4 * i + 1] << 8 | (uint32_t)bm[4 * i + 2] << 16 |
           (uint32_t)bm[4 * i + 3] << 24;
  stmt(a, BPF_ST, M_VAL);
  stmt(a, BPF_ALU | BPF_AND | BPF_K, 31);
  stmt(a, BPF_MISC | BPF_TAX, 0);
  stmt(a, BPF_LD | BPF_IMM, 1);
  stmt(a, BPF_ALU | BPF_LSH | BPF_X, 0);
  stmt(a, BPF_ST, M_BIT);
  stmt(a, BPF_LD | BPF_MEM, M_VAL);
  stmt(a, BPF_ALU | BPF_RSH | BPF_K, 5);
  const int test = new_label(a);
  for (int i = 0; i < 7; i++) {
    emit(a, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)i, 0, 2);
    stmt(a, BPF_LD | BPF_IMM, w[i]);
    jump(a, test);
  }
  stmt(a, BPF_LD | BPF_IMM, w[7]);
  place(a, test);
  stmt(a, BPF_LDX | BPF_MEM, M_BIT);
  stmt(a, BPF_ALU | BPF_AND | BPF_X, 0);
  stmt(a, BPF_LDX | BPF_MEM, M_BASE);
  jump_if(a, BPF_JEQ, 0, drop);
}

/* Addresses: accept (goto pass) when any rule of this family matches; else drop. */
static void test_addresses(struct asm_state* a, const struct icmpcap_filter_spec* s, int family,
                           int drop) {
  if (!s->nr_addr_rules) return;
  const int pass = new_label(a);
  const uint32_t src = family == 4 ? 12 : 8, dst = family == 4 ? 16 : 24;
  const int words = family == 4 ? 1 : 4;
  for (uint32_t r = 0; r < s->nr_addr_rules; r++) {
    const struct icmpcap_addr_rule* rule = &s->addr_rules[r];
    if (rule->family != family) continue;
    for (int side = 0; side < 2; side++) {
      if ((side == 0 && rule->side == ICMPCAP_ADDR_DST) ||
          (side == 1 && rule->side == ICMPCAP_ADDR_SRC))
        continue;
      const uint32_t base = side == 0 ? src : dst;
      const int next = new_label(a);
      for (int wd = 0; wd < words; wd++) {
        const int bits = (int)rule->prefix_len - 32 * wd;
        if (bits <= 0) break;
        const uint32_t mask = bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
        const uint8_t* p = rule->addr + 4 * wd;
        const uint32_t val =
            ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) & mask;
        ld_ind(a, BPF_W, base + 4 * (uint32_t)wd);
        if (mask != 0xffffffffu) stmt(a, BPF_ALU | BPF_AND | BPF_K, mask);
        jump_unless(a, BPF_JEQ, val, next);
      }
      jump(a, pass);
      place(a, next);
    }
  }
  jump(a, drop);
  place(a, pass);
}

static void test_direction(struct asm_state* a, const struct icmpcap_filter_spec* s, int drop) {
  const uint32_t all = 1u << ICMPCAP_DIR_IN | 1u << ICMPCAP_DIR_OUT;
  if (!s->directions || (s->directions & all) == all) return;
  if (!(s->directions & all)) {
    jump(a, drop); /* only FORWARD: AF_PACKET cannot tell forwarded packets apart */
    return;
  }
  stmt(a, BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE));
  if (s->directions & (1u << ICMPCAP_DIR_OUT))
    jump_unless(a, BPF_JEQ, PACKET_OUTGOING_, drop);
  else
    jump_if(a, BPF_JEQ, PACKET_OUTGOING_, drop);
}

/* The ICMP header is at X: type and code tests, then accept. */
static void test_icmp(struct asm_state* a, const uint8_t* types, int has_types,
                      const struct icmpcap_filter_spec* s, int drop) {
  if (has_types && !bitmap_all(types)) {
    ld_ind(a, BPF_B, 0);
    test_bitmap(a, types, drop);
  }
  if (s->has_codes && !bitmap_all(s->codes)) {
    ld_ind(a, BPF_B, 1);
    test_bitmap(a, s->codes, drop);
  }
  jump(a, L_ACCEPT);
}

int icmpcap_bpf_build(const struct icmpcap_filter_spec* spec, uint32_t snaplen,
                      struct sock_filter* out, int max_insns) {
  static const struct icmpcap_filter_spec empty;
  const struct icmpcap_filter_spec* s = spec ? spec : &empty;
  if (s->nr_addr_rules > ICMPCAP_MAX_ADDR_RULES || snaplen > 0xffff) return -EINVAL;
  struct asm_state st;
  memset(&st, 0, sizeof(st));
  struct asm_state* a = &st;
  a->out = out;
  a->max = max_insns;
  for (int i = 0; i < L_FIXED; i++) new_label(a);
  const uint32_t fams = s->families ? s->families : ICMPCAP_FAMILY_F_IPV4 | ICMPCAP_FAMILY_F_IPV6;
  const int want4 =
      (fams & ICMPCAP_FAMILY_F_IPV4) && !(s->has_types_v4 && bitmap_none(s->types_v4));
  const int want6 =
      (fams & ICMPCAP_FAMILY_F_IPV6) && !(s->has_types_v6 && bitmap_none(s->types_v6));

  /* Where the IP header starts: X = 0, or past inline tags (icmpcap_ip_offset()). */
  const int tagged = new_label(a), untagged = new_label(a), by_version = new_label(a);
  stmt(a, BPF_LD | BPF_H | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL));
  stmt(a, BPF_LDX | BPF_IMM, 0);
  jump_if(a, BPF_JEQ, ETH_P_IP_, L_V4);
  jump_if(a, BPF_JEQ, ETH_P_IPV6_, L_V6);
  jump_if(a, BPF_JEQ, ETH_P_8021Q_, tagged);
  jump_if(a, BPF_JEQ, ETH_P_8021AD_, tagged);
  jump(a, L_DROP);
  place(a, tagged);
  for (uint32_t tag = 0; tag < 2; tag++) {
    /* TCI, then the inner protocol: a tag at X when that protocol is IP or another tag */
    const int next_tag = new_label(a);
    ld_ind(a, BPF_H, 2);
    if (tag == 0) jump_if(a, BPF_JEQ, ETH_P_8021Q_, next_tag);
    jump_if(a, BPF_JEQ, ETH_P_IP_, untagged);
    jump_if(a, BPF_JEQ, ETH_P_IPV6_, untagged);
    jump(a, by_version);
    if (tag == 0) {
      place(a, next_tag);
      stmt(a, BPF_LDX | BPF_IMM, 4);
    }
  }
  place(a, untagged);
  stmt(a, BPF_MISC | BPF_TXA, 0);
  stmt(a, BPF_ALU | BPF_ADD | BPF_K, 4);
  stmt(a, BPF_MISC | BPF_TAX, 0);
  place(a, by_version);
  ld_ind(a, BPF_B, 0);
  stmt(a, BPF_ALU | BPF_RSH | BPF_K, 4);
  jump_if(a, BPF_JEQ, 4, L_V4);
  jump_if(a, BPF_JEQ, 6, L_V6);
  jump(a, L_DROP);

  /* IPv4 */
  place(a, L_V4);
  if (want4) {
    stmt(a, BPF_STX, M_BASE);
    ld_ind(a, BPF_B, 0);
    stmt(a, BPF_ALU | BPF_RSH | BPF_K, 4);
    jump_unless(a, BPF_JEQ, 4, L_DROP);
    ld_ind(a, BPF_B, 9);
    jump_unless(a, BPF_JEQ, 1, L_DROP);
    test_direction(a, s, L_DROP);
    test_addresses(a, s, 4, L_DROP);
    ld_ind(a, BPF_H, 6);
    jump_if(a, BPF_JSET, 0x1fff, L_ACCEPT); /* non-first fragment: no ICMP header */
    /* X += 4 * IHL */
    ld_ind(a, BPF_B, 0);
    stmt(a, BPF_ALU | BPF_AND | BPF_K, 0xf);
    stmt(a, BPF_ALU | BPF_LSH | BPF_K, 2);
    stmt(a, BPF_ALU | BPF_ADD | BPF_X, 0);
    stmt(a, BPF_MISC | BPF_TAX, 0);
    stmt(a, BPF_STX, M_BASE);
    test_icmp(a, s->types_v4, s->has_types_v4, s, L_DROP);
  } else {
    jump(a, L_DROP);
  }

  /* IPv6 */
  place(a, L_V6);
  if (want6) {
    stmt(a, BPF_STX, M_BASE);
    ld_ind(a, BPF_B, 0);
    stmt(a, BPF_ALU | BPF_RSH | BPF_K, 4);
    jump_unless(a, BPF_JEQ, 6, L_DROP);
    test_direction(a, s, L_DROP);
    test_addresses(a, s, 6, L_DROP);
    ld_ind(a, BPF_B, 6);
    stmt(a, BPF_ST, M_NEXT);
    stmt(a, BPF_MISC | BPF_TXA, 0);
    stmt(a, BPF_ALU | BPF_ADD | BPF_K, 40);
    stmt(a, BPF_MISC | BPF_TAX, 0);
    const int frag_not_first = new_label(a);
    for (int i = 0; i <= MAX_EXT_HEADERS; i++) {
      /* A = next header, X = its offset */
      stmt(a, BPF_LD | BPF_MEM, M_NEXT);
      jump_if(a, BPF_JEQ, 58, L_ICMP6);
      if (i == MAX_EXT_HEADERS) break;
      const int opts = new_label(a), auth = new_label(a), frag = new_label(a),
                advance = new_label(a);
      jump_if(a, BPF_JEQ, 0, opts);
      jump_if(a, BPF_JEQ, 43, opts);
      jump_if(a, BPF_JEQ, 60, opts);
      jump_if(a, BPF_JEQ, 51, auth);
      jump_if(a, BPF_JEQ, 44, frag);
      jump(a, L_DROP);
      place(a, opts); /* length in 8-octet units, not counting the first 8 */
      ld_ind(a, BPF_B, 1);
      stmt(a, BPF_ALU | BPF_ADD | BPF_K, 1);
      stmt(a, BPF_ALU | BPF_LSH | BPF_K, 3);
      jump(a, advance);
      place(a, auth); /* length in 4-octet units, not counting the first 8 */
      ld_ind(a, BPF_B, 1);
      stmt(a, BPF_ALU | BPF_ADD | BPF_K, 2);
      stmt(a, BPF_ALU | BPF_LSH | BPF_K, 2);
      jump(a, advance);
      place(a, frag);
      ld_ind(a, BPF_H, 2);
      jump_if(a, BPF_JSET, 0xfff8, frag_not_first);
      stmt(a, BPF_LD | BPF_IMM, 8);
      place(a, advance); /* A = header length: M_NEXT = its next header, X += A */
      stmt(a, BPF_ST, M_VAL);
      ld_ind(a, BPF_B, 0);
      stmt(a, BPF_ST, M_NEXT);
      stmt(a, BPF_LD | BPF_MEM, M_VAL);
      stmt(a, BPF_ALU | BPF_ADD | BPF_X, 0);
      stmt(a, BPF_MISC | BPF_TAX, 0);
    }
    jump(a, L_DROP);
    place(a, frag_not_first); /* kept when it carries ICMPv6 */
    ld_ind(a, BPF_B, 0);
    jump_if(a, BPF_JEQ, 58, L_ACCEPT);
    jump(a, L_DROP);
    place(a, L_ICMP6);
    stmt(a, BPF_STX, M_BASE);
    test_icmp(a, s->types_v6, s->has_types_v6, s, L_DROP);
  } else {
    jump(a, L_DROP);
  }

  /* Accept snaplen (and room for tags), or up to the end of the last header the decoder needs
   * when that is further (X: the ICMP header, the IPv6 fragment header of a later fragment,
   * or the IPv4 header): records are decoded from the whole headers, as the module does. */
  place(a, L_ACCEPT);
  stmt(a, BPF_MISC | BPF_TXA, 0);
  stmt(a, BPF_ALU | BPF_ADD | BPF_K, 8);
  emit(a, BPF_JMP | BPF_JGT | BPF_K, snaplen + ICMPCAP_BPF_TAG_ROOM, 0, 1);
  stmt(a, BPF_RET | BPF_A, 0);
  stmt(a, BPF_RET | BPF_K, snaplen + ICMPCAP_BPF_TAG_ROOM);
  place(a, L_DROP);
  stmt(a, BPF_RET | BPF_K, 0);
  return resolve(a);
}

static uint16_t be16(const uint8_t* p) { return (uint16_t)(p[0] << 8 | p[1]); }

int icmpcap_ip_offset(const uint8_t* frame, uint32_t len, uint16_t proto) {
  if (proto == ETH_P_IP_ || proto == ETH_P_IPV6_) return 0;
  if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_) return -1;
  uint32_t off = 0;
  for (int tag = 0; tag < 2; tag++) {
    if (off + 4 > len) return -1;
    const uint16_t inner = be16(frame + off + 2);
    if (tag == 0 && inner == ETH_P_8021Q_) {
      off += 4;
      continue;
    }
    if (inner == ETH_P_IP_ || inner == ETH_P_IPV6_) return (int)(off + 4);
    break;
  }
  return (int)off; /* the tag was already removed: the IP header is here */
}
