#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/slot_source.hpp: zero-copy writes across processes. A worker whose output
// link crosses to another process serves make_buffer() from the link's shared-memory slots
// (SlotSource), and its drain queues such a Buffer's slot as it is, without a copy
// (drain_in_place).

#include <plumb/buffer.hpp>
#include <plumb/codec.hpp>
#include <plumb/detail/buffer/home.hpp>
#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/link/shm_link.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/worker/produce.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace plumb::detail {

// The home of the Buffers one producer worker writes in its output link's slots. A slot's
// message is laid out as the codec lays out a vector of plain elements: a u64 count, padding
// to kBulkAlignment, the elements; so a Buffer's elements start kBulkAlignment bytes into the
// slot and a consumer's View reads them there.
//
// Invariants:
//   B1: the worker holds at most one slot as a Buffer (held_): take() of a Buffer<U> while one
//       is held, or of anything else (a copy, another element type), is served by the worker's
//       pool instead. So the producers hold at most `producers` slots as Buffers, and a
//       worker never waits for a slot while it holds one in make_buffer().
//   B2: the held slot leaves the worker either queued (publish(), by the drain, when the
//       Buffer is yielded) or freed (give_back(), when the Buffer is destroyed unyielded:
//       return_slot, as the drain does with a slot it did not fill).
// held_ is written by the worker's thread (take, publish) and by whoever destroys an unyielded
// Buffer (give_back: the worker too, unless the body handed its Buffer to a thread of its own);
// give_back's release and take's acquire order that unusual case.
template <class U>
class SlotSource final : public BufferHome {
  using Link = ShmLink<Buffer<U>>;

 public:
  static constexpr std::uint32_t kNone = Link::kEnd;

  // With one reference, the caller's. `fallback` (the worker's pool) serves what B1 sends there.
  [[nodiscard]] static HomeRef<SlotSource> make(Link& link, BufferHome& fallback, StopFlag stop,
                                                WaitTimer* timer, const WorkerInfo& info) {
    return HomeRef<SlotSource>(new SlotSource(link, fallback, stop, timer, info));
  }

  Lease take(std::size_t bytes, const void* element) override {
    if (element != element_tag<U>() || held_.load(std::memory_order_acquire) != kNone) {
      return fallback_.take(bytes, element);
    }
    if (link_.slot_bytes() < kBulkAlignment || bytes > room()) throw_too_large(bytes);
    const std::uint32_t slot = link_.core().acquire_slot(stop_, timer_);  // throws Stopped
    held_.store(slot, std::memory_order_relaxed);
    retain();
    return {Block{link_.slot_memory(slot).data() + kBulkAlignment, room(), slot}, this};
  }

  // B2: an unyielded Buffer's slot goes back to the producers. Release, with take's acquire:
  // a Buffer destroyed on another thread is done with the slot before the worker's next take
  // (the free ring's own ordering covers the slot's reuse itself).
  void give_back(const Block& block) noexcept override {
    link_.core().return_slot(block.token, stop_);
    held_.store(kNone, std::memory_order_release);
  }

