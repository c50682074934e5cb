#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/cache_line.hpp: the alignment that keeps data written by different threads
// (or processes) on different cache lines.

#include <cstddef>

namespace plumb::detail {

// 64 bytes on every x86-64 and most AArch64 parts. Not std::hardware_destructive_interference_size:
// its value may differ between compilers, and the shared-memory layouts must not.
inline constexpr std::size_t kCacheLine = 64;

}  // namespace plumb::detail
