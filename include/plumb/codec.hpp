#pragma once
// SPDX-License-Identifier: MIT
// plumb/codec.hpp: what may cross a process boundary and how: the wire format, Writer and
// Reader, and the Codec<T> customization point.

#include <plumb/error.hpp>

#include <boost/pfr/core.hpp>
#include <boost/pfr/tuple_size.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace plumb {

class Writer;
class Reader;

/// The customization point: specialize `plumb::Codec<T>` to let a type of yours cross a process
/// boundary. Both members are required:
///
/// ```cpp
/// template <>
/// struct plumb::Codec<Image> {
///   static void encode(const Image& image, plumb::Writer& out) {
///     out.write(image.width);
///     out.write(image.height);
///     out.write(image.pixels);  // any serializable member: std::vector<std::uint8_t>, ...
///   }
///   static Image decode(plumb::Reader& in) {
///     Image image;
///     image.width = in.read<int>();
///     image.height = in.read<int>();
///     image.pixels = in.read<std::vector<std::uint8_t>>();
///     return image;
///   }
/// };
/// ```
///
/// `decode` must read exactly what `encode` wrote, in the same order. A specialization takes
/// precedence over the built-in rules. Types without one are serializable when they are:
/// arithmetic or enum types; `std::string`; `std::vector`, `std::array`, `std::optional`,
/// `std::pair`, `std::tuple`, `std::variant`, `std::map`, `std::unordered_map`, `std::set`,
/// `std::unordered_set` of serializable types; aggregates (plain structs) whose members are
/// serializable (through Boost.PFR); other trivially copyable types (copied as bytes). Pointers,
/// references and views (`std::span`, `std::string_view`) cannot cross.
template <class T>
struct Codec;

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

}  // namespace detail

/// True if `T` can cross a process boundary (a Codec<T> specialization or the built-in rules).
template <class T>
inline constexpr bool is_serializable_v =
    detail::HasUserCodec<T> || detail::SerialTraits<std::remove_cv_t<T>>::serializable;

/// Writes a message into a slot, or only counts its size.
///
/// Every message takes two passes, size then bytes, so that an oversized message is rejected
/// before a byte is written.
///
/// Thread or process affinity: one thread.
class Writer {
 public:
  /// A Writer that only counts bytes.
  Writer() noexcept = default;
  /// A Writer into `data` (its size must be at least the counted size).
  explicit Writer(std::span<std::byte> data) noexcept : data_(data.data()), capacity_(data.size()) {}

  /// Appends the encoding of `value`.
  template <class T>
  void write(const T& value);

  /// Appends `size` raw bytes.
  ///
  /// Throws: plumb::Error when writing past the span given at construction (a Codec whose
  /// encode writes more than it did while its size was counted).
  void write_bytes(const void* bytes, std::size_t size) {
    if (data_ != nullptr && size != 0) {
      check_room(size);
      std::memcpy(data_ + offset_, bytes, size);
    }
    offset_ += size;
  }

  /// Pads with zeros up to a multiple of `alignment` from the start of the message (the slot
  /// start is 64-byte aligned), so that a reader can view the bytes that follow in place.
  void align(std::size_t alignment) {
    const std::size_t padded = (offset_ + alignment - 1) / alignment * alignment;
    if (data_ != nullptr && padded != offset_) {
      check_room(padded - offset_);
      std::memset(data_ + offset_, 0, padded - offset_);
    }
    offset_ = padded;
  }

  /// Bytes written (or counted) so far.
  [[nodiscard]] std::size_t size() const noexcept { return offset_; }

 private:
  void check_room(std::size_t size) const {
    if (size > capacity_ - offset_) {
      throw Error("plumb.encode_error: a message grew while it was written (a Codec's encode "
                  "must write the same bytes every time it is called for the same value)");
    }
  }

  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t offset_ = 0;
};

/// Thrown by a Reader when a message ends before what is being read (a Codec whose decode does
/// not match its encode).
class DecodeError : public Error {
 public:
  using Error::Error;
};

/// Reads a message written by Writer.
class Reader {
 public:
  /// A Reader of the message `data`, from its first byte.
  explicit Reader(std::span<const std::byte> data) noexcept : data_(data) {}

  /// Reads one value of type T.
  template <class T>
  [[nodiscard]] T read();

