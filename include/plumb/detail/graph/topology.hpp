#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/topology.hpp: a checked graph's shape as the runners use it: per node, what
// it reads and yields, what its one input link holds, the edges that leave it, and how a packet
// picks its edges (broadcast, route, round robin).

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/core/with_index.hpp>
#include <plumb/detail/graph/rules.hpp>
#include <plumb/error.hpp>
#include <plumb/worker.hpp>

#include <array>
#include <span>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace plumb::detail {

// An edge: input `port` of node `consumer`.
struct GraphEdge {
  std::size_t consumer = 0;
  std::size_t port = 0;
};

// What a node's input link holds: the packets themselves (a merge), or, for a join, a
// std::variant whose index is the input port (one link for all inputs, so that the join reads
// whatever comes first and never waits on one input while another fills: join.hpp).
template <FanInKind Kind, class Element>
struct InboxOf {
  using type = Element;
};
template <class... T>
struct InboxOf<FanInKind::join, std::tuple<T...>> {
  using type = std::variant<T...>;
};
template <class... T>
struct InboxOf<FanInKind::join_by_key, std::tuple<T...>> {
  using type = std::variant<T...>;
};
template <class Element>
struct InboxOf<FanInKind::none, Element> {
  using type = std::monostate;  // a source has no input link
};

template <class... Nodes>
struct Topology {
  using Tables = GraphTables<Nodes...>;
  static constexpr std::size_t kCount = sizeof...(Nodes);
  template <std::size_t K>
  using Rules = NodeRules<K, Nodes...>;
  template <std::size_t K>
  using Element = typename Rules<K>::element;
  template <std::size_t K>
  using Output = typename Rules<K>::output;
  template <std::size_t K>
  using Inbox = typename InboxOf<Rules<K>::kind, Element<K>>::type;
  template <std::size_t K>
  using Spec = typename Rules<K>::Spec;
  template <std::size_t K>
  using NodeAt = typename Tables::template NodeAt<K>;

  template <std::size_t K>
  static constexpr FanInKind kind = Rules<K>::kind;
  template <std::size_t K>
  static constexpr bool is_source = Rules<K>::is_source;
  template <std::size_t K>
  static constexpr bool is_sink = Rules<K>::is_sink;
  template <std::size_t K>
  static constexpr bool is_join = kind<K> == FanInKind::join || kind<K> == FanInKind::join_by_key;

  // The edges that leave node K, by consumer, then port.
  template <std::size_t K>
  static constexpr auto out_edges() {
    std::array<GraphEdge, Tables::successor_edges(K)> edges{};
    std::size_t at = 0;
    [&]<std::size_t... C>(std::index_sequence<C...>) {
      (
          [&] {
            constexpr auto& names = Tables::template InInfo<C>::names;
            for (std::size_t port = 0; port < names.size(); ++port) {
              if (names[port] == Tables::names[K]) edges[at++] = GraphEdge{C, port};
            }
          }(),
          ...);
    }(std::index_sequence_for<Nodes...>{});
    return edges;
  }
  template <std::size_t K>
  static constexpr auto kOutEdges = out_edges<K>();

  // For a route or round robin: the edge of each name in its list.
  template <std::size_t K>
  static constexpr auto fan_out_edges() {
    constexpr auto& names = Tables::template OutInfo<K>::names;
    std::array<std::size_t, names.size()> edges{};
    for (std::size_t i = 0; i < names.size(); ++i) {
      for (std::size_t e = 0; e < kOutEdges<K>.size(); ++e) {
        if (Tables::names[kOutEdges<K>[e].consumer] == names[i]) edges[i] = e;
      }
    }
    return edges;
  }

  // The port names of node K's inputs (for a join's errors).
  template <std::size_t K>
  static constexpr std::span<const std::string_view> input_names() noexcept {
    return Tables::template InInfo<K>::names;
  }

  // The value input `Port` of node C holds for `value`.
  template <std::size_t C, std::size_t Port, class Value>
  static Inbox<C> inbox_value(Value&& value) {
    if constexpr (is_join<C>) {
      return Inbox<C>(std::in_place_index<Port>, std::forward<Value>(value));
    } else {
      return Inbox<C>(std::forward<Value>(value));
    }
  }
};

// Sends one packet of node K along its edges, by its fan-out: each edge gets a copy (the last
// one the packet itself), or the one edge a route picks, or the next edge in turn.
// `deliver.template to<E>(value)` hands a value (copied from a const one, moved from an rvalue)
// to edge E, kOutEdges<K>[E]; `turn` is this worker's round-robin counter. Throws StageError
// for a route's index out of range (charged to node K by its worker).
template <class Topo, std::size_t K, class Deliver, class Value>
void fan_out(const typename Topo::template NodeAt<K>& node, Deliver& deliver, Value& value,
             std::size_t& turn, const WorkerInfo& info) {
  constexpr auto& edges = Topo::template kOutEdges<K>;
  constexpr std::size_t kEdges = edges.size();
  using Info = FanOutInfo<typename Topo::template NodeAt<K>::fan_out_type>;
  if constexpr (Info::kind == FanOutKind::broadcast) {
    [&]<std::size_t... E>(std::index_sequence<E...>) {
      (
          [&] {
            if constexpr (E + 1 < kEdges) {
              deliver.template to<E>(std::as_const(value));
            } else {
              deliver.template to<E>(std::move(value));
            }
          }(),
          ...);
    }(std::make_index_sequence<kEdges>{});
  } else {
    static constexpr auto kEdgeOf = Topo::template fan_out_edges<K>();
    std::size_t pick = 0;
    if constexpr (Info::kind == FanOutKind::route) {
      pick = static_cast<std::size_t>(node.fan_out.pick(std::as_const(value)));
      if (pick >= kEdgeOf.size()) {
        throw StageError(
            detail::format("plumb.stage_error: {} worker {}: its route picked {}, but it names {} "
                           "nodes; return an index from 0 to {}",
                           describe_stage(info.stage_index, info.stage_name), info.index, pick,
                           kEdgeOf.size(), kEdgeOf.size() - 1),
            info.stage_index, info.stage_name, info.index);
      }
    } else {
      pick = turn++ % kEdgeOf.size();
    }
    with_index<kEdges>(kEdgeOf[pick], [&](auto edge) { deliver.template to<decltype(edge)::value>(std::move(value)); });
  }
}

}  // namespace plumb::detail
