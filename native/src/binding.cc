// Thin node-addon-api layer over the core: sessions, interfaces, routes, probe. Built twice:
// icmpcap.node (production) and, with ICMPCAP_BENCH, icmpcap_bench.node, which adds benchSession():
// a synthetic source through the real delivery path, optionally one JS object per record.
#include <arpa/inet.h>
#include <napi.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/interfaces.h"
#include "core/open.h"
#include "core/probe.h"
#include "core/record.h"
#include "core/routes.h"
#include "core/spool_encode.h"

namespace {

using icmpcap::Batch;
using icmpcap::Event;
using icmpcap::EventType;

// At most this many batches wait for JavaScript; beyond that the reader stops draining and
// the kernel ring absorbs (and counts) the loss. 64 batches of up to 4096 records (1 MiB each at
// most): about half a second of a 500 k records/s capture, where 8 held 65 ms. With the module's
// 1 MiB ring (13 ms at that rate), 8 lost records whenever the event loop stalled for 80 ms (a
// collection, a busy second core). The memory is used only while the service is behind; it takes
// batches in by time, so a longer queue makes no turn longer. Exported as MAX_HELD_BATCHES.
constexpr uint32_t kMaxInflightBatches = 64;

// Longest the batches of one turn of the event loop may take in JavaScript. Node runs up to
// 1000 queued ThreadSafeFunction calls in one go, and a reader faster than the consumer keeps
// the queue from emptying: without a budget, a capture that outpaces the service would hold the
// event loop for seconds. Past the budget, items wait in order for the next turn (setImmediate)
// and still count against kMaxInflightBatches, so the reader leaves records in the kernel ring.
constexpr double kTurnBudgetMs = 8;

// {code, op, kind, helperPath?, group?, device?}: the advice is TypeScript's
// (electron/core/advice.ts).
[[noreturn]] void ThrowCore(Napi::Env env, const icmpcap::Error& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code()));
  err.Set("errno", Napi::Number::New(env, e.err() ? e.err() : EINVAL));
  if (!e.op().empty()) err.Set("op", Napi::String::New(env, e.op()));
  if (!e.kind().empty()) err.Set("kind", Napi::String::New(env, e.kind()));
  for (const auto& kv : e.context()) err.Set(kv.first, Napi::String::New(env, kv.second));
  throw err;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError err = Napi::TypeError::New(env, "icmpcap: " + msg);
  err.Set("code", Napi::String::New(env, "EINVAL"));
  throw err;
}

struct Item {
  bool is_batch = false;
  Batch batch;
  Event event;
};

struct SinkState {
  std::atomic<uint32_t> inflight{0};
  // Batches JavaScript was given but still holds, not taken in yet (Session.hold): they count
  // against kMaxInflightBatches too, so a consumer behind the capture holds the reader back
  // instead of taking batches faster than it can work them in.
  std::atomic<uint32_t> held{0};
};

class Session;
class Watcher;

// Per environment (main thread, each worker): the constructors, so the addon loads in several
// environments at once.
struct AddonData {
  Napi::FunctionReference session_ctor;
  Napi::FunctionReference watcher_ctor;
};

struct JsContext {
  Napi::FunctionReference on_batch;
  Napi::FunctionReference on_event;
  Napi::ObjectReference session;  // pins the Session while its reader may still call back
  std::shared_ptr<SinkState> state;
#ifdef ICMPCAP_BENCH
  bool per_record_objects = false;  // one JS object per record, to measure what that costs
#endif
  // Items past the turn's budget, in order (see kTurnBudgetMs), and what runs them later.
  std::deque<std::unique_ptr<Item>> deferred;
  Napi::FunctionReference set_immediate;
  Napi::FunctionReference drain;
  uv_loop_t* loop = nullptr;
  uint64_t turn = ~uint64_t{0};  // uv_now() of the turn `spent_ms` belongs to
  double spent_ms = 0;
  bool drain_scheduled = false;
  bool finalized = false;  // the ThreadSafeFunction is gone: the last drain deletes this
};

void CallJs(Napi::Env env, Napi::Function, JsContext* ctx, Item* raw);
void Deliver(Napi::Env env, JsContext* ctx, std::unique_ptr<Item> item);
Napi::Value DrainDeferred(const Napi::CallbackInfo& info);

// A callback threw: report it as an uncaught exception, as for any other callback. Never
// throws (Error::ThrowAsJavaScriptException() does when the environment is terminating, and
// nothing may escape a ThreadSafeFunction's call).
void RethrowToJs(napi_env env, const Napi::Error& e) {
  napi_value v = nullptr;
  try {
    v = e.Value();
  } catch (...) {
    return;
  }
  if (v) napi_throw(env, v);
}
using Tsfn = Napi::TypedThreadSafeFunction<JsContext, Item, CallJs>;

class JsSink final : public icmpcap::Sink {
 public:
  JsSink(Tsfn tsfn, std::shared_ptr<SinkState> state) : tsfn_(tsfn), state_(std::move(state)) {}
  bool can_accept() override {
    return state_->inflight.load(std::memory_order_acquire) +
               state_->held.load(std::memory_order_acquire) <
           kMaxInflightBatches;
  }
  void set_held(uint32_t batches) { state_->held.store(batches, std::memory_order_release); }
  bool deliver(Batch&& batch) override {
    auto* item = new Item;
    item->is_batch = true;
    item->batch = std::move(batch);
    state_->inflight.fetch_add(1, std::memory_order_acq_rel);
    if (tsfn_.NonBlockingCall(item) != napi_ok) {
      state_->inflight.fetch_sub(1, std::memory_order_acq_rel);
      delete item;
      return false;
    }
    return true;
  }
  void event(Event&& ev) override {
    auto* item = new Item;
    item->event = std::move(ev);
    if (tsfn_.NonBlockingCall(item) != napi_ok) delete item;
  }

 private:
  Tsfn tsfn_;
  std::shared_ptr<SinkState> state_;
};

const char* EventTypeName(EventType t) {
  switch (t) {
    case EventType::kError:
      return "error";
    case EventType::kInterfaceGone:
      return "interface-gone";
    case EventType::kOverflow:
      return "overflow";
    case EventType::kStopped:
      return "stopped";
    default:
      return "info";
  }
}