  /// Copies the next `size` bytes to `bytes`.
  void read_bytes(void* bytes, std::size_t size) {
    if (size != 0) std::memcpy(bytes, take(size).data(), size);
  }

  /// The next `size` bytes, in place. Valid as long as the message is.
  [[nodiscard]] std::span<const std::byte> take(std::size_t size) {
    if (size > data_.size() - offset_) {
      throw DecodeError("plumb.decode_error: a message ended before its last field; a Codec's "
                        "decode must read exactly what its encode wrote");
    }
    const std::span<const std::byte> bytes = data_.subspan(offset_, size);
    offset_ += size;
    return bytes;
  }

  /// Skips the padding Writer::align wrote.
  void align(std::size_t alignment) {
    const std::size_t padded = (offset_ + alignment - 1) / alignment * alignment;
    (void)take(padded - offset_);
  }

  /// Bytes not read yet.
  [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - offset_; }

 private:
  std::span<const std::byte> data_;
  std::size_t offset_ = 0;
};

namespace detail {

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

// Fields of an aggregate, as a tuple of their types.
template <class T, class Indices = std::make_index_sequence<boost::pfr::tuple_size_v<T>>>
struct AggregateFields;
template <class T, std::size_t... I>
struct AggregateFields<T, std::index_sequence<I...>> {
  using type = std::tuple<std::remove_cv_t<boost::pfr::tuple_element_t<I, T>>...>;
};

template <class Tuple>
struct AllSerializable;
template <class... Ts>
struct AllSerializable<std::tuple<Ts...>> : std::bool_constant<(is_serializable_v<Ts> && ...)> {};

// Trivially copyable and free of pointers all the way down: copied as one block of bytes.
template <class T, class = void>
struct IsBlock : std::bool_constant<std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                                    std::is_same_v<T, std::byte>> {};
template <class T, std::size_t N>
struct IsBlock<std::array<T, N>> : IsBlock<T> {};

template <class Tuple>
struct AllBlocks;
template <class... Ts>
struct AllBlocks<std::tuple<Ts...>> : std::bool_constant<(IsBlock<Ts>::value && ...)> {};

template <class T>
struct AggregateIsBlock {
  static constexpr bool value = [] {
    if constexpr (kPlainAggregate<T> && std::is_trivially_copyable_v<T>) {
      return AllBlocks<typename AggregateFields<T>::type>::value;
    } else {
      return false;
    }
  }();
};
template <class T>
struct IsBlock<T, std::enable_if_t<kPlainAggregate<T>>> : AggregateIsBlock<T> {};

// Bytes of every message of type T when all values encode to the same size (plain blocks,
// copied as bytes), else 0. A link of such messages needs slots of exactly this size, however
// large max_message_size is: smaller slots mean fewer pages and cache lines per packet.
template <class T>
inline constexpr std::size_t kFixedEncodedSize = [] {
  if constexpr (!HasUserCodec<T> && IsBlock<T>::value) {
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
    } else if constexpr (IsBlock<T>::value) {
      return true;
    } else if constexpr (kPlainAggregate<T>) {
      return AllSerializable<typename AggregateFields<T>::type>::value;
    } else {
      // Other trivially copyable types (classes with private members, say) cross as bytes.
      return std::is_trivially_copyable_v<T> && !std::is_empty_v<T>;
    }
  }();
};

