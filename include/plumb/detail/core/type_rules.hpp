#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/type_rules.hpp: the compile-time rules that adjacent stages must satisfy.

#include <plumb/detail/core/callable_traits.hpp>
#include <plumb/generator.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>
#include <plumb/view.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>

namespace plumb::detail {

// The output of a stage whose rules failed: the rules of the next stage that depend on it are
// skipped, so one mistake gives one error instead of a cascade.
struct Invalid {};

struct Pass {
  static constexpr bool ok = true;
};

// Checks the link into stage `Index`: its `Stream<Consumed>` parameter against the
// `Generator<Produced>` of the stage before it. The template arguments are the error's context
// ("In instantiation of 'struct plumb::detail::CheckLink<1, std::string, int>'").
template <class Produced, class Consumed>
inline constexpr bool kLinkMatches =
    std::is_same_v<Produced, Consumed> || std::is_same_v<View<Produced>, Consumed>;

template <std::size_t Index, class Produced, class Consumed>
struct CheckLink {
  static_assert(kLinkMatches<Produced, Consumed>,
                "plumb::Pipeline: a stage's input must match the previous stage's output; the "
                "previous stage returns Generator<T>, so this stage must take Stream<T> (or "
                "Stream<plumb::View<T>> to read in place) with the same T");
  static constexpr bool ok = kLinkMatches<Produced, Consumed>;
};

// The type a stage's callable returns; only formed once the call is known to be valid.
template <bool Source, bool Valid, class F, class In, class... Constants>
struct StageResult {
  using type = Invalid;
};
template <class F, class In, class... Constants>
struct StageResult<true, true, F, In, Constants...> {
  using type = std::invoke_result_t<F&, Constants&...>;
};
template <class F, class In, class... Constants>
struct StageResult<false, true, F, In, Constants...> {
  using type = std::invoke_result_t<F&, Stream<In>, Constants&...>;
};

// What a Generator<T> yields (T), only formed for a stage that passed its rules.
template <bool Valid, class Result>
struct GeneratorElement {
  using type = Invalid;
};
template <class Result>
struct GeneratorElement<true, Result> {
  using type = typename IsGenerator<Result>::element;
};

// What a stage's callable declares as its first parameter: whether it is a plumb::Stream
// (`declares`), and its T (`element`; Invalid where it cannot be told, for a generic callable,
// or where it declares no Stream). For the rules that look at a stage on its own (Service,
// Graph).
template <class StageSpec>
struct DeclaredStream {
  static constexpr bool declares = false;
  using element = Invalid;
};
template <class F, class... Constants>
struct DeclaredStream<Stage<F, Constants...>> {
  using Declared = Signature<F>;
  using FirstParam = typename Front<typename Declared::params>::type;
  static constexpr bool declares = Declared::known && Declared::params::size > 0 &&
                                   IsStream<std::remove_cvref_t<FirstParam>>::value;
  template <class Param, bool Declares = declares>
  struct Element {
    using type = Invalid;
  };
  template <class Param>
  struct Element<Param, true> {
    using type = typename IsStream<std::remove_cvref_t<Param>>::element;
  };
  using element = typename Element<FirstParam>::type;
};

template <class Param>
inline constexpr bool kStreamByValue =
    !std::is_lvalue_reference_v<Param> && !std::is_const_v<std::remove_reference_t<Param>>;

// What the last stage of a chain may be: a sink (what run() and the runner need), or also a
// generator whose packets the caller iterates (what a Pipeline accepts; Pipeline::stream()).
enum class Ending { sink, sink_or_generator };

// Checks stage `Index` of `Count`, whose input is what the previous stage yields (`In`; void for
// the source; Invalid when the previous stage broke a rule). The template arguments are the
// error's context: the stage index, the input type and the stage (callable and constants).
// Each static_assert is guarded by the rules before it, so only the first broken rule reports.
template <std::size_t Index, std::size_t Count, class In, class StageSpec,
          Ending End = Ending::sink>
struct CheckStage {
  static_assert(IsStage<StageSpec>::value,
                "plumb::Pipeline: every argument must be a stage, written "
                "plumb::stage(callable, constants...)");
  static constexpr bool ok = false;
  using input = In;
  using output = Invalid;
  using result = Invalid;
};

template <std::size_t Index, std::size_t Count, class In, class F, class... Constants, Ending End>
struct CheckStage<Index, Count, In, Stage<F, Constants...>, End> {
  static constexpr bool is_source = Index == 0;
  static constexpr bool is_sink = Index + 1 == Count;
  static constexpr bool upstream_ok = !std::is_same_v<In, Invalid>;

  using Declared = Signature<F>;
  using FirstParam = typename Front<typename Declared::params>::type;
  static constexpr bool declares_stream =
      Declared::known && Declared::params::size > 0 && IsStream<std::remove_cvref_t<FirstParam>>::value;

  static constexpr bool callable_copyable = std::is_copy_constructible_v<F>;
  static_assert(callable_copyable,
                "plumb::stage: the callable must be copy-constructible, because every worker "
                "gets its own copy");

  static constexpr bool constants_copyable = (std::is_copy_constructible_v<Constants> && ...);
  static_assert(!callable_copyable || constants_copyable,
                "plumb::stage: every constant must be copy-constructible, because every worker "
                "gets its own copy; share a move-only resource through a std::shared_ptr");

