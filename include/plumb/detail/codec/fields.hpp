#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/codec/fields.hpp: takes a struct apart field by field (Boost.PFR's count, structured bindings).

#include <boost/pfr/tuple_size.hpp>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace plumb::detail {

// --- Taking a struct apart field by field ---------------------------------------------------
// Boost.PFR counts the fields (tuple_size_v); they are read here through structured bindings,
// like PFR does, but handed on as the bindings themselves: PFR's tuple of references cannot
// refer to a bit-field, a `const auto&` parameter binds to a copy of it.

inline constexpr std::size_t kMaxFields = 100;  // as Boost.PFR 1.81

// Fields<N>::types(value): std::type_identity of a std::tuple of the declared types of the N
// fields; Fields<N>::apply(value, visit): visit(field0, ..., fieldN-1).
template <std::size_t N>
struct Fields {
  static_assert(N <= kMaxFields,
                "plumb::Codec: a struct with more than 100 fields cannot cross field by field; "
                "specialize plumb::Codec<T> for it");
  template <class T>
  static std::type_identity<std::tuple<>> types(T&);
  template <class T, class Visit>
  static void apply(T&, Visit&&) {}
};

// The 100 specializations below come from plain macros: Boost.Preprocessor's repetition made
// the same text cost every translation unit about 0.4 s of preprocessing (GCC 12).
// PLUMB_DETAIL_UNITS_u(M, digit): M(digit0), ..., M(digit(u-1)), for a tens digit (empty for 0-9).
#define PLUMB_DETAIL_UNITS_1(M, digit) M(digit##0)
#define PLUMB_DETAIL_UNITS_2(M, digit) PLUMB_DETAIL_UNITS_1(M, digit), M(digit##1)
#define PLUMB_DETAIL_UNITS_3(M, digit) PLUMB_DETAIL_UNITS_2(M, digit), M(digit##2)
#define PLUMB_DETAIL_UNITS_4(M, digit) PLUMB_DETAIL_UNITS_3(M, digit), M(digit##3)
#define PLUMB_DETAIL_UNITS_5(M, digit) PLUMB_DETAIL_UNITS_4(M, digit), M(digit##4)
#define PLUMB_DETAIL_UNITS_6(M, digit) PLUMB_DETAIL_UNITS_5(M, digit), M(digit##5)
#define PLUMB_DETAIL_UNITS_7(M, digit) PLUMB_DETAIL_UNITS_6(M, digit), M(digit##6)
#define PLUMB_DETAIL_UNITS_8(M, digit) PLUMB_DETAIL_UNITS_7(M, digit), M(digit##7)
#define PLUMB_DETAIL_UNITS_9(M, digit) PLUMB_DETAIL_UNITS_8(M, digit), M(digit##8)
#define PLUMB_DETAIL_UNITS_10(M, digit) PLUMB_DETAIL_UNITS_9(M, digit), M(digit##9)
// PLUMB_DETAIL_TENS_t(M): M(0), ..., M(10t - 1) and a comma (nothing for t = 0).
#define PLUMB_DETAIL_TENS_0(M)
#define PLUMB_DETAIL_TENS_1(M) PLUMB_DETAIL_UNITS_10(M, ),
#define PLUMB_DETAIL_TENS_2(M) PLUMB_DETAIL_TENS_1(M) PLUMB_DETAIL_UNITS_10(M, 1),
#define PLUMB_DETAIL_TENS_3(M) PLUMB_DETAIL_TENS_2(M) PLUMB_DETAIL_UNITS_10(M, 2),
#define PLUMB_DETAIL_TENS_4(M) PLUMB_DETAIL_TENS_3(M) PLUMB_DETAIL_UNITS_10(M, 3),
#define PLUMB_DETAIL_TENS_5(M) PLUMB_DETAIL_TENS_4(M) PLUMB_DETAIL_UNITS_10(M, 4),
#define PLUMB_DETAIL_TENS_6(M) PLUMB_DETAIL_TENS_5(M) PLUMB_DETAIL_UNITS_10(M, 5),
#define PLUMB_DETAIL_TENS_7(M) PLUMB_DETAIL_TENS_6(M) PLUMB_DETAIL_UNITS_10(M, 6),
#define PLUMB_DETAIL_TENS_8(M) PLUMB_DETAIL_TENS_7(M) PLUMB_DETAIL_UNITS_10(M, 7),
#define PLUMB_DETAIL_TENS_9(M) PLUMB_DETAIL_TENS_8(M) PLUMB_DETAIL_UNITS_10(M, 8),
// M(0), ..., M(10t + u - 1); `digit` is t, or empty when t is 0.
#define PLUMB_DETAIL_EACH(M, t, digit, u) PLUMB_DETAIL_TENS_##t(M) PLUMB_DETAIL_UNITS_##u(M, digit)
#define PLUMB_DETAIL_FIELD(index) field##index
#define PLUMB_DETAIL_FIELD_TYPE(index) decltype(field##index)
// Fields<10t + u>.
#define PLUMB_DETAIL_FIELDS(t, digit, u)                                                  \
  template <>                                                                             \
  struct Fields<t * 10 + u> {                                                             \
    template <class T>                                                                    \
    static auto types(T& value) {                                                         \
      [[maybe_unused]] auto& [PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD, t, digit, u)] = value; \
      return std::type_identity<                                                          \
          std::tuple<PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD_TYPE, t, digit, u)>>{};         \
    }                                                                                     \
    template <class T, class Visit>                                                       \
    static void apply(T& value, Visit&& visit) {                                          \
      auto& [PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD, t, digit, u)] = value;                 \
      visit(PLUMB_DETAIL_EACH(PLUMB_DETAIL_FIELD, t, digit, u));                          \
    }                                                                                     \
  };