#ifdef ICMPCAP_BENCH
Napi::Value RecordsAsObjects(Napi::Env env, const Batch& b) {
  Napi::Array arr = Napi::Array::New(env, b.records);
  size_t off = 0;
  for (uint32_t i = 0; i < b.records; i++) {
    icmpcap_record r;
    memcpy(&r, b.data.get() + off, sizeof(r));
    Napi::Object o = Napi::Object::New(env);
    o.Set("ts", Napi::Number::New(env, static_cast<double>(r.ts_ns)));
    o.Set("ifindex", Napi::Number::New(env, r.ifindex));
    o.Set("family", Napi::Number::New(env, r.family));
    o.Set("type", Napi::Number::New(env, r.icmp_type));
    o.Set("code", Napi::Number::New(env, r.icmp_code));
    o.Set("id", Napi::Number::New(env, r.icmp_id));
    o.Set("seq", Napi::Number::New(env, r.icmp_seq));
    o.Set("ttl", Napi::Number::New(env, r.ttl));
    o.Set("len", Napi::Number::New(env, r.orig_len));
    o.Set("data", Napi::ArrayBuffer::New(env, r.cap_len));
    arr.Set(i, o);
    off += icmpcap::align_record(r.len);
  }
  return arr;
}
#endif

class Session : public Napi::ObjectWrap<Session> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data) {
    Napi::Function f = DefineClass(
        env, "Session",
        {InstanceMethod("start", &Session::Start), InstanceMethod("stop", &Session::Stop),
         InstanceMethod("stats", &Session::GetStats), InstanceMethod("hold", &Session::Hold),
         InstanceMethod("close", &Session::Close)});
    data->session_ctor = Napi::Persistent(f);
    exports.Set("Session", f);
  }

  explicit Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
    if (info.Length() < 1 || !info[0].IsExternal())
      ThrowType(info.Env(), "Session cannot be constructed directly; use open()");
    auto* src = info[0].As<Napi::External<icmpcap::Source>>().Data();
    source_.reset(src);
  }

  ~Session() override { Shutdown(); }

  // The environment is going away (worker terminated, renderer reloaded, quit without
  // close()): Node is about to free the ThreadSafeFunction whatever other threads hold, so
  // stop and join the reader first. Registered after the TSFN, so it runs before the TSFN's
  // own cleanup (hooks run in reverse order).
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<Session*>(arg);
    self->hook_added_ = false;
    self->Shutdown();
  }

  // Called on the JS thread when the reader has ended (stop() or the source ended itself).
  void ReaderFinished() {
    if (source_) source_->stop();
    ReleaseTsfn();
  }

 private:
  void Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction())
      ThrowType(env, "start(onBatch, onEvent) needs two functions");
    if (!source_)
      ThrowCore(env, icmpcap::Error(EBADF,
                                    "icmpcap: start: EBADF \u2014 the session is closed; "
                                    "open a new one"));
    if (started_)
      ThrowCore(env, icmpcap::Error(EBUSY,
                                    "icmpcap: start: EBUSY \u2014 the session was already "
                                    "started; open a new one"));
    auto* ctx = new JsContext;
    ctx->on_batch = Napi::Persistent(info[0].As<Napi::Function>());
    ctx->on_event = Napi::Persistent(info[1].As<Napi::Function>());
    ctx->session = Napi::Persistent(Value());
    ctx->state = std::make_shared<SinkState>();
#ifdef ICMPCAP_BENCH
    ctx->per_record_objects = Value().Get("_perRecordObjects").ToBoolean();
#endif
    if (napi_get_uv_event_loop(env, &ctx->loop) != napi_ok) ctx->loop = nullptr;
    ctx->set_immediate = Napi::Persistent(env.Global().Get("setImmediate").As<Napi::Function>());
    ctx->drain = Napi::Persistent(Napi::Function::New(env, DrainDeferred, "icmpcapDrain", ctx));
    tsfn_ = Tsfn::New(env, "icmpcap.session", 0, 1, ctx, [](Napi::Env, void*, JsContext* c) {
      // Items still deferred are delivered by the drain already scheduled, which then deletes c.
      if (c->deferred.empty() || !c->drain_scheduled)
        delete c;
      else
        c->finalized = true;
    });
    has_tsfn_ = true;
    env_ = env;
    if (napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok) hook_added_ = true;
    sink_ = std::make_unique<JsSink>(tsfn_, ctx->state);
    started_ = true;
    try {
      source_->start(sink_.get());
    } catch (const icmpcap::Error& e) {
      ReleaseTsfn();
      ThrowCore(env, e);
    }
  }

  void Stop(const Napi::CallbackInfo&) {
    if (source_) source_->stop();
    ReleaseTsfn();
  }

  Napi::Value GetStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    icmpcap::Stats s = source_ ? source_->stats() : last_stats_;
    Napi::Object o = Napi::Object::New(env);
    o.Set("source", icmpcap::source_kind_name(s.source));
    o.Set("captured", Napi::Number::New(env, static_cast<double>(s.captured)));
    o.Set("delivered", Napi::Number::New(env, static_cast<double>(s.delivered)));
    o.Set("droppedKernel", Napi::Number::New(env, static_cast<double>(s.dropped_kernel)));
    o.Set("droppedRing", Napi::Number::New(env, static_cast<double>(s.dropped_ring)));
    o.Set("batches", Napi::Number::New(env, static_cast<double>(s.batches)));
    o.Set("wakeups", Napi::Number::New(env, static_cast<double>(s.wakeups)));
    if (!s.per_cpu.empty()) {
      Napi::Array arr = Napi::Array::New(env, s.per_cpu.size());
      for (size_t i = 0; i < s.per_cpu.size(); i++) {
        Napi::Object c = Napi::Object::New(env);
        c.Set("cpu", s.per_cpu[i].cpu);
        c.Set("captured", Napi::Number::New(env, static_cast<double>(s.per_cpu[i].captured)));
        c.Set("dropped", Napi::Number::New(env, static_cast<double>(s.per_cpu[i].dropped)));
        arr.Set(i, c);
      }
      o.Set("perCpu", arr);
    }
    return o;
  }

  // hold(batches): how many delivered batches the consumer still holds (see SinkState::held).
  void Hold(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber())
      ThrowType(env, "hold(batches) needs the number of batches still held (0 or more)");
    const double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 0) || n != std::floor(n))
      ThrowType(env, "hold(batches): batches must be a whole number, 0 or more");
    if (sink_) sink_->set_held(static_cast<uint32_t>(std::min<double>(n, kMaxInflightBatches)));
  }

  void Close(const Napi::CallbackInfo&) { Shutdown(); }

  void Shutdown() {
    if (source_) {
      source_->stop();
      last_stats_ = source_->stats();
      source_->close();
      source_.reset();
    }
    ReleaseTsfn();
  }

  void ReleaseTsfn() {
    if (has_tsfn_) {
      has_tsfn_ = false;
      tsfn_.Release();
    }
    if (hook_added_) {
      hook_added_ = false;
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    }
  }

  napi_env env_ = nullptr;
  bool hook_added_ = false;
  std::unique_ptr<icmpcap::Source> source_;
  std::unique_ptr<JsSink> sink_;
  Tsfn tsfn_;
  bool has_tsfn_ = false;
  bool started_ = false;
  icmpcap::Stats last_stats_;
};

