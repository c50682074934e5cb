#pragma once
// SPDX-License-Identifier: MIT
// plumb/generator.hpp: Generator<T>, the lazy, move-only coroutine generator every stage returns.

#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <type_traits>
#include <utility>

// Clang 14 with AddressSanitizer cannot assemble inline (comdat) coroutines defined in a header
// ("Cannot represent a difference across sections"); there plumb's own header coroutines get
// internal linkage instead. PLUMB_DETAIL_HEADER_COROUTINE goes before such a coroutine
// template (a non-template one also needs `inline` otherwise, see redis.hpp).
#if defined(__clang__) && __clang_major__ < 15 && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PLUMB_DETAIL_STATIC_COROUTINES 1
#endif
#endif
#ifdef PLUMB_DETAIL_STATIC_COROUTINES
#define PLUMB_DETAIL_HEADER_COROUTINE [[maybe_unused]] static
#else
#define PLUMB_DETAIL_HEADER_COROUTINE
#endif

namespace plumb {

template <class T>
class Generator;

namespace detail {
template <class T>
struct GeneratorAccess;
template <class>
inline constexpr bool dependent_false = false;
// What a Generator<T> or Stream<T> whose T breaks their rule (a reference, an array, const)
// holds instead: an object type close to T, else a stand-in that converts to anything. The
// class stays well-formed, so the rule's static_assert is the one error (no "forming pointer to
// reference", no error in the stage's body). Never used at run time: the program does not
// compile.
struct NotAValue {
  template <class U>
  operator U&() const;
};
template <class T>
using StoredAs =
    std::conditional_t<std::is_object_v<T> && !std::is_array_v<T>, std::remove_cv_t<T>, NotAValue>;
template <class T>
inline constexpr bool kPacketType =
    std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_array_v<T>;

// The rules on a Generator's and a Stream's T, each a function called from a static_assert in
// the class: a failed static_assert inside a function leaves the class well-formed, so Clang
// adds no error of its own for each use of the class (a class whose static_assert fails is
// invalid there). They return true: the failure is the static_assert inside.
template <class T>
constexpr bool check_generator_element() {
  static_assert(kPacketType<T>,
                "plumb::Generator<T>: T must be a non-const, non-array object type (not a "
                "reference); yield values, e.g. Generator<std::string> rather than "
                "Generator<const std::string&>");
  return true;
}
template <class T>
constexpr bool check_stream_element() {
  static_assert(kPacketType<T>,
                "plumb::Stream<T>: T must be a non-const, non-array object type (not a "
                "reference), the same T as the previous stage's Generator<T>");
  return true;
}
}  // namespace detail

/// A lazy, move-only coroutine generator of `T` values: the return type of every source and
/// processor stage, and an input range of `T&` on its own.
///
/// - Lazy: the body starts running at the first `begin()`.
/// - `co_yield std::move(x)` and `co_yield make_x()` hand the object itself to the consumer (no
///   copy); `co_yield x` of an lvalue hands over a copy, so the body's own `x` is left untouched
///   (as `std::generator`). The consumer may move from the element it receives.
/// - An exception thrown in the body reaches whoever resumes it: `begin()` or `operator++`.
/// - Destroying the generator before it finished destroys the body's locals.
/// - `co_await` is not allowed in a generator body.
///
/// Thread or process affinity: resume a generator from one thread at a time.
///
/// Example:
/// ```cpp
/// plumb::Generator<int> numbers(int count) {
///   for (int i = 0; i < count; ++i) co_yield i;
/// }
/// for (int x : numbers(3)) std::cout << x;  // 012
/// ```
template <class T>
class [[nodiscard]] Generator {
  static_assert(detail::check_generator_element<T>());
  static constexpr bool kValidT = detail::kPacketType<T>;
  // What the body's values are held as: T, or a stand-in for a T the rule rejects (so that the
  // class stays well-formed and the rule's static_assert is the one error).
  using Value = detail::StoredAs<T>;

 public:
  class promise_type;
  class iterator;
  /// The type of the values the body yields.
  using value_type = T;
  /// What an iterator gives: the current value, which the consumer may move from.
  using reference = Value&;
  using handle_type = std::coroutine_handle<promise_type>;

  class promise_type {
   public:
    Generator get_return_object() noexcept { return Generator{handle_type::from_promise(*this)}; }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    // An rvalue lives in the coroutine frame until the body is resumed (end of the full
    // expression that contains co_yield), so pointing at it is enough: no copy, no move.
    std::suspend_always yield_value(Value&& value) noexcept {
      value_ = std::addressof(value);
      return {};
    }

