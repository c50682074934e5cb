#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/spec.hpp: what a graph is written with: node names (compile-time strings),
// a node's inputs (from, join, join_by_key), its outputs (broadcast, route, round_robin), and
// node<"name">(stage, ...) itself.

#include <plumb/stage.hpp>

#include <cstddef>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace plumb {

/// A node's name, written as a string literal template argument: `plumb::node<"decode">(...)`.
/// Structural, so that names are part of the graph's type and every edge is checked at compile
/// time.
template <std::size_t N>
struct NodeName {
  // NOLINTNEXTLINE(google-explicit-constructor): written as a literal, node<"name">
  constexpr NodeName(const char (&literal)[N]) noexcept {
    for (std::size_t i = 0; i < N; ++i) text[i] = literal[i];
  }
  [[nodiscard]] constexpr std::string_view view() const noexcept { return {text, N - 1}; }
  char text[N]{};
};

/// Merge: the node reads the packets of every named node, interleaved as they come. All of them
/// yield the same T and the node takes `plumb::Stream<T>`. With one name, a plain edge.
template <NodeName... Names>
struct From {
  static_assert(sizeof...(Names) > 0, "plumb::from: name at least one node, as plumb::from<\"a\">");
};

/// Join by order: the node reads one packet from each named node, the i-th of each, as a
/// `std::tuple<A, B, ...>` in the order of the names (`plumb::Stream<std::tuple<A, B>>`).
///
/// `window(n)`: at most n packets wait for their partners (default: every packet the graph can
/// hold in flight); more is an error of the joining node, never a hang.
template <NodeName... Names>
struct Join {
  static_assert(sizeof...(Names) >= 2, "plumb::join: a join takes two or more nodes");
  [[nodiscard]] constexpr Join window(std::size_t packets) const noexcept {
    Join copy = *this;
    copy.window_ = packets;
    return copy;
  }
  std::optional<std::size_t> window_{};
};

/// Join by key: the node reads packets from each named node and joins the ones whose
/// `key(packet)` is equal, one from each input, as a `std::tuple<A, B, ...>` in the order of the
/// names. Keys arrive in any order; a key is joined once. `window(n)` as for plumb::join.
template <class Key, NodeName... Names>
struct JoinByKey {
  static_assert(sizeof...(Names) >= 2, "plumb::join_by_key: a join takes two or more nodes");
  [[nodiscard]] JoinByKey window(std::size_t packets) const {
    JoinByKey copy = *this;
    copy.window_ = packets;
    return copy;
  }
  Key key;
  std::optional<std::size_t> window_{};
};

/// Fan-out by a function: each packet goes to one of the named nodes, `pick(packet)` being its
/// index in the list (`std::size_t`). Every named node must take input from this node, and
/// every node that does must be named.
template <class Pick, NodeName... Names>
struct Route {
  static_assert(sizeof...(Names) >= 1, "plumb::route: name the nodes it routes to");
  Pick pick;
};

/// Fan-out in turn: packet i goes to the (i mod n)-th named node, per worker of the producing
/// node.
template <NodeName... Names>
struct RoundRobin {
  static_assert(sizeof...(Names) >= 2, "plumb::round_robin: name two or more nodes");
};

template <NodeName... Names>
inline constexpr From<Names...> from{};

template <NodeName... Names>
inline constexpr Join<Names...> join{};

template <NodeName... Names, class Key>
[[nodiscard]] JoinByKey<std::decay_t<Key>, Names...> join_by_key(Key&& key) {
  return JoinByKey<std::decay_t<Key>, Names...>{std::forward<Key>(key), std::nullopt};
}

template <NodeName... Names, class Pick>
[[nodiscard]] Route<std::decay_t<Pick>, Names...> route(Pick&& pick) {
  return Route<std::decay_t<Pick>, Names...>{std::forward<Pick>(pick)};
}

template <NodeName... Names>
inline constexpr RoundRobin<Names...> round_robin{};

