#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/service/rules.hpp: the compile-time rules of a Service's stages. The rules every
// stage follows are the Pipeline's (CheckStage); a Service adds its own four.

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
// first). The Service's own rules come first; then the Pipeline's rules check the stage as the
// last of a chain that may yield (so that a stage returning void is left to the Service's
// "no sink" rule, and the link from the stage before is the Pipeline's CheckLink).
template <std::size_t Index, class In, class StageSpec>
struct ServiceStage {
  static_assert(IsStage<StageSpec>::value,
                "plumb::Service: every argument must be a stage, written "
                "plumb::stage(callable, constants...)");
  static constexpr bool ok = false;
  using output = Invalid;
};

template <std::size_t Index, class In, class F, class... Constants>
struct ServiceStage<Index, In, Stage<F, Constants...>> {
  using Types = ServiceTypes<Stage<F, Constants...>>;
  static_assert(Types::Declared::known,
                "plumb::Service: a stage's callable must have exactly one call signature (not a "
                "generic lambda or an overload set), Generator<Out>(plumb::Stream<In>, "
                "constants...), so that the Service knows the type it takes");
  static_assert(!Types::Declared::known || Types::takes_stream,
                "plumb::Service: every stage takes a plumb::Stream<In> as its first parameter; "
                "a Service has no source stage (submit() feeds its first stage)");
  static_assert(!Types::takes_stream || !IsView<typename Types::input>::value,
                "plumb::Service: a Service's stages take plumb::Stream<T>, not "
                "plumb::Stream<plumb::View<T>>: every item is answered by value");

  struct Unchecked {
    static constexpr bool checked = false;
    static constexpr bool ok = false;
    static constexpr bool returns_generator = false;
  };
  using Upstream = std::conditional_t<std::is_void_v<In>, typename Types::input, In>;
  using Rules = std::conditional_t<Types::shape_ok,
                                   CheckStage<Index, Index + 1, Upstream, Stage<F, Constants...>,
                                              Ending::sink_or_generator>,
                                   Unchecked>;
  static_assert(!Rules::checked || Rules::returns_generator,
                "plumb::Service: every stage returns plumb::Generator<Out> and yields one output "
                "per input; a Service has no sink stage (each item's future receives what the "
                "last stage yields)");
  static constexpr bool ok = Rules::ok && Rules::returns_generator;
  using output = std::conditional_t<ok, typename Types::output, Invalid>;
};

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

template <class... Stages>
struct ServiceRules {
  static constexpr std::size_t count = sizeof...(Stages);
  template <std::size_t... I>
  static constexpr bool all_ok(std::index_sequence<I...>) {
    return (ServiceChain<I, Stages...>::type::ok && ...);
  }
  static constexpr bool ok = all_ok(std::index_sequence_for<Stages...>{});
  using input = typename ServiceTypes<std::tuple_element_t<0, std::tuple<Stages...>>>::input;
  using output = typename ServiceChain<count - 1, Stages...>::type::output;
};

}  // namespace plumb::detail
