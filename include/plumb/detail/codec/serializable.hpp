#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/codec/serializable.hpp: which structs and standard types cross, and how a struct crosses (field by
// field, as bytes, or not at all).

#include <plumb/detail/codec/fields.hpp>
#include <plumb/detail/codec/probe.hpp>
#include <plumb/detail/codec/rules.hpp>

#include <boost/pfr/tuple_size.hpp>

#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>


namespace plumb::detail {

// --- Which structs can be taken apart ---------------------------------------------------------

// A struct that structured bindings can take apart: no base class with members (a hard error,
// and PFR's count static_asserts) and no C-array member (PFR counts its elements, more names than
// the struct has members: a hard error), detected before any binding is instantiated.
// Bit-fields are fine: for_each_field above hands them on by value.
template <class T>
struct IsBaseOf {
  template <class U>
  static constexpr bool test = std::is_base_of_v<U, T> && !std::is_same_v<U, T>;
};
template <class Tuple>
struct AnyArray;
template <class... Ts>
struct AnyArray<std::tuple<Ts...>> : std::bool_constant<(std::is_array_v<Ts> || ...)> {};

template <class T>
inline constexpr bool kDecomposable = [] {
  // Bases come first in aggregate initialization: a probe that converts only to T's bases
  // initializes T exactly when it has one (brace elision may enter a first member that is a
  // struct or an array, but nothing in there is a base of T).
  if constexpr (kInitializes<T, Probe<IsBaseOf<T>>, 1>) {
    return false;
  } else {
    // PFR counts initializers with brace elision, so a C array counts once per element; with
    // one initializer per member, that many do not compile.
    constexpr std::size_t kCount = boost::pfr::tuple_size_v<T>;
    if constexpr (!kInitializesBraced<T, Probe<AnyType>, kCount>) {
      return false;
    } else {
      return !AnyArray<typename AggregateFields<T>::type>::value;  // T x[1] counts once
    }
  }
}();

template <class Tuple>
struct AllSerializable;
template <class... Ts>
struct AllSerializable<std::tuple<Ts...>> : std::bool_constant<(kSerializable<Ts> && ...)> {};

// How a struct that is not a plain block crosses: field by field, as the bytes of
// a trivially copyable object, or not at all.
enum class AggregateWire { fields, bytes, none };

template <class T>
constexpr AggregateWire fields_if_decomposable() {
  if constexpr (kDecomposable<T>) {
    return AllSerializable<typename AggregateFields<T>::type>::value ? AggregateWire::fields
                                                                      : AggregateWire::none;
  } else {
    return AggregateWire::none;
  }
}

template <class T>
inline constexpr AggregateWire kAggregateWire = [] {
  if constexpr (Members<T>::known) {  // trivially copyable
    if constexpr (!Members<T>::template all<NoPointer>()) {
      return AggregateWire::none;  // a pointer or a view inside
    } else if constexpr (Members<T>::template all<NoCodec>()) {
      // Unions, empty structs or classes with private members inside: the whole as bytes,
      // without taking it apart (which fails on C arrays and base classes).
      return AggregateWire::bytes;
    } else {
      // A member with a Codec of its own: field by field. Inside a C array or a base class,
      // only a Codec<T> can say how (bytes would ignore the member's Codec).
      return fields_if_decomposable<T>();
    }
  } else if constexpr (kDecomposable<T>) {
    return fields_if_decomposable<T>();  // not trivially copyable, or const or reference members
  } else if constexpr (std::is_trivially_copyable_v<T> && std::is_copy_assignable_v<T>) {
    // Trivially copyable, but a member without a default constructor hid the members: as
    // bytes, as the guide promises for trivially copyable types.
    return AggregateWire::bytes;
  } else {
    // A C array or a base class, and not trivially copyable: only a Codec<T> can say how.
    return AggregateWire::none;
  }
}();

// Structs written field by field.
template <class T>
inline constexpr bool kFieldByField = [] {
  if constexpr (kPlainAggregate<T> && !kBlock<T>) {
    return kAggregateWire<T> == AggregateWire::fields;
  } else {
    return false;
  }
}();

// Bytes of every message of type T when all values encode to the same size (plain blocks,
// copied as bytes), else 0. A link of such messages needs slots of exactly this size, however
// large max_message_size is: smaller slots mean fewer pages and cache lines per packet.
template <class T>
inline constexpr std::size_t kFixedEncodedSize = [] {
  if constexpr (kBlock<T>) {
    return sizeof(T);
  } else {
    return std::size_t{0};
  }
}();

template <class T>
struct SerialTraits {
  static constexpr bool serializable = [] {
    if constexpr (kForbidden<T>) {
      return false;
    } else if constexpr (kBlock<T>) {
      return true;
    } else if constexpr (kPlainAggregate<T>) {
      return kAggregateWire<T> != AggregateWire::none;
    } else {
      // Other trivially copyable types (classes with private members, say) cross as bytes.
      return std::is_trivially_copyable_v<T> && !std::is_empty_v<T>;
    }
  }();
};

template <class Char, class Traits, class Allocator>
struct SerialTraits<std::basic_string<Char, Traits, Allocator>> {
  static constexpr bool serializable = std::is_same_v<Char, char> || std::is_same_v<Char, char8_t> ||
                                       std::is_same_v<Char, char16_t> || std::is_same_v<Char, char32_t> ||
                                       std::is_same_v<Char, wchar_t>;
};
template <class T, class Allocator>
struct SerialTraits<std::vector<T, Allocator>> {
  static constexpr bool serializable = kSerializable<T>;
};
template <class T, std::size_t N>
struct SerialTraits<std::array<T, N>> {
  static constexpr bool serializable = kSerializable<T>;
};
template <class T>
struct SerialTraits<std::optional<T>> {
  static constexpr bool serializable = kSerializable<T>;
};
template <class First, class Second>
struct SerialTraits<std::pair<First, Second>> {
  static constexpr bool serializable = kSerializable<First> && kSerializable<Second>;
};
template <class... Ts>
struct SerialTraits<std::tuple<Ts...>> {
  static constexpr bool serializable = (kSerializable<Ts> && ...);
};
template <class... Ts>
struct SerialTraits<std::variant<Ts...>> {
  static constexpr bool serializable = (kSerializable<Ts> && ...);
};
template <class Key, class Value, class Compare, class Allocator>
struct SerialTraits<std::map<Key, Value, Compare, Allocator>> {
  static constexpr bool serializable = kSerializable<Key> && kSerializable<Value>;
};
template <class Key, class Value, class Hash, class Equal, class Allocator>
struct SerialTraits<std::unordered_map<Key, Value, Hash, Equal, Allocator>> {
  static constexpr bool serializable = kSerializable<Key> && kSerializable<Value>;
};
template <class Key, class Compare, class Allocator>
struct SerialTraits<std::set<Key, Compare, Allocator>> {
  static constexpr bool serializable = kSerializable<Key>;
};
template <class Key, class Hash, class Equal, class Allocator>
struct SerialTraits<std::unordered_set<Key, Hash, Equal, Allocator>> {
  static constexpr bool serializable = kSerializable<Key>;
};

}  // namespace plumb::detail