namespace detail {

struct NoInputs {};
struct Broadcast {};

template <class>
struct IsFanIn : std::false_type {};
template <NodeName... Names>
struct IsFanIn<From<Names...>> : std::true_type {};
template <NodeName... Names>
struct IsFanIn<Join<Names...>> : std::true_type {};
template <class Key, NodeName... Names>
struct IsFanIn<JoinByKey<Key, Names...>> : std::true_type {};

template <class>
struct IsFanOut : std::false_type {};
template <class Pick, NodeName... Names>
struct IsFanOut<Route<Pick, Names...>> : std::true_type {};
template <NodeName... Names>
struct IsFanOut<RoundRobin<Names...>> : std::true_type {};

// The first argument of `Args` that satisfies Trait, else Default.
template <template <class> class Trait, class Default, class... Args>
struct FirstOf {
  using type = Default;
};
template <template <class> class Trait, class Default, class Arg, class... Args>
struct FirstOf<Trait, Default, Arg, Args...> {
  using type = std::conditional_t<Trait<Arg>::value, Arg,
                                  typename FirstOf<Trait, Default, Args...>::type>;
};

// The argument of type T among `args` (exactly one has it).
template <class T, class Arg, class... Args>
T select(Arg&& arg, Args&&... args) {
  if constexpr (std::is_same_v<std::decay_t<Arg>, T>) {
    return std::forward<Arg>(arg);
  } else {
    return select<T>(std::forward<Args>(args)...);
  }
}

template <class T, class... Args>
T fan_part(Args&&... args) {
  if constexpr ((std::is_same_v<std::decay_t<Args>, T> || ...)) {
    return select<T>(std::forward<Args>(args)...);
  } else {
    return T{};
  }
}

}  // namespace detail

/// One node of a plumb::Graph: a stage, its name, where its input comes from (nothing for a
/// source; plumb::from, plumb::join or plumb::join_by_key) and where its output goes (every node
/// that takes it, by default; plumb::route or plumb::round_robin).
template <NodeName Name, class StageSpec, class FanIn, class FanOut>
struct Node {
  static constexpr auto node_name = Name;
  static constexpr std::string_view name = Name.view();
  using stage_type = StageSpec;
  using fan_in_type = FanIn;
  using fan_out_type = FanOut;
  StageSpec stage;
  FanIn fan_in;
  FanOut fan_out;
};

/// A node named `Name` running `stage`, with its inputs and fan-out among `args` (in any order):
///
/// ```cpp
/// plumb::node<"words">(plumb::stage(split).workers(2), plumb::from<"lines">)
/// plumb::node<"pair">(plumb::stage(combine), plumb::join<"thumb", "label">)
/// ```
/// A node without .name() on its stage shows `Name` in errors and statistics.
template <NodeName Name, class StageSpec, class... Args>
[[nodiscard]] auto node(StageSpec stage, Args... args) {
  static_assert(detail::IsStage<StageSpec>::value,
                "plumb::node: the first argument must be a stage, written "
                "plumb::stage(callable, constants...)");
  static_assert(((detail::IsFanIn<Args>::value || detail::IsFanOut<Args>::value) && ...),
                "plumb::node: after the stage, pass its inputs (plumb::from, plumb::join, "
                "plumb::join_by_key) and at most one fan-out (plumb::route, plumb::round_robin)");
  static_assert((int{detail::IsFanIn<Args>::value} + ... + 0) <= 1,
                "plumb::node: give a node's inputs once: plumb::from<\"a\", \"b\"> merges several "
                "nodes, plumb::join<\"a\", \"b\"> joins them");
  static_assert((int{detail::IsFanOut<Args>::value} + ... + 0) <= 1,
                "plumb::node: give a node at most one fan-out (plumb::route or plumb::round_robin)");
  using FanIn = typename detail::FirstOf<detail::IsFanIn, detail::NoInputs, Args...>::type;
  using FanOut = typename detail::FirstOf<detail::IsFanOut, detail::Broadcast, Args...>::type;
  if (stage.options().name.empty()) stage.name(std::string(Name.view()));
  return Node<Name, StageSpec, FanIn, FanOut>{std::move(stage), detail::fan_part<FanIn>(args...),
                                              detail::fan_part<FanOut>(args...)};
}

}  // namespace plumb