// Runs `item` in JavaScript and adds the time it took to this turn's.
void RunTimed(Napi::Env env, JsContext* ctx, std::unique_ptr<Item> item) {
  const auto t0 = std::chrono::steady_clock::now();
  Deliver(env, ctx, std::move(item));
  ctx->spent_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void ScheduleDrain(JsContext* ctx) {
  if (ctx->drain_scheduled) return;
  ctx->drain_scheduled = true;
  ctx->set_immediate.Call({ctx->drain.Value()});
}

void CallJs(Napi::Env env, Napi::Function, JsContext* ctx, Item* raw) {
  std::unique_ptr<Item> item(raw);
  // The environment is going away: Node empties the queue with env == null after the
  // finalizer deleted ctx. Drop, and touch nothing else.
  if (!env) return;
  if (ctx->loop) {
    const uint64_t now = uv_now(ctx->loop);  // the same for every call of this turn
    if (now != ctx->turn) {
      ctx->turn = now;
      ctx->spent_ms = 0;
    }
  }
  if (!ctx->deferred.empty() || ctx->spent_ms >= kTurnBudgetMs) {
    ctx->deferred.push_back(std::move(item));
    try {
      ScheduleDrain(ctx);
    } catch (const Napi::Error& e) {
      RethrowToJs(env, e);
    } catch (...) {
    }
    return;
  }
  RunTimed(env, ctx, std::move(item));
}

// setImmediate: delivers deferred items for one turn's budget (at least one), then again next
// turn while any are left.
Napi::Value DrainDeferred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* ctx = static_cast<JsContext*>(info.Data());
  ctx->drain_scheduled = false;
  ctx->turn = ctx->loop ? uv_now(ctx->loop) : 0;
  ctx->spent_ms = 0;
  while (!ctx->deferred.empty()) {
    std::unique_ptr<Item> item = std::move(ctx->deferred.front());
    ctx->deferred.pop_front();
    // Scheduled first, so that an exception thrown by a callback does not stall the rest.
    if (!ctx->deferred.empty() && ctx->spent_ms >= kTurnBudgetMs) {
      ctx->deferred.push_front(std::move(item));
      ScheduleDrain(ctx);
      return env.Undefined();
    }
    if (!ctx->deferred.empty()) ScheduleDrain(ctx);
    RunTimed(env, ctx, std::move(item));
    // A callback threw (now pending, reported as uncaught when this returns), or more is left.
    if (ctx->drain_scheduled || env.IsExceptionPending()) return env.Undefined();
  }
  if (ctx->finalized) delete ctx;
  return env.Undefined();
}

void Deliver(Napi::Env env, JsContext* ctx, std::unique_ptr<Item> item) {
  if (item->is_batch) ctx->state->inflight.fetch_sub(1, std::memory_order_acq_rel);
  try {
    if (item->is_batch) {
      const Batch& b = item->batch;
      Napi::Object info = Napi::Object::New(env);
      info.Set("records", Napi::Number::New(env, b.records));
      info.Set("bytes", Napi::Number::New(env, static_cast<double>(b.bytes)));
#ifdef ICMPCAP_BENCH
      if (ctx->per_record_objects) {
        ctx->on_batch.Call({RecordsAsObjects(env, b), info});
        return;
      }
#endif
      {
        // The one copy from native memory into V8's heap (external buffers are not allowed
        // inside Electron's memory cage).
        Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, b.bytes);
        if (b.bytes) memcpy(ab.Data(), b.data.get(), b.bytes);
        ctx->on_batch.Call({ab, info});
      }
      return;
    }
    const Event& e = item->event;
    if (e.type == EventType::kStopped && !ctx->session.IsEmpty()) {
      Napi::Object obj = ctx->session.Value();
      Session::Unwrap(obj)->ReaderFinished();
    }
    Napi::Object ev = Napi::Object::New(env);
    ev.Set("type", EventTypeName(e.type));
    ev.Set("message", e.message);
    if (e.ifindex) ev.Set("ifindex", e.ifindex);
    if (!e.ifname.empty()) ev.Set("ifname", e.ifname);
    if (!e.errno_name.empty()) ev.Set("errno", e.errno_name);
    ctx->on_event.Call({ev});
  } catch (const Napi::Error& e) {
    RethrowToJs(env, e);
  } catch (...) {
    // The environment is being torn down: nothing can run, nothing to report.
  }
}

std::string GetString(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return "";
  if (!v.IsString()) ThrowType(o.Env(), std::string("open: ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double GetNumber(Napi::Object o, const char* key, double dflt, double lo, double hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) ThrowType(o.Env(), std::string("open: ") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<uint64_t>(d)))
    ThrowType(o.Env(), std::string("open: ") + key + " must be an integer from " +
                           std::to_string(static_cast<uint64_t>(lo)) + " to " +
                           std::to_string(static_cast<uint64_t>(hi)));
  return d;
}

// OpenConfig.filter (CaptureFilterSpec) into the module's terms, checked.
std::vector<uint32_t> GetUintList(Napi::Object o, const char* key, uint32_t max, bool* present) {
  std::vector<uint32_t> out;
  Napi::Value v = o.Get(key);
  *present = !v.IsUndefined() && !v.IsNull();
  if (!*present) return out;
  const std::string err = std::string("open: filter.") + key + " must be an array of integers 0.." +
                          std::to_string(max);
  if (!v.IsArray()) ThrowType(o.Env(), err);
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value n = a.Get(i);
    if (!n.IsNumber()) ThrowType(o.Env(), err);
    const double d = n.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d)))
      ThrowType(o.Env(), err);
    out.push_back(static_cast<uint32_t>(d));
  }
  return out;
}

void SetBits(uint8_t* bm, const std::vector<uint32_t>& values) {
  memset(bm, 0, ICMPCAP_BITMAP_BYTES);
  for (uint32_t v : values) bm[v / 8] |= static_cast<uint8_t>(1u << (v % 8));
}

