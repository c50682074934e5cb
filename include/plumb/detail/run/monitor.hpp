#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run/monitor.hpp: watches one run: builds plumb::Stats snapshots from the workers'
// tallies, samples link depths, calls the progress callback, and raises InactivityError when no
// packet moved (was yielded or taken) for inactivity_timeout.

#include <plumb/detail/core/deadline.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/run/plan.hpp>
#include <plumb/detail/run/run_state.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/error.hpp>
#include <plumb/run_options.hpp>
#include <plumb/stats.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace plumb::detail {

inline std::string format_seconds(std::chrono::steady_clock::duration duration) {
  return detail::format("{:.3f} s", std::chrono::duration<double>(duration).count());
}

// Who does what in a run, as the monitor needs it to read the tallies: worker ids are numbered
// group by group, so worker `id` is worker `id - first_worker[group]` of its group.
// A plumb::Graph's shape, for its statistics: each node is a group of its own, reads the nodes
// `inputs[k]` through one input link of `capacity[k]` slots (`shared[k]`: across processes),
// and each worker counts the packets it sends into node c's link in its slot of stage c
// (StageSlot::out: a graph worker yields only through its own node's slot).
struct GraphLayout {
  std::vector<std::vector<std::size_t>> inputs;  // per node, one entry per input port
  std::vector<std::size_t> capacity;
  std::vector<bool> shared;
  std::vector<bool> sink;  // no node reads it
};

struct RunLayout {
  std::span<const std::string> names;
  const Plan& plan;
  const std::vector<bool>& shared_link;      // per stage: its output link crosses processes
  std::span<const std::size_t> group_of_worker;  // per worker id
  const GraphLayout* graph = nullptr;        // a Graph's shape; null for a Pipeline
  SharedMemoryStats shared_memory{};         // the run's shared mapping, if it has one
};

// Builds plumb::Stats from the tallies and watches the run. Created for every run: the
// supervisor polls it (thread and process workers); in a sequential run it is driven by
// on_packet() from the pulling thread, and only when progress or the inactivity timeout is on.
//
// Thread affinity: the supervising thread (or the pulling thread, sequential); it only reads
// the tallies, whose writers are the workers.
class Monitor {
 public:
  using Clock = std::chrono::steady_clock;
  // How often the supervisor samples link depths (for LinkStats::mean_queued).
  static constexpr Clock::duration kSampleInterval = std::chrono::milliseconds(10);

  Monitor(const RunOptions& options, RunState& state, const StatsBlocks& blocks,
          const RunLayout& layout, Clock::time_point start)
      : options_(options),
        state_(state),
        blocks_(blocks),
        layout_(layout),
        start_(start),
        last_activity_(start),
        next_report_(later_by(start, options.progress_interval)),
        depth_sums_(layout.names.size(), 0.0) {
    std::size_t id = 0;
    for (const GroupPlan& group : layout.plan.groups) {
      first_worker_.push_back(id);
      id += group.workers;
    }
    first_worker_.push_back(id);
  }

  // Whether a sequential run's pulling thread must call on_packet().
  [[nodiscard]] static bool wanted_inline(const RunOptions& options) noexcept {
    return options.inactivity_timeout > Clock::duration::zero() ||
           static_cast<bool>(options.progress);
  }

  // Sequential mode: a packet just moved. Throws Stopped after recording an InactivityError
  // when the gap since the previous packet exceeded the timeout. Called on yields only: with no
  // link, each take resumes the stage before, so a take is a yield too (the end of the stream
  // aside).
  void on_packet() {
    const auto now = Clock::now();
    const auto timeout = options_.inactivity_timeout;
    if (timeout > Clock::duration::zero() && now - last_activity_ > timeout) {
      fail_inactive(now - last_activity_);
      throw Stopped{};
    }
    last_activity_ = now;
    if (options_.progress && now >= next_report_) {
      // The callback runs inside a stage's pull, so its exception would unwind through the
      // stage after it, which may catch it (a sink that catches its input's errors) and hide
      // it, or fail as "returned early" under another name. Record it as the run's error
      // first, as the supervisor does for thread and process runs, then unwind as a stop.
      try {
        report(now);
      } catch (...) {
        state_.fail(std::current_exception(), std::nullopt);
        throw Stopped{};
      }
    }
  }

