#pragma once
// SPDX-License-Identifier: MIT
// tests/support/futexes.hpp: the two kinds of futex of the wait primitives, as types, so that
// TEMPLATE_TEST_CASE runs a test with each.

#include <plumb/detail/sync/wait.hpp>

namespace plumb::test {

template <plumb::detail::Sharing S>
struct Futexes {
  static constexpr plumb::detail::Sharing value = S;
};
using PrivateFutexes = Futexes<plumb::detail::Sharing::process_private>;
using SharedFutexes = Futexes<plumb::detail::Sharing::process_shared>;

}  // namespace plumb::test
