#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/assert.hpp: PLUMB_ASSERT, the contract-violation channel (abort, never throw).

#include <cstdio>
#include <cstdlib>

// API misuse (calling begin() twice on a Stream, running one Pipeline object from two threads at
// once) is a bug in the caller, not a recoverable condition: it aborts with a message. Define
// PLUMB_ASSERT before including plumb to route it elsewhere (the pattern of fmt's FMT_ASSERT).
#ifndef PLUMB_ASSERT
#define PLUMB_ASSERT(condition, message)                                                    \
  ((condition) ? static_cast<void>(0)                                                       \
               : ::plumb::detail::assert_fail(__FILE__, __LINE__, #condition, (message)))
#endif

namespace plumb::detail {

[[noreturn]] inline void assert_fail(const char* file, int line, const char* condition,
                                     const char* message) noexcept {
  std::fprintf(stderr, "%s:%d: plumb contract violation: %s (%s)\n", file, line, message,
               condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace plumb::detail
