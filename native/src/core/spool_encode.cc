#include "spool_encode.h"

#include <endian.h>
#include <string.h>

#include "record.h"

namespace icmpcap {
namespace {

constexpr uint32_t kEnhancedPacketBlock = 6;
constexpr uint16_t kOptEnd = 0;
constexpr uint16_t kOptEpbFlags = 2;
// pcapng epb_flags direction bits (what directionFlags in pcapng-write.ts writes).
constexpr uint32_t kEpbInbound = 1;
constexpr uint32_t kEpbOutbound = 2;

inline uint32_t get32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return le32toh(v);
}
inline uint16_t get16(const uint8_t* p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return le16toh(v);
}
inline void put32(uint8_t* p, uint32_t v) {
  v = htole32(v);
  memcpy(p, &v, 4);
}
inline void put16(uint8_t* p, uint16_t v) {
  v = htole16(v);
  memcpy(p, &v, 2);
}

// The interface id of ifindex, or -1.
inline int64_t lookup(const SpoolInterfaces& t, uint32_t ifindex) {
  size_t lo = 0, hi = t.n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint32_t k = t.pairs[2 * mid];
    if (k == ifindex) return t.pairs[2 * mid + 1];
    if (k < ifindex)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

// encode_spool_blocks, or with kLayout its layout alone (out is never touched then).
template <bool kLayout>
SpoolEncodeResult encode_or_layout(const uint8_t* src, size_t src_len, size_t src_at, uint8_t* out,
                                   size_t out_cap, size_t out_at, SpoolInterfaces interfaces,
                                   double* offsets, size_t offsets_len, size_t offsets_at,
                                   double file_base) {
  SpoolEncodeResult r{SpoolEncodeStatus::kDone, src_at, out_at, 0, 0};
  int64_t last_ifindex = -1;
  uint32_t last_id = 0;
  size_t at = src_at;
  size_t o = out_at;
  auto stop = [&](SpoolEncodeStatus status, uint32_t detail) {
    r.status = status;
    r.detail = detail;
    r.src_at = at;
    r.out_at = o;
    return r;
  };
  while (at + 8 <= src_len) {
    const uint8_t* rec = src + at;
    uint32_t len = get32(rec + offsetof(icmpcap_record, len));
    uint16_t flags = get16(rec + offsetof(icmpcap_record, flags));
    if (len < 8 || len > src_len - at) return stop(SpoolEncodeStatus::kBadLength, len);
    if (flags & ICMPCAP_REC_F_PAD) {
      at += align_record(len);
      continue;
    }
    // Past here len >= 8 and within the batch; the header's fields need 72 bytes of it.
    if (len < kRecordHeaderSize)
      return stop(SpoolEncodeStatus::kCapLenMismatch,
                  len >= offsetof(icmpcap_record, cap_len) + 2
                      ? get16(rec + offsetof(icmpcap_record, cap_len))
                      : 0);
    uint32_t ifindex = get32(rec + offsetof(icmpcap_record, ifindex));
    if (ifindex != last_ifindex) {
      int64_t id = lookup(interfaces, ifindex);
      if (id < 0) return stop(SpoolEncodeStatus::kUnknownInterface, ifindex);
      last_ifindex = ifindex;
      last_id = static_cast<uint32_t>(id);
    }
    uint32_t cap_len = get16(rec + offsetof(icmpcap_record, cap_len));
    if (kRecordHeaderSize + cap_len != len)
      return stop(SpoolEncodeStatus::kCapLenMismatch, cap_len);
    uint8_t dir = rec[offsetof(icmpcap_record, dir)];
    uint32_t epb_flags = dir == ICMPCAP_DIR_IN    ? kEpbInbound
                         : dir == ICMPCAP_DIR_OUT ? kEpbOutbound
                                                  : 0;
    uint32_t padded = (cap_len + 3) & ~3u;
    uint32_t total = 28 + padded + (epb_flags ? 12 : 0) + 4;
    if (!kLayout && total > out_cap - o) return stop(SpoolEncodeStatus::kNoRoom, total);
    if (offsets) {
      if (offsets_at + r.count >= offsets_len) return stop(SpoolEncodeStatus::kOffsetsFull, 0);
      offsets[offsets_at + r.count] = file_base + static_cast<double>(o);
    }
    if (kLayout) {  // where each block goes, nothing written
      o += total;
      r.count++;
      at += align_record(len);
      continue;
    }
    uint64_t ts = static_cast<uint64_t>(get32(rec + offsetof(icmpcap_record, ts_ns))) |
                  static_cast<uint64_t>(get32(rec + offsetof(icmpcap_record, ts_ns) + 4)) << 32;
    uint8_t* b = out + o;
    put32(b, kEnhancedPacketBlock);
    put32(b + 4, total);
    put32(b + 8, last_id);
    put32(b + 12, static_cast<uint32_t>(ts >> 32));
    put32(b + 16, static_cast<uint32_t>(ts));
    put32(b + 20, cap_len);
    put32(b + 24, get32(rec + offsetof(icmpcap_record, orig_len)));
    memcpy(b + 28, rec + kRecordHeaderSize, cap_len);
    memset(b + 28 + cap_len, 0, padded - cap_len);
    uint8_t* p = b + 28 + padded;
    if (epb_flags) {
      put16(p, kOptEpbFlags);
      put16(p + 2, 4);
      put32(p + 4, epb_flags);
      put16(p + 8, kOptEnd);
      put16(p + 10, 0);
      p += 12;
    }
    put32(p, total);
    o += total;
    r.count++;
    at += align_record(len);
  }
  return stop(SpoolEncodeStatus::kDone, 0);
}

}  // namespace

SpoolEncodeResult encode_spool_blocks(const uint8_t* src, size_t src_len, size_t src_at,
                                      uint8_t* out, size_t out_cap, size_t out_at,
                                      SpoolInterfaces interfaces, double* offsets,
                                      size_t offsets_len, size_t offsets_at, double file_base) {
  return encode_or_layout<false>(src, src_len, src_at, out, out_cap, out_at, interfaces, offsets,
                                 offsets_len, offsets_at, file_base);
}

SpoolEncodeResult layout_spool_blocks(const uint8_t* src, size_t src_len, size_t src_at,
                                      size_t out_at, SpoolInterfaces interfaces, double* offsets,
                                      size_t offsets_len, size_t offsets_at, double file_base) {
  return encode_or_layout<true>(src, src_len, src_at, nullptr, 0, out_at, interfaces, offsets,
                                offsets_len, offsets_at, file_base);
}

}  // namespace icmpcap