  // Called by the supervising thread every tick(): samples the link depths, records an
  // InactivityError when no packet moved (packets_moved()) for the timeout, and reports progress
  // when due.
  void poll() {
    const auto now = Clock::now();
    sample_depths();
    const std::uint64_t moved = packets_moved();
    if (moved != last_moved_) {
      last_moved_ = moved;
      last_activity_ = now;
    } else if (options_.inactivity_timeout > Clock::duration::zero() &&
               now - last_activity_ > options_.inactivity_timeout) {
      fail_inactive(now - last_activity_);
      return;
    }
    if (options_.progress && now >= next_report_) report(now);
  }

  // How often poll() should run: every kSampleInterval, or more often for the timeout or the
  // progress interval.
  [[nodiscard]] Clock::duration tick() const noexcept {
    Clock::duration tick = kSampleInterval;
    if (options_.inactivity_timeout > Clock::duration::zero()) {
      tick = std::min(tick, options_.inactivity_timeout / 8);
    }
    if (options_.progress) tick = std::min(tick, options_.progress_interval);
    return std::max<Clock::duration>(tick, std::chrono::milliseconds(1));
  }

  // The run completed: the last report, with the final statistics.
  void report_finished(const Stats& stats) {
    if (options_.progress) options_.progress(stats);
  }

  void fail_inactive(Clock::duration idle) {
    timed_out_.store(true, std::memory_order_release);  // [sync M-T]
    if (!state_.fail(std::make_exception_ptr(inactivity_error(idle)), std::nullopt)) {
      timed_out_.store(false, std::memory_order_relaxed);  // another error stopped the run first
    }
  }

  // Whether the run's error is this monitor's InactivityError: its workers are stuck, and the
  // supervisor does not give them the whole grace period (supervisor.hpp).
  [[nodiscard]] bool timed_out() const noexcept { return timed_out_.load(std::memory_order_acquire); }

  [[nodiscard]] InactivityError inactivity_error(Clock::duration idle) const {
    return InactivityError(detail::format(
        "plumb.inactivity_error: no packet moved on any link for {} (inactivity_timeout is {}); "
        "raise RunOptions::inactivity_timeout if a stage legitimately takes longer",
        format_seconds(idle), format_seconds(options_.inactivity_timeout)));
  }

