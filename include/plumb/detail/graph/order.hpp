#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/order.hpp: GraphOrderCursor, one worker's place in a graph node with several
// workers and .ordered(): the node's packets leave, on every edge, in the order of its input.
//
// The pipeline's OrderGate numbers the node's inputs (its input link's ready-ring positions:
// group g is everything a worker yields between taking input g and its next take) and moves a
// turn through the groups in order, with tickets bounding the groups taken and not yet passed
// (G1, order_gate.hpp). A pipeline's worker parks one packet in its output link's slot while it
// waits for its turn (G2); a graph node sends to several links (broadcast, route), so here a
// worker waits for its group's turn *before* it sends, holding its packet in its own memory
// and no slot of any link (graph.md: a sender holds no slot while it waits), then sends it along
// its edges as any node does. Nothing is ever parked.
//
// Why it cannot deadlock: the worker of the turn's group never waits for the turn, and it
// completes the group as soon as it asks for its next input (before it waits for a ticket or a
// packet), so the turn moves on once that worker's sends are done: those wait only downstream
// (W2 of graph.md, which ends). A worker waiting for its turn holds one packet of its input
// link (its last input), as a worker waiting to send does. The window (tickets) is the node's
// in_flight, at least its workers.
//
// Thread affinity: the worker's thread only (the gate itself is shared by the node's workers,
// in shared memory when they run in worker processes).

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/link/take.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/sync/stop_flag.hpp>

#include <cstdint>

namespace plumb::detail {

class GraphOrderCursor {
 public:
  explicit GraphOrderCursor(OrderGate& gate) noexcept : cursor_(gate, nothing_parked()) {}

  // What the worker's input calls around each take: the pipeline's cursor numbers the groups.
  [[nodiscard]] TakeHook* hook() noexcept { return &cursor_; }

  // Before the packet just yielded is sent: waits for its group's turn (a packet yielded after
  // the input ended: until every group passed; one yielded before the first input: at once).
  // Throws Stopped once the run stops.
  void before_send(StopFlag stop) {
    cursor_.gate().wait_turn(cursor_.has_group() ? cursor_.group() : cursor_.total(), stop);
  }

  // The node's code returned: its last group is complete.
  void finish(StopFlag stop) noexcept { cursor_.finish(stop); }

 private:
  // The output the gate would queue parked slots into: a graph node parks none.
  static OutputRef nothing_parked() noexcept {
    return OutputRef{nullptr, [](void*, std::uint32_t, StopFlag) noexcept {
                       PLUMB_ASSERT(false, "plumb: a graph node's order gate held a parked slot");
                     }};
  }

  OrderCursor cursor_;
};

}  // namespace plumb::detail
