#pragma once
// SPDX-License-Identifier: MIT
// plumb/buffer.hpp: Buffer<U> and make_buffer<U>(), large packets written in place: in a worker
// process's shared-memory output slot, or in recycled memory within one process.

#include <plumb/codec.hpp>
#include <plumb/detail/buffer/home.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace plumb {

namespace detail {
struct BufferAccess;
}  // namespace detail

/// A contiguous array of `size()` plain values (`U`: arithmetic, enum, std::byte, or a struct or
/// std::array of those) for large packets: images, frames, tiles, tensors. Get one from
/// `plumb::make_buffer<U>(n)` in a stage, fill it, and yield it:
///
/// ```cpp
/// plumb::Generator<plumb::Buffer<float>> brighten(
///     plumb::Stream<plumb::View<plumb::Buffer<float>>> in, float gain) {
///   for (const auto& image : in) {                        // read in place
///     auto out = plumb::make_buffer<float>(image.size());  // written in place
///     for (std::size_t i = 0; i < image.size(); ++i) out[i] = image[i] * gain;
///     co_yield std::move(out);
///   }
/// }
/// ```
///
/// Where the memory is: in a stage whose output link crosses to another process, the buffer is
/// the link's shared-memory slot itself, so yielding it moves no bytes (with a consumer that
/// reads `Stream<View<Buffer<U>>>`, nothing is copied at all). Within one process (sequential
/// and thread mode, or a link between two stages of one process) it comes from the stage's pool:
/// when the consumer is done with the packet, its memory goes back to the pool for the next
/// `make_buffer`, not to the kernel (no mmap, page faults, munmap per packet); large blocks are
/// on transparent huge pages where the system allows it. The same stage code runs in every mode.
///
/// A consumer takes `Stream<View<Buffer<U>>>` (read in place, valid until the next packet) or
/// `Stream<Buffer<U>>` (owned: it may keep it, change it, yield it on; across a process boundary
/// that is one copy into recycled memory of the consumer's own).
///
/// The contents of a new buffer are unspecified (recycled memory): write every element you
/// yield. `resize(n)` shrinks the packet to its first n elements (n <= capacity()), e.g. after
/// asking for the most a stage can write. Copies (`Buffer(const Buffer&)`) are deep.
///
/// Thread or process affinity: like any packet, one thread at a time.
template <class U>
class Buffer {
  static_assert(detail::kPlain<U, detail::Codecs::ignored>,
                "plumb::Buffer<U>: U must be a plain value (arithmetic, enum, std::byte, or a "
                "struct or std::array of those), so that the elements can be written in place; "
                "use std::vector for other element types");
  static_assert(alignof(U) <= detail::kBlockAlignment,
                "plumb::Buffer<U>: U's alignment is over 64 bytes");

 public:
  /// The element type.
  using value_type = U;
  /// A pointer to an element.
  using iterator = U*;
  /// A pointer to a const element.
  using const_iterator = const U*;

