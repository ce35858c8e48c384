#include "genl.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace icmpcap {

namespace {

constexpr size_t kRecvBuf = 65536;

void parse_attrs(const uint8_t* p, size_t len, std::map<uint16_t, std::vector<uint8_t>>* out) {
  while (len >= NLA_HDRLEN) {
    struct nlattr a;
    memcpy(&a, p, sizeof(a));
    if (a.nla_len < NLA_HDRLEN || a.nla_len > len) break;
    (*out)[a.nla_type & NLA_TYPE_MASK] = std::vector<uint8_t>(p + NLA_HDRLEN, p + a.nla_len);
    const size_t step = NLA_ALIGN(a.nla_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
}

}  // namespace

uint32_t GenlAttrs::u32(uint16_t t, uint32_t dflt) const {
  auto it = a.find(t);
  if (it == a.end() || it->second.size() < 4) return dflt;
  uint32_t v;
  memcpy(&v, it->second.data(), 4);
  return v;
}

uint64_t GenlAttrs::u64(uint16_t t, uint64_t dflt) const {
  auto it = a.find(t);
  if (it == a.end() || it->second.size() < 8) return dflt;
  uint64_t v;
  memcpy(&v, it->second.data(), 8);
  return v;
}

const std::vector<uint8_t>* GenlAttrs::bytes(uint16_t t) const {
  auto it = a.find(t);
  return it == a.end() ? nullptr : &it->second;
}

GenlMessage& GenlMessage::put(uint16_t type, const void* data, size_t len) {
  struct nlattr a;
  a.nla_type = type;
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  const size_t start = attrs_.size();
  attrs_.resize(start + NLA_ALIGN(a.nla_len), 0);
  memcpy(attrs_.data() + start, &a, sizeof(a));
  if (len) memcpy(attrs_.data() + start + NLA_HDRLEN, data, len);
  return *this;
}

GenlSocket::~GenlSocket() { close(); }

void GenlSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int GenlSocket::open(const std::string& family, const std::string& group) {
  close();
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (fd_ < 0) return -errno;
  struct sockaddr_nl sa = {};
  sa.nl_family = AF_NETLINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) return -errno;
  int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  GenlMessage m(CTRL_CMD_GETFAMILY, 1);
  m.str(CTRL_ATTR_FAMILY_NAME, family);
  GenlAttrs r;
  int err = call_raw(GENL_ID_CTRL, m, &r, nullptr);
  if (err) return err;
  if (!r.has(CTRL_ATTR_FAMILY_ID)) return -ENOENT;
  const auto* id = r.bytes(CTRL_ATTR_FAMILY_ID);
  if (id->size() < 2) return -EPROTO;
  memcpy(&family_id_, id->data(), 2);
  if (!group.empty()) {
    const auto* groups = r.bytes(CTRL_ATTR_MCAST_GROUPS);
    if (groups) {
      // Nested: each entry is a nest of CTRL_ATTR_MCAST_GRP_NAME / CTRL_ATTR_MCAST_GRP_ID.
      std::map<uint16_t, std::vector<uint8_t>> entries;
      const uint8_t* p = groups->data();
      size_t len = groups->size();
      while (len >= NLA_HDRLEN) {
        struct nlattr a;
        memcpy(&a, p, sizeof(a));
        if (a.nla_len < NLA_HDRLEN || a.nla_len > len) break;
        std::map<uint16_t, std::vector<uint8_t>> g;
        parse_attrs(p + NLA_HDRLEN, a.nla_len - NLA_HDRLEN, &g);
        auto name = g.find(CTRL_ATTR_MCAST_GRP_NAME);
        auto gid = g.find(CTRL_ATTR_MCAST_GRP_ID);
        if (name != g.end() && gid != g.end() && gid->second.size() >= 4 &&
            std::string(reinterpret_cast<const char*>(name->second.data()),
                        strnlen(reinterpret_cast<const char*>(name->second.data()),
                                name->second.size())) == group)
          memcpy(&group_id_, gid->second.data(), 4);
        const size_t step = NLA_ALIGN(a.nla_len);
        if (step >= len) break;
        p += step;
        len -= step;
      }
    }
    if (!group_id_) return -ENOENT;
  }
  return 0;
}

int GenlSocket::join_group() {
  if (setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group_id_, sizeof(group_id_)) < 0)
    return -errno;
  return 0;
}

