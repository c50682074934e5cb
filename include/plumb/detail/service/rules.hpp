#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/service/rules.hpp: the compile-time rules of a Service's stages. The rules every
// stage follows are the Pipeline's (check_stage); a Service adds its own four.

#include <plumb/detail/core/callable_traits.hpp>
#include <plumb/detail/core/type_rules.hpp>
#include <plumb/generator.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>
#include <plumb/view.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace plumb::detail {

// The types of a Service stage, from what its callable declares: the T of its Stream<T>, and
// the U of the Generator<U> it returns (Invalid where it declares no such thing).
template <class StageSpec>
struct ServiceTypes {
  using input = Invalid;
  using output = Invalid;
  static constexpr bool shape_ok = false;
};
template <class F, class... Constants>
struct ServiceTypes<Stage<F, Constants...>> {
  using Declared = Signature<F>;
  static constexpr bool takes_stream = DeclaredStream<Stage<F, Constants...>>::declares;
  using input = typename DeclaredStream<Stage<F, Constants...>>::element;
  static constexpr bool shape_ok = takes_stream && !IsView<input>::value;
  static constexpr bool invocable = [] {
    if constexpr (shape_ok) {
      return std::is_invocable_v<F&, Stream<input>, Constants&...>;
    } else {
      return false;
    }
  }();
  using result = typename StageResult<false, shape_ok && invocable, F, input, Constants...>::type;
  using output = typename GeneratorElement<IsGenerator<result>::value, result>::type;
};

// Stage `Index` of a Service (its errors count the Service's submit stage as stage 0, so the
// user's first stage is 1), whose input is what the stage before it yields (`In`; void for the
// first): what its rules find. The Service's own rules come first; then the Pipeline's rules
// check the stage as the last of a chain that may yield (so that a stage returning void is left
// to the Service's "no sink" rule, and the link from the stage before is the Pipeline's).
// check_service_stage() reports.
template <std::size_t Index, class In, class StageSpec>
struct ServiceStage {
  static constexpr bool ok = false;
  using output = Invalid;
};

template <std::size_t Index, class In, class F, class... Constants>
struct ServiceStage<Index, In, Stage<F, Constants...>> {
  using Types = ServiceTypes<Stage<F, Constants...>>;
  struct Unchecked {
    static constexpr bool checked = false;
    static constexpr bool ok = false;
    static constexpr bool returns_generator = false;
    using result = Invalid;
  };
  using Upstream = std::conditional_t<std::is_void_v<In>, typename Types::input, In>;
  using Facts = std::conditional_t<Types::shape_ok,
                                   StageFacts<Index, Index + 1, Upstream, Stage<F, Constants...>,
                                              Ending::sink_or_generator>,
                                   Unchecked>;
  static constexpr bool ok = Facts::ok && Facts::returns_generator;
  using output = std::conditional_t<ok, typename Types::output, Invalid>;
};

// The Service's own rules, as conditions that name the stage (see core/type_rules.hpp).
template <class Where, class Callable>
inline constexpr bool service_stage_has_one_signature = Signature<Callable>::known;
template <class Where, class Callable>
inline constexpr bool service_stage_takes_a_stream = kDeclaresStream<Callable>;
template <class Where, class Element>
inline constexpr bool service_stage_reads_values = !IsView<Element>::value;
template <class Where, class Result>
inline constexpr bool service_stage_returns_generator = IsGenerator<Result>::value;

// Reports the first broken rule of Service stage `Index` as one static_assert, and returns
// whether every rule holds.
template <std::size_t Index, class In, class F, class... Constants>
constexpr bool check_service_stage(std::type_identity<Stage<F, Constants...>>) {
  using Where = at_stage<int(Index)>;
  using Checked = ServiceStage<Index, In, Stage<F, Constants...>>;
  using Types = typename Checked::Types;
  static_assert(service_stage_has_one_signature<Where, F>,
                "plumb::Service: a stage's callable must have exactly one call signature (not a "
                "generic lambda or an overload set), Generator<Out>(plumb::Stream<In>, "
                "constants...), so that the Service knows the type it takes (the failed "
                "requirement's first argument names the stage: at_stage<N>, 1 for the first)");
  if constexpr (Types::Declared::known) {
    static_assert(service_stage_takes_a_stream<Where, F>,
                  "plumb::Service: every stage takes a plumb::Stream<In> as its first parameter; "
                  "a Service has no source stage (submit() feeds its first stage) (the failed "
                  "requirement's first argument names the stage: at_stage<N>, 1 for the first)");
  }
  if constexpr (Types::takes_stream) {
    static_assert(service_stage_reads_values<Where, typename Types::input>,
                  "plumb::Service: a Service's stages take plumb::Stream<T>, not "
                  "plumb::Stream<plumb::View<T>>: every item is answered by value (the failed "
                  "requirement's first argument names the stage: at_stage<N>, 1 for the first)");
  }
  if constexpr (Types::shape_ok) {
    check_stage<Where, Index, Index + 1, typename Checked::Upstream, Ending::sink_or_generator>(
        std::type_identity<Stage<F, Constants...>>{});
    if constexpr (Checked::Facts::checked) {
      static_assert(service_stage_returns_generator<Where, typename Checked::Facts::result>,
                    "plumb::Service: every stage returns plumb::Generator<Out> and yields one "
                    "output per input; a Service has no sink stage (each item's future receives "
                    "what the last stage yields) (the failed requirement's first argument names "
                    "the stage: at_stage<N>, 1 for the first)");
    }
  }
  return Checked::ok;
}
template <std::size_t Index, class In, class NotAStage>
constexpr bool check_service_stage(std::type_identity<NotAStage>) {
  static_assert(IsStage<NotAStage>::value,
                "plumb::Service: every argument must be a stage, written "
                "plumb::stage(callable, constants...)");
  return false;
}

// Stage I of Stages... with its input chained from the stage before.
template <std::size_t I, class... Stages>
struct ServiceChain {
  using type = ServiceStage<I + 1, typename ServiceChain<I - 1, Stages...>::type::output,
                            std::tuple_element_t<I, std::tuple<Stages...>>>;
};
template <class... Stages>
struct ServiceChain<0, Stages...> {
  using type = ServiceStage<1, void, std::tuple_element_t<0, std::tuple<Stages...>>>;
};

// What Service stage I (from 0 here) reads: what the stage before it yields, void for the first.
template <std::size_t I, class... Stages>
struct ServiceInput {
  using type = typename ServiceChain<I - 1, Stages...>::type::output;
};
template <class... Stages>
struct ServiceInput<0, Stages...> {
  using type = void;
};

template <class... Stages>
struct ServiceRules {
  static constexpr std::size_t count = sizeof...(Stages);
  // Checks every stage (so each broken rule reports, the rules that depend on a broken one
  // excepted).
  template <std::size_t... I>
  static constexpr bool all_ok(std::index_sequence<I...>) {
    return all_hold({check_service_stage<I + 1, typename ServiceInput<I, Stages...>::type>(
        std::type_identity<Stages>{})...});
  }
  static constexpr bool ok = all_ok(std::index_sequence_for<Stages...>{});
  using input = typename ServiceTypes<std::tuple_element_t<0, std::tuple<Stages...>>>::input;
  using output = typename ServiceChain<count - 1, Stages...>::type::output;
};

}  // namespace plumb::detail
