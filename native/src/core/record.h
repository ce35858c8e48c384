// The one record format every source emits (kernel/include/uapi/linux/icmpcap.h).
#pragma once

#include <linux/icmpcap.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace icmpcap {

static_assert(sizeof(struct icmpcap_record) == ICMPCAP_RECORD_HDR_SIZE, "record header size");
static_assert(ICMPCAP_RECORD_HDR_SIZE == 72, "record header is 72 bytes");
static_assert(offsetof(struct icmpcap_record, len) == 0, "len");
static_assert(offsetof(struct icmpcap_record, flags) == 4, "flags");
static_assert(offsetof(struct icmpcap_record, hook) == 6, "hook");
static_assert(offsetof(struct icmpcap_record, dir) == 7, "dir");
static_assert(offsetof(struct icmpcap_record, ts_ns) == 8, "ts_ns");
static_assert(offsetof(struct icmpcap_record, ifindex) == 16, "ifindex");
static_assert(offsetof(struct icmpcap_record, orig_len) == 20, "orig_len");
static_assert(offsetof(struct icmpcap_record, cap_len) == 24, "cap_len");
static_assert(offsetof(struct icmpcap_record, family) == 26, "family");
static_assert(offsetof(struct icmpcap_record, ttl) == 27, "ttl");
static_assert(offsetof(struct icmpcap_record, icmp_type) == 28, "icmp_type");
static_assert(offsetof(struct icmpcap_record, icmp_code) == 29, "icmp_code");
static_assert(offsetof(struct icmpcap_record, icmp_id) == 30, "icmp_id");
static_assert(offsetof(struct icmpcap_record, icmp_seq) == 32, "icmp_seq");
static_assert(offsetof(struct icmpcap_record, saddr) == 40, "saddr");
static_assert(offsetof(struct icmpcap_record, daddr) == 56, "daddr");
static_assert(ICMPCAP_ABI_VERSION == 2, "ring layout of ABI 2: consumer page, producer page");
static_assert(offsetof(struct icmpcap_ring_consumer, consumer_pos) == 0, "consumer_pos");
static_assert(sizeof(struct icmpcap_ring_producer) == 40, "producer page fields");
static_assert(offsetof(struct icmpcap_ring_producer, producer_pos) == 0, "producer_pos");
static_assert(offsetof(struct icmpcap_ring_producer, data_size) == 8, "data_size");
static_assert(offsetof(struct icmpcap_ring_producer, cpu) == 16, "cpu");
static_assert(offsetof(struct icmpcap_ring_producer, abi_version) == 20, "abi_version");
static_assert(offsetof(struct icmpcap_ring_producer, dropped) == 24, "dropped");
static_assert(offsetof(struct icmpcap_ring_producer, captured) == 32, "captured");
static_assert(ICMPCAP_RING_PRODUCER_OFF == ICMPCAP_RING_CONSUMER_OFF + ICMPCAP_RING_PAGE_SIZE &&
                  ICMPCAP_RING_DATA_OFF == ICMPCAP_RING_PRODUCER_OFF + ICMPCAP_RING_PAGE_SIZE &&
                  ICMPCAP_RING_HDR_SIZE == ICMPCAP_RING_DATA_OFF,
              "ring pages");

constexpr uint32_t kRecordHeaderSize = ICMPCAP_RECORD_HDR_SIZE;
constexpr uint32_t kMaxCapLen = 0xffff;

// 64-bit so that a hostile len near 4 GiB cannot wrap to 0 (a zero step would loop forever).
inline uint64_t align_record(uint64_t len) {
  return (len + (ICMPCAP_REC_ALIGN - 1)) & ~uint64_t{ICMPCAP_REC_ALIGN - 1};
}

// Fills hdr from the packet at ip (cap_len bytes captured of orig_len, starting at the IP
// header). Returns false when the bytes are not an ICMP/ICMPv6 packet we can describe
// (too short, wrong version/protocol); the caller skips it.
bool describe_ip_packet(const uint8_t* ip, uint32_t cap_len, uint32_t orig_len,
                        struct icmpcap_record* hdr);

// Why a record read from a ring is invalid, or nullptr when it is fine. avail is the
// number of bytes readable from rec on (published and before the end of the data area).
// Only the first kRingCheckBytes of hdr are looked at.
constexpr size_t kRingCheckBytes = 32;
inline const char* check_ring_record(const struct icmpcap_record* hdr, uint64_t avail) {
  if (hdr->flags & ICMPCAP_REC_F_PAD) {
    if (hdr->len < ICMPCAP_PAD_MIN_SIZE) return "pad record shorter than 8 bytes";
    if (align_record(hdr->len) > avail) return "pad record longer than the data available";
    return nullptr;
  }
  if (hdr->len < kRecordHeaderSize) return "record length smaller than the record header";
  if (hdr->len > kRecordHeaderSize + kMaxCapLen) return "record length larger than 64 KiB";
  if (align_record(hdr->len) > avail)
    return "record crosses the end of the data area or the producer position";
  if (hdr->len != kRecordHeaderSize + hdr->cap_len)
    return "cap_len inconsistent with the record length";
  if (hdr->cap_len > hdr->orig_len) return "cap_len larger than orig_len";
  if (hdr->family != ICMPCAP_FAMILY_IPV4 && hdr->family != ICMPCAP_FAMILY_IPV6)
    return "family is neither 4 nor 6";
  return nullptr;
}

}  // namespace icmpcap