  // The statistics as of now. `finished`: the run completed without error (every worker has
  // ended and been joined or reaped).
  [[nodiscard]] Stats snapshot(bool finished) const {
    const std::int64_t now = now_ns();
    const std::int64_t now_ticks = TickClock::now();
    const double ns_per_tick = options_.timing ? TickClock::ns_per_tick() : 1.0;
    const std::vector<std::uint64_t> queued = queued_now();
    Stats stats;
    stats.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_);
    stats.finished = finished;
    stats.timed = options_.timing;
    stats.shared_memory = layout_.shared_memory;
    stats.stages.resize(layout_.names.size());
    const std::vector<GroupPlan>& groups = layout_.plan.groups;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const GroupPlan& group = groups[g];
      for (std::size_t s = group.first; s <= group.last; ++s) {
        StageStats& stage = stats.stages[s];
        stage.name = layout_.names[s];
        stage.fused = s != group.first;
        stage.mode = stage.fused ? Mode::sequential : group.mode;
        stage.workers = group.workers;
        stage.per_worker.resize(group.workers);
      }
      // A graph's links are its nodes' input links (graph_links()).
      if (g + 1 < groups.size() && layout_.graph == nullptr) {
        const std::size_t s = group.last;
        const double mean = samples_ == 0 ? static_cast<double>(queued[s])
                                          : depth_sums_[s] / static_cast<double>(samples_);
        stats.stages[s].output =
            LinkStats{layout_.plan.capacity[s], static_cast<bool>(layout_.shared_link[s]), queued[s], mean};
      }
      for (std::size_t id = first_worker_[g]; id < first_worker_[g + 1]; ++id) {
        read_worker(group, id, id - first_worker_[g], now, now_ticks, ns_per_tick, stats);
      }
    }
    if (layout_.graph != nullptr) graph_links(queued, stats);
    const double seconds = std::chrono::duration<double>(stats.elapsed).count();
    const std::size_t sink = stats.stages.size() - 1;
    for (std::size_t s = 0; s < stats.stages.size(); ++s) {
      StageStats& stage = stats.stages[s];
      for (const WorkerStats& worker : stage.per_worker) {
        stage.packets_in += worker.packets_in;
        stage.packets_out += worker.packets_out;
        stage.helped_out += worker.helped_out;
        stage.busy += worker.busy;
        stage.starved += worker.starved;
        stage.blocked += worker.blocked;
      }
      const double capacity = static_cast<double>(stats.elapsed.count()) * static_cast<double>(stage.workers);
      if (capacity > 0) {
        stage.busy_fraction = std::clamp(static_cast<double>(stage.busy.count()) / capacity, 0.0, 1.0);
        stage.starved_fraction = std::clamp(static_cast<double>(stage.starved.count()) / capacity, 0.0, 1.0);
        stage.blocked_fraction = std::clamp(static_cast<double>(stage.blocked.count()) / capacity, 0.0, 1.0);
      }
      if (seconds > 0) {
        const bool ends = layout_.graph != nullptr ? layout_.graph->sink[s] : s == sink;
        stage.rate = static_cast<double>(ends ? stage.packets_in : stage.packets_out) / seconds;
      }
    }
    return stats;
  }

 private:
  void report(Clock::time_point now) {
    options_.progress(snapshot(false));
    next_report_ = later_by(now, options_.progress_interval);
  }

  // One worker's part of every stage of its group.
  void read_worker(const GroupPlan& group, std::size_t id, std::size_t index, std::int64_t now,
                   std::int64_t now_ticks, double ns_per_tick, Stats& stats) const {
    const WorkerClock& clock = blocks_.clock(id);
    const StageSlot* slots = blocks_.slots(id);
    // Relaxed throughout: one writer per counter; best effort while the worker runs, final once
    // it was joined or reaped (tally.hpp).
    const std::int64_t started = clock.started_ns.load(std::memory_order_relaxed);
    const std::int64_t finished = clock.finished_ns.load(std::memory_order_relaxed);
    const bool running = started != 0 && finished == 0;
    const std::int64_t end = finished != 0 ? finished : now;
    const std::int64_t alive = started != 0 ? std::max<std::int64_t>(end - started, 0) : 0;
    const auto to_ns = [&](std::int64_t ticks) {
      return static_cast<std::int64_t>(static_cast<double>(ticks) * ns_per_tick);
    };
    const auto waited = [&](Side side) {
      std::int64_t total = clock.wait_ticks[static_cast<int>(side)].load(std::memory_order_relaxed);
      const std::int64_t since = clock.waiting_since[static_cast<int>(side)].load(std::memory_order_relaxed);
      if (running && since != 0 && now_ticks > since) total += now_ticks - since;
      return std::clamp<std::int64_t>(to_ns(total), 0, alive);
    };
    // A worker that may be lent times its waits even with timing off (lend.hpp): not shown.
    const std::int64_t starved = options_.timing ? waited(Side::input) : 0;
    // A lent worker's home waits (output side) while helpers run its steps: those are busy,
    // the one in progress too once the watch saw it stall (HelpDesk::watch()).
    std::int64_t helped_ticks = clock.helped_ticks.load(std::memory_order_relaxed);
    const std::int64_t stalled = clock.stalled_since.load(std::memory_order_relaxed);
    if (running && stalled != 0 && now_ticks > stalled) helped_ticks += now_ticks - stalled;
    const std::int64_t blocked =
        options_.timing ? std::clamp<std::int64_t>(waited(Side::output) - to_ns(helped_ticks), 0,
                                                   std::max<std::int64_t>(alive - starved, 0))
                        : 0;
    const std::int64_t busy = options_.timing ? alive - starved - blocked : 0;
    const std::vector<std::int64_t> split =
        split_busy(group, slots, alive, starved, blocked, busy, ns_per_tick);
    const std::size_t sink = stats.stages.size() - 1;
    for (std::size_t s = group.first; s <= group.last; ++s) {
      WorkerStats& worker = stats.stages[s].per_worker[index];
      worker.running = running;
      if (s == group.first) {
        worker.packets_in = s == 0 ? 0 : clock.taken.load(std::memory_order_relaxed);
      } else {
        worker.packets_in = slots[s - 1].out.load(std::memory_order_relaxed);
      }
      worker.packets_out = s == sink ? 0 : slots[s].out.load(std::memory_order_relaxed);
      worker.helped_out = s == group.last ? clock.helped_out.load(std::memory_order_relaxed) : 0;
      worker.starved = std::chrono::nanoseconds(s == group.first ? starved : 0);
      worker.blocked = std::chrono::nanoseconds(s == group.last ? blocked : 0);
      worker.busy = std::chrono::nanoseconds(split[s - group.first]);
    }
  }

  // A worker's busy time, per stage of its group. One stage: all of it. A fused run: every
  // pull of stage i's generator happens inside a resume of stage i + 1's, so with E(i) the
  // (estimated) time of stage i's resumes, stage i's own time is E(i) - E(i - 1); the first
  // stage's is E(first) less its input waits, and the last stage, which runs everything, has
  // the rest: alive - blocked - E(last - 1). The parts sum to `busy`; estimates that come out
  // negative are clamped and the parts rescaled to `busy`.
  static std::vector<std::int64_t> split_busy(const GroupPlan& group, const StageSlot* slots,
                                              std::int64_t alive, std::int64_t starved,
                                              std::int64_t blocked, std::int64_t busy,
                                              double ns_per_tick) {
    const std::size_t stages = group.last - group.first + 1;
    std::vector<std::int64_t> parts(stages, 0);
    if (stages == 1 || busy <= 0) {
      parts[0] = std::max<std::int64_t>(busy, 0);
      return parts;
    }
    std::int64_t before = starved;  // E(first - 1): the first stage's resumes include its waits
    std::int64_t total = 0;
    for (std::size_t k = 0; k < stages; ++k) {
      const std::int64_t inclusive =
          k + 1 < stages ? static_cast<std::int64_t>(
                               static_cast<double>(estimate_resumes(slots[group.first + k])) * ns_per_tick)
                         : alive - blocked;
      parts[k] = std::max<std::int64_t>(inclusive - before, 0);
      before = std::max(before, inclusive);
      total += parts[k];
    }
    if (total > 0 && total != busy) {
      const double scale = static_cast<double>(busy) / static_cast<double>(total);
      for (std::int64_t& part : parts) part = static_cast<std::int64_t>(static_cast<double>(part) * scale);
    }
    return parts;
  }

  // A graph's nodes: the nodes each reads, and its one input link (queue sampled as a
  // pipeline's output links are).
  void graph_links(const std::vector<std::uint64_t>& queued, Stats& stats) const {
    const GraphLayout& graph = *layout_.graph;
    for (std::size_t k = 0; k < stats.stages.size(); ++k) {
      StageStats& stage = stats.stages[k];
      stage.inputs = graph.inputs[k];
      if (graph.inputs[k].empty()) continue;
      const double mean = samples_ == 0 ? static_cast<double>(queued[k])
                                        : depth_sums_[k] / static_cast<double>(samples_);
      stage.input = LinkStats{graph.capacity[k], static_cast<bool>(graph.shared[k]), queued[k], mean};
    }
  }

  // A graph's links: per node, the packets its producers sent into its input link and it has
  // not taken yet.
  [[nodiscard]] std::vector<std::uint64_t> graph_queued_now() const {
    const GraphLayout& graph = *layout_.graph;
    std::vector<std::uint64_t> queued(layout_.names.size(), 0);
    for (std::size_t c = 0; c < queued.size(); ++c) {
      if (graph.inputs[c].empty()) continue;
      // Takes first, as in queued_now().
      std::uint64_t taken = 0;
      for (std::size_t id = first_worker_[c]; id < first_worker_[c + 1]; ++id) {
        taken += blocks_.clock(id).taken.load(std::memory_order_relaxed);
      }
      std::uint64_t sent = 0;
      std::vector<bool> counted(queued.size(), false);
      for (std::size_t p : graph.inputs[c]) {
        if (counted[p]) continue;  // a node read twice counts its sends once (one slot each)
        counted[p] = true;
        for (std::size_t id = first_worker_[p]; id < first_worker_[p + 1]; ++id) {
          sent += blocks_.slots(id)[c].out.load(std::memory_order_relaxed);
        }
      }
      queued[c] = sent > taken ? sent - taken : 0;
    }
    return queued;
  }

  // Packets queued on each link now: produced by the stage before it, not yet taken.
  [[nodiscard]] std::vector<std::uint64_t> queued_now() const {
    if (layout_.graph != nullptr) return graph_queued_now();
    std::vector<std::uint64_t> queued(layout_.names.size(), 0);
    const std::vector<GroupPlan>& groups = layout_.plan.groups;
    for (std::size_t g = 0; g + 1 < groups.size(); ++g) {
      // Takes first: a packet is counted out before anyone can take it, so reading the takes
      // first keeps the difference from going negative (but for reordering: clamped).
      std::uint64_t taken = 0;
      for (std::size_t id = first_worker_[g + 1]; id < first_worker_[g + 2]; ++id) {
        taken += blocks_.clock(id).taken.load(std::memory_order_relaxed);
      }
      std::uint64_t out = 0;
      for (std::size_t id = first_worker_[g]; id < first_worker_[g + 1]; ++id) {
        out += blocks_.slots(id)[groups[g].last].out.load(std::memory_order_relaxed);
      }
      queued[groups[g].last] = out > taken ? out - taken : 0;
    }
    return queued;
  }

  void sample_depths() {
    const auto now = Clock::now();
    if (now < next_sample_) return;
    next_sample_ = now + kSampleInterval;
    const std::vector<std::uint64_t> queued = queued_now();
    for (std::size_t s = 0; s < queued.size(); ++s) depth_sums_[s] += static_cast<double>(queued[s]);
    ++samples_;
  }

  // The activity the inactivity timeout watches: every packet a stage yielded (into a link or
  // to the fused stage after it) plus every packet a group's first stage took from its input
  // link. Counting the takes keeps a consumer that drains its link after every stage before it
  // finished (a sink, or a filter that drops packets) from looking idle. Both counters are kept
  // per packet anyway (StageSlot::out, WorkerClock::taken), so this costs the workers nothing.
  // Only a change of the sum matters, never its value. Relaxed: one writer per counter, and a
  // change only has to be seen eventually (tally.hpp), as the timeout is far above a poll.
  [[nodiscard]] std::uint64_t packets_moved() const noexcept {
    std::uint64_t moved = 0;
    const std::size_t stages = layout_.names.size();
    for (std::size_t id = 0; id < blocks_.workers(); ++id) {
      moved += blocks_.clock(id).taken.load(std::memory_order_relaxed);
      const StageSlot* slots = blocks_.slots(id);
      for (std::size_t s = 0; s < stages; ++s) moved += slots[s].out.load(std::memory_order_relaxed);
    }
    return moved;
  }

  const RunOptions& options_;
  RunState& state_;
  const StatsBlocks& blocks_;
  RunLayout layout_;
  std::vector<std::size_t> first_worker_;  // per group, and one past the last worker
  Clock::time_point start_;
  Clock::time_point last_activity_;
  // Set before the InactivityError is recorded (and taken back if another error was first), so
  // that a supervisor that sees the run stopping for it sees it set ([sync M-T]: this release
  // store, its acquire load; on_packet() runs in a sequential caller, poll() in the supervisor).
  std::atomic<bool> timed_out_{false};
  Clock::time_point next_report_;
  Clock::time_point next_sample_{};
  std::uint64_t last_moved_ = 0;
  std::vector<double> depth_sums_;  // per stage with an output link
  std::uint64_t samples_ = 0;
};

}  // namespace plumb::detail
