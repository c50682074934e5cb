#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/with_index.hpp: from a run-time stage index to a compile-time one.

#include <cstddef>
#include <type_traits>
#include <utility>

namespace plumb::detail {

// Calls f(std::integral_constant<std::size_t, I>{}) for the I equal to `index` (< Count).
template <std::size_t Count, class F>
void with_index(std::size_t index, F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (void)((index == I && (f(std::integral_constant<std::size_t, I>{}), true)) || ...);
  }(std::make_index_sequence<Count>{});
}

}  // namespace plumb::detail