// Fields<10t + 1> to Fields<10t + 10>.
#define PLUMB_DETAIL_FIELDS_TENS(t, digit)                                                     \
  PLUMB_DETAIL_FIELDS(t, digit, 1) PLUMB_DETAIL_FIELDS(t, digit, 2)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 3) PLUMB_DETAIL_FIELDS(t, digit, 4)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 5) PLUMB_DETAIL_FIELDS(t, digit, 6)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 7) PLUMB_DETAIL_FIELDS(t, digit, 8)                            \
  PLUMB_DETAIL_FIELDS(t, digit, 9) PLUMB_DETAIL_FIELDS(t, digit, 10)
PLUMB_DETAIL_FIELDS_TENS(0, )
PLUMB_DETAIL_FIELDS_TENS(1, 1)
PLUMB_DETAIL_FIELDS_TENS(2, 2)
PLUMB_DETAIL_FIELDS_TENS(3, 3)
PLUMB_DETAIL_FIELDS_TENS(4, 4)
PLUMB_DETAIL_FIELDS_TENS(5, 5)
PLUMB_DETAIL_FIELDS_TENS(6, 6)
PLUMB_DETAIL_FIELDS_TENS(7, 7)
PLUMB_DETAIL_FIELDS_TENS(8, 8)
PLUMB_DETAIL_FIELDS_TENS(9, 9)
static_assert(kMaxFields == 100, "plumb: the specializations above stop at Fields<100>");
#undef PLUMB_DETAIL_FIELDS_TENS
#undef PLUMB_DETAIL_FIELDS
#undef PLUMB_DETAIL_FIELD_TYPE
#undef PLUMB_DETAIL_FIELD
#undef PLUMB_DETAIL_EACH
#undef PLUMB_DETAIL_TENS_9
#undef PLUMB_DETAIL_TENS_8
#undef PLUMB_DETAIL_TENS_7
#undef PLUMB_DETAIL_TENS_6
#undef PLUMB_DETAIL_TENS_5
#undef PLUMB_DETAIL_TENS_4
#undef PLUMB_DETAIL_TENS_3
#undef PLUMB_DETAIL_TENS_2
#undef PLUMB_DETAIL_TENS_1
#undef PLUMB_DETAIL_TENS_0
#undef PLUMB_DETAIL_UNITS_10
#undef PLUMB_DETAIL_UNITS_9
#undef PLUMB_DETAIL_UNITS_8
#undef PLUMB_DETAIL_UNITS_7
#undef PLUMB_DETAIL_UNITS_6
#undef PLUMB_DETAIL_UNITS_5
#undef PLUMB_DETAIL_UNITS_4
#undef PLUMB_DETAIL_UNITS_3
#undef PLUMB_DETAIL_UNITS_2
#undef PLUMB_DETAIL_UNITS_1

template <class Tuple>
struct WithoutCv;
template <class... Ts>
struct WithoutCv<std::tuple<Ts...>> {
  using type = std::tuple<std::remove_cv_t<Ts>...>;
};

// The fields of struct T, as a std::tuple of their types (only for a decomposable T).
template <class T>
struct AggregateFields {
  using FieldsOfT = Fields<boost::pfr::tuple_size_v<T>>;
  using type = typename WithoutCv<
      typename decltype(FieldsOfT::types(std::declval<T&>()))::type>::type;
};

template <class T, class Visit>
void for_each_field(const T& value, Visit&& visit) {
  Fields<boost::pfr::tuple_size_v<T>>::apply(value, visit);
}

}  // namespace plumb::detail