void ParseFilter(Napi::Env env, Napi::Value v, struct icmpcap_filter_spec* f) {
  if (!v.IsObject() || v.IsArray()) ThrowType(env, "open: filter must be an object");
  Napi::Object o = v.As<Napi::Object>();
  bool present;
  for (uint32_t fam : GetUintList(o, "families", 6, &present)) {
    if (fam != 4 && fam != 6) ThrowType(env, "open: filter.families holds 4 and/or 6");
    f->families |= fam == 4 ? ICMPCAP_FAMILY_F_IPV4 : ICMPCAP_FAMILY_F_IPV6;
  }
  auto t4 = GetUintList(o, "typesV4", 255, &present);
  f->has_types_v4 = present;
  SetBits(f->types_v4, t4);
  auto t6 = GetUintList(o, "typesV6", 255, &present);
  f->has_types_v6 = present;
  SetBits(f->types_v6, t6);
  auto codes = GetUintList(o, "codes", 255, &present);
  f->has_codes = present;
  SetBits(f->codes, codes);
  Napi::Value dirs = o.Get("directions");
  if (!dirs.IsUndefined() && !dirs.IsNull()) {
    const char* err = "open: filter.directions must be an array of 'in', 'out', 'forward'";
    if (!dirs.IsArray()) ThrowType(env, err);
    Napi::Array a = dirs.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value d = a.Get(i);
      const std::string s = d.IsString() ? d.As<Napi::String>().Utf8Value() : "";
      if (s == "in")
        f->directions |= 1u << ICMPCAP_DIR_IN;
      else if (s == "out")
        f->directions |= 1u << ICMPCAP_DIR_OUT;
      else if (s == "forward")
        f->directions |= 1u << ICMPCAP_DIR_FORWARD;
      else
        ThrowType(env, err);
    }
  }
  Napi::Value addrs = o.Get("addresses");
  if (!addrs.IsUndefined() && !addrs.IsNull()) {
    if (!addrs.IsArray()) ThrowType(env, "open: filter.addresses must be an array");
    Napi::Array a = addrs.As<Napi::Array>();
    if (a.Length() > ICMPCAP_MAX_ADDR_RULES)
      ThrowType(env, "open: filter.addresses holds at most " +
                         std::to_string(ICMPCAP_MAX_ADDR_RULES) + " rules");
    for (uint32_t i = 0; i < a.Length(); i++) {
      const std::string where = "open: filter.addresses[" + std::to_string(i) + "]";
      if (!a.Get(i).IsObject()) ThrowType(env, where + " must be an object");
      Napi::Object r = a.Get(i).As<Napi::Object>();
      struct icmpcap_addr_rule& rule = f->addr_rules[f->nr_addr_rules];
      memset(&rule, 0, sizeof(rule));
      const double fam =
          r.Get("family").IsNumber() ? r.Get("family").As<Napi::Number>().DoubleValue() : 0;
      if (fam != 4 && fam != 6) ThrowType(env, where + ".family must be 4 or 6");
      rule.family = static_cast<uint8_t>(fam);
      const std::string addr = GetString(r, "address");
      if (inet_pton(fam == 4 ? AF_INET : AF_INET6, addr.c_str(), rule.addr) != 1)
        ThrowType(env, where + ".address is not an IPv" + std::to_string(rule.family) + " address");
      const double plen = GetNumber(r, "prefixLength", fam == 4 ? 32 : 128, 0, fam == 4 ? 32 : 128);
      rule.prefix_len = static_cast<uint8_t>(plen);
      for (int bit = rule.prefix_len; bit < 128; bit++)
        rule.addr[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
      const std::string side = GetString(r, "side");
      if (side == "any" || side.empty())
        rule.side = ICMPCAP_ADDR_ANY;
      else if (side == "src")
        rule.side = ICMPCAP_ADDR_SRC;
      else if (side == "dst")
        rule.side = ICMPCAP_ADDR_DST;
      else
        ThrowType(env, where + ".side must be 'any', 'src' or 'dst'");
      f->nr_addr_rules++;
    }
  }
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "open(config) needs an object");
  Napi::Object c = info[0].As<Napi::Object>();
  icmpcap::OpenConfig cfg;
  const std::string source = GetString(c, "source");
  if (source == "module")
    cfg.source = icmpcap::SourceKind::kModule;
  else if (source == "afpacket")
    cfg.source = icmpcap::SourceKind::kAfPacket;
  else
    ThrowType(env, "open: source must be 'module' or 'afpacket'");
  if (!c.Get("netns").IsUndefined()) ThrowType(env, "open: netns is not supported");
  Napi::Value ifs = c.Get("interfaces");
  if (!ifs.IsUndefined() && !ifs.IsNull()) {
    if (!ifs.IsArray()) ThrowType(env, "open: interfaces must be an array of names");
    Napi::Array a = ifs.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value n = a.Get(i);
      if (!n.IsString()) ThrowType(env, "open: interfaces must be an array of names");
      cfg.interfaces.push_back(n.As<Napi::String>().Utf8Value());
    }
  }
  cfg.snaplen = static_cast<uint32_t>(GetNumber(c, "snaplen", 256, 64, 65535));
  cfg.ring_bytes = static_cast<uint64_t>(GetNumber(c, "ringBytes", 0, 0, double(1ull << 40)));
  cfg.helper_path = GetString(c, "helperPath");
  // AF_PACKET always goes through icmpcap-helper now; useHelper stays accepted.
  Napi::Value use_helper = c.Get("useHelper");
  if (!use_helper.IsUndefined() && !use_helper.IsBoolean())
    ThrowType(env, "open: useHelper must be a boolean");
  Napi::Value filter = c.Get("filter");
  if (!filter.IsUndefined() && !filter.IsNull()) ParseFilter(env, filter, &cfg.filter);
  std::unique_ptr<icmpcap::Source> src;
  try {
    src = icmpcap::open_source(cfg);
  } catch (const icmpcap::Error& e) {
    ThrowCore(env, e);
  }
  auto ext = Napi::External<icmpcap::Source>::New(env, src.get());
  Napi::Object obj = env.GetInstanceData<AddonData>()->session_ctor.New({ext});
  src.release();  // owned by the Session now
  return obj;
}