    // An lvalue is copied into the awaiter (which also lives until the body resumes), so the
    // consumer may move from what it receives without disturbing the body's variable.
    auto yield_value(const Value& value) noexcept(std::is_nothrow_copy_constructible_v<Value>) {
      if constexpr (std::is_copy_constructible_v<Value>) {
        return CopyAwaiter{value};
      } else {  // the one error: no "deleted copy constructor" after it
        static_assert(std::is_copy_constructible_v<Value>,
                      "plumb::Generator: co_yield of an lvalue hands over a copy, and T is not "
                      "copyable; write co_yield std::move(value)");
        return std::suspend_always{};
      }
    }

    // A body of a Generator<T> whose T breaks the rule yields anything without an error of its
    // own: the class's static_assert reports the rule.
    template <class U>
      requires(!kValidT)
    std::suspend_always yield_value(U&&) noexcept {
      return {};
    }

    // Any co_await in the body lands here; the static_assert names the rule (instead of the
    // "deleted function" error that cppcoro's `= delete` gives).
    template <class U>
    std::suspend_never await_transform(U&&) {
      static_assert(detail::dependent_false<U>,
                    "plumb::Generator: co_await is not allowed in a generator stage; stages are "
                    "synchronous, call the blocking function directly");
      return {};
    }

   private:
    friend class Generator;
    friend class iterator;
    template <class>
    friend struct detail::GeneratorAccess;

    struct CopyAwaiter {
      Value copy;
      bool await_ready() const noexcept { return false; }
      void await_suspend(handle_type handle) noexcept {
        handle.promise().value_ = std::addressof(copy);
      }
      void await_resume() const noexcept {}
    };

    // Resumes the body; returns the next value or nullptr once it finished. Rethrows what the
    // body threw.
    Value* resume(handle_type handle) {
      handle.resume();
      if (handle.done()) {
        value_ = nullptr;
        if (exception_) std::rethrow_exception(std::exchange(exception_, nullptr));
        return nullptr;
      }
      return value_;
    }

    Value* value_ = nullptr;
    std::exception_ptr exception_;
  };

  /// The input iterator of a Generator; `*it` is the current value as `T&`.
  class iterator {
   public:
    /// The type of the values the body yields.
    using value_type = T;
    /// What `*it` gives: the current value, which the consumer may move from.
    using reference = Value&;
    /// Required by `std::input_iterator`; never used for arithmetic.
    using difference_type = std::ptrdiff_t;
    /// Single pass: an input iterator.
    using iterator_concept = std::input_iterator_tag;

    /// An iterator at the end (what `begin()` returns for an empty generator).
    iterator() noexcept = default;
    /// Returns the current value. Valid until the next `++it`.
    reference operator*() const noexcept { return *value_; }
    /// Points at the current value. Valid until the next `++it`.
    Value* operator->() const noexcept { return value_; }
    /// Resumes the body until its next value. Throws what the body throws.
    iterator& operator++() {
      value_ = handle_.promise().resume(handle_);
      return *this;
    }
    /// Resumes the body until its next value, as `++it` (returns nothing: single pass).
    void operator++(int) { ++*this; }
    /// True once the body has finished: the iterator has reached `end()`.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.value_ == nullptr;
    }

   private:
    friend class Generator;
    iterator(handle_type handle, Value* value) noexcept : handle_(handle), value_(value) {}
    handle_type handle_{};
    Value* value_ = nullptr;
  };

  /// An empty generator: no body, yields nothing.
  Generator() noexcept = default;
  /// Takes over the coroutine of `other`, which becomes empty.
  Generator(Generator&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  /// Destroys this generator's coroutine, then takes over the one of `other`, which becomes
  /// empty.
  Generator& operator=(Generator&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  /// Destroys the coroutine, and with it the body's locals if the body has not finished.
  ~Generator() { destroy(); }

  /// Starts the body and runs it to its first value. Call once.
  ///
  /// Throws: what the body throws before its first value.
  iterator begin() {
    if (!handle_) return iterator{};
    return iterator{handle_, handle_.promise().resume(handle_)};
  }
  /// The end of the range: an iterator equals it once the body has finished.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  template <class>
  friend struct detail::GeneratorAccess;

  explicit Generator(handle_type handle) noexcept : handle_(handle) {}
  void destroy() noexcept {
    if (handle_) handle_.destroy();
  }

  handle_type handle_{};
};

namespace detail {

// The runner's way to drive a Generator one value at a time without an iterator.
template <class T>
struct GeneratorAccess {
  // Next value, or nullptr once the body finished (also for an empty Generator).
  static T* next(Generator<T>& generator) {
    auto handle = generator.handle_;
    if (!handle || handle.done()) return nullptr;
    return handle.promise().resume(handle);
  }
};

template <class>
struct IsGenerator : std::false_type {};
template <class T>
struct IsGenerator<Generator<T>> : std::true_type {
  using element = T;
};

}  // namespace detail
}  // namespace plumb
