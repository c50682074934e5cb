#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/deadline.hpp: a time point plus a user's duration, without signed overflow.

#include <chrono>

namespace plumb::detail {

// `at + span`, saturated at the clock's largest time point. RunOptions durations may be as
// large as `duration::max()` (a documented way to say "never"), and adding that to now()
// overflows the signed tick count: undefined behaviour, which in practice wraps to the distant
// past, so that a deadline meant to be "never" would always be due.
// Precondition: `span` is not negative (validate_run_options rejects negative durations).
[[nodiscard]] inline std::chrono::steady_clock::time_point later_by(
    std::chrono::steady_clock::time_point at, std::chrono::steady_clock::duration span) noexcept {
  using TimePoint = std::chrono::steady_clock::time_point;
  // TimePoint::max() - span cannot overflow: span is not negative.
  if (at > TimePoint::max() - span) return TimePoint::max();
  return at + span;
}

}  // namespace plumb::detail
