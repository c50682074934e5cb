#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/graph/rules.hpp: the compile-time rules of a plumb::Graph: names, edges (each
// one's types), sources, sinks, fan-outs; and the types the runner needs per node.
//
// Every broken rule is one static_assert starting "plumb::Graph:", whose instantiation context
// names the nodes involved (check_edge<Chars<'n', '1'>, Chars<'n', '3'>, Produced, Consumed>). The checks
// of a node are guarded by the ones before them, and a node whose rules failed yields Invalid,
// which silences the checks of the edges that leave it: one mistake, one error.

#include <plumb/detail/core/callable_traits.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/detail/graph/checks.hpp>
#include <plumb/detail/graph/spec.hpp>
#include <plumb/generator.hpp>
#include <plumb/stream.hpp>

#include <array>
#include <cstddef>
#include <functional>
#include <string_view>
#include <tuple>
#include <type_traits>

namespace plumb::detail {

enum class FanInKind { none, merge, join, join_by_key };
enum class FanOutKind { broadcast, route, round_robin };

// A node's name as a type, so that a compile error's context shows it on every compiler:
// check_edge<Chars<'n', '1'>, Chars<'n', '3'>, ...>.
template <char... C>
struct Chars {};

template <auto Name, class Indices = std::make_index_sequence<Name.view().size()>>
struct CharsOf;
template <auto Name, std::size_t... I>
struct CharsOf<Name, std::index_sequence<I...>> {
  using type = Chars<Name.text[I]...>;
};

// The names of a fan-in's or fan-out's nodes, as a tuple of Chars types.
template <class Spec>
struct NamesAsTypes {
  using type = std::tuple<>;
};
template <template <NodeName...> class Spec, NodeName... Names>
struct NamesAsTypes<Spec<Names...>> {
  using type = std::tuple<typename CharsOf<Names>::type...>;
};
template <template <class, NodeName...> class Spec, class Fn, NodeName... Names>
struct NamesAsTypes<Spec<Fn, Names...>> {
  using type = std::tuple<typename CharsOf<Names>::type...>;
};

template <class FanIn>
struct FanInInfo {
  static constexpr FanInKind kind = FanInKind::none;
  static constexpr std::array<std::string_view, 0> names{};
};
template <NodeName... Names>
struct FanInInfo<From<Names...>> {
  static constexpr FanInKind kind = FanInKind::merge;
  static constexpr std::array<std::string_view, sizeof...(Names)> names{Names.view()...};
};
template <NodeName... Names>
struct FanInInfo<Join<Names...>> {
  static constexpr FanInKind kind = FanInKind::join;
  static constexpr std::array<std::string_view, sizeof...(Names)> names{Names.view()...};
};
template <class Key, NodeName... Names>
struct FanInInfo<JoinByKey<Key, Names...>> {
  static constexpr FanInKind kind = FanInKind::join_by_key;
  static constexpr std::array<std::string_view, sizeof...(Names)> names{Names.view()...};
};

template <class FanOut>
struct FanOutInfo {
  static constexpr FanOutKind kind = FanOutKind::broadcast;
  static constexpr std::array<std::string_view, 0> names{};
};
template <class Pick, NodeName... Names>
struct FanOutInfo<Route<Pick, Names...>> {
  static constexpr FanOutKind kind = FanOutKind::route;
  static constexpr std::array<std::string_view, sizeof...(Names)> names{Names.view()...};
};
template <NodeName... Names>
struct FanOutInfo<RoundRobin<Names...>> {
  static constexpr FanOutKind kind = FanOutKind::round_robin;
  static constexpr std::array<std::string_view, sizeof...(Names)> names{Names.view()...};
};

// The names, inputs and outputs of a graph's nodes, as constexpr tables.
template <class... Nodes>
struct GraphTables {
  static constexpr std::size_t count = sizeof...(Nodes);
  static constexpr std::size_t kMissing = count;
  static constexpr std::array<std::string_view, count> names{Nodes::name...};

  static constexpr std::size_t index_of(std::string_view name) {
    for (std::size_t i = 0; i < count; ++i) {
      if (names[i] == name) return i;
    }
    return kMissing;
  }

  template <std::size_t K>
  using NodeAt = std::tuple_element_t<K, std::tuple<Nodes...>>;
  template <std::size_t K>
  using InInfo = FanInInfo<typename NodeAt<K>::fan_in_type>;
  template <std::size_t K>
  using OutInfo = FanOutInfo<typename NodeAt<K>::fan_out_type>;

  // How many input ports of node `Consumer` come from node `from`.
  template <std::size_t Consumer>
  static constexpr std::size_t ports_from(std::size_t from) {
    std::size_t count_from = 0;
    for (std::string_view name : InInfo<Consumer>::names) {
      if (name == names[from]) ++count_from;
    }
    return count_from;
  }