Napi::Object InterfaceToJs(Napi::Env env, const icmpcap::InterfaceInfo& i) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", i.index);
  o.Set("name", i.name);
  o.Set("up", i.up);
  o.Set("running", i.running);
  o.Set("loopback", i.loopback);
  o.Set("mtu", Napi::Number::New(env, i.mtu));
  Napi::Array a = Napi::Array::New(env, i.addresses.size());
  for (size_t k = 0; k < i.addresses.size(); k++) {
    Napi::Object ao = Napi::Object::New(env);
    ao.Set("family", i.addresses[k].family);
    ao.Set("address", i.addresses[k].address);
    ao.Set("prefixLength", i.addresses[k].prefix_length);
    a.Set(k, ao);
  }
  o.Set("addresses", a);
  return o;
}

Napi::Value Interfaces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<icmpcap::InterfaceInfo> list;
  try {
    list = icmpcap::list_interfaces();
  } catch (const icmpcap::Error& e) {
    ThrowCore(env, e);
  }
  Napi::Array a = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) a.Set(i, InterfaceToJs(env, list[i]));
  return a;
}

// A string or null: empty is null.
Napi::Value OrNull(Napi::Env env, const std::string& s) {
  return s.empty() ? env.Null() : Napi::String::New(env, s);
}

Napi::Value RouteGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    ThrowType(env, "routeGet(destination) needs an IP address as a string");
  const std::string text = info[0].As<Napi::String>().Utf8Value();
  uint8_t addr[16];
  int family = 0;
  if (text.find('\0') == std::string::npos) {
    if (inet_pton(AF_INET, text.c_str(), addr) == 1)
      family = AF_INET;
    else if (inet_pton(AF_INET6, text.c_str(), addr) == 1)
      family = AF_INET6;
  }
  if (!family) ThrowType(env, "routeGet: not an IP address: " + text);
  icmpcap::RouteAnswer r;
  try {
    r = icmpcap::route_get(family, addr);
  } catch (const icmpcap::Error& e) {
    ThrowCore(env, e);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("mtu", r.mtu ? Napi::Number::New(env, r.mtu) : env.Null());
  o.Set("dev", OrNull(env, r.dev));
  o.Set("gateway", OrNull(env, r.gateway));
  o.Set("source", OrNull(env, r.source));
  return o;
}

Napi::Value RoutesV4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<icmpcap::Route4> list;
  try {
    list = icmpcap::routes_v4_main();
  } catch (const icmpcap::Error& e) {
    ThrowCore(env, e);
  }
  Napi::Array a = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("dst", list[i].dst);
    o.Set("prefixLength", list[i].prefix_length);
    o.Set("gateway", OrNull(env, list[i].gateway));
    a.Set(i, o);
  }
  return a;
}

struct IfChange {
  icmpcap::InterfaceChange type;
  icmpcap::InterfaceInfo iface;
};

void CallWatch(Napi::Env env, Napi::Function fn, std::nullptr_t*, IfChange* raw) {
  std::unique_ptr<IfChange> c(raw);
  if (!env) return;
  try {
    Napi::Object ev = Napi::Object::New(env);
    ev.Set("type", c->type == icmpcap::InterfaceChange::kAdded     ? "added"
                   : c->type == icmpcap::InterfaceChange::kRemoved ? "removed"
                                                                   : "changed");
    ev.Set("iface", InterfaceToJs(env, c->iface));
    fn.Call({ev});
  } catch (const Napi::Error& e) {
    RethrowToJs(env, e);
  } catch (...) {
  }
}
using WatchTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, IfChange, CallWatch>;

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData* data) {
    Napi::Function f =
        DefineClass(env, "InterfaceWatcher", {InstanceMethod("close", &Watcher::Close)});
    data->watcher_ctor = Napi::Persistent(f);
    exports.Set("InterfaceWatcher", f);
  }
  explicit Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction())
      ThrowType(env, "watchInterfaces(onChange) needs a function");
    tsfn_ = WatchTsfn::New(env, info[0].As<Napi::Function>(), "icmpcap.watch", 0, 1);
    WatchTsfn t = tsfn_;
    try {
      watcher_ = std::make_unique<icmpcap::InterfaceWatcher>(
          [t](icmpcap::InterfaceChange type, const icmpcap::InterfaceInfo& iface) mutable {
            t.NonBlockingCall(new IfChange{type, iface});
          });
    } catch (const icmpcap::Error& e) {
      tsfn_.Release();
      released_ = true;
      ThrowCore(env, e);
    }
    // Pinned until close(), as a session is while it runs: dropping the object does not
    // stop the notifications (nor free what the watcher thread uses).
    self_ = Napi::Persistent(info.This().As<Napi::Object>());
    env_ = env;
    if (napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok) hook_added_ = true;
  }
  ~Watcher() override { Shutdown(); }

 private:
  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<Watcher*>(arg);
    self->hook_added_ = false;
    self->Shutdown();
  }
  void Close(const Napi::CallbackInfo&) { Shutdown(); }
  void Shutdown() {
    if (watcher_) {
      watcher_->close();
      watcher_.reset();
    }
    if (!released_) {
      released_ = true;
      tsfn_.Release();
    }
    if (hook_added_) {
      hook_added_ = false;
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    }
    if (!self_.IsEmpty()) self_.Reset();
  }
  Napi::ObjectReference self_;
  napi_env env_ = nullptr;
  bool hook_added_ = false;
  WatchTsfn tsfn_;
  bool released_ = false;
  std::unique_ptr<icmpcap::InterfaceWatcher> watcher_;
};

Napi::Value WatchInterfaces(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction())
    ThrowType(info.Env(), "watchInterfaces(onChange) needs a function");
  return info.Env().GetInstanceData<AddonData>()->watcher_ctor.New({info[0]});
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string helper = info.Length() > 0 && info[0].IsString()
                           ? info[0].As<Napi::String>().Utf8Value()
                           : std::string();
  auto list = icmpcap::probe_sources(helper);
  Napi::Array a = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("source", icmpcap::source_kind_name(list[i].source));
    o.Set("available", list[i].available);
    if (!list[i].via.empty()) o.Set("via", list[i].via);
    if (!list[i].reason.empty()) o.Set("reason", list[i].reason);
    if (!list[i].kind.empty()) o.Set("kind", list[i].kind);
    for (const auto& kv : list[i].context) o.Set(kv.first, kv.second);
    a.Set(i, o);
  }
  return a;
}

