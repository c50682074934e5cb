#pragma once
// SPDX-License-Identifier: MIT
// plumb/view.hpp: View<T>, the zero-copy way to read a large contiguous packet in place.

#include <plumb/buffer.hpp>
#include <plumb/codec.hpp>

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace plumb {

namespace detail {
// Only plumb's inputs make Views: the key's constructor is private to them.
class ViewKey {
  ViewKey() = default;
  template <class>
  friend struct ViewAccess;
};
}  // namespace detail

/// A read-only view of a packet that stays where the link put it: in a shared-memory slot
/// across processes, in the ring slot or the producer's generator within one process. No copy,
/// no decoding.
///
/// Ask for it in the consumer's signature: after a stage that yields `Generator<T>`, take
/// `plumb::Stream<plumb::View<T>>` instead of `plumb::Stream<T>`:
///
/// ```cpp
/// plumb::Generator<std::vector<std::int32_t>> frames(int count);          // 40 MB each
/// long total(plumb::Stream<plumb::View<std::vector<std::int32_t>>> in) {  // reads in place
///   long sum = 0;
///   for (const auto& frame : in) for (std::int32_t x : frame) sum += x;
///   return sum;
/// }
/// ```
///
/// The view is valid until the consumer asks for its next packet (the slot is then recycled);
/// it can be neither copied nor moved, so it cannot outlive its packet by accident. Take an
/// owned copy with `to_vector()` / `to_string()` where the data must be kept.
///
/// Supported: `View<std::vector<U>>` and `View<plumb::Buffer<U>>` for plain values U
/// (arithmetic, enum, std::byte, or a struct or std::array of those), and `View<std::string>`.
///
/// Zero-copy needs the built-in layout (a count, then the elements as one block). Where a
/// `plumb::Codec` decides the bytes instead (a `Codec<std::vector<U>>`, a `Codec<std::string>`
/// or a `Codec<U>` for the elements), a View still works in every mode and shows the same
/// elements, but across processes each packet is first decoded with that Codec into a buffer
/// of the consumer's own (kept until the next packet): one copy, as with `Stream<T>`.
template <class T>
class View {
  static_assert(std::is_same_v<T, void>,
                "plumb::View<T>: T must be std::vector<U> or plumb::Buffer<U> of a trivially "
                "copyable U, or std::string; read other types through plumb::Stream<T>");
};

namespace detail {

// The members of a View of contiguous plain elements (a std::vector's or a plumb::Buffer's).
template <class U>
class ElementsView {
 public:
  /// The element type.
  using value_type = U;
  /// A pointer into the packet.
  using const_iterator = const U*;

  ElementsView(ViewKey, const U* data, std::size_t size) noexcept : data_(data), size_(size) {}
  ElementsView(const ElementsView&) = delete;
  ElementsView& operator=(const ElementsView&) = delete;

  /// Points at the first element, in place.
  [[nodiscard]] const U* data() const noexcept { return data_; }
  /// Number of elements.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// True if the packet has no elements.
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// Returns the element at `index`. Preconditions: `index < size()` (not checked).
  [[nodiscard]] const U& operator[](std::size_t index) const noexcept { return data_[index]; }
  /// Returns the first element. Preconditions: `!empty()` (not checked).
  [[nodiscard]] const U& front() const noexcept { return data_[0]; }
  /// Returns the last element. Preconditions: `!empty()` (not checked).
  [[nodiscard]] const U& back() const noexcept { return data_[size_ - 1]; }
  /// The elements as a `std::span`, valid as long as the view.
  [[nodiscard]] std::span<const U> span() const noexcept { return {data_, size_}; }
  /// Points at the first element.
  [[nodiscard]] const U* begin() const noexcept { return data_; }
  /// Points past the last element.
  [[nodiscard]] const U* end() const noexcept { return data_ + size_; }

 protected:
  ~ElementsView() = default;

 private:
  const U* data_;
  std::size_t size_;
};

}  // namespace detail

/// A view of a `std::vector<U>` packet: a read-only contiguous range of `U`, read in place.
template <class U, class Allocator>
class View<std::vector<U, Allocator>> : public detail::ElementsView<U> {
  static_assert(detail::kPlain<U, detail::Codecs::ignored>,
                "plumb::View<std::vector<U>>: U must be a plain value (arithmetic, enum, std::byte, "
                "or a struct or std::array of those), so that the elements can be read in place");

 public:
  using detail::ElementsView<U>::ElementsView;
  /// An owned copy, valid after the view is gone.
  [[nodiscard]] std::vector<U, Allocator> to_vector() const { return {this->begin(), this->end()}; }
};

/// A view of a `plumb::Buffer<U>` packet: its elements, read in place (in the producer's
/// shared-memory slot across processes, in the Buffer itself within one process).
template <class U>
class View<Buffer<U>> : public detail::ElementsView<U> {
 public:
  using detail::ElementsView<U>::ElementsView;
  /// An owned copy, valid after the view is gone.
  [[nodiscard]] std::vector<U> to_vector() const { return {this->begin(), this->end()}; }
  /// An owned copy as a Buffer (fresh memory).
  [[nodiscard]] Buffer<U> to_buffer() const {
    Buffer<U> copy(this->size());
    if (!this->empty()) std::memcpy(copy.data(), this->data(), this->size() * sizeof(U));
    return copy;
  }
};

/// A view of a `std::string` (any `std::basic_string`) packet: its characters, read in place.
template <class Char, class Traits, class Allocator>
class View<std::basic_string<Char, Traits, Allocator>> {
 public:
  View(detail::ViewKey, const Char* data, std::size_t size) noexcept : text_(data, size) {}
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  /// The characters as a `std::basic_string_view`, valid as long as the view.
  [[nodiscard]] std::basic_string_view<Char, Traits> text() const noexcept { return text_; }
  /// Number of characters.
  [[nodiscard]] std::size_t size() const noexcept { return text_.size(); }
  /// Points at the first character, in place (not necessarily null-terminated).
  [[nodiscard]] const Char* data() const noexcept { return text_.data(); }
  /// An iterator to the first character (as `text().begin()`).
  [[nodiscard]] auto begin() const noexcept { return text_.begin(); }
  /// An iterator past the last character (as `text().end()`).
  [[nodiscard]] auto end() const noexcept { return text_.end(); }
  /// An owned copy, valid after the view is gone.
  [[nodiscard]] std::basic_string<Char, Traits, Allocator> to_string() const {
    return std::basic_string<Char, Traits, Allocator>(text_);
  }

 private:
  std::basic_string_view<Char, Traits> text_;
};

namespace detail {

// True if T's messages hold its elements as one block that a View can read in place (the
// built-in layout, which plumb::Buffer's Codec keeps); false where a user Codec decides the bytes.
template <class T>
inline constexpr bool kViewsInPlace =
    IsBuffer<T>::value || (!HasUserCodec<T> && (IsString<T>::value || kBulkVector<T>));

template <class T>
struct IsView : std::false_type {};
template <class T>
struct IsView<View<T>> : std::true_type {
  using viewed = T;
};

// Builds Views: from the object itself (within one process) or from its serialized bytes (a
// shared-memory slot, laid out by codec.hpp: u64 length, padding to 64 for bulk arrays, data).
template <class T>
struct ViewAccess;

template <class U, class Allocator>
struct ViewAccess<std::vector<U, Allocator>> {
  using ViewType = View<std::vector<U, Allocator>>;
  template <class Optional>
  static ViewType& of(Optional& slot, const std::vector<U, Allocator>& object) {
    return slot.emplace(ViewKey{}, object.data(), object.size());
  }
  template <class Optional>
  static ViewType& from_bytes(Optional& slot, const U* data, std::size_t size) {
    return slot.emplace(ViewKey{}, data, size);
  }
};

template <class U>
struct ViewAccess<Buffer<U>> {
  using ViewType = View<Buffer<U>>;
  template <class Optional>
  static ViewType& of(Optional& slot, const Buffer<U>& object) {
    return slot.emplace(ViewKey{}, object.data(), object.size());
  }
  template <class Optional>
  static ViewType& from_bytes(Optional& slot, const U* data, std::size_t size) {
    return slot.emplace(ViewKey{}, data, size);
  }
};

template <class Char, class Traits, class Allocator>
struct ViewAccess<std::basic_string<Char, Traits, Allocator>> {
  using ViewType = View<std::basic_string<Char, Traits, Allocator>>;
  template <class Optional>
  static ViewType& of(Optional& slot, const std::basic_string<Char, Traits, Allocator>& object) {
    return slot.emplace(ViewKey{}, object.data(), object.size());
  }
  template <class Optional>
  static ViewType& from_bytes(Optional& slot, const Char* data, std::size_t size) {
    return slot.emplace(ViewKey{}, data, size);
  }
};

}  // namespace detail
}  // namespace plumb
