#pragma once
// SPDX-License-Identifier: MIT
// plumb/stream.hpp: Stream<T>, the input of a processor or sink stage.

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/generator.hpp>

#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace plumb {

template <class T>
class Stream;

namespace detail {

template <class T>
struct StreamAccess;

// A Stream over a Generator the Stream owns (unit tests of one stage).
template <class T>
class GeneratorOwningInput final : public Input<T> {
 public:
  explicit GeneratorOwningInput(Generator<T>&& generator) : generator_(std::move(generator)) {}

 private:
  T* pull() override { return GeneratorAccess<T>::next(generator_); }
  Generator<T> generator_;
};

// A Stream over a range: borrowed when the range is an lvalue, owned when it is an rvalue.
// Elements that are not T& (a const range, a range of values convertible to T) are copied into
// one T at a time, so the consumer may still move from what it receives.
template <class T, class Range>
class RangeInput final : public Input<T> {
  using Stored = std::conditional_t<std::is_lvalue_reference_v<Range>, Range,
                                    std::remove_cvref_t<Range>>;
  using Iterator = decltype(std::ranges::begin(std::declval<Stored&>()));
  static constexpr bool kDirect =
      std::is_same_v<std::iter_reference_t<Iterator>, T&>;

 public:
  explicit RangeInput(Range&& range) : range_(std::forward<Range>(range)) {}

 private:
  T* pull() override {
    if (!started_) {
      started_ = true;
      iterator_ = std::ranges::begin(range_);
    } else {
      ++iterator_;
    }
    if (iterator_ == std::ranges::end(range_)) return nullptr;
    if constexpr (kDirect) {
      return std::addressof(*iterator_);
    } else {
      return std::addressof(current_.emplace(*iterator_));
    }
  }

  Stored range_;
  Iterator iterator_{};
  bool started_ = false;
  [[no_unique_address]] std::conditional_t<kDirect, std::nullptr_t, std::optional<T>> current_{};
};

}  // namespace detail

/// The input of a processor or sink stage: a single-pass input range of `T&`.
///
/// The stage may move from each element. Advancing the stream (`++it`, the next loop iteration)
/// releases the previous packet: in thread and process mode its slot goes back to the producer,
/// so do not keep references to an element past the next iteration.
///
/// A stage must read its Stream to the end: a processor or sink that returns while its input
/// still has packets is an error (`StageError`), because those packets would be lost.
///
/// Inside a pipeline plumb builds the Stream. To unit-test a stage on its own, build one from a
/// Generator, a container or a braced list:
/// ```cpp
/// plumb::Generator<int> plus(plumb::Stream<int> in, int k) { for (int x : in) co_yield x + k; }
/// std::vector<int> out;
/// for (int x : plus(plumb::Stream<int>{1, 2, 3}, 5)) out.push_back(x);  // 6 7 8
/// ```
///
/// Thread or process affinity: one thread at a time.
template <class T>
class Stream {
  static_assert(detail::check_stream_element<T>());
  // What the packets are held as: T, or a stand-in for a T the rule rejects (so that the class
  // stays well-formed, and a stage taking it adds no error to the rule's).
  using Value = detail::StoredAs<T>;

 public:
  /// The type of the packets.
  using value_type = T;
  /// What an iterator gives: the current packet, which the stage may move from.
  using reference = Value&;

  /// The input iterator of a Stream; `*it` is the current packet as `T&`.
  class iterator {
   public:
    /// The type of the packets.
    using value_type = T;
    /// What `*it` gives: the current packet, which the stage may move from.
    using reference = Value&;
    /// Required by `std::input_iterator`; never used for arithmetic.
    using difference_type = std::ptrdiff_t;
    /// Single pass: an input iterator.
    using iterator_concept = std::input_iterator_tag;

