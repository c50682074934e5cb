#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/type_rules.hpp: the compile-time rules that adjacent stages must satisfy.

#include <plumb/detail/core/callable_traits.hpp>
#include <plumb/generator.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>
#include <plumb/view.hpp>

#include <compare>
#include <cstddef>
#include <initializer_list>
#include <tuple>
#include <type_traits>

namespace plumb::detail {

// The output of a stage whose rules failed: the rules of the next stage that depend on it are
// skipped, so one mistake gives one error instead of a cascade.
struct Invalid {};

// What run() returns for a Pipeline or Graph that broke a rule (already reported): it converts
// to and compares with anything, so that the caller's use of the result (`long sum =
// pipeline.run()`, `CHECK(pipeline.run() == 45)`) adds no error of its own to the one that
// names the rule. Never constructed at run time: a rejected pipeline does not compile.
struct Rejected {
  template <class T>
  operator T() const {
    return T{};
  }
  template <class T>
  friend bool operator==(const Rejected&, const T&) {
    return false;
  }
  template <class T>
  friend auto operator<=>(const Rejected&, const T&) {
    return 0 <=> 0;
  }
  template <class Out>
  friend Out& operator<<(Out& out, const Rejected&) {
    return out;
  }
};

template <class Produced, class Consumed>
inline constexpr bool kLinkMatches =
    std::is_same_v<Produced, Consumed> || std::is_same_v<View<Produced>, Consumed>;

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

// Whether a callable declares a plumb::Stream (by value or not) as its first parameter.
template <class F>
inline constexpr bool kDeclaresStream = [] {
  using Declared = Signature<F>;
  if constexpr (Declared::known && Declared::params::size > 0) {
    return IsStream<std::remove_cvref_t<typename Front<typename Declared::params>::type>>::value;
  } else {
    return false;
  }
}();

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
  static constexpr bool declares = kDeclaresStream<F>;
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

// What the rules of stage `Index` of `Count` find, whose input is what the previous stage yields
// (`In`; void for the source; Invalid when the previous stage broke a rule): one bool per rule,
// each computed only where the rules before it hold, and the types the runner needs. No
// static_assert here: check_stage() reports (a failed static_assert inside a class makes Clang
// reject every later use of its members, a cascade of "not a constant expression" errors).
template <std::size_t Index, std::size_t Count, class In, class StageSpec,
          Ending End = Ending::sink>
struct StageFacts {
  static constexpr bool ok = false;
  using input = In;
  using output = Invalid;
  using result = Invalid;
};

template <std::size_t Index, std::size_t Count, class In, class F, class... Constants, Ending End>
struct StageFacts<Index, Count, In, Stage<F, Constants...>, End> {
  static constexpr bool is_source = Index == 0;
  static constexpr bool is_sink = Index + 1 == Count;
  static constexpr bool upstream_ok = !std::is_same_v<In, Invalid>;

  using Declared = Signature<F>;
  using FirstParam = typename Front<typename Declared::params>::type;
  static constexpr bool declares_stream = kDeclaresStream<F>;

  static constexpr bool callable_copyable = std::is_copy_constructible_v<F>;
  static constexpr bool constants_copyable = (std::is_copy_constructible_v<Constants> && ...);
  static constexpr bool source_shape = !is_source || !declares_stream;
  static constexpr bool consumer_shape = is_source || !Declared::known || declares_stream;
  static constexpr bool stream_by_value = !declares_stream || kStreamByValue<FirstParam>;
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
  // Whether the link into this stage is checked, and what the stage's Stream declares.
  static constexpr bool link_checked = shape_ok && upstream_ok && !is_source && declares_stream;
  using consumed = typename Consumed<FirstParam>::type;
  static constexpr bool link_ok = !link_checked || kLinkMatches<In, consumed>;
  // The T of the Stream<T> the callable takes: what the previous stage yields, or a View of it.
  using element = std::conditional_t<is_source, void,
                                     std::conditional_t<declares_stream && shape_ok && upstream_ok,
                                                        consumed, In>>;

  static constexpr bool call_checked = shape_ok && upstream_ok && link_ok;
  static constexpr bool invocable = [] {
    if constexpr (is_source) {
      return std::is_invocable_v<F&, Constants&...>;
    } else {
      return std::is_invocable_v<F&, Stream<element>, Constants&...>;
    }
  }();

  using result =
      typename StageResult<is_source, call_checked && invocable, F, element, Constants...>::type;
  static constexpr bool checked = call_checked && invocable;
  static constexpr bool returns_generator = IsGenerator<result>::value;
  static constexpr bool yields_last = End == Ending::sink_or_generator && returns_generator;
  static constexpr bool sink_result_ok =
      std::is_void_v<result> || (std::is_object_v<result> && std::is_move_constructible_v<result>);

