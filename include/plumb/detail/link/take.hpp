#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/take.hpp: how a consumer's input takes its next packet from a link, and the hook
// through which an ordering layer numbers the packets it takes (OrderCursor, order_gate.hpp).

#include <plumb/detail/link/index_ring.hpp>
#include <plumb/detail/sync/stop_flag.hpp>

#include <cstdint>

namespace plumb::detail {

// What a consumer's input tells an ordering layer around each take. The link layer knows only
// this interface; Stage::ordered() plugs in an OrderCursor.
//
// Thread affinity: the consumer's thread only.
class TakeHook {
 public:
  TakeHook() = default;
  TakeHook(const TakeHook&) = delete;
  TakeHook& operator=(const TakeHook&) = delete;

  // Before the take (may wait; throws Stopped once the run stops).
  virtual void before_take(StopFlag stop) = 0;
  // The take found the packet at ready-ring position `position`.
  virtual void took(std::uint64_t position) noexcept = 0;
  // The take found the end of the stream after `total` packets.
  virtual void ended(std::uint64_t total) noexcept = 0;

 protected:
  ~TakeHook() = default;
};

// Takes the next packet's slot from `core` (either kind of LinkCore), or Core::kEnd at the end
// of the stream. With a hook, the packet's ready-ring position goes to it; without one (the
// common case) this is the core's take and one branch.
// Takes with `take(position)` (returns a slot, or IndexRing::kNone at the end) for an ordering
// layer: its hook hears of the packet's position, or of the end.
template <class Take>
std::uint32_t take_numbered(TakeHook* hook, StopFlag stop, Take&& take) {
  hook->before_take(stop);
  std::uint64_t position = 0;
  const std::uint32_t slot = take(&position);
  if (slot == IndexRing::kNone) {
    hook->ended(position);
  } else {
    hook->took(position);
  }
  return slot;
}

template <class Core, class Timer>
std::uint32_t take_next(Core& core, StopFlag stop, Timer* timer, TakeHook* hook) {
  if (hook == nullptr) [[likely]] return core.take(stop, timer);
  return take_numbered(hook, stop, [&](std::uint64_t* position) { return core.take(stop, timer, position); });
}

}  // namespace plumb::detail
