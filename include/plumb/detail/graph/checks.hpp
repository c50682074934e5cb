#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/checks.hpp: the compile-time checks of a plumb::Graph, one constexpr function
// per rule, each a static_assert starting "plumb::Graph:". rules.hpp decides which to call for
// which node; the nodes' names come in as types (Chars<'n', '3'>), so the error's context
// names them.

#include <plumb/detail/core/callable_traits.hpp>
#include <plumb/detail/core/type_rules.hpp>

#include <concepts>
#include <cstddef>
#include <functional>
#include <type_traits>

namespace plumb::detail {

// --- The checks, one function per rule: its template arguments are the error's context --------
//
// Functions rather than class templates: a failed static_assert then leaves the function's
// value usable, so that Clang reports the rule once instead of a cascade of "not a constant
// expression" errors in everything that depends on it.

template <class Node, class Input, bool Known, bool Earlier>
constexpr bool check_input_name() {
  static_assert(Known,
                "plumb::Graph: a node takes input from a name that is not a node of the graph; "
                "check the names in its plumb::from / plumb::join (the error's context shows check_input_name<node, "
                "input name>)");
  static_assert(!Known || Earlier,
                "plumb::Graph: a node takes input from a node listed after it (or from itself); "
                "list every node after the nodes it takes input from, which also keeps the graph "
                "free of cycles (the error's context shows check_input_name<node, input name>)");
  return Known && Earlier;
}

template <class From, class To, class Produced, class Consumed>
constexpr bool check_edge() {
  static_assert(std::is_same_v<Produced, Consumed>,
                "plumb::Graph: an edge's types differ: the input node yields Produced (its "
                "plumb::Generator<Produced>), so the node it feeds must take "
                "plumb::Stream<Produced> (the error's context shows check_edge<from, to, Produced, Consumed>)");
  return std::is_same_v<Produced, Consumed>;
}

template <class Node, class Expected, class Declared, std::size_t Inputs, std::size_t Arity>
constexpr bool check_join() {
  static_assert(Inputs == Arity,
                "plumb::Graph: a join of Inputs nodes must feed a node that takes "
                "plumb::Stream<std::tuple<...>> with one element per joined node, in the order "
                "they are named (the error's context shows check_join<node, Expected, Declared, Inputs, Arity>)");
  static_assert(Inputs != Arity || std::is_same_v<Expected, Declared>,
                "plumb::Graph: a join's node must take plumb::Stream<std::tuple<A, B, ...>> of "
                "what the joined nodes yield, in the order they are named (the error's context shows check_join<node, "
                "Expected, Declared, ...>)");
  return Inputs == Arity && std::is_same_v<Expected, Declared>;
}

// The key types join_by_key's function gives each input's packets (Invalid where it cannot be
// called).
template <class Key, class... Inputs>
struct JoinKeyTypes {
  static constexpr bool invocable = (std::is_invocable_v<const Key&, const Inputs&> && ...);
  template <bool Invocable, class = void>
  struct Keys {
    static constexpr bool same = false;
    using type = Invalid;
  };
  template <class Unused>
  struct Keys<true, Unused> {
    using type = std::remove_cvref_t<std::invoke_result_t<const Key&, const typename Front<TypeList<Inputs...>>::type&>>;
    static constexpr bool same =
        (std::is_same_v<std::remove_cvref_t<std::invoke_result_t<const Key&, const Inputs&>>, type> && ...);
  };
  static constexpr bool same = Keys<invocable>::same;
  using type = typename Keys<invocable>::type;
  static constexpr bool compute_hashable() {
    if constexpr (std::is_same_v<type, Invalid>) {
      return true;
    } else {
      return std::is_default_constructible_v<std::hash<type>> && std::equality_comparable<type>;
    }
  }
  static constexpr bool hashable = compute_hashable();
};

template <class Node, class Key, class... Inputs>
constexpr bool check_join_key() {
  using Keys = JoinKeyTypes<Key, Inputs...>;
  static_assert(Keys::invocable,
                "plumb::Graph: join_by_key's key function must be callable with a const "
                "reference to what each joined node yields (the error's context shows check_join_key<node, Key, "
                "Inputs...>)");
  static_assert(!Keys::invocable || Keys::same,
                "plumb::Graph: join_by_key's key function must return the same key type for "
                "every joined node (the error's context shows check_join_key<node, Key, Inputs...>)");
  static_assert(Keys::hashable,
                "plumb::Graph: join_by_key's key must be hashable (std::hash) and comparable "
                "with == (the error's context shows check_join_key<node, Key, Inputs...>)");
  return Keys::invocable && Keys::same && Keys::hashable;
}

template <class Node, bool DeclaresStream>
constexpr bool check_source_shape() {
  static_assert(!DeclaresStream,
                "plumb::Graph: a node without inputs is a source, callable as "
                "plumb::Generator<T>(constants...) without a plumb::Stream parameter; give the "
                "node its inputs with plumb::from<\"name\"> or plumb::join<\"a\", \"b\"> (the "
                "error's context shows check_source_shape<node>)");
  return !DeclaresStream;
}

// `OutputsBefore`: the nodes listed before this one that yield and that no node reads (at most
// one such node in all: the graph's output, whose packets stream() gives the caller). The
// second such node reports, once, naming itself.
template <class Node, bool HasSuccessors, bool Yields, std::size_t OutputsBefore>
constexpr bool check_ends() {
  static_assert(!HasSuccessors || Yields,
                "plumb::Graph: a node that other nodes take input from must return "
                "plumb::Generator<T> (the error's context shows check_ends<node>)");
  static_assert(HasSuccessors || !Yields || OutputsBefore != 1,
                "plumb::Graph: several nodes yield (return plumb::Generator<T>) but no node takes "
                "input from them; a graph has at most one such node, its output, which "
                "graph.stream() reads: add a node with plumb::from<\"this node\">, or make it a "
                "sink (the error's context shows check_ends<node>, the second such node)");
  return (!HasSuccessors || Yields) && (HasSuccessors || !Yields || OutputsBefore == 0);
}

template <class Node, class Target, bool Named, bool Takes>
constexpr bool check_fan_out() {
  static_assert(Named,
                "plumb::Graph: a node with plumb::route or plumb::round_robin sends to a node "
                "that its list does not name; name every node that takes its input, in "
                "route<...> / round_robin<...> (the error's context shows check_fan_out<node, target>)");
  static_assert(!Named || Takes,
                "plumb::Graph: plumb::route / plumb::round_robin names a node that does not "
                "take input from this node once with plumb::from (the error's context shows check_fan_out<node, "
                "target>)");
  return Named && Takes;
}

template <class Node, class Pick, class Out>
constexpr bool check_route_pick() {
  constexpr bool ok = std::is_invocable_r_v<std::size_t, const Pick&, const Out&>;
  static_assert(ok,
                "plumb::Graph: plumb::route's function must be callable with a const reference "
                "to what the node yields and return the index (std::size_t) of the node to send "
                "it to, in the order route<...> names them (the error's context shows check_route_pick<node, Pick, Out>)");
  return ok;
}

template <class Node, bool Unique>
constexpr bool check_unique_name() {
  static_assert(Unique,
                "plumb::Graph: two nodes have the same name; give every node its own name (the "
                "error's context shows check_unique_name<name>)");
  return Unique;
}

template <std::size_t ValueSinks>
constexpr bool check_results() {
  static_assert(ValueSinks <= 1,
                "plumb::Graph: run() returns one value, but several sinks return one; let at most "
                "one sink return a value, and the others return void");
  return ValueSinks <= 1;
}

}  // namespace plumb::detail