  // The number of edges that leave node `from` (one per input port that names it).
  template <std::size_t... I>
  static constexpr std::size_t successor_edges(std::size_t from, std::index_sequence<I...>) {
    return (ports_from<I>(from) + ... + 0);
  }
  static constexpr std::size_t successor_edges(std::size_t from) {
    return successor_edges(from, std::index_sequence_for<Nodes...>{});
  }
};

// What a node reads, from its fan-in, its inputs' checks, the element its callable declares
// (Invalid if it cannot be told), its first input's packets, and its inputs' packets as a tuple.
template <FanInKind Kind, bool InputsOk, class Declared, class First, class Joined>
struct ExpectedElement {
  using type = Invalid;
};
template <bool InputsOk, class Declared, class First, class Joined>
struct ExpectedElement<FanInKind::none, InputsOk, Declared, First, Joined> {
  using type = void;
};
template <class Declared, class First, class Joined>
struct ExpectedElement<FanInKind::merge, true, Declared, First, Joined> {
  using type = std::conditional_t<std::is_same_v<Declared, Invalid>, First, Declared>;
};
template <class Declared, class First, class Joined>
struct ExpectedElement<FanInKind::join, true, Declared, First, Joined> {
  using type = Joined;
};
template <class Declared, class First, class Joined>
struct ExpectedElement<FanInKind::join_by_key, true, Declared, First, Joined> {
  using type = Joined;
};

template <class T>
struct TupleArity {
  static constexpr std::size_t value = 0;
};
template <class... T>
struct TupleArity<std::tuple<T...>> {
  static constexpr std::size_t value = sizeof...(T);
};

// The key type of a join_by_key fan-in (void for the others).
template <class FanIn, class Element>
struct JoinKeyOf {
  using type = void;
};
template <class Key, NodeName... Names, class... T>
struct JoinKeyOf<JoinByKey<Key, Names...>, std::tuple<T...>> {
  using type = std::remove_cvref_t<std::invoke_result_t<const Key&, const typename Front<TypeList<T...>>::type&>>;
};

template <std::size_t K, class... Nodes>
struct NodeRules;

template <bool Ok, std::size_t Producer, class... Nodes>
struct ProducedOf {
  using type = Invalid;
};
template <std::size_t Producer, class... Nodes>
struct ProducedOf<true, Producer, Nodes...> {
  using type = typename NodeRules<Producer, Nodes...>::output;
};

// The rules of node K of the graph `Nodes...` (checked in the order of its inputs, its shape,
// its stage, its ends), and its types:
//   element: the T of the plumb::Stream<T> it reads (void for a source): its inputs' packet
//            type (a merge), or a join's std::tuple;
//   output:  what it yields (Invalid for a sink, or for a node whose rules failed);
//   result:  what a sink returns.
template <std::size_t K, class... Nodes>
struct NodeRules {
  using Tables = GraphTables<Nodes...>;
  using N = typename Tables::template NodeAt<K>;
  using Spec = typename N::stage_type;
  using In = typename Tables::template InInfo<K>;
  static constexpr std::size_t kPorts = In::names.size();
  static constexpr FanInKind kind = In::kind;
  static constexpr bool is_source = kind == FanInKind::none;
  static constexpr bool has_successors = Tables::successor_edges(K) > 0;
  // Names as types, for the checks' error contexts.
  using SelfName = typename CharsOf<N::node_name>::type;
  template <std::size_t P>
  using PortName = std::tuple_element_t<P, typename NamesAsTypes<typename N::fan_in_type>::type>;

  template <std::size_t P>
  static constexpr std::size_t producer = Tables::index_of(In::names[P]);
  template <std::size_t P>
  static constexpr bool port_ok =
      check_input_name<SelfName, PortName<P>, producer<P> != Tables::kMissing, (producer<P> < K)>();

  // What input P's node yields (Invalid if its name or its rules are broken).
  template <std::size_t P>
  using Produced = ProducedOf<port_ok<P>, producer<P>, Nodes...>;

  template <std::size_t... P>
  static auto produced_list(std::index_sequence<P...>) -> TypeList<typename Produced<P>::type...>;
  template <std::size_t... P>
  static auto produced_tuple(std::index_sequence<P...>) -> std::tuple<typename Produced<P>::type...>;
  using Ports = std::make_index_sequence<kPorts>;

  template <std::size_t... P>
  static constexpr bool all_produced(std::index_sequence<P...>) {
    return ((port_ok<P> && !std::is_same_v<typename Produced<P>::type, Invalid>) && ...);
  }
  // Every input names an earlier node whose rules held.
  static constexpr bool inputs_ok = all_produced(Ports{});

