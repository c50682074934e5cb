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
// A node's round robin goes by the gate's counter (round_robin()), so that packet i of the node
// goes to the (i mod n)-th node in the order of its input, as with one worker.
//
// Thread affinity: the worker's thread only (the gate itself is shared by the node's workers,
// in shared memory when they run in worker processes).

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/link/take.hpp>
#include <plumb/detail/order/order_gate.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/detail/worker/produce.hpp>
#include <plumb/worker.hpp>

#include <cstddef>
#include <cstdint>

namespace plumb::detail {

class GraphOrderCursor {
 public:
  explicit GraphOrderCursor(OrderGate& gate) noexcept : cursor_(gate, nothing_parked()) {}

  // What the worker's input calls around each take: the pipeline's cursor numbers the groups.
  [[nodiscard]] TakeHook* hook() noexcept { return &cursor_; }

  // Before the packet just yielded by the worker of `context` (node `info`) is sent: waits for
  // its group's turn (a packet yielded after the input ended: until every group passed). Throws
  // Stopped once the run stops, StageError for a packet yielded before the first input (it has
  // no place in the order; as in a pipeline).
  void before_send(WorkerContext& context, const WorkerInfo& info) {
    if (!cursor_.has_group() && !cursor_.ended()) throw_yield_before_input(context, info);
    cursor_.gate().wait_turn(cursor_.has_group() ? cursor_.group() : cursor_.total(), context.stop());
  }

  // Whether the packet just let through by before_send() belongs to a group (then this worker
  // has the turn until its next take), rather than trailing after the input's end.
  [[nodiscard]] bool in_group() const noexcept { return cursor_.has_group(); }

  // The node's round-robin counter, for a packet of a group only (in_group()): one per node,
  // advanced by the worker that has the turn, so packet i of the node goes to the (i mod n)-th
  // node as with one worker. Trailing packets (several workers at once) use their own.
  [[nodiscard]] std::size_t& round_robin() noexcept { return cursor_.gate().round_robin(); }

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
