#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/codec/rules.hpp: which types the built-in rules accept: a user Codec, forbidden pointers and
// views, plain blocks copied as bytes.

#include <plumb/detail/codec/probe.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>


namespace plumb {

class Writer;
class Reader;

template <class T>
struct Codec;  // the customization point, documented in plumb/codec.hpp

namespace detail {

template <class T>
concept HasUserCodec = requires(const T& value, Writer& out, Reader& in) {
  Codec<T>::encode(value, out);
  { Codec<T>::decode(in) } -> std::same_as<T>;
};

template <class T>
struct IsStdArray : std::false_type {};
template <class T, std::size_t N>
struct IsStdArray<std::array<T, N>> : std::true_type {};

template <class T>
struct SerialTraits;  // defined below: what the built-in rules say about T

// True if T can cross a process boundary: plumb::is_serializable_v.
template <class T>
inline constexpr bool kSerializable =
    HasUserCodec<T> || SerialTraits<std::remove_cv_t<T>>::serializable;

// --- Which types the built-in rules accept --------------------------------------------------

template <class T>
struct IsBorrowing : std::false_type {};
template <class Char, class Traits>
struct IsBorrowing<std::basic_string_view<Char, Traits>> : std::true_type {};
template <class T, std::size_t Extent>
struct IsBorrowing<std::span<T, Extent>> : std::true_type {};

// Pointers and views are trivially copyable, but what they point to stays behind.
template <class T>
inline constexpr bool kForbidden =
    std::is_pointer_v<T> || std::is_member_pointer_v<T> || std::is_reference_v<T> ||
    std::is_same_v<T, std::nullptr_t> || IsBorrowing<T>::value;

template <class T>
inline constexpr bool kPlainAggregate =
    std::is_class_v<T> && std::is_aggregate_v<T> && !IsStdArray<T>::value && !std::is_empty_v<T>;


// Whether a user Codec inside a struct counts: it does for the wire format; it does not for
// View<std::vector<U>>'s rule that U is a plain value in memory.
enum class Codecs { honoured, ignored };

template <class T, Codecs Rule>
inline constexpr bool kOwnCodec = Rule == Codecs::honoured && HasUserCodec<T>;

// The members of a trivially copyable struct T (its bases, its members, a C array's elements),
// asked through probes. A member that is a reference cannot be told from its value by a probe,
// so only copy-assignable structs are asked (a reference member deletes the copy assignment).
template <class T>
struct Members {
  static constexpr std::size_t count = kInitializerCount<T, Checker<AnyType>>;
  static constexpr bool known = std::is_trivially_copyable_v<T> && std::is_copy_assignable_v<T> &&
                                count != kUnknownCount;
  // True if Accept::test holds for every member (false if the members are unknown).
  template <class Accept>
  static constexpr bool all() {
    if constexpr (known) {
      return initializes_noexcept<T, Checker<Accept>>(std::make_index_sequence<count>{});
    } else {
      return false;
    }
  }
};

template <class T, Codecs Rule>
struct PlainRule;

template <Codecs Rule>
struct IsPlain {
  template <class U>
  static constexpr bool test = PlainRule<U, Rule>::value;
};

// Trivially copyable and free of pointers all the way down: copied as one block of bytes (bases,
// C arrays and bit-fields included). With Codecs::ignored: a plain value in memory, whatever its
// Codecs say about the wire.
template <class T, Codecs Rule>
struct PlainRule {
  static constexpr bool value = [] {
    if constexpr (kOwnCodec<T, Rule>) {
      return false;
    } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
      return true;
    } else if constexpr (IsStdArray<T>::value) {
      return PlainRule<typename T::value_type, Rule>::value;
    } else if constexpr (kPlainAggregate<T>) {
      return Members<T>::template all<IsPlain<Rule>>();
    } else {
      return false;
    }
  }();
};

template <class T, Codecs Rule = Codecs::honoured>
inline constexpr bool kPlain = PlainRule<T, Rule>::value;

// Copied as bytes (the wire rule): plain, and no Codec inside.
template <class T>
inline constexpr bool kBlock = kPlain<T, Codecs::honoured>;

// Whether a member of T, at any depth, is a pointer or a view (Inside::pointer) or has a Codec
// of its own (Inside::codec). Classes with private members count as one member: they cross as
// bytes.
enum class Inside { pointer, codec };

template <class T, Inside What>
struct NothingInside {
  static constexpr bool value = [] {
    if constexpr (What == Inside::pointer ? kForbidden<T> : HasUserCodec<T>) {
      return false;
    } else if constexpr (IsStdArray<T>::value) {
      return NothingInside<typename T::value_type, What>::value;
    } else if constexpr (kPlainAggregate<T>) {
      return !Members<T>::known || Members<T>::template all<NothingInside>();
    } else {
      return true;
    }
  }();
  template <class U>
  static constexpr bool test = NothingInside<U, What>::value;
};
using NoPointer = NothingInside<void, Inside::pointer>;
using NoCodec = NothingInside<void, Inside::codec>;

}  // namespace detail
}  // namespace plumb
