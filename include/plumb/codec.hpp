#pragma once
// SPDX-License-Identifier: MIT
// plumb/codec.hpp: what may cross a process boundary and how: the wire format, Writer and
// Reader, and the Codec<T> customization point. The built-in rules and the wire format are in
// plumb/detail/codec/.

#include <plumb/detail/codec/encode.hpp>
#include <plumb/detail/codec/rules.hpp>
#include <plumb/error.hpp>

#include <cstddef>
#include <cstring>
#include <span>

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
/// precedence over the built-in rules, also where T is an element or a member of another type.
/// Types without one are serializable when they are: arithmetic or enum types; `std::string`;
/// `std::vector`, `std::array`, `std::optional`, `std::pair`, `std::tuple`, `std::variant`,
/// `std::map`, `std::unordered_map`, `std::set`, `std::unordered_set` of serializable types;
/// trivially copyable structs free of pointers, with C arrays, base classes and bit-fields
/// (copied as bytes); other aggregates (plain structs) whose members are serializable (field by
/// field: no C-array member and no base class there); other trivially copyable
/// types (copied as bytes). Pointers, references and views (`std::span`, `std::string_view`)
/// cannot cross, nor can what contains them.
///
/// Decoding checks every length and count against the bytes left in the message before it
/// allocates: bad bytes give a DecodeError, never a huge allocation.
template <class T>
struct Codec;

/// True if `T` can cross a process boundary (a Codec<T> specialization or the built-in rules).
template <class T>
inline constexpr bool is_serializable_v = detail::kSerializable<T>;

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
