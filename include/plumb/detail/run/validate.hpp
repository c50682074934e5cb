#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run/validate.hpp: the run-time configuration checks done before anything starts.

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/error.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>

#include <chrono>
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>

namespace plumb::detail {

template <class... Args>
[[noreturn]] void throw_config_error(std::size_t index, std::string_view name,
                                     FormatString<Args...> format, Args&&... args) {
  throw ConfigError(detail::format("plumb.config_error: {}: {}", describe_stage(index, name),
                                   detail::format(format, std::forward<Args>(args)...)));
}

// The in_flight a stage runs with: the one it set, else its worker count.
[[nodiscard]] inline std::int64_t effective_in_flight(const StageOptions& options) noexcept {
  return options.in_flight.value_or(options.workers);
}

// Throws ConfigError for the first option out of range. `names[i]` is stage i's display name.
inline void validate_stages(std::span<const StageOptions* const> stages,
                            std::span<const std::string> names, bool sink_returns_value) {
  for (std::size_t index = 0; index < stages.size(); ++index) {
    const StageOptions& options = *stages[index];
    const std::string& name = names[index];
    if (options.workers < 1 || options.workers > kMaxWorkers) {
      throw_config_error(index, name, "workers({}) is out of range; use 1 to {}", options.workers,
                         kMaxWorkers);
    }
    const std::int64_t in_flight = effective_in_flight(options);
    if (in_flight < options.workers) {
      throw_config_error(index, name,
                         "in_flight({}) is less than workers({}); each worker needs a slot for "
                         "the packet it builds: raise in_flight to at least {} or lower workers",
                         in_flight, options.workers, options.workers);
    }
    if (in_flight > kMaxInFlight) {
      throw_config_error(index, name, "in_flight({}) is above the limit of {}; lower it",
                         in_flight, kMaxInFlight);
    }
    if (options.max_message_size > kMaxMessageSize) {
      throw_config_error(index, name, "max_message_size({}) is above the limit of {} bytes",
                         options.max_message_size, kMaxMessageSize);
    }
    if (options.max_message_size == 0) {
      throw_config_error(index, name,
                         "max_message_size(0) leaves no room for a message; give the largest "
                         "serialized message size in bytes");
    }
  }
  const std::size_t sink = stages.size() - 1;
  if (sink_returns_value && stages[sink]->workers != 1) {
    throw_config_error(sink, names[sink],
                       "a sink that returns a value must have one worker, not workers({}), since "
                       "run() returns one value; return void, or keep one sink worker",
                       stages[sink]->workers);
  }
}

// Throws ConfigError for a negative duration in `options`.
// The slot size of a stage's output link (where it crosses processes) in a run with `run`:
// its own max_message_size, raised to RunOptions::max_message_size.
inline std::size_t message_size_of(const StageOptions& stage, const RunOptions& run) noexcept {
  return std::max(stage.max_message_size, run.max_message_size);
}

inline void validate_run_options(const RunOptions& options) {
  const auto check = [](std::chrono::steady_clock::duration value, std::string_view what) {
    if (value < std::chrono::steady_clock::duration::zero()) {
      throw ConfigError(
          detail::format("plumb.config_error: RunOptions::{} is negative; use zero or "
                         "a positive duration",
                         what));
    }
  };
  if (options.max_message_size > kMaxMessageSize) {
    throw ConfigError(detail::format(
        "plumb.config_error: RunOptions::max_message_size({}) is over the largest slot plumb maps ({} bytes)",
        options.max_message_size, kMaxMessageSize));
  }
  check(options.inactivity_timeout, "inactivity_timeout");
  check(options.grace_period, "grace_period");
  check(options.progress_interval, "progress_interval");
}

}  // namespace plumb::detail