  static constexpr bool source_shape = !is_source || !declares_stream;
  static_assert(source_shape,
                "plumb::Pipeline: the first stage must be a source, callable as "
                "Generator<T>(constants...) without a plumb::Stream parameter; put a source "
                "stage first");

  static constexpr bool consumer_shape = is_source || !Declared::known || declares_stream;
  static_assert(consumer_shape,
                "plumb::Pipeline: every stage after the first must take a plumb::Stream<T> as "
                "its first parameter, where T is what the previous stage yields; only the first "
                "stage may be a source");

  static constexpr bool stream_by_value = !declares_stream || kStreamByValue<FirstParam>;
  static_assert(!(source_shape && consumer_shape) || stream_by_value,
                "plumb::Pipeline: take the plumb::Stream<T> parameter by value "
                "(plumb::Stream<T> in), not by reference");

  static constexpr bool shape_ok = callable_copyable && constants_copyable && source_shape &&
                                   consumer_shape && stream_by_value;

  template <class Param, bool Declares = declares_stream>
  struct Consumed {
    using type = In;
  };
  template <class Param>
  struct Consumed<Param, true> {
    using type = typename IsStream<std::remove_cvref_t<Param>>::element;
  };
  using LinkCheck =
      std::conditional_t<shape_ok && upstream_ok && !is_source && declares_stream,
                         CheckLink<Index, In, typename Consumed<FirstParam>::type>, Pass>;
  static constexpr bool link_ok = LinkCheck::ok;
  // The T of the Stream<T> the callable takes: what the previous stage yields, or a View of it.
  using element = std::conditional_t<is_source, void,
                                     std::conditional_t<declares_stream && shape_ok && upstream_ok,
                                                        typename Consumed<FirstParam>::type, In>>;

  static constexpr bool call_checked = shape_ok && upstream_ok && link_ok;
  static constexpr bool invocable = [] {
    if constexpr (is_source) {
      return std::is_invocable_v<F&, Constants&...>;
    } else {
      return std::is_invocable_v<F&, Stream<element>, Constants&...>;
    }
  }();
  static_assert(!call_checked || invocable,
                "plumb::stage: the constants do not fit the callable; pass one constant per "
                "parameter after the plumb::Stream (every parameter, for a source), each "
                "convertible to its parameter type");

  using result =
      typename StageResult<is_source, call_checked && invocable, F, element, Constants...>::type;
  static constexpr bool checked = call_checked && invocable;
  static constexpr bool returns_generator = IsGenerator<result>::value;

  static_assert(!checked || !is_source || returns_generator,
                "plumb::Pipeline: the first stage (the source) must return plumb::Generator<T>");
  static_assert(!checked || is_source || is_sink || returns_generator,
                "plumb::Pipeline: only the last stage may be a sink; a stage in the middle must "
                "return plumb::Generator<U>");
  static constexpr bool yields_last = End == Ending::sink_or_generator && returns_generator;
  static_assert(!checked || is_source || !is_sink || !returns_generator || yields_last,
                "plumb::Pipeline: the last stage must be a sink that returns void or a value, "
                "not a plumb::Generator; add a sink stage that consumes the stream, or iterate "
                "the last stage's packets with pipeline.stream() instead of run()");
  static constexpr bool sink_result_ok =
      std::is_void_v<result> || (std::is_object_v<result> && std::is_move_constructible_v<result>);
  static_assert(!checked || !is_sink || returns_generator || sink_result_ok,
                "plumb::Pipeline: a sink must return void or a value, not a reference; return "
                "the value by copy or by move");

  static constexpr bool ok =
      checked && (is_sink ? (yields_last || (!returns_generator && sink_result_ok))
                          : returns_generator);
  using input = In;
  using output = typename GeneratorElement<ok && returns_generator, result>::type;
};

// What stage `Index` of `Stages...` consumes: void for the source.
template <Ending End, std::size_t Index, class... Stages>
struct InputOf {
  using Previous = std::tuple_element_t<Index - 1, std::tuple<Stages...>>;
  using type =
      typename CheckStage<Index - 1, sizeof...(Stages),
                          typename InputOf<End, Index - 1, Stages...>::type, Previous, End>::output;
};
template <Ending End, class... Stages>
struct InputOf<End, 0, Stages...> {
  using type = void;
};

// The rules of stage `Index` of `Stages...` ending in a sink, with the types the runner needs.
template <std::size_t Index, class... Stages>
using StageRules =
    CheckStage<Index, sizeof...(Stages), typename InputOf<Ending::sink, Index, Stages...>::type,
               std::tuple_element_t<Index, std::tuple<Stages...>>>;

// The rules of stage `Index` of a Pipeline's `Stages...`, whose last stage may also yield.
template <std::size_t Index, class... Stages>
using PipelineRules =
    CheckStage<Index, sizeof...(Stages),
               typename InputOf<Ending::sink_or_generator, Index, Stages...>::type,
               std::tuple_element_t<Index, std::tuple<Stages...>>, Ending::sink_or_generator>;

template <class... Stages, std::size_t... Indices>
constexpr bool all_stages_ok(std::index_sequence<Indices...>) {
  return (PipelineRules<Indices, Stages...>::ok && ...);
}

}  // namespace plumb::detail