    iterator() noexcept = default;
    /// Returns the current packet. Valid until the next `++it`.
    reference operator*() const noexcept { return *stream_->current_; }
    /// Points at the current packet. Valid until the next `++it`.
    Value* operator->() const noexcept { return stream_->current_; }
    /// Releases the current packet and waits for the next one. Throws what the producer threw.
    iterator& operator++() {
      stream_->current_ = stream_->input_->next();
      return *this;
    }
    /// Releases the current packet and waits for the next one, as `++it` (returns nothing:
    /// single pass).
    void operator++(int) { ++*this; }
    /// True once the input has ended: the iterator has reached `end()`.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.done();
    }

   private:
    friend class Stream;
    explicit iterator(Stream* stream) noexcept : stream_(stream) {}
    [[nodiscard]] bool done() const noexcept { return stream_->current_ == nullptr; }
    Stream* stream_ = nullptr;
  };

  /// A stream of what `generator` yields; the Stream owns the generator.
  explicit Stream(Generator<T>&& generator)
      : owned_(std::make_unique<detail::GeneratorOwningInput<T>>(std::move(generator))),
        input_(owned_.get()) {}

  /// A stream of the elements of `range`: borrowed if it is an lvalue (it must outlive the
  /// Stream), moved into the Stream if it is an rvalue.
  template <std::ranges::input_range Range>
    requires(!std::is_same_v<std::remove_cvref_t<Range>, Stream> &&
             !std::is_same_v<std::remove_cvref_t<Range>, Generator<T>> &&
             (std::is_same_v<std::ranges::range_reference_t<Range>, T&> ||
              std::is_constructible_v<T, std::ranges::range_reference_t<Range>>))
  explicit Stream(Range&& range)
      : owned_(std::make_unique<detail::RangeInput<T, Range>>(std::forward<Range>(range))),
        input_(owned_.get()) {}

  /// A stream of copies of `values`.
  Stream(std::initializer_list<T> values) : Stream(std::vector<T>(values)) {}

  /// Takes over the input of `other` and its position in it; `other` must not be used again.
  Stream(Stream&& other) noexcept
      : owned_(std::move(other.owned_)),
        input_(std::exchange(other.input_, nullptr)),
        current_(std::exchange(other.current_, nullptr)),
        started_(std::exchange(other.started_, false)) {}
  Stream& operator=(Stream&&) = delete;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() = default;

  /// Waits for the first packet. Call once: a Stream is single-pass.
  ///
  /// Preconditions: begin() was not called before (contract: aborts otherwise).
  /// Throws: what the producer threw.
  iterator begin() {
    PLUMB_ASSERT(!started_, "plumb::Stream: begin() called twice; a Stream is single-pass");
    PLUMB_ASSERT(input_ != nullptr, "plumb::Stream: used after it was moved from");
    started_ = true;
    current_ = input_->next();
    return iterator{this};
  }
  /// The end of the range: an iterator equals it once the input has ended.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  template <class>
  friend struct detail::StreamAccess;

  explicit Stream(detail::Input<Value>& input) noexcept : input_(&input) {}

  std::unique_ptr<detail::Input<Value>> owned_;
  detail::Input<Value>* input_ = nullptr;
  Value* current_ = nullptr;
  bool started_ = false;
};

/// Deduces `Stream<T>` from a `Generator<T>`, as in `plumb::Stream in(numbers(3))`.
template <class T>
Stream(Generator<T>&&) -> Stream<T>;
/// Deduces `Stream<T>` from a range of `T`, as in `plumb::Stream in(std::vector<int>{1, 2})`.
template <std::ranges::input_range Range>
Stream(Range&&) -> Stream<std::ranges::range_value_t<Range>>;

namespace detail {

// The runner's way to build a Stream over one of its inputs (links, fused generators).
template <class T>
struct StreamAccess {
  static Stream<T> over(Input<T>& input) noexcept { return Stream<T>{input}; }
};

template <class>
struct IsStream : std::false_type {};
template <class T>
struct IsStream<Stream<T>> : std::true_type {
  using element = T;
};

}  // namespace detail
}  // namespace plumb
