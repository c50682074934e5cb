#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/codec/probe.hpp: asks whether an aggregate initialization compiles, to look inside a struct
// without a compile error.

#include <algorithm>
#include <climits>
#include <cstddef>
#include <utility>


namespace plumb::detail {

// --- Looking inside a struct without a compile error -----------------------------------------
// A struct is taken apart through structured bindings (as Boost.PFR does), which do not compile
// (a hard error, not a substitution failure) for a struct with a C-array member or a base class;
// PFR's own field access also fails on bit-fields. The probes below only ask whether an
// aggregate initialization `T{e, e, ...}` is well-formed, which is a substitution failure when
// it is not: every question has an answer, in every mode, and a struct is taken apart only
// where that compiles.

// Converts to every type that Accept::test accepts, and to nothing else.
template <class Accept>
struct Probe {
  template <class Type>
    requires(Accept::template test<Type>)
  operator Type() const noexcept;
};

// Converts to every type; the conversion is noexcept exactly when Accept::test accepts the
// type, so `noexcept(T{c, c, ...})` says whether every member passed. (A probe that refused a
// member would not do: where a struct member cannot be initialized from it, brace elision
// initializes that struct's first member from it instead, and Clang 14 does so even for a
// deleted or ambiguous conversion.) Only C arrays are entered, since nothing converts to an
// array: each element is one initializer. Declared only: the probes are unevaluated.
template <class Accept>
struct Checker {
  template <class Type>
  operator Type() const noexcept(Accept::template test<Type>);
};

template <std::size_t, class Element>
using Nth = Element;

// The probes initialize nested arrays without their braces, on purpose (as Boost.PFR does).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
template <class T, class Element, std::size_t... I>
constexpr bool initializes(std::index_sequence<I...>) {
  return requires { T{Nth<I, Element>{}...}; };
}
template <class T, class Element, std::size_t... I>
constexpr bool initializes_noexcept(std::index_sequence<I...>) {
  return noexcept(T{Nth<I, Element>{}...});
}
template <class T, class Element, std::size_t... I>
constexpr bool initializes_braced(std::index_sequence<I...>) {
  return requires { T{{Nth<I, Element>{}}...}; };
}
#pragma GCC diagnostic pop

// True if `T{e1, ..., eN}` compiles for N Elements (base classes first, then the members, a
// C array's elements one by one).
template <class T, class Element, std::size_t N>
inline constexpr bool kInitializes = initializes<T, Element>(std::make_index_sequence<N>{});
// True if `T{{e1}, ..., {eN}}` compiles: the braces keep a C array to one initializer.
template <class T, class Element, std::size_t N>
inline constexpr bool kInitializesBraced =
    initializes_braced<T, Element>(std::make_index_sequence<N>{});

inline constexpr std::size_t kUnknownCount = static_cast<std::size_t>(-1);

// The largest N for which kInitializes holds, between Low (holds) and High (does not).
template <class T, class Element, std::size_t Low, std::size_t High>
constexpr std::size_t bisect_initializers() {
  if constexpr (High - Low <= 1) {
    return Low;
  } else if constexpr (constexpr std::size_t kMiddle = Low + (High - Low) / 2;
                       kInitializes<T, Element, kMiddle>) {
    return bisect_initializers<T, Element, kMiddle, High>();
  } else {
    return bisect_initializers<T, Element, Low, kMiddle>();
  }
}
template <class T, class Element, std::size_t Known>
constexpr std::size_t widen_initializers() {
  // Every initializer sets at least one bit of T (a bit-field may be one bit wide), so this
  // many never compile: the search ends.
  constexpr std::size_t kImpossible = sizeof(T) * CHAR_BIT + 1;
  constexpr std::size_t kNext = std::min(2 * Known, kImpossible);
  if constexpr (kInitializes<T, Element, kNext>) {
    return widen_initializers<T, Element, kNext>();
  } else {
    return bisect_initializers<T, Element, Known, kNext>();
  }
}

// How many Elements `T{e1, ..., eN}` takes at most, or kUnknownCount. The search doubles, then
// bisects: fewer initializers than members compile whenever the members left out can be
// value-initialized (a member without a default constructor makes the count unknown).
template <class T, class Element>
inline constexpr std::size_t kInitializerCount = [] {
  if constexpr (kInitializes<T, Element, 1>) {
    return widen_initializers<T, Element, 1>();
  } else {
    return kUnknownCount;
  }
}();

struct AnyType {
  template <class U>
  static constexpr bool test = true;
};

}  // namespace plumb::detail
