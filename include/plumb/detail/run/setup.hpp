#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run/setup.hpp: RunSetup, everything a run needs before it starts, prepared once
// the same way for Pipeline::run(), Pipeline::stream() and Service::start().

#include <plumb/detail/core/format.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/run/validate.hpp>
#include <plumb/error.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace plumb::detail {

// The stages' names (a stage without .name() is "stage <index>"), their options checked, the
// run options checked, the plan, and the run's state (first error, stop).
// Throws ConfigError from the constructor, before anything runs.
//
// `sink_returns_value`: the last stage is a sink with a result, which one worker must produce.
// `caller_consumes`: the last stage stands for the thread iterating a stream's results.
template <std::size_t Count>
class RunSetup {
 public:
  template <class... Specs>
  RunSetup(const std::tuple<const Specs&...>& specs, const RunOptions& options,
           bool sink_returns_value, bool caller_consumes = false)
      : options_(options) {
    static_assert(sizeof...(Specs) == Count);
    std::apply(
        [&](const auto&... spec) {
          std::size_t index = 0;
          ((stage_options_[index] = &spec.options(),
            max_message_sizes_[index] = message_size_of(spec.options(), options),
            names_.push_back(spec.options().name.empty() ? detail::format("stage {}", index)
                                                         : spec.options().name),
            ++index),
           ...);
        },
        specs);
    validate_stages(stage_options_, names_, sink_returns_value);
    validate_run_options(options_);
    plan_ = make_plan(stage_options_, names_, options_.mode, sink_returns_value, caller_consumes);
  }
  RunSetup(const RunSetup&) = delete;
  RunSetup& operator=(const RunSetup&) = delete;

  [[nodiscard]] const RunOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }
  [[nodiscard]] const std::array<const StageOptions*, Count>& stage_options() const noexcept {
    return stage_options_;
  }
  [[nodiscard]] const std::array<std::size_t, Count>& max_message_sizes() const noexcept {
    return max_message_sizes_;
  }
  [[nodiscard]] const Plan& plan() const noexcept { return plan_; }
  [[nodiscard]] RunState& state() noexcept { return state_; }

  // Who raised the run's error, if a stage did (for last_failure()); empty if it cannot be told.
  [[nodiscard]] std::optional<Failure> failure() const noexcept {
    try {
      return state_.failure();
    } catch (...) {
      return std::nullopt;  // out of memory copying it: the error itself still reaches the caller
    }
  }

 private:
  RunOptions options_;
  std::vector<std::string> names_;
  std::array<const StageOptions*, Count> stage_options_{};
  std::array<std::size_t, Count> max_message_sizes_{};
  Plan plan_;
  RunState state_;
};

}  // namespace plumb::detail
