// Enhanced Packet Blocks of a batch of records, for the capture's spool
// (electron/core/files/spool.ts): the same bytes PcapngSpoolWriter's JavaScript loop writes,
// written here because that loop was a sixth of the capture path's main-thread time.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace icmpcap {

// Why encode_spool_blocks stopped.
enum class SpoolEncodeStatus : int32_t {
  kDone = 0,  // every record of the batch is encoded
  kUnknownInterface =
      1,           // the record at src_at has an ifindex not in the table (detail: the ifindex)
  kBadLength = 2,  // the record at src_at has a length < 8 or running past the batch (detail: len)
  kCapLenMismatch = 3,  // 72 + cap_len != len at src_at (detail: cap_len)
  kNoRoom = 4,          // the block of the record at src_at does not fit in out (detail: its size)
  kOffsetsFull = 5,     // offsets has no room for the record at src_at
};

struct SpoolEncodeResult {
  SpoolEncodeStatus status;
  size_t src_at;    // the first record not encoded (the batch's end when done)
  size_t out_at;    // where the next block goes in out
  uint32_t count;   // records encoded (pad records not counted)
  uint32_t detail;  // see SpoolEncodeStatus
};

// ifindex -> the file's interface id: `pairs` holds n (ifindex, id) pairs sorted by ifindex.
struct SpoolInterfaces {
  const uint32_t* pairs;
  size_t n;
};

// Encodes one EPB (little-endian) per record of src[src_at, src_len) into out[out_at, out_cap),
// stopping at the first record it cannot encode (see SpoolEncodeStatus). Records are as the kernel
// writes them (host order, 8-byte aligned, pad records skipped). offsets[offsets_at + i] (when
// offsets is not null) gets file_base + the block's offset in out. Never reads or writes outside
// the given ranges.
SpoolEncodeResult encode_spool_blocks(const uint8_t* src, size_t src_len, size_t src_at,
                                      uint8_t* out, size_t out_cap, size_t out_at,
                                      SpoolInterfaces interfaces, double* offsets,
                                      size_t offsets_len, size_t offsets_at, double file_base);

// encode_spool_blocks' layout alone, nothing written: the offsets, the count, and in out_at where
// the blocks would end (from out_at); the same checks, never kNoRoom. An encode of the records it
// laid out, with the same table and room for out_at bytes, writes exactly that.
SpoolEncodeResult layout_spool_blocks(const uint8_t* src, size_t src_len, size_t src_at,
                                      size_t out_at, SpoolInterfaces interfaces, double* offsets,
                                      size_t offsets_len, size_t offsets_at, double file_base);

}  // namespace icmpcap