#ifdef ICMPCAP_BENCH
// Bench only: a thread produces `count` synthetic records through the same Batcher + JsSink +
// ThreadSafeFunction path as a capture session. Unpaced (rate 0), it produces as fast as the
// queue takes them and never drops. Paced, records arrive at `rate` per second into a modelled
// kernel ring of `ringBytes`, which the reader drains only while the bounded queue to
// JavaScript has room (as RingSource does): what arrives while the ring is full is dropped and
// counted as droppedKernel, exactly the loss a service that falls behind would cause. Records
// are `capLen` bytes of 0x45, or copies of the records of `templ` (record.h format) in turn,
// each with a fresh timestamp.
struct SyntheticOptions {
  double rate = 0;
  uint64_t ring_bytes = 1u << 20;
  std::vector<uint8_t> templ;
};

class SyntheticSource final : public icmpcap::Source {
 public:
  SyntheticSource(uint64_t count, uint32_t cap_len, SyntheticOptions opts)
      : Source(icmpcap::SourceKind::kAfPacket, icmpcap::BatchLimits{}),
        count_(count),
        cap_len_(cap_len),
        opts_(std::move(opts)) {
    for (size_t off = 0; off + icmpcap::kRecordHeaderSize <= opts_.templ.size();) {
      icmpcap_record r;
      memcpy(&r, opts_.templ.data() + off, sizeof(r));
      if (r.len < icmpcap::kRecordHeaderSize || off + r.len > opts_.templ.size()) break;
      templ_offsets_.push_back(off);
      off += icmpcap::align_record(r.len);
    }
  }
  ~SyntheticSource() override { close(); }

 protected:
  void run() override {
    if (opts_.rate > 0)
      run_paced();
    else
      run_unpaced();
    while (!flush()) {
      if (!wait_for_room(1)) return;
    }
  }
  void release() override {}
  void fill_stats(icmpcap::Stats& s) override {
    s.dropped_kernel = dropped_.load(std::memory_order_relaxed);
  }

 private:
  // The i-th record: its header (timestamp set) and its bytes after the header.
  const uint8_t* next_record(uint64_t i, icmpcap_record& hdr) {
    if (templ_offsets_.empty()) {
      hdr = {};
      hdr.len = icmpcap::kRecordHeaderSize + cap_len_;
      hdr.cap_len = static_cast<uint16_t>(cap_len_);
      hdr.orig_len = cap_len_;
      hdr.family = 4;
      hdr.hook = ICMPCAP_HOOK_NONE;
      hdr.icmp_seq = static_cast<uint16_t>(i);
      if (payload_.size() != cap_len_) payload_.assign(cap_len_, 0x45);
      hdr.ts_ns = i;
      return payload_.data();
    }
    const uint8_t* p = opts_.templ.data() + templ_offsets_[i % templ_offsets_.size()];
    memcpy(&hdr, p, sizeof(hdr));
    // 1.7e18 ns (2023) on, one record every 1/rate s.
    hdr.ts_ns = 1700000000000000000ull + static_cast<uint64_t>(static_cast<double>(i) * 1e9 /
                                                               (opts_.rate > 0 ? opts_.rate : 1e6));
    return p + icmpcap::kRecordHeaderSize;
  }

  void run_unpaced() {
    for (uint64_t i = 0; i < count_ && !stop_requested(); i++) {
      icmpcap_record hdr;
      const uint8_t* payload = next_record(i, hdr);
      if (!batcher_.fits(hdr.len)) {
        while (!flush()) {
          if (!wait_for_room(1)) return;
        }
      }
      batcher_.append_record(hdr, payload);
      captured_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void run_paced() {
    uint64_t avg = icmpcap::align_record(icmpcap::kRecordHeaderSize + cap_len_);
    if (!templ_offsets_.empty())
      avg = std::max<uint64_t>(8, opts_.templ.size() / templ_offsets_.size());
    const uint64_t ring_records = std::max<uint64_t>(1, opts_.ring_bytes / avg);
    const auto start = std::chrono::steady_clock::now();
    int64_t last_flush_ms = icmpcap::monotonic_ms();
    uint64_t taken = 0;  // records read from the ring or dropped
    while (taken < count_ && !stop_requested()) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const uint64_t arrived = std::min<uint64_t>(count_, static_cast<uint64_t>(secs * opts_.rate));
      if (arrived - taken > ring_records) {
        // The ring is full: what arrives now is dropped and counted, as the kernel does.
        const uint64_t lost = arrived - taken - ring_records;
        dropped_.fetch_add(lost, std::memory_order_relaxed);
        taken += lost;
      }
      bool blocked = false;
      while (taken < arrived) {
        icmpcap_record hdr;
        const uint8_t* payload = next_record(taken, hdr);
        if (!batcher_.fits(hdr.len)) {
          if (!flush()) {
            blocked = true;  // the queue to JavaScript is full: the records stay in the ring
            break;
          }
          last_flush_ms = icmpcap::monotonic_ms();
        }
        batcher_.append_record(hdr, payload);
        captured_.fetch_add(1, std::memory_order_relaxed);
        taken++;
      }
      const int64_t now_ms = icmpcap::monotonic_ms();
      if (!blocked &&
          now_ms - last_flush_ms >= static_cast<int64_t>(batcher_.limits().flush_interval_ms)) {
        if (flush()) last_flush_ms = now_ms;
      }
      if (!wait_for_room(1)) return;
    }
  }

  uint64_t count_;
  uint32_t cap_len_;
  SyntheticOptions opts_;
  std::vector<size_t> templ_offsets_;
  std::vector<uint8_t> payload_;
  std::atomic<uint64_t> dropped_{0};
};

Napi::Value BenchSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBoolean())
    ThrowType(env, "benchSession(count, capLen, perRecordObjects, {rate, ringBytes, template}?)");
  const uint64_t count = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  const uint32_t cap = info[1].As<Napi::Number>().Uint32Value();
  if (cap > 65535) ThrowType(env, "capLen <= 65535");
  SyntheticOptions opts;
  if (info.Length() > 3 && info[3].IsObject()) {
    Napi::Object o = info[3].As<Napi::Object>();
    opts.rate = GetNumber(o, "rate", 0, 0, 1e9);
    opts.ring_bytes =
        static_cast<uint64_t>(GetNumber(o, "ringBytes", 1 << 20, 4096, double(1ull << 34)));
    if (o.Has("template")) {
      Napi::Value t = o.Get("template");
      if (!t.IsArrayBuffer()) ThrowType(env, "template: an ArrayBuffer of records");
      Napi::ArrayBuffer ab = t.As<Napi::ArrayBuffer>();
      const auto* b = static_cast<const uint8_t*>(ab.Data());
      opts.templ.assign(b, b + ab.ByteLength());
    }
  }
  auto* src = new SyntheticSource(count, cap, std::move(opts));
  auto ext = Napi::External<icmpcap::Source>::New(env, src);
  Napi::Object obj = env.GetInstanceData<AddonData>()->session_ctor.New({ext});
  obj.Set("_perRecordObjects", info[2]);
  return obj;
}

