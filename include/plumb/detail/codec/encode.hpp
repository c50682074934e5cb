#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/codec/encode.hpp: the wire format: encoding and decoding of every built-in type,
// the plain-bulk layout, and the bounds a message puts on what it decodes to.

#include <plumb/detail/codec/fields.hpp>
#include <plumb/detail/codec/rules.hpp>
#include <plumb/detail/codec/serializable.hpp>

#include <boost/pfr/tuple_size.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace plumb {

class DecodeError;  // defined in plumb/codec.hpp

namespace detail {

// The Writer and Reader (plumb/codec.hpp) come in as template parameters, Out and In, so that
// this header needs only their declarations.

// Throws plumb::DecodeError (a template, so that its definition is needed only where called).
template <class Failure = DecodeError>
[[noreturn]] void throw_decode_error(const char* what) {
  throw Failure(what);
}

// --- The wire format -------------------------------------------------------------------------
// Everything is written in host byte order (both ends are forks of one process). Lengths and
// counts are 64-bit. Bulk arrays of blocks start at a multiple of kBulkAlignment (64 bytes)
// so that a reader can view them in place.

inline constexpr std::size_t kBulkAlignment = 64;

template <class T>
struct IsVector : std::false_type {};
template <class T, class Allocator>
struct IsVector<std::vector<T, Allocator>> : std::true_type {};
template <class T>
struct IsString : std::false_type {};
template <class Char, class Traits, class Allocator>
struct IsString<std::basic_string<Char, Traits, Allocator>> : std::true_type {};
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <class T>
struct IsTupleLike : std::false_type {};
template <class... Ts>
struct IsTupleLike<std::tuple<Ts...>> : std::true_type {};
template <class First, class Second>
struct IsTupleLike<std::pair<First, Second>> : std::true_type {};
template <class T>
struct IsVariant : std::false_type {};
template <class... Ts>
struct IsVariant<std::variant<Ts...>> : std::true_type {};

template <class T>
struct IsKeyed : std::false_type {};  // maps and sets
template <class T>
  requires requires { typename T::key_type; }
struct IsKeyed<T> : std::true_type {};

// Vectors of plain elements are written as one block, aligned so that it can be read in place.
template <class T>
inline constexpr bool kBulkVector = [] {
  if constexpr (IsVector<T>::value) {
    using Element = typename T::value_type;
    return kBlock<Element> && !std::is_same_v<Element, bool>;  // std::vector<bool> has no data()
  } else {
    return false;
  }
}();

template <class T>
inline constexpr bool kBoolVector = false;  // std::vector<bool>: one byte per element
template <class Allocator>
inline constexpr bool kBoolVector<std::vector<bool, Allocator>> = true;

template <class T, class Out>
void encode(const T& value, Out& out);
template <class T, class In>
T decode(In& in);
template <class T, class In>
void decode_into(T& target, In& in);

// The fewest bytes a value of T takes on the wire: what bounds a container's claimed element
// count by the bytes left in its message.
template <class T>
constexpr std::size_t min_encoded_size();

template <class Tuple, std::size_t... I>
constexpr std::size_t min_encoded_sum(std::index_sequence<I...>) {
  return (std::size_t{0} + ... + min_encoded_size<std::remove_cv_t<std::tuple_element_t<I, Tuple>>>());
}
template <class Variant, std::size_t... I>
constexpr std::size_t min_encoded_alternative(std::index_sequence<I...>) {
  return std::min({min_encoded_size<std::variant_alternative_t<I, Variant>>()...});
}

template <class T>
constexpr std::size_t min_encoded_size() {
  if constexpr (HasUserCodec<T>) {
    return 0;  // a Codec may write nothing at all
  } else if constexpr (kBlock<T>) {
    return sizeof(T);
  } else if constexpr (IsString<T>::value || IsVector<T>::value || IsKeyed<T>::value) {
    return sizeof(std::uint64_t);  // the count
  } else if constexpr (IsStdArray<T>::value) {
    return std::tuple_size_v<T> * min_encoded_size<typename T::value_type>();
  } else if constexpr (IsOptional<T>::value) {
    return sizeof(std::uint8_t);
  } else if constexpr (IsTupleLike<T>::value) {
    return min_encoded_sum<T>(std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (IsVariant<T>::value) {
    return sizeof(std::uint32_t) +
           min_encoded_alternative<T>(std::make_index_sequence<std::variant_size_v<T>>{});
  } else if constexpr (kFieldByField<T>) {
    using Fields = typename AggregateFields<T>::type;
    return min_encoded_sum<Fields>(std::make_index_sequence<std::tuple_size_v<Fields>>{});
  } else {
    return sizeof(T);  // trivially copyable, as bytes
  }
}

// Every element of a container takes at least one byte on the wire, so that a count claimed by
// a message is bounded by its size: a hostile count fails on the bytes, never on an allocation.
// Elements that may encode to nothing (std::tuple<>, a struct of those, a user Codec) are each
// preceded by a one-byte marker; the memory a message of n bytes decodes to is then at most n
// elements (n times sizeof(T) for a vector of empty elements), like every other container.
template <class Element>
inline constexpr bool kNeedsMarker = min_encoded_size<Element>() == 0;
template <class Element>
inline constexpr std::size_t kElementWireSize = kNeedsMarker<Element> ? 1 : min_encoded_size<Element>();

template <class Element, class Out>
void encode_element(const Element& element, Out& out) {
  if constexpr (kNeedsMarker<Element>) out.write_bytes("", 1);
  encode(element, out);
}

template <class Element, class In>
void skip_marker(In& in) {
  if constexpr (kNeedsMarker<Element>) (void)in.take(1);
}

template <class In>
void check_count(std::uint64_t count, const In& in, std::size_t bytes_per_element) {
  if (count > in.remaining() / bytes_per_element) {  // divides: count * bytes cannot wrap
    throw_decode_error("plumb.decode_error: a container size exceeds the message");
  }
}

// Reads a container's element count, checked against the bytes left before anything is
// allocated.
template <class Element, class In>
std::size_t read_count(In& in) {
  std::uint64_t count = 0;
  in.read_bytes(&count, sizeof count);
  check_count(count, in, kElementWireSize<Element>);
  return static_cast<std::size_t>(count);
}

// Room for `count` decoded elements, but never more memory than the message has bytes left:
// elements larger in memory than on the wire (std::string: 32 bytes, 8 on the wire) grow the
// container as they are decoded instead.
template <class Container, class In>
void reserve_for(Container& container, std::size_t count, const In& in) {
  using Element = typename Container::value_type;
  container.reserve(std::min(count, in.remaining() / sizeof(Element) + 1));
}

// The elements of a string or a bulk vector in place: a u64 count, padding to kBulkAlignment
// for a vector, then count * sizeof(Element) bytes. The count is checked against the message
// (what View<T> relies on to read the bytes where they are).
template <class Element, class In>
std::span<const std::byte> take_elements(In& in, bool aligned) {
  std::uint64_t count = 0;
  in.read_bytes(&count, sizeof count);
  if (aligned) in.align(kBulkAlignment);
  check_count(count, in, sizeof(Element));
  return in.take(static_cast<std::size_t>(count) * sizeof(Element));
}

template <class Container, class Out>
void encode_elements(const Container& container, Out& out) {
  out.write(static_cast<std::uint64_t>(container.size()));
  for (const auto& element : container) encode_element(element, out);
}

template <class T, class Out>
void encode(const T& value, Out& out) {
  if constexpr (HasUserCodec<T>) {
    Codec<T>::encode(value, out);
  } else if constexpr (kBlock<T>) {
    out.write_bytes(&value, sizeof(T));
  } else if constexpr (IsString<T>::value) {
    out.write(static_cast<std::uint64_t>(value.size()));
    out.write_bytes(value.data(), value.size() * sizeof(typename T::value_type));
  } else if constexpr (kBulkVector<T>) {
    out.write(static_cast<std::uint64_t>(value.size()));
    out.align(kBulkAlignment);
    out.write_bytes(value.data(), value.size() * sizeof(typename T::value_type));
  } else if constexpr (kBoolVector<T>) {
    out.write(static_cast<std::uint64_t>(value.size()));
    for (const bool bit : value) out.write(static_cast<std::uint8_t>(bit));
  } else if constexpr (IsVector<T>::value || IsKeyed<T>::value) {
    encode_elements(value, out);
  } else if constexpr (IsStdArray<T>::value) {
    for (const auto& element : value) encode(element, out);
  } else if constexpr (IsOptional<T>::value) {
    out.write(static_cast<std::uint8_t>(value.has_value()));
    if (value) encode(*value, out);
  } else if constexpr (IsTupleLike<T>::value) {
    std::apply([&](const auto&... fields) { (encode(fields, out), ...); }, value);
  } else if constexpr (IsVariant<T>::value) {
    out.write(static_cast<std::uint32_t>(value.index()));
    std::visit([&](const auto& alternative) { encode(alternative, out); }, value);
  } else if constexpr (kFieldByField<T>) {
    for_each_field(value, [&](const auto&... fields) { (encode(fields, out), ...); });
  } else {
    static_assert(std::is_trivially_copyable_v<T>, "plumb: internal: unhandled serializable type");
    out.write_bytes(&value, sizeof(T));
  }
}

template <class T, class In>
T decode_block(In& in) {
  T value;
  in.read_bytes(&value, sizeof(T));
  return value;
}

template <class Variant, std::size_t... I, class In>
Variant decode_variant(In& in, std::uint32_t index, std::index_sequence<I...>) {
  using Decoder = Variant (*)(In&);
  constexpr Decoder decoders[] = {[](In& reader) -> Variant {
    return Variant(std::in_place_index<I>, decode<std::variant_alternative_t<I, Variant>>(reader));
  }...};
  if (index >= sizeof...(I)) {
    throw_decode_error("plumb.decode_error: a std::variant index is out of range");
  }
  return decoders[index](in);
}

template <class T, std::size_t... I, class In>
T decode_aggregate(In& in, std::index_sequence<I...>) {
  // Braced initialization evaluates its elements left to right: the fields in order.
  return T{decode<std::tuple_element_t<I, typename AggregateFields<T>::type>>(in)...};
}

template <class Tuple, std::size_t... I, class In>
Tuple decode_tuple(In& in, std::index_sequence<I...>) {
  return Tuple{decode<std::remove_cv_t<std::tuple_element_t<I, Tuple>>>(in)...};
}

template <class T, class In>
T decode(In& in) {
  if constexpr (HasUserCodec<T>) {
    return Codec<T>::decode(in);
  } else if constexpr (kBlock<T>) {
    return decode_block<T>(in);
  } else if constexpr (IsString<T>::value) {
    using Char = typename T::value_type;
    const std::span<const std::byte> bytes = take_elements<Char>(in, false);
    T text(bytes.size() / sizeof(Char), Char{});
    if (!bytes.empty()) std::memcpy(text.data(), bytes.data(), bytes.size());
    return text;
  } else if constexpr (kBulkVector<T>) {
    T vector;
    decode_into(vector, in);
    return vector;
  } else if constexpr (IsVector<T>::value) {
    using Element = typename T::value_type;
    const std::size_t count = read_count<Element>(in);
    T vector;
    reserve_for(vector, count, in);
    for (std::size_t i = 0; i < count; ++i) {
      if constexpr (std::is_same_v<Element, bool>) {
        vector.push_back(decode<std::uint8_t>(in) != 0);
      } else {
        skip_marker<Element>(in);
        vector.push_back(decode<Element>(in));
      }
    }
    return vector;
  } else if constexpr (IsKeyed<T>::value) {
    using Element = typename T::value_type;  // std::pair<const Key, Value> for a map
    const std::size_t count = read_count<Element>(in);
    T container;
    for (std::size_t i = 0; i < count; ++i) {
      skip_marker<Element>(in);
      if constexpr (requires { typename T::mapped_type; }) {
        auto key = decode<std::remove_cv_t<typename T::key_type>>(in);
        auto mapped = decode<typename T::mapped_type>(in);
        container.emplace(std::move(key), std::move(mapped));
      } else {
        container.insert(decode<typename T::key_type>(in));
      }
    }
    return container;
  } else if constexpr (IsStdArray<T>::value) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return T{((void)I, decode<typename T::value_type>(in))...};
    }(std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (IsOptional<T>::value) {
    if (decode<std::uint8_t>(in) == 0) return T{};
    return T{decode<typename T::value_type>(in)};
  } else if constexpr (IsTupleLike<T>::value) {
    return decode_tuple<T>(in, std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (IsVariant<T>::value) {
    const auto index = decode<std::uint32_t>(in);
    return decode_variant<T>(in, index, std::make_index_sequence<std::variant_size_v<T>>{});
  } else if constexpr (kFieldByField<T>) {
    return decode_aggregate<T>(in, std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
  } else {
    return decode_block<T>(in);
  }
}

// Vectors of plain elements decode into an existing vector, keeping its memory.
template <class T>
inline constexpr bool kDecodesInPlace = !HasUserCodec<T> && kBulkVector<T>;

// Decodes a message into `target`, reusing its memory where the type allows (a vector of plain
// elements keeps its capacity), so that a consumer decoding message after message into one
// object allocates and first-touches its buffer once, not per message.
template <class T, class In>
void decode_into(T& target, In& in) {
  if constexpr (kDecodesInPlace<T>) {
    using Element = typename T::value_type;
    const std::span<const std::byte> bytes = take_elements<Element>(in, true);
    target.resize(bytes.size() / sizeof(Element));  // no allocation while the capacity suffices
    if (!bytes.empty()) std::memcpy(target.data(), bytes.data(), bytes.size());
  } else {
    target = decode<T>(in);
  }
}

}  // namespace detail
}  // namespace plumb