template <class Char>
struct SerialTraits<std::basic_string<Char>> {
  static constexpr bool serializable = std::is_same_v<Char, char> || std::is_same_v<Char, char8_t> ||
                                       std::is_same_v<Char, char16_t> || std::is_same_v<Char, char32_t> ||
                                       std::is_same_v<Char, wchar_t>;
};
template <class T, class Allocator>
struct SerialTraits<std::vector<T, Allocator>> {
  static constexpr bool serializable = is_serializable_v<T>;
};
template <class T, std::size_t N>
struct SerialTraits<std::array<T, N>> {
  static constexpr bool serializable = is_serializable_v<T>;
};
template <class T>
struct SerialTraits<std::optional<T>> {
  static constexpr bool serializable = is_serializable_v<T>;
};
template <class First, class Second>
struct SerialTraits<std::pair<First, Second>> {
  static constexpr bool serializable = is_serializable_v<First> && is_serializable_v<Second>;
};
template <class... Ts>
struct SerialTraits<std::tuple<Ts...>> {
  static constexpr bool serializable = (is_serializable_v<Ts> && ...);
};
template <class... Ts>
struct SerialTraits<std::variant<Ts...>> {
  static constexpr bool serializable = (is_serializable_v<Ts> && ...);
};
template <class Key, class Value, class Compare, class Allocator>
struct SerialTraits<std::map<Key, Value, Compare, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key> && is_serializable_v<Value>;
};
template <class Key, class Value, class Hash, class Equal, class Allocator>
struct SerialTraits<std::unordered_map<Key, Value, Hash, Equal, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key> && is_serializable_v<Value>;
};
template <class Key, class Compare, class Allocator>
struct SerialTraits<std::set<Key, Compare, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key>;
};
template <class Key, class Hash, class Equal, class Allocator>
struct SerialTraits<std::unordered_set<Key, Hash, Equal, Allocator>> {
  static constexpr bool serializable = is_serializable_v<Key>;
};

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
void encode(const T& value, Writer& out);
template <class T>
T decode(Reader& in);

template <class Container>
void encode_elements(const Container& container, Writer& out) {
  out.write(static_cast<std::uint64_t>(container.size()));
  for (const auto& element : container) encode(element, out);
}

template <class T>
void encode(const T& value, Writer& out) {
  if constexpr (HasUserCodec<T>) {
    Codec<T>::encode(value, out);
  } else if constexpr (IsBlock<T>::value) {
    out.write_bytes(&value, sizeof(T));
  } else if constexpr (IsString<T>::value) {
    out.write(static_cast<std::uint64_t>(value.size()));
    out.write_bytes(value.data(), value.size() * sizeof(typename T::value_type));
  } else if constexpr (IsVector<T>::value) {
    using Element = typename T::value_type;
    if constexpr (std::is_same_v<Element, bool>) {  // std::vector<bool> has no data()
      out.write(static_cast<std::uint64_t>(value.size()));
      for (const bool bit : value) out.write(static_cast<std::uint8_t>(bit));
    } else if constexpr (IsBlock<Element>::value) {
      out.write(static_cast<std::uint64_t>(value.size()));
      out.align(kBulkAlignment);
      out.write_bytes(value.data(), value.size() * sizeof(Element));
    } else {
      encode_elements(value, out);
    }
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
  } else if constexpr (requires { typename T::key_type; }) {
    encode_elements(value, out);
  } else if constexpr (kPlainAggregate<T>) {
    boost::pfr::for_each_field(value, [&](const auto& field) { encode(field, out); });
  } else {
    static_assert(std::is_trivially_copyable_v<T>, "plumb: internal: unhandled serializable type");
    out.write_bytes(&value, sizeof(T));
  }
}

template <class T>
T decode_block(Reader& in) {
  T value;
  in.read_bytes(&value, sizeof(T));
  return value;
}

template <class Variant, std::size_t... I>
Variant decode_variant(Reader& in, std::uint32_t index, std::index_sequence<I...>) {
  using Decoder = Variant (*)(Reader&);
  constexpr Decoder decoders[] = {[](Reader& reader) -> Variant {
    return Variant(std::in_place_index<I>, decode<std::variant_alternative_t<I, Variant>>(reader));
  }...};
  if (index >= sizeof...(I)) {
    throw DecodeError("plumb.decode_error: a std::variant index is out of range");
  }
  return decoders[index](in);
}

template <class T, std::size_t... I>
T decode_aggregate(Reader& in, std::index_sequence<I...>) {
  // Braced initialization evaluates its elements left to right: the fields in order.
  return T{decode<std::remove_cv_t<boost::pfr::tuple_element_t<I, T>>>(in)...};
}

template <class Tuple, std::size_t... I>
Tuple decode_tuple(Reader& in, std::index_sequence<I...>) {
  return Tuple{decode<std::remove_cv_t<std::tuple_element_t<I, Tuple>>>(in)...};
}