#endif

// An interface table of encodeSpoolBlocks (a Uint32Array of (ifindex, id) pairs sorted by
// ifindex) into *out; the reason it is not one, or null.
const char* SpoolInterfacesOf(const Napi::Value& v, Napi::Uint32Array* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    return "interfaces must be a Uint32Array of (ifindex, id) pairs";
  *out = v.As<Napi::Uint32Array>();
  // An unsorted table would make lookups miss: checked, as every other argument (n is small).
  const uint32_t* pairs = out->Data();
  size_t n = out->ElementLength() / 2;
  for (size_t i = 1; i < n; i++)
    if (pairs[2 * i - 2] >= pairs[2 * i]) return "interfaces must be sorted by ifindex, each once";
  return nullptr;
}

// encodeSpoolBlocks(batch, byteOffset, byteLength, out, outAt, interfaces, offsets, offsetsAt,
// fileBase, result): the spool's Enhanced Packet Blocks of batch[byteOffset, byteOffset +
// byteLength) into out from outAt (index.d.ts says the rest). Returns the status; result gets
// [srcAt, outAt, count, detail].
Napi::Value EncodeSpoolBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto bad = [&](const char* what) -> Napi::Value {
    Napi::TypeError::New(env, std::string("encodeSpoolBlocks: ") + what)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  };
  auto whole = [](const Napi::Value& v, double max, double* out) {
    if (!v.IsNumber()) return false;
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= max) || std::floor(d) != d) return false;
    *out = d;
    return true;
  };
  if (info.Length() < 10) return bad("10 arguments expected");
  if (!info[0].IsArrayBuffer()) return bad("batch must be an ArrayBuffer");
  Napi::ArrayBuffer batch = info[0].As<Napi::ArrayBuffer>();
  double byte_offset, byte_length;
  if (!whole(info[1], batch.ByteLength(), &byte_offset) ||
      !whole(info[2], batch.ByteLength() - byte_offset, &byte_length))
    return bad("byteOffset and byteLength must lie within the batch");
  // out null: the layout only (offsets, count, where the blocks would end), nothing written.
  bool layout = info[3].IsNull();
  if (!layout && (!info[3].IsTypedArray() ||
                  info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array))
    return bad("out must be a Uint8Array or null");
  Napi::Uint8Array out = layout ? Napi::Uint8Array() : info[3].As<Napi::Uint8Array>();
  double out_at;
  if (!whole(info[4], layout ? 0x1p53 : out.ElementLength(), &out_at))
    return bad("outAt must lie within out");
  Napi::Uint32Array interfaces;
  if (const char* why = SpoolInterfacesOf(info[5], &interfaces)) return bad(why);
  Napi::Float64Array offsets;
  bool has_offsets = !info[6].IsNull() && !info[6].IsUndefined();
  if (has_offsets) {
    if (!info[6].IsTypedArray() ||
        info[6].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      return bad("offsets must be a Float64Array or null");
    offsets = info[6].As<Napi::Float64Array>();
  }
  double offsets_at;
  if (!whole(info[7], has_offsets ? offsets.ElementLength() : 0x1p53, &offsets_at))
    return bad("offsetsAt must lie within offsets");
  if (!info[8].IsNumber()) return bad("fileBase must be a number");
  double file_base = info[8].As<Napi::Number>().DoubleValue();
  if (!info[9].IsTypedArray() ||
      info[9].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[9].As<Napi::Float64Array>().ElementLength() < 4)
    return bad("result must be a Float64Array of 4 or more");
  Napi::Float64Array result = info[9].As<Napi::Float64Array>();
  const uint32_t* pairs = interfaces.Data();
  size_t n = interfaces.ElementLength() / 2;
  const uint8_t* src = static_cast<const uint8_t*>(batch.Data()) + static_cast<size_t>(byte_offset);
  double* offs = has_offsets ? offsets.Data() : nullptr;
  size_t offs_len = has_offsets ? offsets.ElementLength() : 0;
  icmpcap::SpoolEncodeResult r =
      layout ? icmpcap::layout_spool_blocks(src, static_cast<size_t>(byte_length), 0,
                                            static_cast<size_t>(out_at),
                                            icmpcap::SpoolInterfaces{pairs, n}, offs, offs_len,
                                            static_cast<size_t>(offsets_at), file_base)
             : icmpcap::encode_spool_blocks(src, static_cast<size_t>(byte_length), 0, out.Data(),
                                            out.ElementLength(), static_cast<size_t>(out_at),
                                            icmpcap::SpoolInterfaces{pairs, n}, offs, offs_len,
                                            static_cast<size_t>(offsets_at), file_base);
  double* res = result.Data();
  res[0] = static_cast<double>(r.src_at);
  res[1] = static_cast<double>(r.out_at);
  res[2] = r.count;
  res[3] = r.detail;
  return Napi::Number::New(env, static_cast<int32_t>(r.status));
}

// Encodes runs of spool blocks in libuv's thread pool (encodeSpoolRuns): the capture's thread only
// lays them out (encodeSpoolBlocks with out null), so copying every packet into the spool's pages
// costs it nothing. Each run's batch, table and destination stay referenced until the callback.
class EncodeRunsWorker : public Napi::AsyncWorker {
 public:
  struct Run {
    const uint8_t* src;
    size_t src_len;
    const uint32_t* pairs;
    size_t n;
    uint8_t* out;
    size_t out_len;
    size_t out_at;
    size_t length;
  };
  EncodeRunsWorker(Napi::Function callback, Napi::Object keep, std::vector<Run> runs)
      : Napi::AsyncWorker(callback, "icmpcap:encodeSpoolRuns"), runs_(std::move(runs)) {
    keep_ = Napi::Persistent(keep);
  }
  void Execute() override {
    for (const Run& run : runs_) {
      icmpcap::SpoolEncodeResult r = icmpcap::encode_spool_blocks(
          run.src, run.src_len, 0, run.out, run.out_len, run.out_at,
          icmpcap::SpoolInterfaces{run.pairs, run.n}, nullptr, 0, 0, 0);
      // Laid out before with the same records and table: anything else is a bug, said as one.
      if (r.status != icmpcap::SpoolEncodeStatus::kDone || r.out_at - run.out_at != run.length) {
        SetError("encodeSpoolRuns: a run did not encode as it was laid out (status " +
                 std::to_string(static_cast<int>(r.status)) + ", " +
                 std::to_string(r.out_at - run.out_at) + " bytes of " + std::to_string(run.length) +
                 ")");
        return;
      }
    }
  }