  static constexpr bool ok =
      checked && (is_sink ? (yields_last || (!returns_generator && sink_result_ok))
                          : returns_generator);
  using input = In;
  using output = typename GeneratorElement<ok && returns_generator, result>::type;
};

// --- The rules, as the conditions of check_stage()'s static_asserts ------------------------------
//
// Each condition is a variable template whose first argument says where the rule broke, so the
// error itself names the stage: Clang prints the failed requirement on the error's line
// ("static_assert failed due to requirement 'plumb::detail::input_matches_previous_output<
// plumb::detail::at_stage<1>, std::string, int>'"), GCC on the note right after it ("... evaluates
// to false"). The other arguments are what broke it: the types, the constant, the parameter.

/// Stage N of a pipeline, counting from 0 at the source (a Service counts its own submit stage
/// as 0, so its first stage is 1).
template <int N>
struct at_stage {};
/// Constant N of plumb::stage(callable, constants...), counting from 0.
template <int N>
struct constant {};
/// How many constants the callable takes, and how many plumb::stage() was given.
template <int N>
struct takes {
  static constexpr int value = N;
};
template <int N>
struct given {
  static constexpr int value = N;
};

template <class Where, class Callable>
inline constexpr bool callable_is_copyable = std::is_copy_constructible_v<Callable>;
template <class Where, class Which, class Constant>
inline constexpr bool constant_is_copyable = std::is_copy_constructible_v<Constant>;
template <class Where, class Callable>
inline constexpr bool source_takes_no_stream = !kDeclaresStream<Callable>;
template <class Where, class Callable>
inline constexpr bool consumer_takes_a_stream =
    !Signature<Callable>::known || kDeclaresStream<Callable>;
template <class Where, class StreamParameter>
inline constexpr bool stream_taken_by_value = kStreamByValue<StreamParameter>;
template <class Where, class Produced, class Consumed>
inline constexpr bool input_matches_previous_output = kLinkMatches<Produced, Consumed>;
template <class Where, class Takes, class Given>
inline constexpr bool constants_count_matches = Takes::value == Given::value;
template <class Where, class Which, class Constant, class Parameter>
inline constexpr bool constant_converts_to_parameter = std::is_convertible_v<Constant&, Parameter>;
template <class Where, class Callable, class... Arguments>
inline constexpr bool callable_accepts = std::is_invocable_v<Callable&, Arguments...>;
template <class Where, class Result>
inline constexpr bool source_returns_generator = IsGenerator<Result>::value;
template <class Where, class Result>
inline constexpr bool middle_stage_returns_generator = IsGenerator<Result>::value;
template <class Where, class Result>
inline constexpr bool last_stage_returns_no_generator = !IsGenerator<Result>::value;
template <class Where, class Result>
inline constexpr bool sink_returns_a_value =
    std::is_void_v<Result> || (std::is_object_v<Result> && std::is_move_constructible_v<Result>);

// Ends every message: where to read the stage's position.
#define PLUMB_DETAIL_WHERE_NOTE                                                              \
  " (the failed requirement's first argument names the stage: at_stage<N> counts from 0 at " \
  "the source; a Graph names the node)"

// The index of the first of `Holds` that is false (its size when none is).
template <bool... Holds>
constexpr std::size_t first_false() {
  constexpr bool holds[] = {Holds..., false};
  std::size_t index = 0;
  while (index < sizeof...(Holds) && holds[index]) ++index;
  return index;
}

// Reports the first constant of `Constants...` that is not copy-constructible.
template <class Where, class... Constants>
constexpr void check_constants_copyable() {
  constexpr std::size_t first = first_false<std::is_copy_constructible_v<Constants>...>();
  if constexpr (first < sizeof...(Constants)) {
    static_assert(constant_is_copyable<Where, constant<int(first)>,
                                       std::tuple_element_t<first, std::tuple<Constants...>>>,
                  "plumb::stage: every constant must be copy-constructible, because every worker "
                  "gets its own copy; share a move-only resource through a "
                  "std::shared_ptr" PLUMB_DETAIL_WHERE_NOTE);
  }
}

// Why the constants do not fit a callable whose parameters are known: their count, or the first
// one that does not convert to its parameter (constants reach the callable as lvalues, each
// worker's copy). False when neither explains it (then the caller reports the whole call).
template <class Where, class Parameters, class... Constants>
struct ConstantsDiagnosis {
  static constexpr bool explained = false;
  static constexpr void report() {}
};
template <class Where, class... Parameters, class... Constants>
struct ConstantsDiagnosis<Where, TypeList<Parameters...>, Constants...> {
  static constexpr bool count_differs = sizeof...(Parameters) != sizeof...(Constants);
  static constexpr std::size_t mismatch = [] {
    if constexpr (count_differs) {
      return sizeof...(Constants);
    } else {
      return first_false<std::is_convertible_v<Constants&, Parameters>...>();
    }
  }();
  static constexpr bool explained = count_differs || mismatch < sizeof...(Constants);
  static constexpr void report() {
    if constexpr (count_differs) {
      using Takes = takes<int(sizeof...(Parameters))>;
      using Given = given<int(sizeof...(Constants))>;
      static_assert(constants_count_matches<Where, Takes, Given>,
                    "plumb::stage: the callable takes a different number of constants than "
                    "plumb::stage() was given; pass one constant per parameter after the "
                    "plumb::Stream (every parameter, for a source)" PLUMB_DETAIL_WHERE_NOTE);
    } else if constexpr (mismatch < sizeof...(Constants)) {
      static_assert(constant_converts_to_parameter<
                        Where, constant<int(mismatch)>,
                        std::tuple_element_t<mismatch, std::tuple<Constants...>>,
                        std::tuple_element_t<mismatch, std::tuple<Parameters...>>>,
                    "plumb::stage: a constant does not convert to its parameter's type (the "
                    "failed requirement shows constant<K>, counting from 0 in plumb::stage(callable, "
                    "constants...), its type, then the parameter's type); constants reach the "
                    "callable as lvalues, so a parameter cannot be an rvalue reference" PLUMB_DETAIL_WHERE_NOTE);
    }
  }
};

// The parameters a callable's constants fill: all of them for a source, those after the
// Stream for any other stage (an empty list when the signature is unknown).
template <bool Source, class Parameters>
struct ConstantParameters {
  using type = Parameters;
};
template <class First, class... Rest>
struct ConstantParameters<false, TypeList<First, Rest...>> {
  using type = TypeList<Rest...>;
};

// Reports the first broken rule of a stage as one static_assert (nothing when every rule holds)
// and returns whether they all hold. `Where` names the stage in the error (at_stage<N>, or a
// Graph node's name); the other arguments are StageFacts'. A function rather than a class: a
// failed static_assert leaves its value usable, so Clang too reports one error per broken rule.
template <class Where, std::size_t Index, std::size_t Count, class In, Ending End, class F,
          class... Constants>
constexpr bool check_stage(std::type_identity<Stage<F, Constants...>>) {
  using Facts = StageFacts<Index, Count, In, Stage<F, Constants...>, End>;
  static_assert(callable_is_copyable<Where, F>,
                "plumb::stage: the callable must be copy-constructible, because every worker "
                "gets its own copy" PLUMB_DETAIL_WHERE_NOTE);
  if constexpr (Facts::callable_copyable) {
    check_constants_copyable<Where, Constants...>();
  }
  if constexpr (Facts::callable_copyable && Facts::constants_copyable) {
    if constexpr (Facts::is_source) {
      static_assert(source_takes_no_stream<Where, F>,
                    "plumb::Pipeline: the first stage must be a source, callable as "
                    "Generator<T>(constants...) without a plumb::Stream parameter; put a source "
                    "stage first" PLUMB_DETAIL_WHERE_NOTE);
    } else {
      static_assert(consumer_takes_a_stream<Where, F>,
                    "plumb::Pipeline: every stage after the first must take a plumb::Stream<T> "
                    "as its first parameter, where T is what the previous stage yields; only the "
                    "first stage may be a source" PLUMB_DETAIL_WHERE_NOTE);
    }
    if constexpr (Facts::source_shape && Facts::consumer_shape && Facts::declares_stream) {
      static_assert(stream_taken_by_value<Where, typename Facts::FirstParam>,
                    "plumb::Pipeline: take the plumb::Stream<T> parameter by value "
                    "(plumb::Stream<T> in), not by reference" PLUMB_DETAIL_WHERE_NOTE);
    }
  }
  if constexpr (Facts::link_checked) {
    static_assert(input_matches_previous_output<Where, In, typename Facts::consumed>,
                  "plumb::Pipeline: a stage's input must match the previous stage's output; the "
                  "previous stage returns Generator<T>, so this stage must take Stream<T> (or "
                  "Stream<plumb::View<T>> to read in place) with the same T; the failed "
                  "requirement shows T, then what the stage takes" PLUMB_DETAIL_WHERE_NOTE);
  }
  if constexpr (Facts::call_checked && !Facts::invocable) {
    using Parameters =
        typename ConstantParameters<Facts::is_source, typename Facts::Declared::params>::type;
    using Diagnosis = ConstantsDiagnosis<Where, std::conditional_t<Facts::Declared::known, Parameters, void>,
                                         Constants...>;
    if constexpr (Diagnosis::explained) {
      Diagnosis::report();
    } else if constexpr (Facts::is_source) {
      static_assert(callable_accepts<Where, F, Constants&...>,
                    "plumb::stage: the constants do not fit the callable; pass one constant per "
                    "parameter (every parameter, for a source), each convertible to its parameter "
                    "type" PLUMB_DETAIL_WHERE_NOTE);
    } else {
      static_assert(callable_accepts<Where, F, Stream<typename Facts::element>, Constants&...>,
                    "plumb::stage: the constants do not fit the callable; pass one constant per "
                    "parameter after the plumb::Stream, each convertible to its parameter "
                    "type" PLUMB_DETAIL_WHERE_NOTE);
    }
  }
  if constexpr (Facts::checked) {
    using Result = typename Facts::result;
    if constexpr (Facts::is_source) {
      static_assert(source_returns_generator<Where, Result>,
                    "plumb::Pipeline: the first stage (the source) must return "
                    "plumb::Generator<T>" PLUMB_DETAIL_WHERE_NOTE);
    } else if constexpr (!Facts::is_sink) {
      static_assert(middle_stage_returns_generator<Where, Result>,
                    "plumb::Pipeline: only the last stage may be a sink; a stage in the middle "
                    "must return plumb::Generator<U>" PLUMB_DETAIL_WHERE_NOTE);
    } else if constexpr (End == Ending::sink) {
      static_assert(last_stage_returns_no_generator<Where, Result>,
                    "plumb::Pipeline: the last stage must be a sink that returns void or a value, "
                    "not a plumb::Generator; add a sink stage that consumes the stream, or iterate "
                    "the last stage's packets with pipeline.stream() instead of run()" PLUMB_DETAIL_WHERE_NOTE);
    }
    if constexpr (Facts::is_sink && !Facts::returns_generator) {
      static_assert(sink_returns_a_value<Where, Result>,
                    "plumb::Pipeline: a sink must return void or a value, not a reference; return "
                    "the value by copy or by move" PLUMB_DETAIL_WHERE_NOTE);
    }
  }
  return Facts::ok;
}
#undef PLUMB_DETAIL_WHERE_NOTE

// What stage `Index` of `Stages...` consumes: void for the source.
template <Ending End, std::size_t Index, class... Stages>
struct InputOf {
  using Previous = std::tuple_element_t<Index - 1, std::tuple<Stages...>>;
  using type =
      typename StageFacts<Index - 1, sizeof...(Stages),
                          typename InputOf<End, Index - 1, Stages...>::type, Previous, End>::output;
};
template <Ending End, class... Stages>
struct InputOf<End, 0, Stages...> {
  using type = void;
};

// The rules of stage `Index` of `Stages...` ending in a sink, with the types the runner needs.
template <std::size_t Index, class... Stages>
using StageRules =
    StageFacts<Index, sizeof...(Stages), typename InputOf<Ending::sink, Index, Stages...>::type,
               std::tuple_element_t<Index, std::tuple<Stages...>>>;

// The rules of stage `Index` of a Pipeline's `Stages...`, whose last stage may also yield.
template <std::size_t Index, class... Stages>
using PipelineRules =
    StageFacts<Index, sizeof...(Stages),
               typename InputOf<Ending::sink_or_generator, Index, Stages...>::type,
               std::tuple_element_t<Index, std::tuple<Stages...>>, Ending::sink_or_generator>;

// Whether every check held. The checks are the elements of a braced list, so every one is
// evaluated (and reports its broken rule), unlike a fold of &&, which stops at the first false.
constexpr bool all_hold(std::initializer_list<bool> checks) {
  for (const bool held : checks) {
    if (!held) return false;
  }
  return true;
}

// Checks every stage of a Pipeline's `Stages...` (so each broken rule reports, the rules that
// depend on a broken one excepted) and returns whether they all hold.
template <class... Stages, std::size_t... Indices>
constexpr bool all_stages_ok(std::index_sequence<Indices...>) {
  return all_hold({check_stage<at_stage<int(Indices)>, Indices, sizeof...(Stages),
                               typename InputOf<Ending::sink_or_generator, Indices, Stages...>::type,
                               Ending::sink_or_generator>(std::type_identity<Stages>{})...});
}

}  // namespace plumb::detail
