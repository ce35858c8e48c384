#include "ring_reader.h"

#include <algorithm>
#include <functional>
#include <queue>

namespace icmpcap {

namespace {

inline uint64_t load_acquire(const __u64* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline uint64_t load_relaxed(const __u64* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

std::string ring_name(uint32_t index, uint32_t cpu) {
  return "ring " + std::to_string(index) + " (cpu " + std::to_string(cpu) + ")";
}

}  // namespace

bool RingReader::attach(const std::vector<RingMap>& maps, uint64_t data_size, std::string* error) {
  if (data_size < 4096 || (data_size & (data_size - 1)) || data_size > (1ull << 31)) {
    *error = "data_size " + std::to_string(data_size) + " is not a power of two in [4 KiB, 2 GiB]";
    return false;
  }
  data_size_ = data_size;
  mask_ = data_size - 1;
  rings_.clear();
  for (size_t i = 0; i < maps.size(); i++) {
    Ring r;
    r.prod = reinterpret_cast<const struct icmpcap_ring_producer*>(maps[i].producer);
    r.data = maps[i].producer + (ICMPCAP_RING_DATA_OFF - ICMPCAP_RING_PRODUCER_OFF);
    r.cpu = __atomic_load_n(&r.prod->cpu, __ATOMIC_RELAXED);
    const uint64_t hdr_size = load_relaxed(&r.prod->data_size);
    const uint32_t abi = __atomic_load_n(&r.prod->abi_version, __ATOMIC_RELAXED);
    const std::string name = ring_name(static_cast<uint32_t>(i), r.cpu);
    if (abi != ICMPCAP_ABI_VERSION) {
      *error = name + ": abi_version " + std::to_string(abi) + ", expected " +
               std::to_string(ICMPCAP_ABI_VERSION);
      return false;
    }
    if (hdr_size != data_size) {
      *error = name + ": header data_size " + std::to_string(hdr_size) +
               " differs from the subscription's " + std::to_string(data_size);
      return false;
    }
    r.consumer_out = maps[i].consumer_pos;
    r.consumer = __atomic_load_n(r.consumer_out, __ATOMIC_RELAXED);
    const uint64_t prod = load_acquire(&r.prod->producer_pos);
    if (prod - r.consumer > data_size_) {
      *error = name + ": producer_pos " + std::to_string(prod) +
               " is more than data_size ahead of consumer_pos " + std::to_string(r.consumer);
      return false;
    }
    rings_.push_back(r);
  }
  entries_.assign(rings_.size(), {});
  return true;
}

bool RingReader::pending() const {
  for (const auto& r : rings_)
    if (load_acquire(&r.prod->producer_pos) != r.consumer) return true;
  return false;
}

// Reads only what the walk needs (length, flags, timestamp) from the shared ring; the
// record is checked in full once copied (copy_run()).
bool RingReader::scan(size_t idx, uint32_t max_records, size_t* bytes_left, bool* first,
                      std::string* error) {
  Ring& r = rings_[idx];
  auto& out = entries_[idx];
  uint32_t taken = 0;
  while (taken < max_records && r.scan != r.producer) {
    const uint64_t avail = r.producer - r.scan;  // <= data_size_, checked in poll_records()
    const uint64_t off = r.scan & mask_;
    const uint64_t limit = std::min(avail, data_size_ - off);
    auto fail = [&](const char* why) {
      *error = ring_name(static_cast<uint32_t>(idx), r.cpu) + " at position " +
               std::to_string(r.scan) + ": " + why;
      return false;
    };
    if (limit < ICMPCAP_PAD_MIN_SIZE) return fail("producer_pos is not on a record boundary");
    const auto* rec = reinterpret_cast<const struct icmpcap_record*>(r.data + off);
    const uint32_t len = __atomic_load_n(&rec->len, __ATOMIC_RELAXED);
    const uint16_t flags = __atomic_load_n(&rec->flags, __ATOMIC_RELAXED);
    if (flags & ICMPCAP_REC_F_PAD) {
      struct icmpcap_record pad;
      pad.len = len;
      pad.flags = flags;
      if (const char* why = check_ring_record(&pad, limit)) return fail(why);
      r.scan += align_record(len);
      continue;
    }
    const uint64_t step = align_record(len);
    if (len < kRecordHeaderSize || step > limit) {
      if (limit < kRecordHeaderSize)
        return fail("record crosses the end of the data area or the producer position");
      struct icmpcap_record hdr;
      memcpy(&hdr, rec, sizeof(hdr));
      hdr.len = len;
      hdr.flags = flags;
      return fail(check_ring_record(&hdr, limit) ?: "record length out of range");
    }
    // A record larger than the whole byte budget still goes alone into an empty batch.
    if (step > *bytes_left && !*first) {
      batch_full_ = true;
      break;
    }
    *first = false;
    out.push_back(Entry{__atomic_load_n(&rec->ts_ns, __ATOMIC_RELAXED), static_cast<uint32_t>(off),
                        static_cast<uint32_t>(step)});
    *bytes_left -= std::min<size_t>(*bytes_left, step);
    r.scan += step;
    taken++;
  }
  return true;
}

const char* RingReader::check_copy(const uint8_t* copy, size_t bytes, size_t n, size_t* bad_at,
                                   uint32_t* good) {
  size_t at = 0, last = 0;
  for (size_t k = 0; k < n; k++) {
    *bad_at = at;
    *good = static_cast<uint32_t>(k);
    if (bytes - at < kRecordHeaderSize) return "record changed while it was read";
    const auto* rec = reinterpret_cast<const struct icmpcap_record*>(copy + at);
    if (const char* why = check_ring_record(rec, bytes - at)) return why;
    if (rec->flags & ICMPCAP_REC_F_PAD) return "record changed into a pad record";
    last = at;
    at += align_record(rec->len);
  }
  if (at != bytes) {
    // A record became shorter than walked: count the last one as the bad one.
    *bad_at = last;
    *good = static_cast<uint32_t>(n - 1);
    return "record changed while it was read";
  }
  *bad_at = at;
  *good = static_cast<uint32_t>(n);
  return nullptr;
}

bool RingReader::drain_single(size_t idx, Batcher& out, std::string* error) {
  Ring& r = rings_[idx];
  const BatchLimits& lim = out.limits();
  uint32_t records_left = lim.max_records > out.records() ? lim.max_records - out.records() : 0;
  size_t bytes_left = lim.max_bytes > out.bytes() ? lim.max_bytes - out.bytes() : 0;
  bool first = out.empty();
  auto fail = [&](const char* why) {
    *error = ring_name(static_cast<uint32_t>(idx), r.cpu) + " at position " +
             std::to_string(r.scan) + ": " + why;
    return false;
  };
  while (records_left > 0 && r.scan != r.producer) {
    const uint64_t off = r.scan & mask_;
    const uint64_t limit = std::min(r.producer - r.scan, data_size_ - off);
    const uint8_t* base = r.data + off;
    if (limit < ICMPCAP_PAD_MIN_SIZE) return fail("producer_pos is not on a record boundary");
    // Walk the lengths of one contiguous span (it ends at a pad, the producer position,
    // the end of the data area or the batch limits).
    uint64_t span = 0;
    uint32_t n = 0;
    while (n < records_left && limit - span >= ICMPCAP_PAD_MIN_SIZE) {
      const auto* rec = reinterpret_cast<const struct icmpcap_record*>(base + span);
      const uint32_t len = __atomic_load_n(&rec->len, __ATOMIC_RELAXED);
      const uint16_t flags = __atomic_load_n(&rec->flags, __ATOMIC_RELAXED);
      const uint64_t step = align_record(len);
      if (flags & ICMPCAP_REC_F_PAD) break;
      if (len < kRecordHeaderSize || step > limit - span) {
        if (n) break;  // the span so far is good; the next pass reports this record
        struct icmpcap_record hdr;
        memset(&hdr, 0, sizeof(hdr));
        memcpy(&hdr, rec, static_cast<size_t>(std::min<uint64_t>(limit, sizeof(hdr))));
        hdr.len = len;
        hdr.flags = flags;
        return fail(check_ring_record(&hdr, limit) ?: "record length out of range");
      }
      // A record larger than the whole byte budget still goes alone into an empty batch.
      if (step > bytes_left && !first) {
        batch_full_ = true;
        break;
      }
      first = false;
      bytes_left -= std::min<size_t>(bytes_left, step);
      span += step;
      n++;
    }
    if (n == 0) {
      if (batch_full_) break;
      if (limit - span < ICMPCAP_PAD_MIN_SIZE)
        return fail("producer_pos is not on a record boundary");
      // A pad: check it and skip it.
      struct icmpcap_record pad;
      pad.len = __atomic_load_n(&reinterpret_cast<const struct icmpcap_record*>(base)->len,
                                __ATOMIC_RELAXED);
      pad.flags = ICMPCAP_REC_F_PAD;
      if (const char* why = check_ring_record(&pad, limit)) return fail(why);
      r.scan += align_record(pad.len);
      continue;
    }
    const size_t at0 = out.bytes();
    const uint32_t n0 = out.records();
    uint8_t* dst = out.append_span(span, n);
    memcpy(dst, base, span);
    size_t bad_at = 0;
    uint32_t good = 0;
    // Checked in our copy: the producer cannot change what was checked afterwards.
    if (const char* why = check_copy(dst, span, n, &bad_at, &good)) {
      out.truncate(at0 + bad_at, n0 + good);
      r.read += good;
      r.scan += bad_at;
      return fail(why);
    }
    r.read += n;
    r.scan += span;
    records_left -= n;
    if (batch_full_) break;
  }
  if (records_left == 0 || bytes_left == 0) batch_full_ |= r.scan != r.producer;
  return true;
}

bool RingReader::copy_run(size_t r, size_t from, size_t to, Batcher& out, std::string* error) {
  Ring& ring = rings_[r];
  const auto& es = entries_[r];
  const uint32_t start = es[from].offset;
  const size_t bytes = size_t{es[to - 1].offset} + es[to - 1].step - start;
  const size_t base = out.bytes();
  const uint32_t base_records = out.records();
  uint8_t* dst = out.append_span(bytes, static_cast<uint32_t>(to - from));
  memcpy(dst, ring.data + start, bytes);
  // Checked in our copy: the producer cannot change what was checked afterwards.
  for (size_t k = from; k < to; k++) {
    const size_t at = es[k].offset - start;
    const auto* rec = reinterpret_cast<const struct icmpcap_record*>(dst + at);
    const char* why = check_ring_record(rec, bytes - at);
    if (!why && align_record(rec->len) != es[k].step) why = "record changed while it was read";
    if (!why && (rec->flags & ICMPCAP_REC_F_PAD)) why = "record changed into a pad record";
    if (why) {
      out.truncate(base + at, base_records + static_cast<uint32_t>(k - from));
      *error = ring_name(static_cast<uint32_t>(r), ring.cpu) + " at data offset " +
               std::to_string(es[k].offset) + ": " + why;
      return false;
    }
    ring.read++;
  }
  return true;
}

// k-way merge by timestamp: each ring's entries are in time order already. Runs of one
// ring's entries that follow each other in the merged order and in the ring are copied in
// one go. A linear scan over the rings that have entries is fastest for a few; a heap
// beyond that.
bool RingReader::merge_into(Batcher& out, std::string* error) {
  using Head = std::pair<uint64_t, size_t>;  // (ts, ring); ties go to the lower ring
  constexpr Head kNone{UINT64_MAX, SIZE_MAX};
  active_.clear();
  for (size_t i = 0; i < entries_.size(); i++)
    if (!entries_[i].empty()) active_.push_back(i);
  head_.assign(entries_.size(), 0);
  // Copies ring r's entries from head_[r] on while they lie back to back in the ring and
  // come before next, the head of the next ring in the merged order.
  auto take_run = [&](size_t r, Head next) {
    const auto& es = entries_[r];
    const size_t from = head_[r];
    size_t end = from + 1;
    while (end < es.size() && es[end].offset == es[end - 1].offset + es[end - 1].step &&
           Head{es[end].ts, r} < next)
      end++;
    head_[r] = end;
    return copy_run(r, from, end, out, error);
  };
  if (active_.size() <= 8) {
    for (;;) {
      Head best = kNone, second = kNone;
      for (size_t i : active_) {
        if (head_[i] >= entries_[i].size()) continue;
        const Head h{entries_[i][head_[i]].ts, i};
        if (h < best) {
          second = best;
          best = h;
        } else if (h < second) {
          second = h;
        }
      }
      if (best.second == SIZE_MAX) return true;
      if (!take_run(best.second, second)) return false;
    }
  }
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heap;
  for (size_t i : active_) heap.emplace(entries_[i][0].ts, i);
  while (!heap.empty()) {
    const size_t r = heap.top().second;
    heap.pop();
    if (!take_run(r, heap.empty() ? kNone : heap.top())) return false;
    if (head_[r] < entries_[r].size()) heap.emplace(entries_[r][head_[r]].ts, r);
  }
  return true;
}

void RingReader::release(Ring& ring) {
  if (ring.scan == ring.consumer) return;
  ring.consumer = ring.scan;
  // Pairs with the acquire load of consumer_pos in icmpcap_ring_reserve() (kernel/ring.c),
  // or in reserve() (native/helper/producer.c) when the rings are icmpcap-helper's: our
  // reads of the records are done before the producer may reuse their space.
  __atomic_store_n(ring.consumer_out, ring.consumer, __ATOMIC_RELEASE);
}

bool RingReader::poll_records(Batcher& out, std::string* error) {
  const size_t n = rings_.size();
  batch_full_ = false;
  if (n == 0) return true;
  for (size_t i = 0; i < n; i++) {
    Ring& r = rings_[i];
    entries_[i].clear();
    r.scan = r.consumer;
    // Pairs with the release store of producer_pos in icmpcap_ring_commit()
    // (kernel/ring.c): the record bytes below it are visible once we see it.
    r.producer = load_acquire(&r.prod->producer_pos);
    if (r.producer - r.consumer > data_size_) {
      *error = ring_name(static_cast<uint32_t>(i), r.cpu) + ": producer_pos " +
               std::to_string(r.producer) + " is more than data_size (" +
               std::to_string(data_size_) + ") ahead of consumer_pos " + std::to_string(r.consumer);
      return false;
    }
  }

  size_t with_data = 0, single = 0;
  for (size_t i = 0; i < n; i++)
    if (rings_[i].producer != rings_[i].consumer) {
      with_data++;
      single = i;
    }
  if (with_data == 1) {
    const bool ok = drain_single(single, out, error);
    if (ok) release(rings_[single]);
    return ok;
  }

  // Share the batch budget between rings in rounds so that a busy CPU cannot starve the
  // others and the merged batch covers one time window.
  const BatchLimits& lim = out.limits();
  uint32_t records_left = lim.max_records > out.records() ? lim.max_records - out.records() : 0;
  size_t bytes_left = lim.max_bytes > out.bytes() ? lim.max_bytes - out.bytes() : 0;
  bool first = out.empty();
  bool corrupt = false;
  while (records_left > 0 && (bytes_left > 0 || first) && !corrupt) {
    size_t active = 0;
    for (size_t i = 0; i < n; i++) active += rings_[i].scan != rings_[i].producer;
    if (active == 0) break;
    const uint32_t share = std::max<uint32_t>(1, records_left / static_cast<uint32_t>(active));
    uint32_t got = 0;
    for (size_t k = 0; k < n && records_left > 0; k++) {
      const size_t i = (first_ring_ + k) % n;
      const size_t before = entries_[i].size();
      const bool ok = scan(i, std::min(share, records_left), &bytes_left, &first, error);
      const uint32_t added = static_cast<uint32_t>(entries_[i].size() - before);
      if (!ok) {
        corrupt = true;
        break;
      }
      records_left -= added;
      got += added;
    }
    if (got == 0) break;  // only pads, or the byte budget is spent
  }
  if (!corrupt && (records_left == 0 || bytes_left == 0)) {
    for (const auto& r : rings_) batch_full_ |= r.scan != r.producer;
  }
  first_ring_ = (first_ring_ + 1) % n;

  // What was scanned before a corruption is still copied (and checked) into out.
  std::string merge_error;
  if (!merge_into(out, &merge_error)) {
    if (!corrupt) *error = merge_error;
    return false;
  }
  if (corrupt) return false;
  for (auto& r : rings_) release(r);
  return true;
}

uint64_t RingReader::unread_records() const {
  uint64_t n = 0;
  for (const auto& r : rings_) {
    const uint64_t written = load_relaxed(&r.prod->captured);
    if (written > r.read) n += written - r.read;
  }
  return n;
}

std::vector<CpuStats> RingReader::cpu_stats() const {
  std::vector<CpuStats> out;
  for (const auto& r : rings_)
    out.push_back(CpuStats{r.cpu, load_relaxed(&r.prod->captured), load_relaxed(&r.prod->dropped)});
  return out;
}

uint64_t RingReader::total_dropped() const {
  uint64_t d = 0;
  for (const auto& r : rings_) d += load_relaxed(&r.prod->dropped);
  return d;
}

}  // namespace icmpcap
