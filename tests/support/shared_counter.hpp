#pragma once
// SPDX-License-Identifier: MIT
// tests/support/shared_counter.hpp: a counter that worker processes can bump too.

#include <catch2/catch.hpp>

#include <sys/mman.h>

#include <atomic>
#include <new>

namespace plumb::test {

// An std::atomic<T> in an anonymous shared mapping: a forked worker's writes reach the test.
template <class T = long>
class SharedCounter {
  static_assert(std::atomic<T>::is_always_lock_free, "SharedCounter: needs a lock-free atomic");

 public:
  SharedCounter()
      : value_(static_cast<std::atomic<T>*>(::mmap(nullptr, sizeof(std::atomic<T>),
                                                   PROT_READ | PROT_WRITE,
                                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0))) {
    REQUIRE(static_cast<void*>(value_) != MAP_FAILED);
    new (value_) std::atomic<T>(T{});
  }
  ~SharedCounter() { ::munmap(value_, sizeof(std::atomic<T>)); }
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;
  std::atomic<T>& operator*() const { return *value_; }
  std::atomic<T>* get() const { return value_; }
  [[nodiscard]] T load() const { return value_->load(); }

 private:
  std::atomic<T>* value_;
};

}  // namespace plumb::test
