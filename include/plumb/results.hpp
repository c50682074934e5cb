#pragma once
// SPDX-License-Identifier: MIT
// plumb/results.hpp: Results<T>, the packets of a running pipeline's last stage, iterated by the
// calling thread (Pipeline::stream()).

#include <cstddef>
#include <iterator>
#include <memory>
#include <utility>

namespace plumb {

namespace detail {

// A running stream, as Results sees it (implemented by Pipeline's stream run).
template <class T>
class ResultsSource {
 public:
  ResultsSource() = default;
  ResultsSource(const ResultsSource&) = delete;
  ResultsSource& operator=(const ResultsSource&) = delete;
  virtual ~ResultsSource() = default;

  // The next packet, valid until the next call; nullptr once the stream ended and the run is
  // over. Throws the run's first error (the run is then over too).
  virtual T* next() = 0;
  // Stops the run before the stream ended and waits for it; throws the run's first error if
  // one happened before, unless `quiet`.
  virtual void close(bool quiet) = 0;
};

}  // namespace detail

/// The packets of a pipeline's last stage, while the pipeline runs: a single-pass input range
/// returned by `Pipeline::stream()`, consumed by the thread that iterates it.
///
/// The caller is the consumer of the last stage's output link: the packet the iterator points
/// to holds one of that link's `in_flight` slots until the iterator moves on, so the last stage
/// runs at most `in_flight` packets ahead of the loop. The pipeline's first error is thrown from
/// `begin()` or `++`. Leaving the loop early (or destroying the Results before its end) stops
/// the pipeline and waits for it, without an error of its own; `close()` does the same and
/// throws an error the pipeline had before, which the destructor can only record in
/// `Pipeline::last_failure()`.
///
/// Thread affinity: one thread at a time; the `Pipeline` it came from must outlive it and is
/// busy (cannot run) until it is closed or destroyed.
///
/// Example:
/// ```cpp
/// for (const Frame& frame : pipeline.stream()) {
///   if (frame.last) break;   // stops the pipeline cleanly
///   show(frame);
/// }
/// ```
template <class T>
class Results {
 public:
  /// A position in the stream: `*it` is the current packet, valid until `++it`.
  class iterator {
   public:
    /// The packet type.
    using value_type = T;
    /// As every iterator declares; an input iterator has no use for it.
    using difference_type = std::ptrdiff_t;
    /// What `*it` gives: the packet itself, which the loop may move from.
    using reference = T&;
    /// A single-pass input iterator.
    using iterator_category = std::input_iterator_tag;

    iterator() noexcept = default;
    /// The current packet (precondition: not at the end).
    T& operator*() const noexcept { return *packet_; }
    /// The current packet's address (precondition: not at the end).
    T* operator->() const noexcept { return packet_; }
    /// Moves to the next packet, releasing the current one. Throws the pipeline's first error.
    iterator& operator++() {
      packet_ = results_->advance();
      return *this;
    }
    /// As `++it` (returns nothing: single pass).
    void operator++(int) { ++*this; }
    /// True once the stream has ended.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.packet_ == nullptr;
    }

   private:
    friend class Results;
    iterator(Results* results, T* packet) noexcept : results_(results), packet_(packet) {}
    Results* results_ = nullptr;
    T* packet_ = nullptr;
  };

  /// Takes over the stream of `other`, which becomes empty (its begin() equals its end()).
  Results(Results&& other) noexcept : source_(std::move(other.source_)) {}
  /// Closes this stream (as the destructor does), then takes over the one of `other`.
  Results& operator=(Results&& other) noexcept {
    if (this != &other) {
      close_quietly();
      source_ = std::move(other.source_);
    }
    return *this;
  }
  Results(const Results&) = delete;
  Results& operator=(const Results&) = delete;
  /// Stops the pipeline if the stream has not ended, and waits for every worker. Never throws:
  /// an error the pipeline had is left in `Pipeline::last_failure()`.
  ~Results() { close_quietly(); }

  /// The first packet (the pipeline runs already). Call once.
  /// Throws: the pipeline's first error.
  iterator begin() { return iterator{this, advance()}; }
  /// The end of the stream.
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Stops the pipeline if the stream has not ended, and waits for every worker; the Results is
  /// then empty.
  /// Throws: an error the pipeline had before it was stopped (nothing if it ran cleanly so far).
  void close() {
    if (!source_) return;
    auto source = std::move(source_);
    source->close(false);
  }

 private:
  template <class...>
  friend class Pipeline;
  template <class...>
  friend class Graph;
  explicit Results(std::unique_ptr<detail::ResultsSource<T>> source) noexcept
      : source_(std::move(source)) {}

  T* advance() {
    if (!source_) return nullptr;
    T* packet = nullptr;
    try {
      packet = source_->next();
    } catch (...) {
      source_.reset();  // the run is over
      throw;
    }
    if (packet == nullptr) source_.reset();
    return packet;
  }

  void close_quietly() noexcept {
    if (!source_) return;
    auto source = std::move(source_);
    source->close(true);
  }

  std::unique_ptr<detail::ResultsSource<T>> source_;
};

}  // namespace plumb