  using Declared = DeclaredStream<Spec>;
  static constexpr bool declares_stream = Declared::declares;

  // What the node reads, before its own checks.
  using Joined = decltype(produced_tuple(Ports{}));
  static constexpr std::size_t first_producer() {
    if constexpr (kPorts == 0) {
      return Tables::kMissing;
    } else {
      return producer<0>;
    }
  }
  using element = typename ExpectedElement<kind, inputs_ok, typename Declared::element,
                                           typename ProducedOf<inputs_ok && (kPorts > 0), first_producer(), Nodes...>::type,
                                           Joined>::type;

  // The checks of its inputs' types: each edge of a merge, a join's tuple, a join's key.
  template <std::size_t... P>
  static constexpr bool edges_ok(std::index_sequence<P...>) {
    if constexpr (kind == FanInKind::merge) {
      return (check_edge<PortName<P>, SelfName, typename Produced<P>::type, element>() &&
              ...);
    } else if constexpr (kind == FanInKind::join || kind == FanInKind::join_by_key) {
      using DeclaredElement = typename Declared::element;
      bool ok = true;
      if constexpr (!std::is_same_v<DeclaredElement, Invalid>) {
        ok = check_join<SelfName, Joined, DeclaredElement, kPorts, TupleArity<DeclaredElement>::value>();
      }
      if constexpr (kind == FanInKind::join_by_key) {
        using KeyFn = decltype(std::declval<typename N::fan_in_type>().key);
        ok = ok && check_join_key<SelfName, KeyFn, typename Produced<P>::type...>();
      }
      return ok;
    } else {
      return true;
    }
  }
  static constexpr bool compute_types_ok() {
    if constexpr (is_source) {
      return check_source_shape<SelfName, declares_stream>();
    } else if constexpr (inputs_ok) {
      return edges_ok(Ports{});
    } else {
      return false;
    }
  }
  static constexpr bool types_ok = compute_types_ok();

  // The stage's own rules (copyable, constants, Stream by value, a sink's result), once the
  // graph's rules for it hold: a source as a pipeline's first stage, any other node as a
  // pipeline's last stage (which may yield or be a sink).
  struct Failed {
    static constexpr bool ok = false;
    static constexpr bool returns_generator = false;
    using result = Invalid;
    using output = Invalid;
  };
  static constexpr std::size_t kStageIndex = is_source ? 0 : 1;
  using StageCheck =
      std::conditional_t<types_ok,
                         StageFacts<kStageIndex, 2, element, Spec, Ending::sink_or_generator>,
                         Failed>;
  static constexpr bool compute_stage_ok() {
    if constexpr (types_ok) {  // reports a broken rule, naming the node
      return check_stage<SelfName, kStageIndex, 2, element, Ending::sink_or_generator>(
          std::type_identity<Spec>{});
    } else {
      return false;
    }
  }
  static constexpr bool stage_ok = compute_stage_ok();

  // The node's own rules; its ends (check_ends) are the graph's (GraphRules).
  static constexpr bool ok = types_ok && stage_ok;
  using result = std::conditional_t<ok, typename StageCheck::result, Invalid>;
  using output = typename GeneratorElement<ok && StageCheck::returns_generator, result>::type;
  static constexpr bool is_sink = ok && !StageCheck::returns_generator;
  // It yields and no node reads it: the graph's output.
  static constexpr bool is_output = ok && StageCheck::returns_generator && !has_successors;
  using key_type = typename JoinKeyOf<typename N::fan_in_type, element>::type;
};

// The fan-out rules of node K: a route or round robin names exactly the nodes that take its
// input, each of which takes it once; a route's function picks an index.
template <std::size_t K, class... Nodes>
struct FanOutRules {
  using Tables = GraphTables<Nodes...>;
  using N = typename Tables::template NodeAt<K>;
  using Out = typename Tables::template OutInfo<K>;
  using SelfName = typename CharsOf<N::node_name>::type;
  template <std::size_t C>
  using NameAt = typename CharsOf<Tables::template NodeAt<C>::node_name>::type;
  template <std::size_t T>
  using TargetName = std::tuple_element_t<T, typename NamesAsTypes<typename N::fan_out_type>::type>;