int GenlSocket::call(const GenlMessage& msg, GenlAttrs* reply, std::string* ext_msg) {
  return call_raw(family_id_, msg, reply, ext_msg);
}

int GenlSocket::call_raw(uint16_t type, const GenlMessage& msg, GenlAttrs* reply,
                         std::string* ext_msg) {
  std::vector<uint8_t> buf(NLMSG_LENGTH(GENL_HDRLEN) + msg.attrs().size());
  struct nlmsghdr nh = {};
  nh.nlmsg_len = static_cast<uint32_t>(buf.size());
  nh.nlmsg_type = type;
  nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nh.nlmsg_seq = ++seq_;
  struct genlmsghdr gh = {};
  gh.cmd = msg.cmd();
  gh.version = msg.version();
  memcpy(buf.data(), &nh, sizeof(nh));
  memcpy(buf.data() + NLMSG_HDRLEN, &gh, sizeof(gh));
  if (!msg.attrs().empty())
    memcpy(buf.data() + NLMSG_LENGTH(GENL_HDRLEN), msg.attrs().data(), msg.attrs().size());
  if (send(fd_, buf.data(), buf.size(), 0) < 0) return -errno;

  std::vector<uint8_t> rbuf(kRecvBuf);
  for (;;) {
    ssize_t n = recv(fd_, rbuf.data(), rbuf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(rbuf.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != nh.nlmsg_seq) continue;  // events, stale replies
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return -EPROTO;
        auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
        if (ext_msg && (h->nlmsg_flags & NLM_F_ACK_TLVS)) {
          // TLVs follow the nlmsgerr (and the echoed request unless capped).
          size_t off = sizeof(*e);
          if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - sizeof(e->msg);
          const size_t total = h->nlmsg_len - NLMSG_HDRLEN;
          if (off < total) {
            std::map<uint16_t, std::vector<uint8_t>> tlv;
            parse_attrs(reinterpret_cast<const uint8_t*>(e) + off, total - off, &tlv);
            auto it = tlv.find(NLMSGERR_ATTR_MSG);
            if (it != tlv.end())
              ext_msg->assign(
                  reinterpret_cast<const char*>(it->second.data()),
                  strnlen(reinterpret_cast<const char*>(it->second.data()), it->second.size()));
          }
        }
        return e->error;
      }
      if (reply && h->nlmsg_len >= NLMSG_LENGTH(GENL_HDRLEN)) {
        auto* g = static_cast<const struct genlmsghdr*>(NLMSG_DATA(h));
        reply->cmd = g->cmd;
        reply->a.clear();
        parse_attrs(reinterpret_cast<const uint8_t*>(g) + GENL_HDRLEN,
                    h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), &reply->a);
      }
    }
  }
}

std::vector<GenlAttrs> GenlSocket::parse_all(const void* buf, size_t n, uint16_t family) {
  std::vector<GenlAttrs> out;
  int len = static_cast<int>(n);
  for (auto* h = static_cast<const struct nlmsghdr*>(buf); NLMSG_OK(h, len);
       h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type != family || h->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN)) continue;
    auto* g = static_cast<const struct genlmsghdr*>(NLMSG_DATA(h));
    GenlAttrs a;
    a.cmd = g->cmd;
    parse_attrs(reinterpret_cast<const uint8_t*>(g) + GENL_HDRLEN,
                h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), &a.a);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace icmpcap