  /// An empty buffer (no memory).
  Buffer() noexcept = default;
  /// A buffer of `count` elements in fresh memory, not recycled and never in a slot (for tests
  /// and code outside a pipeline; in a stage, use plumb::make_buffer).
  explicit Buffer(std::size_t count) : Buffer(detail::Lease{detail::allocate_block(bytes_for(count)), nullptr}, count) {}
  /// A deep copy, in memory from `other`'s pool where it has one.
  Buffer(const Buffer& other) : Buffer(other.block_.data == nullptr ? detail::Lease{} : lease_like(other), other.size_) {
    if (size_ != 0) std::memcpy(data(), other.data(), size_ * sizeof(U));
  }
  /// Takes over `other`'s memory; `other` is left empty.
  Buffer(Buffer&& other) noexcept
      : block_(std::exchange(other.block_, {})), home_(std::exchange(other.home_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  /// A deep copy, as the copy constructor.
  Buffer& operator=(const Buffer& other) {
    if (this != &other) *this = Buffer(other);
    return *this;
  }
  /// Gives back this buffer's memory, then takes over `other`'s; `other` is left empty.
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      reset();
      block_ = std::exchange(other.block_, {});
      home_ = std::exchange(other.home_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  /// Gives the memory back to where it came from (its pool or slot).
  ~Buffer() { reset(); }

  /// Points at the first element.
  [[nodiscard]] U* data() noexcept { return reinterpret_cast<U*>(block_.data); }
  /// Points at the first element.
  [[nodiscard]] const U* data() const noexcept { return reinterpret_cast<const U*>(block_.data); }
  /// Number of elements.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// True if the buffer has no elements.
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// The most elements resize() allows: what the memory holds.
  [[nodiscard]] std::size_t capacity() const noexcept { return block_.bytes / sizeof(U); }
  /// The element at `index`. Preconditions: `index < size()` (not checked).
  [[nodiscard]] U& operator[](std::size_t index) noexcept { return data()[index]; }
  /// The element at `index`. Preconditions: `index < size()` (not checked).
  [[nodiscard]] const U& operator[](std::size_t index) const noexcept { return data()[index]; }
  /// Points at the first element.
  [[nodiscard]] U* begin() noexcept { return data(); }
  /// Points past the last element.
  [[nodiscard]] U* end() noexcept { return data() + size_; }
  /// Points at the first element.
  [[nodiscard]] const U* begin() const noexcept { return data(); }
  /// Points past the last element.
  [[nodiscard]] const U* end() const noexcept { return data() + size_; }
  /// The elements as a `std::span`.
  [[nodiscard]] std::span<U> span() noexcept { return {data(), size_}; }
  /// The elements as a `std::span` of const elements.
  [[nodiscard]] std::span<const U> span() const noexcept { return {data(), size_}; }
  /// Sets the number of elements to `count` (the memory stays; new elements are unspecified).
  ///
  /// Throws: std::length_error if `count > capacity()`.
  void resize(std::size_t count) {
    if (count > capacity()) {
      throw std::length_error("plumb::Buffer::resize: more elements than its capacity(); ask "
                              "plumb::make_buffer for the most the packet can need");
    }
    size_ = count;
  }
  /// An owned copy as a std::vector.
  [[nodiscard]] std::vector<U> to_vector() const { return {begin(), end()}; }

  friend bool operator==(const Buffer& a, const Buffer& b) noexcept {
    return a.size_ == b.size_ && (a.size_ == 0 || std::memcmp(a.data(), b.data(), a.size_ * sizeof(U)) == 0);
  }

 private:
  friend struct detail::BufferAccess;

  Buffer(detail::Lease lease, std::size_t count) noexcept
      : block_(lease.block), home_(lease.home), size_(count) {}

  // At most 2^47 bytes (128 TiB, the user address space of x86-64): larger counts could wrap
  // the rounding of block sizes.
  static constexpr std::size_t kMaxBytes = std::size_t{1} << 47;
  static std::size_t bytes_for(std::size_t count) {
    if (count > kMaxBytes / sizeof(U)) {
      throw std::length_error("plumb::Buffer: " + std::to_string(count) +
                              " elements are more than a process can map");
    }
    return count * sizeof(U);
  }
  static detail::Lease lease_like(const Buffer& other) {
    const std::size_t bytes = other.size_ * sizeof(U);
    if (other.home_ != nullptr) return other.home_->take(bytes, nullptr);
    return {detail::allocate_block(bytes), nullptr};
  }

  void reset() noexcept {
    if (block_.data == nullptr) return;
    if (home_ != nullptr) {
      home_->give_back(block_);
      home_->release();
    } else {
      detail::free_block(block_);
    }
    block_ = {};
    home_ = nullptr;
    size_ = 0;
  }

  detail::Block block_;
  detail::BufferHome* home_ = nullptr;
  std::size_t size_ = 0;
};

/// A Buffer of `count` elements for the packet the current stage is about to yield: in a worker
/// process whose output crosses to another process, its output slot itself (this may wait for a
/// free slot, as a yield would); otherwise recycled memory from the stage's pool. Outside a
/// pipeline (a unit test iterating the generator), fresh memory. The contents are unspecified.
///
/// Throws: plumb::StageError (naming the stage) if the packet would not fit the slots of the
/// output link (`max_message_size`, with 64 bytes of header); std::bad_alloc.
///
/// A worker holds at most one output slot this way: a second make_buffer before the first
/// buffer is yielded gets pool memory (copied into a slot when yielded, which needs a second
/// slot: in_flight above the stage's workers). For memory a stage does not yield (scratch), use
/// `plumb::Buffer<U>(n)` or a std::vector.
template <class U>
[[nodiscard]] Buffer<U> make_buffer(std::size_t count);

namespace detail {

// What plumb's internals do with a Buffer's memory.
struct BufferAccess {
  template <class U>
  static Buffer<U> make(Lease lease, std::size_t count) noexcept {
    return Buffer<U>(lease, count);
  }
  template <class U>
  [[nodiscard]] static BufferHome* home(const Buffer<U>& buffer) noexcept {
    return buffer.home_;
  }
  template <class U>
  [[nodiscard]] static const Block& block(const Buffer<U>& buffer) noexcept {
    return buffer.block_;
  }
  // Takes the memory out of `buffer` (left empty) without giving it back; the caller now owns
  // the reference on its home.
  template <class U>
  static Lease detach(Buffer<U>& buffer) noexcept {
    buffer.size_ = 0;
    return {std::exchange(buffer.block_, {}), std::exchange(buffer.home_, nullptr)};
  }
  template <class U>
  [[nodiscard]] static std::size_t bytes_for(std::size_t count) {
    return Buffer<U>::bytes_for(count);
  }
};

}  // namespace detail

template <class U>
Buffer<U> make_buffer(std::size_t count) {
  const std::size_t bytes = detail::BufferAccess::bytes_for<U>(count);
  detail::BufferHome* home = detail::tl_buffer_home;
  if (home == nullptr) return Buffer<U>(count);
  return detail::BufferAccess::make<U>(home->take(bytes, detail::element_tag<U>()), count);
}

/// Buffers cross a process boundary with the layout of a std::vector of plain elements (a count,
/// padding to 64 bytes, the elements), which `View<Buffer<U>>` reads in place. A decoded Buffer
/// outside a stage's input (a member of another type, a sink's value) is in fresh memory.
template <class U>
struct Codec<Buffer<U>> {
  /// Writes the count, padding to 64 bytes, then the elements.
  static void encode(const Buffer<U>& buffer, Writer& out) {
    out.write(static_cast<std::uint64_t>(buffer.size()));
    out.align(detail::kBulkAlignment);
    out.write_bytes(buffer.data(), buffer.size() * sizeof(U));
  }
  /// Reads what encode wrote into a Buffer of fresh memory.
  static Buffer<U> decode(Reader& in) {
    const std::span<const std::byte> bytes = detail::take_elements<U>(in, true);
    Buffer<U> buffer(bytes.size() / sizeof(U));
    if (!bytes.empty()) std::memcpy(buffer.data(), bytes.data(), bytes.size());
    return buffer;
  }
};

}  // namespace plumb
