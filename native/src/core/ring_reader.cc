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

bool RingReader::attach(const std::vector<uint8_t*>& bases, uint64_t data_size,
                        std::string* error) {
  return attach(bases, {}, data_size, error);
}

bool RingReader::attach(const std::vector<uint8_t*>& bases,
                        const std::vector<uint64_t*>& consumer_pos, uint64_t data_size,
                        std::string* error) {
  if (data_size < 4096 || (data_size & (data_size - 1)) || data_size > (1ull << 31)) {
    *error = "data_size " + std::to_string(data_size) + " is not a power of two in [4 KiB, 2 GiB]";
    return false;
  }
  data_size_ = data_size;
  mask_ = data_size - 1;
  rings_.clear();
  for (size_t i = 0; i < bases.size(); i++) {
    Ring r;
    r.hdr = reinterpret_cast<struct icmpcap_ring_header*>(bases[i]);
    r.data = bases[i] + ICMPCAP_RING_HDR_SIZE;
    r.cpu = __atomic_load_n(&r.hdr->cpu, __ATOMIC_RELAXED);
    const uint64_t hdr_size = load_relaxed(&r.hdr->data_size);
    const uint32_t abi = __atomic_load_n(&r.hdr->abi_version, __ATOMIC_RELAXED);
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
    if (i < consumer_pos.size()) {
      r.consumer_out = reinterpret_cast<__u64*>(consumer_pos[i]);
      r.consumer = __atomic_load_n(r.consumer_out, __ATOMIC_RELAXED);
    } else {
      r.consumer_out = &r.hdr->consumer_pos;
      r.consumer = load_relaxed(&r.hdr->consumer_pos);
    }
    const uint64_t prod = load_acquire(&r.hdr->producer_pos);
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
    if (load_acquire(&r.hdr->producer_pos) != r.consumer) return true;
  return false;
}

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
    // Copy the header out of the shared page once; only the copy is checked and used.
    struct icmpcap_record hdr;
    memset(&hdr, 0, kRingCheckBytes);
    memcpy(&hdr, r.data + off, static_cast<size_t>(std::min<uint64_t>(limit, kRingCheckBytes)));
    if (const char* why = check_ring_record(&hdr, limit)) return fail(why);
    const uint64_t step = align_record(hdr.len);
    if (hdr.flags & ICMPCAP_REC_F_PAD) {
      r.scan += step;
      continue;
    }
    // A record larger than the whole byte budget still goes alone into an empty batch.
    if (step > *bytes_left && !*first) {
      batch_full_ = true;
      break;
    }
    *first = false;
    out.push_back(
        Entry{hdr.ts_ns, static_cast<uint32_t>(off), hdr.len, hdr.orig_len, hdr.flags, hdr.family});
    *bytes_left -= std::min<size_t>(*bytes_left, step);
    r.scan += step;
    taken++;
  }
  return true;
}

void RingReader::copy_out(const Ring& ring, const Entry& e, Batcher& out) {
  uint8_t* dst = out.append(e.len);
  memcpy(dst, ring.data + e.offset, e.len);
  // The producer may have rewritten the header since it was checked: keep the checked
  // lengths so the batch is always self-consistent.
  auto* rec = reinterpret_cast<struct icmpcap_record*>(dst);
  rec->len = e.len;
  rec->cap_len = static_cast<uint16_t>(e.len - kRecordHeaderSize);
  rec->ts_ns = e.ts;
  rec->orig_len = e.orig_len;
  rec->flags = e.flags;
  rec->family = e.family;
}

// k-way merge by timestamp: each ring's entries are in time order already. A linear scan
// over the rings that have entries is fastest for a few; a heap beyond that.
void RingReader::merge_into(Batcher& out) {
  active_.clear();
  for (size_t i = 0; i < entries_.size(); i++)
    if (!entries_[i].empty()) active_.push_back(i);
  if (active_.size() == 1) {
    const size_t r = active_[0];
    for (const Entry& e : entries_[r]) copy_out(rings_[r], e, out);
    return;
  }
  head_.assign(entries_.size(), 0);
  if (active_.size() <= 8) {
    for (;;) {
      size_t best = SIZE_MAX;
      uint64_t best_ts = 0;
      for (size_t i : active_) {
        if (head_[i] >= entries_[i].size()) continue;
        const uint64_t ts = entries_[i][head_[i]].ts;
        if (best == SIZE_MAX || ts < best_ts) {
          best = i;
          best_ts = ts;
        }
      }
      if (best == SIZE_MAX) return;
      copy_out(rings_[best], entries_[best][head_[best]++], out);
    }
  }
  using Head = std::pair<uint64_t, size_t>;  // (ts, ring); ties go to the lower ring
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heap;
  for (size_t i : active_) heap.emplace(entries_[i][0].ts, i);
  while (!heap.empty()) {
    const size_t r = heap.top().second;
    heap.pop();
    copy_out(rings_[r], entries_[r][head_[r]++], out);
    if (head_[r] < entries_[r].size()) heap.emplace(entries_[r][head_[r]].ts, r);
  }
}

void RingReader::release(Ring& ring) {
  if (ring.scan == ring.consumer) return;
  ring.consumer = ring.scan;
  // Pairs with the acquire load of consumer_pos in reserve() (native/helper/producer.c)
  // when the rings are icmpcap-helper's.
  if (ring.consumer_out != &ring.hdr->consumer_pos) {
    __atomic_store_n(ring.consumer_out, ring.consumer, __ATOMIC_RELEASE);
    return;
  }
  // Pairs with the acquire load of consumer_pos in icmpcap_ring_reserve()
  // (kernel/ring.c): our reads of the records are done before the kernel may reuse them.
  __atomic_store_n(&ring.hdr->consumer_pos, ring.consumer, __ATOMIC_RELEASE);
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
    r.producer = load_acquire(&r.hdr->producer_pos);
    if (r.producer - r.consumer > data_size_) {
      *error = ring_name(static_cast<uint32_t>(i), r.cpu) + ": producer_pos " +
               std::to_string(r.producer) + " is more than data_size (" +
               std::to_string(data_size_) + ") ahead of consumer_pos " + std::to_string(r.consumer);
      return false;
    }
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
      rings_[i].read += added;  // merged below, corrupt or not
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

  merge_into(out);
  if (!corrupt)
    for (auto& r : rings_) release(r);
  return !corrupt;
}

uint64_t RingReader::unread_records() const {
  uint64_t n = 0;
  for (const auto& r : rings_) {
    const uint64_t written = load_relaxed(&r.hdr->captured);
    if (written > r.read) n += written - r.read;
  }
  return n;
}

std::vector<CpuStats> RingReader::cpu_stats() const {
  std::vector<CpuStats> out;
  for (const auto& r : rings_)
    out.push_back(CpuStats{r.cpu, load_relaxed(&r.hdr->captured), load_relaxed(&r.hdr->dropped)});
  return out;
}

uint64_t RingReader::total_dropped() const {
  uint64_t d = 0;
  for (const auto& r : rings_) d += load_relaxed(&r.hdr->dropped);
  return d;
}

}  // namespace icmpcap