  static constexpr bool named(std::string_view name) {
    for (std::string_view target : Out::names) {
      if (target == name) return true;
    }
    return false;
  }
  template <std::size_t... C>
  static constexpr bool consumers_named(std::index_sequence<C...>) {
    return (check_fan_out<SelfName, NameAt<C>,
                          Tables::template ports_from<C>(K) == 0 || named(Tables::names[C]), true>() &&
            ...);
  }
  template <std::size_t T>
  static constexpr bool target_takes() {
    constexpr std::size_t index = Tables::index_of(Out::names[T]);
    if constexpr (index == Tables::kMissing) {
      return false;
    } else {
      return Tables::template ports_from<index>(K) == 1 &&
             Tables::template InInfo<index>::kind == FanInKind::merge;
    }
  }
  template <std::size_t... T>
  static constexpr bool targets_take(std::index_sequence<T...>) {
    return (check_fan_out<SelfName, TargetName<T>, true, target_takes<T>()>() &&
            ...);
  }
  static constexpr bool compute_ok() {
    if constexpr (Out::kind == FanOutKind::broadcast) {
      return true;
    } else {
      const bool shape = consumers_named(std::index_sequence_for<Nodes...>{}) &&
                         targets_take(std::make_index_sequence<Out::names.size()>{});
      if constexpr (Out::kind == FanOutKind::route) {
        using Output = typename NodeRules<K, Nodes...>::output;
        if constexpr (!std::is_same_v<Output, Invalid>) {
          using Pick = decltype(std::declval<typename N::fan_out_type>().pick);
          return check_route_pick<SelfName, Pick, Output>() && shape;
        }
      }
      return shape;
    }
  }
  static constexpr bool ok = compute_ok();
};

// Every rule of the graph `Nodes...`.
template <class... Nodes>
struct GraphRules {
  using Tables = GraphTables<Nodes...>;
  static constexpr std::size_t kCount = sizeof...(Nodes);

  static constexpr std::size_t first_duplicate() {
    for (std::size_t i = 0; i < kCount; ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (Tables::names[i] == Tables::names[j]) return i;
      }
    }
    return kCount;
  }
  template <std::size_t K>
  using NameAt = typename CharsOf<Tables::template NodeAt<K>::node_name>::type;
  static constexpr bool compute_names_ok() {
    constexpr std::size_t duplicate = first_duplicate();
    if constexpr (duplicate == kCount) {
      return true;
    } else {
      return check_unique_name<NameAt<duplicate>, false>();
    }
  }
  static constexpr bool names_ok = compute_names_ok();

  // The nodes before node `Before` that yield and that no node reads (at most one in all: the
  // output).
  template <std::size_t Before, std::size_t... K>
  static constexpr std::size_t outputs_before(std::index_sequence<K...>) {
    return (((K < Before && NodeRules<K, Nodes...>::is_output) ? std::size_t{1} : std::size_t{0}) +
            ... + 0);
  }
  template <std::size_t K>
  static constexpr bool ends_ok() {
    using Rules = NodeRules<K, Nodes...>;
    if constexpr (Rules::ok) {
      return check_ends<typename Rules::SelfName, Rules::has_successors, !Rules::is_sink,
                        outputs_before<K>(std::index_sequence_for<Nodes...>{})>();
    } else {
      return false;
    }
  }
  template <std::size_t... K>
  static constexpr bool nodes_ok(std::index_sequence<K...>) {
    return ((NodeRules<K, Nodes...>::ok && FanOutRules<K, Nodes...>::ok && ends_ok<K>()) && ...);
  }

  // The graph's output: the node whose packets stream() gives (kCount if none).
  template <std::size_t... K>
  static constexpr std::size_t output_node(std::index_sequence<K...>) {
    std::size_t found = kCount;
    ((NodeRules<K, Nodes...>::is_output ? (void)(found = K) : (void)0), ...);
    return found;
  }
  template <std::size_t... K>
  static constexpr std::size_t value_sinks(std::index_sequence<K...>) {
    return ((NodeRules<K, Nodes...>::is_sink &&
                     !std::is_void_v<typename NodeRules<K, Nodes...>::result>
                 ? std::size_t{1}
                 : std::size_t{0}) +
            ... + 0);
  }
  static constexpr bool compute_ok() {
    if constexpr (!names_ok) {
      return false;
    } else if constexpr (!nodes_ok(std::index_sequence_for<Nodes...>{})) {
      return false;
    } else {
      return check_results<value_sinks(std::index_sequence_for<Nodes...>{})>();
    }
  }
  static constexpr bool ok = compute_ok();

  // The index of the sink whose value run() returns (kCount if none returns one).
  template <std::size_t... K>
  static constexpr std::size_t value_sink(std::index_sequence<K...>) {
    std::size_t found = kCount;
    ((NodeRules<K, Nodes...>::is_sink && !std::is_void_v<typename NodeRules<K, Nodes...>::result>
          ? (void)(found = K)
          : (void)0),
     ...);
    return found;
  }
};

}  // namespace plumb::detail
