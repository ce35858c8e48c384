// A minimal generic netlink client (no libnl): resolve a family and its multicast groups,
// send a command with attributes, read the reply.
#pragma once

#include <stdint.h>

#include <map>
#include <string>
#include <vector>

namespace icmpcap {

struct GenlAttrs {
  std::map<uint16_t, std::vector<uint8_t>> a;
  uint8_t cmd = 0;
  bool has(uint16_t t) const { return a.count(t) != 0; }
  uint32_t u32(uint16_t t, uint32_t dflt = 0) const;
  uint64_t u64(uint16_t t, uint64_t dflt = 0) const;
  const std::vector<uint8_t>* bytes(uint16_t t) const;
};

class GenlMessage {
 public:
  explicit GenlMessage(uint8_t cmd, uint8_t version = 1) : cmd_(cmd), version_(version) {}
  GenlMessage& put(uint16_t type, const void* data, size_t len);
  GenlMessage& u32(uint16_t type, uint32_t v) { return put(type, &v, 4); }
  GenlMessage& u64(uint16_t type, uint64_t v) { return put(type, &v, 8); }
  GenlMessage& str(uint16_t type, const std::string& s) {
    return put(type, s.c_str(), s.size() + 1);
  }
  uint8_t cmd() const { return cmd_; }
  uint8_t version() const { return version_; }
  const std::vector<uint8_t>& attrs() const { return attrs_; }

 private:
  uint8_t cmd_, version_;
  std::vector<uint8_t> attrs_;
};

class GenlSocket {
 public:
  GenlSocket() = default;
  ~GenlSocket();
  GenlSocket(const GenlSocket&) = delete;
  GenlSocket& operator=(const GenlSocket&) = delete;

  // Opens the socket and resolves `family` (and the id of multicast group `group`, if
  // named). Returns 0 or -errno (-ENOENT: no such family).
  int open(const std::string& family, const std::string& group = "");
  void close();
  int fd() const { return fd_; }
  uint16_t family_id() const { return family_id_; }
  uint32_t group_id() const { return group_id_; }
  int join_group();  // 0 or -errno

  // Sends msg with NLM_F_ACK and returns 0 or -errno; the data reply (if any) in *reply and
  // the kernel's extended ack message (if any) in *ext_msg.
  int call(const GenlMessage& msg, GenlAttrs* reply, std::string* ext_msg = nullptr);

  // Parses a received buffer into messages of our family (events).
  static std::vector<GenlAttrs> parse_all(const void* buf, size_t len, uint16_t family);

 private:
  int call_raw(uint16_t type, const GenlMessage& msg, GenlAttrs* reply, std::string* ext_msg);
  int fd_ = -1;
  uint16_t family_id_ = 0;
  uint32_t group_id_ = 0;
  uint32_t seq_ = 0;
};

}  // namespace icmpcap
