#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/codec/fields.hpp: takes a struct apart field by field (Boost.PFR's count, structured bindings).

#include <boost/pfr/tuple_size.hpp>
#include <boost/preprocessor/repetition/enum.hpp>
#include <boost/preprocessor/repetition/enum_params.hpp>
#include <boost/preprocessor/repetition/repeat_from_to.hpp>

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

#define PLUMB_DETAIL_FIELD_TYPE(z, index, unused) decltype(field##index)
#define PLUMB_DETAIL_FIELDS(z, count, unused)                                      \
  template <>                                                                      \
  struct Fields<count> {                                                           \
    template <class T>                                                             \
    static auto types(T& value) {                                                  \
      [[maybe_unused]] auto& [BOOST_PP_ENUM_PARAMS(count, field)] = value;         \
      return std::type_identity<                                                   \
          std::tuple<BOOST_PP_ENUM(count, PLUMB_DETAIL_FIELD_TYPE, ~)>>{};         \
    }                                                                              \
    template <class T, class Visit>                                                \
    static void apply(T& value, Visit&& visit) {                                   \
      auto& [BOOST_PP_ENUM_PARAMS(count, field)] = value;                          \
      visit(BOOST_PP_ENUM_PARAMS(count, field));                                   \
    }                                                                              \
  };
BOOST_PP_REPEAT_FROM_TO(1, 101, PLUMB_DETAIL_FIELDS, ~)
#undef PLUMB_DETAIL_FIELDS
#undef PLUMB_DETAIL_FIELD_TYPE

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