 private:
  std::vector<Run> runs_;
  Napi::ObjectReference keep_;
};

// encodeSpoolRuns(runs, callback): each run {batch, byteOffset, byteLength, interfaces, out, outAt,
// length} encoded into out[outAt, outAt + length) in the thread pool; callback(error?) on the
// loop. The caller must not touch those bytes of out until then (index.d.ts).
Napi::Value EncodeSpoolRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto bad = [&](const std::string& what) -> Napi::Value {
    Napi::TypeError::New(env, "encodeSpoolRuns: " + what).ThrowAsJavaScriptException();
    return env.Undefined();
  };
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsFunction())
    return bad("an array of runs and a callback expected");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<EncodeRunsWorker::Run> runs;
  runs.reserve(list.Length());
  auto whole = [](const Napi::Value& v, double max, double* out) {
    if (!v.IsNumber()) return false;
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= max) || std::floor(d) != d) return false;
    *out = d;
    return true;
  };
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    std::string at = "run " + std::to_string(i) + ": ";
    if (!item.IsObject()) return bad(at + "not an object");
    Napi::Object o = item.As<Napi::Object>();
    Napi::Value batch_v = o.Get("batch");
    if (!batch_v.IsArrayBuffer()) return bad(at + "batch must be an ArrayBuffer");
    Napi::ArrayBuffer batch = batch_v.As<Napi::ArrayBuffer>();
    double byte_offset, byte_length, out_at, length;
    if (!whole(o.Get("byteOffset"), batch.ByteLength(), &byte_offset) ||
        !whole(o.Get("byteLength"), batch.ByteLength() - byte_offset, &byte_length))
      return bad(at + "byteOffset and byteLength must lie within the batch");
    Napi::Uint32Array interfaces;
    if (const char* why = SpoolInterfacesOf(o.Get("interfaces"), &interfaces)) return bad(at + why);
    Napi::Value out_v = o.Get("out");
    if (!out_v.IsTypedArray() || out_v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      return bad(at + "out must be a Uint8Array");
    Napi::Uint8Array out = out_v.As<Napi::Uint8Array>();
    if (!whole(o.Get("outAt"), out.ElementLength(), &out_at) ||
        !whole(o.Get("length"), out.ElementLength() - out_at, &length))
      return bad(at + "outAt and length must lie within out");
    runs.push_back({static_cast<const uint8_t*>(batch.Data()) + static_cast<size_t>(byte_offset),
                    static_cast<size_t>(byte_length), interfaces.Data(),
                    interfaces.ElementLength() / 2, out.Data(),
                    static_cast<size_t>(out_at + length), static_cast<size_t>(out_at),
                    static_cast<size_t>(length)});
  }
  auto* worker = new EncodeRunsWorker(info[1].As<Napi::Function>(), list, std::move(runs));
  worker->Queue();
  return env.Undefined();
}

// The size of a transparent huge page (the PMD's), as the kernel says; 2 MiB where it says nothing.
size_t HugePageSize() {
  static const size_t size = [] {
    size_t bytes = 0;
    if (FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re")) {
      unsigned long long v = 0;
      if (fscanf(f, "%llu", &v) == 1) bytes = static_cast<size_t>(v);
      fclose(f);
    }
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return bytes >= page && (bytes & (bytes - 1)) == 0 ? bytes : size_t{2} << 20;
  }();
  return size;
}

// adviseHugePages(view): madvise(MADV_HUGEPAGE) over the huge-page-aligned part of the view's
// bytes; returns how many bytes were advised (0: the view holds no aligned huge page, or the kernel
// has no transparent huge pages). Only advice: the bytes and their contents stay as they are.
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray())
    ThrowType(env, "adviseHugePages(view) needs a typed array");
  // The raw call: node-addon-api's TypedArray::ArrayBuffer() refuses a view of a SharedArrayBuffer.
  napi_typedarray_type type;
  size_t length = 0;
  void* bytes = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, info[0], &type, &length, &bytes, nullptr, &offset) != napi_ok)
    ThrowType(env, "adviseHugePages(view) needs a typed array");
  const auto data = reinterpret_cast<uintptr_t>(bytes);  // already at the view's first byte
  const uintptr_t huge = HugePageSize();
  const uintptr_t from = (data + huge - 1) & ~(huge - 1);
  const uintptr_t to = (data + info[0].As<Napi::TypedArray>().ByteLength()) & ~(huge - 1);
  if (data == 0 || to <= from) return Napi::Number::New(env, 0);
  if (madvise(reinterpret_cast<void*>(from), to - from, MADV_HUGEPAGE) != 0)
    return Napi::Number::New(env, 0);
  return Napi::Number::New(env, static_cast<double>(to - from));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData;
  env.SetInstanceData(data);  // deleted with the environment
  Session::Init(env, exports, data);
  Watcher::Init(env, exports, data);
  exports.Set("ABI_VERSION", Napi::Number::New(env, ICMPCAP_ABI_VERSION));
  exports.Set("RECORD_HEADER_SIZE", Napi::Number::New(env, ICMPCAP_RECORD_HDR_SIZE));
  exports.Set("MAX_HELD_BATCHES", Napi::Number::New(env, kMaxInflightBatches));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("interfaces", Napi::Function::New(env, Interfaces, "interfaces"));
  exports.Set("watchInterfaces", Napi::Function::New(env, WatchInterfaces, "watchInterfaces"));
  exports.Set("routeGet", Napi::Function::New(env, RouteGet, "routeGet"));
  exports.Set("routesV4", Napi::Function::New(env, RoutesV4, "routesV4"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("encodeSpoolBlocks",
              Napi::Function::New(env, EncodeSpoolBlocks, "encodeSpoolBlocks"));
  exports.Set("encodeSpoolRuns", Napi::Function::New(env, EncodeSpoolRuns, "encodeSpoolRuns"));
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages, "adviseHugePages"));
#ifdef ICMPCAP_BENCH
  exports.Set("benchSession", Napi::Function::New(env, BenchSession, "benchSession"));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
