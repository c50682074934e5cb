#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/worker/produce.hpp: the loop that drains a worker's last generator into its
// group's output link, in order of production or, for an ordered group, in order of input.

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>

namespace plumb::detail {

// A packet too large for the slots of its output link (a link across processes): an error of
// the stage that yielded it.
[[noreturn]] inline void throw_oversized(WorkerContext& context, const WorkerInfo& info,
                                         std::size_t size, std::size_t limit) {
  auto error = std::make_exception_ptr(StageError(
      detail::format("plumb.stage_error: {} worker {} produced a message of {} bytes, over the "
                  "max_message_size({}) of its output link; raise .max_message_size() on {}",
                  describe_stage(info.stage_index, info.stage_name), info.index, size, limit,
                  describe_stage(info.stage_index, info.stage_name)),
      info.stage_index, info.stage_name, info.index));
  context.attribute(info, error);
  std::rethrow_exception(error);
}

// Serializes `packet` into `slot` of `link` (a ShmLink, which gives the slot back when the
// packet does not fit); a packet larger than the slot is the stage's error.
template <class Link, class T>
void fill_or_throw(Link& link, std::uint32_t slot, const T& packet, StopFlag stop,
                   WorkerContext& context, const WorkerInfo& info) {
  if (const std::size_t size = link.fill(slot, packet, stop); size != 0) {
    throw_oversized(context, info, size, link.slot_bytes());
  }
}

// An ordered group's packet yielded before its worker took any input has no place in the order.
[[noreturn]] inline void throw_yield_before_input(WorkerContext& context, const WorkerInfo& info) {
  auto error = std::make_exception_ptr(StageError(
      detail::format("plumb.stage_error: {} worker {} yielded a packet before it took its first "
                  "input, so the packet has no place in the order of its input (ordered()); "
                  "read from the plumb::Stream before yielding, or remove .ordered()",
                  describe_stage(info.stage_index, info.stage_name), info.index),
      info.stage_index, info.stage_name, info.index));
  context.attribute(info, error);
  std::rethrow_exception(error);
}

// Drains `output` (the last generator of a worker's group, run as the worker `info`) into the
// link whose LinkCore is `core`; `fill(slot, packet)` writes a packet into a slot taken from
// `core` (giving the slot back if it throws). Returns at the end of the stream; throws what
// the generator throws, or Stopped.
//
// Unordered: a slot first, then the packet (the generator is not resumed before there is room:
// a producer never runs ahead of in_flight), then the slot is queued.
// Ordered (the worker has an OrderCursor): the packet first, then a slot for it (a group that
// already parked a packet waits for its turn before it takes a second slot: OrderGate's G2),
// then the gate queues it in turn.
template <class Core, class T, class Fill>
void drain_into(Core& core, Input<T>& output, WorkerContext& context, const WorkerInfo& info,
                Fill&& fill) {
  OrderCursor* const order = context.order();
  const StopFlag stop = context.stop();
  WaitTimer* const timer = context.tally().output_timer();
  for (;;) {
    std::uint32_t slot = Core::kEnd;
    if (order == nullptr) slot = core.acquire_slot(stop, timer);
    T* packet = nullptr;
    try {
      packet = output.next();
    } catch (...) {
      if (order == nullptr) core.return_slot(slot, stop);
      throw;
    }
    if (packet == nullptr) {
      if (order == nullptr) {
        core.return_slot(slot, stop);
      } else {
        order->finish(stop);
      }
      return;
    }
    if (order != nullptr) {
      if (order->has_group()) {
        order->gate().before_slot(order->group(), stop);
      } else if (order->ended()) {
        order->gate().before_trailing_slot(order->total(), stop);
      } else {
        throw_yield_before_input(context, info);
      }
      slot = core.acquire_slot(stop, timer);
    }
    fill(slot, *packet);
    if (order == nullptr) {
      core.enqueue(slot, stop);
    } else {
      order->publish(slot, stop);
    }
  }
}

}  // namespace plumb::detail