template <class T>
T decode(Reader& in) {
  if constexpr (HasUserCodec<T>) {
    return Codec<T>::decode(in);
  } else if constexpr (IsBlock<T>::value) {
    return decode_block<T>(in);
  } else if constexpr (IsString<T>::value) {
    const auto size = static_cast<std::size_t>(decode<std::uint64_t>(in));
    T text(size, typename T::value_type{});
    in.read_bytes(text.data(), size * sizeof(typename T::value_type));
    return text;
  } else if constexpr (IsVector<T>::value) {
    using Element = typename T::value_type;
    const auto size = static_cast<std::size_t>(decode<std::uint64_t>(in));
    T vector;
    if constexpr (IsBlock<Element>::value && !std::is_same_v<Element, bool>) {
      in.align(kBulkAlignment);
      if (size > in.remaining() / sizeof(Element)) {  // also keeps size * sizeof from wrapping
        throw DecodeError("plumb.decode_error: a container size exceeds the message");
      }
      const std::span<const std::byte> bytes = in.take(size * sizeof(Element));
      vector.resize(size);
      if (size != 0) std::memcpy(vector.data(), bytes.data(), bytes.size());
    } else {
      if (size > in.remaining()) {  // every element takes at least one byte
        throw DecodeError("plumb.decode_error: a container size exceeds the message");
      }
      vector.reserve(size);
      for (std::size_t i = 0; i < size; ++i) {
        if constexpr (std::is_same_v<Element, bool>) {
          vector.push_back(decode<std::uint8_t>(in) != 0);
        } else {
          vector.push_back(decode<Element>(in));
        }
      }
    }
    return vector;
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
  } else if constexpr (requires { typename T::key_type; }) {
    const auto size = static_cast<std::size_t>(decode<std::uint64_t>(in));
    if (size > in.remaining()) {
      throw DecodeError("plumb.decode_error: a container size exceeds the message");
    }
    T container;
    for (std::size_t i = 0; i < size; ++i) {
      if constexpr (requires { typename T::mapped_type; }) {
        auto key = decode<std::remove_cv_t<typename T::key_type>>(in);
        auto mapped = decode<typename T::mapped_type>(in);
        container.emplace(std::move(key), std::move(mapped));
      } else {
        container.insert(decode<typename T::key_type>(in));
      }
    }
    return container;
  } else if constexpr (kPlainAggregate<T>) {
    return decode_aggregate<T>(in, std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
  } else {
    return decode_block<T>(in);
  }
}

// Vectors of plain elements decode into an existing vector, keeping its memory.
template <class T>
inline constexpr bool kDecodesInPlace = [] {
  if constexpr (!HasUserCodec<T> && IsVector<T>::value) {
    using Element = typename T::value_type;
    return IsBlock<Element>::value && !std::is_same_v<Element, bool>;
  } else {
    return false;
  }
}();

// Decodes a message into `target`, reusing its memory where the type allows (a vector of plain
// elements keeps its capacity), so that a consumer decoding message after message into one
// object allocates and first-touches its buffer once, not per message.
template <class T>
void decode_into(T& target, Reader& in) {
  if constexpr (kDecodesInPlace<T>) {
    using Element = typename T::value_type;
    const auto size = static_cast<std::size_t>(decode<std::uint64_t>(in));
    in.align(kBulkAlignment);
    if (size > in.remaining() / sizeof(Element)) {
      throw DecodeError("plumb.decode_error: a container size exceeds the message");
    }
    const std::span<const std::byte> bytes = in.take(size * sizeof(Element));
    target.resize(size);  // no allocation while the capacity suffices
    if (size != 0) std::memcpy(target.data(), bytes.data(), bytes.size());
  } else {
    target = decode<T>(in);
  }
}

}  // namespace detail

template <class T>
void Writer::write(const T& value) {
  static_assert(is_serializable_v<T>,
                "plumb::Writer: this type cannot cross a process boundary; specialize "
                "plumb::Codec<T> for it");
  detail::encode(value, *this);
}

template <class T>
T Reader::read() {
  static_assert(is_serializable_v<T>,
                "plumb::Reader: this type cannot cross a process boundary; specialize "
                "plumb::Codec<T> for it");
  return detail::decode<T>(*this);
}

/// The number of bytes `value` takes on the wire.
template <class T>
[[nodiscard]] std::size_t serialized_size(const T& value) {
  Writer counter;
  counter.write(value);
  return counter.size();
}

}  // namespace plumb
