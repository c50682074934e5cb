#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run/plan.hpp: where each stage runs: fused groups, their workers and their links.

#include <plumb/detail/core/assert.hpp>
#include <plumb/detail/run/validate.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stage.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace plumb::detail {

// A run of stages executed together by the same workers: the first stage and the stages fused
// after it (mode sequential), each pulling straight from the generator before it.
struct GroupPlan {
  std::size_t first = 0;
  std::size_t last = 0;
  std::size_t workers = 1;
  // thread: one thread per worker; process: one process per worker; sequential: the calling
  // thread (only the group of the pipeline's source can be).
  Mode mode = Mode::thread;
  // Its outputs leave in the order of its inputs (the first stage's .ordered(), several workers).
  bool ordered = false;
  // The calling thread consumes this group's input (Pipeline::stream()): it has no stage body
  // and no thread of its own.
  bool caller = false;
  // Its workers run only on their own threads (a stage of the group is .pinned()).
  bool pinned = false;
};

struct Plan {
  // fused[i]: stage i runs inside the workers of stage i - 1 (no link between them).
  std::vector<bool> fused;
  std::vector<GroupPlan> groups;
  // capacity[i]: slots of the link after stage i (0 where stage i + 1 is fused, and for the sink).
  std::vector<std::size_t> capacity;

  // Whether the link after group `group` (not the last) crosses a process boundary: the group
  // before it or the one after it runs in worker processes. Such a link is a ShmLink in the
  // run's shared mapping, its packets serialized into slots of max_message_size bytes.
  [[nodiscard]] bool crosses_processes(std::size_t group) const noexcept {
    return groups[group].mode == Mode::process || groups[group + 1].mode == Mode::process;
  }

  // Workers that run in processes of their own.
  [[nodiscard]] std::size_t process_workers() const noexcept {
    std::size_t count = 0;
    for (const GroupPlan& group : groups) {
      if (group.mode == Mode::process) count += group.workers;
    }
    return count;
  }

  // Workers that need a thread of their own.
  [[nodiscard]] std::size_t thread_workers() const noexcept {
    std::size_t count = 0;
    for (const GroupPlan& group : groups) {
      if (group.mode == Mode::thread) count += group.workers;
    }
    return count;
  }
};

// .ordered() is for a stage with workers of its own between a source and a sink.
inline void check_ordered(std::size_t index, std::size_t count, std::span<const std::string> names,
                          const StageOptions& options) {
  if (index == 0) {
    throw_config_error(index, names[index],
                       "ordered() keeps a stage's output in the order of its input, and a source "
                       "has no input; remove .ordered()");
  }
  if (index + 1 == count) {
    throw_config_error(index, names[index],
                       "ordered() keeps a stage's output in the order of its input, and a sink "
                       "has no output; remove .ordered(), or put it on the stage before");
  }
  if (options.mode == Mode::sequential) {
    throw_config_error(index, names[index],
                       "the stage is fused (mode sequential) into the workers of the stage before "
                       "it, so ordered() cannot apply to it alone; put .ordered() on the stage "
                       "whose workers run it, or remove .mode(Mode::sequential)");
  }
}

// Decides where every stage runs, and checks what only the plan can tell. Throws ConfigError.
// `sink_returns_value`: the last stage is a sink with a result, which one worker must produce.
// `caller_consumes`: the last stage stands for the calling thread iterating the results
// (Pipeline::stream()); unless it is fused into a sequential run, its group is marked `caller`.
inline Plan make_plan(std::span<const StageOptions* const> stages,
                      std::span<const std::string> names, Mode run_mode,
                      bool sink_returns_value, bool caller_consumes = false) {
  const std::size_t count = stages.size();
  Plan plan;
  plan.fused.assign(count, false);
  plan.capacity.assign(count, 0);
  for (std::size_t index = 0; index < count; ++index) {
    const StageOptions& options = *stages[index];
    const Mode mode = options.mode.value_or(run_mode);
    if (options.mode == Mode::sequential && options.workers != 1) {
      throw_config_error(index, names[index],
                         "the stage is fused (mode sequential) and runs inside the workers of the "
                         "stage before it, so workers({}) cannot apply: remove .workers() or "
                         ".mode(Mode::sequential)",
                         options.workers);
    }
    if (options.ordered) check_ordered(index, count, names, options);
    if (index > 0 && mode == Mode::sequential) {
      plan.fused[index] = true;
      plan.groups.back().last = index;
      plan.groups.back().pinned = plan.groups.back().pinned || options.pinned;
    } else {
      // A whole-pipeline sequential run ignores workers (validated, then unused).
      const std::size_t workers =
          mode == Mode::sequential ? 1 : static_cast<std::size_t>(options.workers);
      plan.groups.push_back(GroupPlan{index, index, workers, mode, options.ordered && workers > 1,
                                      false, options.pinned});
    }
  }
  // An ordered stage whose group ends in the sink (fused into its workers) has no output link
  // to keep in order.
  if (plan.groups.back().ordered) {
    const std::size_t first = plan.groups.back().first;
    throw_config_error(first, names[first],
                       "ordered() keeps a stage's output in the order of its input, but the sink "
                       "is fused (mode sequential) into this stage's workers, so there is no "
                       "output to order; remove .ordered(), or do not fuse the sink");
  }
  if (caller_consumes && plan.groups.size() > 1) {
    PLUMB_ASSERT(plan.groups.back().first == count - 1 && plan.groups.back().workers == 1,
                 "plumb: the caller's stage of a stream must be a group of its own");
    plan.groups.back().caller = true;
  }
  // A fused sink runs in every worker of its group, and each would return a value of its own,
  // of which run() could return only one.
  const GroupPlan& last = plan.groups.back();
  if (sink_returns_value && last.first != last.last && last.workers > 1) {
    throw_config_error(count - 1, names[count - 1],
                       "a sink that returns a value must run in one worker, but it is fused (mode "
                       "sequential) into the {} workers of stage {}, and run() returns one value; "
                       "return void, give stage {} one worker, or do not fuse the sink",
                       last.workers, last.first, last.first);
  }
  for (std::size_t group = 0; group + 1 < plan.groups.size(); ++group) {
    const GroupPlan& producer = plan.groups[group];
    const StageOptions& options = *stages[producer.last];
    const std::int64_t in_flight =
        options.in_flight.value_or(static_cast<std::int64_t>(producer.workers));
    if (in_flight < static_cast<std::int64_t>(producer.workers)) {
      throw_config_error(producer.last, names[producer.last],
                         "in_flight({}) is less than the {} workers of stage {} that produce its "
                         "output link; raise in_flight to at least {}",
                         in_flight, producer.workers, producer.first, producer.workers);
    }
    plan.capacity[producer.last] = static_cast<std::size_t>(in_flight);
  }
  return plan;
}

}  // namespace plumb::detail