  // True if `buffer` is the slot this worker holds (B1).
  [[nodiscard]] bool holds(const Buffer<U>& buffer) const noexcept {
    return BufferAccess::home(buffer) == this &&
           BufferAccess::block(buffer).token == held_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool holding() const noexcept { return held_.load(std::memory_order_acquire) != kNone; }

  // Writes the header of the held slot's message for `buffer` (holds(buffer)), takes the slot
  // out of it (left empty) and returns the slot, ready to be queued (B2).
  std::uint32_t publish(Buffer<U>& buffer) {
    const std::size_t count = buffer.size();
    const Lease lease = BufferAccess::detach(buffer);
    const std::uint32_t slot = lease.block.token;
    Writer header(link_.slot_memory(slot).first(kBulkAlignment));
    header.write(static_cast<std::uint64_t>(count));
    header.align(kBulkAlignment);
    link_.set_size(slot, kBulkAlignment + count * sizeof(U));
    held_.store(kNone, std::memory_order_relaxed);
    release();  // the Buffer's reference
    return slot;
  }

 private:
  SlotSource(Link& link, BufferHome& fallback, StopFlag stop, WaitTimer* timer, const WorkerInfo& info)
      : link_(link), fallback_(fallback), stop_(stop), timer_(timer), info_(info) {
    fallback_.retain();
  }
  ~SlotSource() override { fallback_.release(); }

  [[nodiscard]] std::size_t room() const noexcept {
    return link_.slot_bytes() > kBulkAlignment ? link_.slot_bytes() - kBulkAlignment : 0;
  }

  [[noreturn]] void throw_too_large(std::size_t bytes) const {
    const std::string stage = describe_stage(info_.stage_index, info_.stage_name);
    throw StageError(
        detail::format("plumb.stage_error: {} worker {} asked plumb::make_buffer for {} elements "
                       "({} bytes, and 64 bytes of header), over the max_message_size({}) of its "
                       "output link to another process; raise .max_message_size() on {} to at "
                       "least {}",
                       stage, info_.index, bytes / sizeof(U), bytes, link_.slot_bytes(), stage,
                       bytes + kBulkAlignment),
        info_.stage_index, info_.stage_name, info_.index);
  }

  Link& link_;
  BufferHome& fallback_;
  StopFlag stop_;
  WaitTimer* timer_;
  const WorkerInfo& info_;
  std::atomic<std::uint32_t> held_{kNone};
};

// A worker yielded a packet that needs a slot of its own while it holds one in an unyielded
// Buffer, and waiting for another could wait forever (the producers may hold every slot).
[[noreturn]] inline void throw_slot_held(WorkerContext& context, const WorkerInfo& info,
                                         std::size_t capacity) {
  auto error = std::make_exception_ptr(StageError(
      detail::format("plumb.stage_error: {} worker {} yielded a packet while it still holds its "
                     "output slot in a plumb::Buffer from make_buffer that it has not yielded, "
                     "and with in_flight({}) there may be no other slot for it; yield the "
                     "make_buffer Buffer itself with co_yield std::move(buffer) (co_yield of an "
                     "lvalue yields a copy), use plumb::Buffer<U>(n) for memory that is not "
                     "yielded, or raise .in_flight() on {} above its workers",
                     describe_stage(info.stage_index, info.stage_name), info.index, capacity,
                     describe_stage(info.stage_index, info.stage_name)),
      info.stage_index, info.stage_name, info.index));
  context.attribute(info, error);
  std::rethrow_exception(error);
}

// Drains `output` (the generator of an unordered group's last stage, whose make_buffer() the
// worker's SlotSource `source` serves) into `link`: a Buffer that is the worker's held slot is
// queued as it is (no copy); any other packet gets a slot and is copied in (fill_or_throw), as drain_into does.
// Unlike drain_into, no slot is taken before the generator is resumed (make_buffer takes it,
// B1), so a packet that is not a make_buffer Buffer (a copy, a Buffer sent on from the input)
// is built before it has a slot: a producer runs at most one such packet ahead of in_flight.
// `second_slot`: whether a worker may wait for a slot while it holds one (the link has more
// slots than producer workers; it keeps its rings, LinkPath::rings): else that is the stage's
// error instead of a wait that could last forever.
template <class U>
void drain_in_place(ShmLink<Buffer<U>>& link, SlotSource<U>& source, Input<Buffer<U>>& output,
                    WorkerContext& context, const WorkerInfo& info, bool second_slot,
                    std::size_t capacity) {
  auto& core = link.core();
  const StopFlag stop = context.stop();
  for (;;) {
    Buffer<U>* packet = output.next();
    if (packet == nullptr) return;
    if (source.holds(*packet)) {
      core.enqueue(source.publish(*packet), stop);
      continue;
    }
    if (source.holding() && !second_slot) throw_slot_held(context, info, capacity);
    const std::uint32_t slot = core.acquire_slot(stop, context.tally().output_timer());
    fill_or_throw(link, slot, *packet, stop, context, info);
    core.enqueue(slot, stop);
  }
}

}  // namespace plumb::detail
