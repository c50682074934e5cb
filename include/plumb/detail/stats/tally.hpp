#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/stats/tally.hpp: what each worker records about itself while it runs: packets in and
// out, time waiting on its input and output links, and (in a run of fused stages) sampled
// times of its generators' resumes, from which the monitor splits its busy time between the
// stages. The monitor and the caller read these to build plumb::Stats (monitor.hpp).
//
// Cost model (docs/stats.md, "Cost"): the per-packet path adds one owned-counter increment per
// link end and one predictable branch per fused hop; clocks are read only where a worker waits
// on a link (which costs far more), and around 16 resumes in 16384 of a fused generator.

#include <plumb/detail/core/cache_line.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>

namespace plumb::detail {

// Nanoseconds on the steady clock; CLOCK_MONOTONIC on Linux, one timeline for every process of
// the machine, so that worker processes and the caller can compare their readings.
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The clock of waits and of timed resumes, read where a worker waits on a link and around
// sampled resumes: the time-stamp counter on x86-64 when the kernel keeps time with it (its
// clocksource is "tsc": then the counter is invariant and synchronized across cores), about
// half the cost of the steady clock here and not serializing; else the steady clock in ns.
// Ticks become nanoseconds through a reference pair (ns, ticks) taken at the first use, so no
// calibration loop is needed: by the time a run's stats are read, the pair is far behind.
//
// Call init() before forking (Runner::run does): the statics are then inherited, never
// initialized in a child.
class TickClock {
 public:
  static void init() noexcept { (void)state(); }

  [[nodiscard]] static std::int64_t now() noexcept { return now_raw(state().tsc); }

  // The cost of one now() in ticks: the smallest gap between two reads in a row.
  [[nodiscard]] static std::int64_t read_cost() noexcept { return state().read_cost; }

  // Nanoseconds per tick, measured against the steady clock since the reference pair (waits
  // at most 100 us for a precise ratio right after the first use).
  [[nodiscard]] static double ns_per_tick() noexcept {
    const State& clock = state();
    if (!clock.tsc) return 1.0;
    std::int64_t ns = now_ns();
    while (ns - clock.reference_ns < 100'000) ns = now_ns();
    const std::int64_t ticks = now();
    return ticks > clock.reference_ticks
               ? static_cast<double>(ns - clock.reference_ns) / static_cast<double>(ticks - clock.reference_ticks)
               : 1.0;
  }

 private:
  struct State {
    bool tsc = false;
    std::int64_t read_cost = 0;
    std::int64_t reference_ns = 0;
    std::int64_t reference_ticks = 0;
  };

  static const State& state() noexcept {
    static const State clock = [] {
      State made;
#if defined(__x86_64__)
      if (std::FILE* file = std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r")) {
        char name[16] = {};
        made.tsc = std::fgets(name, sizeof name, file) != nullptr && std::strncmp(name, "tsc", 3) == 0 &&
                   (name[3] == '\n' || name[3] == '\0');
        std::fclose(file);
      }
#endif
      made.reference_ns = now_ns();
      made.reference_ticks = now_raw(made.tsc);
      made.read_cost = std::numeric_limits<std::int64_t>::max();
      for (int i = 0; i < 100; ++i) {
        const std::int64_t first = now_raw(made.tsc);
        made.read_cost = std::min(made.read_cost, now_raw(made.tsc) - first);
      }
      return made;
    }();
    return clock;
  }

  static std::int64_t now_raw([[maybe_unused]] bool tsc) noexcept {
#if defined(__x86_64__)
    // The builtin behind <x86intrin.h>'s __rdtsc (GCC and Clang): that header declares every x86
    // intrinsic, about 0.4 s of parsing (GCC 12) in every translation unit that includes plumb.
    if (tsc) return static_cast<std::int64_t>(__builtin_ia32_rdtsc());
#endif
    return now_ns();
  }
};

// Each counter below has one writer (the worker that owns the block), so load + store is
// enough (no read-modify-write); relaxed because readers (the monitor while the run goes on)
// only need eventually-current values, and the caller reads the final ones after joining the
// thread or reaping the process, which orders them.
template <class T>
inline T add_owned(std::atomic<T>& counter, T amount) noexcept {
  const T value = counter.load(std::memory_order_relaxed) + amount;
  counter.store(value, std::memory_order_relaxed);
  return value;
}

// Which link end a worker waits on.
enum class Side : std::uint8_t { input = 0, output = 1 };

// One worker's times and its group's input count.
struct WorkerClock {
  std::atomic<std::int64_t> started_ns{0};   // 0: not started
  std::atomic<std::int64_t> finished_ns{0};  // 0: still running
  std::atomic<std::int64_t> wait_ticks[2] = {};  // finished waits (TickClock), by Side
  std::atomic<std::int64_t> waiting_since[2] = {};  // the wait in progress (ticks; 0: none)
  std::atomic<std::uint64_t> taken{0};  // packets its group's first stage took from its input link
  // While lent (lend.hpp): the steps run on other workers' threads. Their time is inside the
  // worker's output wait (its home waits meanwhile), and is its busy time, not blocked.
  std::atomic<std::int64_t> helped_ticks{0};
  std::atomic<std::uint64_t> helped_out{0};  // packets those steps yielded
  // A helped step in progress that the supervisor's watch saw stall: since when (ticks; 0:
  // none). Set by the watch, taken (and added to helped_ticks) by the helper after the step.
  std::atomic<std::int64_t> stalled_since{0};
  std::atomic<std::int64_t> stalled_waits{0};  // its wait_ticks[input] at the mark
  // 1 while its input runs a step of the stage before it as a helper: waiting for input, in
  // effect (the watch does not take such a step of a lent worker for a stall).
  std::atomic<std::uint32_t> helping{0};

  // The finished input waits so far. Relaxed: read by the worker's owner (H1 orders earlier
  // owners' writes), or by the supervisor's watch as a statistic.
  [[nodiscard]] std::int64_t input_wait_ticks() const noexcept {
    return wait_ticks[static_cast<int>(Side::input)].load(std::memory_order_relaxed);
  }
};

// One worker's counters for one stage of its group. The timing fields are kept for a stage
// with a fused stage after it: the time of its generator's resumes, each of which includes the
// time of the pulls from the stage before it (see FusedSplit).
struct StageSlot {
  std::atomic<std::uint64_t> out{0};               // packets the stage yielded in this worker
  std::atomic<std::int64_t> first_pull{0};    // its first resume, start-up included (ticks)
  std::atomic<std::int64_t> sampled{0};       // sampled later resumes: total time (ticks)
  std::atomic<std::uint64_t> sampled_pulls{0};     //   and how many
};

// When the generator of a stage with a fused stage after it is timed (its resumes: see
// StageSlot): the first kWindow resumes (so that short runs get samples too), then kWindow in a
// row out of every kPeriod, counted by the packets the stage yielded before the resume. Each
// stage's later windows start at an offset of its own, so that in a chain whose stages yield
// one packet per packet in, a timed resume rarely has another timed one nested in it: the clock
// reads cost more than a small stage's resume and would distort it. A generator whose timed
// resumes mostly take kTimeAllFrom or more is timed at every resume from then on: two clock
// reads are then noise, and timing every resume has no sampling error.
//
// Thread affinity: its generator's worker (plain members).
class ResumeSchedule {
 public:
  static constexpr std::uint64_t kPeriod = 16384;
  static constexpr std::uint64_t kWindow = 16;
  static constexpr std::int64_t kTimeAllFrom = 2000;  // ns (converted at construction)
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  // `sampled`: false for a generator that needs no timing (not followed by a fused stage, or
  // timing is off).
  // `ns_per_tick`: TickClock::ns_per_tick(), read once per run.
  ResumeSchedule(bool sampled, std::size_t stage, double ns_per_tick) noexcept
      : next_(sampled ? 0 : kNever),
        offset_(kWindow + (stage * 2 * kWindow) % (kPeriod - 2 * kWindow)),
        slow_ticks_(static_cast<std::int64_t>(static_cast<double>(kTimeAllFrom) / ns_per_tick)) {}

  // Whether the resume after `count` packets is to be timed: one compare on the hot path.
  [[nodiscard]] bool due(std::uint64_t count) const noexcept { return count >= next_; }

  // Records the timed resume after `count` packets, which took `ticks`, and schedules the next.
  void record(StageSlot& slot, std::uint64_t count, std::int64_t ticks) noexcept {
    if (count == 0) {
      slot.first_pull.store(ticks, std::memory_order_relaxed);
    } else {
      add_owned(slot.sampled, ticks);
      add_owned(slot.sampled_pulls, std::uint64_t{1});
      ++samples_;
      if (ticks >= slow_ticks_) ++slow_;
      if (samples_ >= kWindow / 2 && 4 * slow_ >= 3 * samples_) every_ = true;
    }
    if (every_ || count + 1 < window_end_) {
      next_ = count + 1;
      return;
    }
    std::uint64_t start = count - count % kPeriod + offset_;
    if (start <= count) start += kPeriod;
    next_ = start;
    window_end_ = start + kWindow;
  }

 private:
  std::uint64_t next_;
  std::uint64_t offset_;  // in [kWindow, kPeriod - kWindow): clear of the first window
  std::uint64_t window_end_ = kWindow;
  std::uint64_t samples_ = 0;
  std::uint64_t slow_ = 0;
  std::int64_t slow_ticks_;  // kTimeAllFrom in ticks
  bool every_ = false;
};

// The estimated total time (ticks) of a stage's generator's resumes (ResumeSchedule): the first and
// the timed ones as measured, and the average of the timed ones for each other resume that
// yielded a packet (the one that ends the stream is usually short, and is left out unless it
// was timed).
[[nodiscard]] inline std::int64_t estimate_resumes(const StageSlot& slot) noexcept {
  const std::int64_t first = slot.first_pull.load(std::memory_order_relaxed);
  const std::int64_t timed = slot.sampled.load(std::memory_order_relaxed);
  const std::uint64_t pulls = slot.sampled_pulls.load(std::memory_order_relaxed);
  const std::uint64_t out = slot.out.load(std::memory_order_relaxed);
  if (pulls == 0 || out <= 1 + pulls) return first + timed;
  const double average = static_cast<double>(timed) / static_cast<double>(pulls);
  return first + timed + static_cast<std::int64_t>(average * static_cast<double>(out - 1 - pulls));
}

static_assert(std::atomic<std::int64_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free,
              "plumb: stats counters must be lock-free to work in memory shared by processes");

// The counters of every worker of a run: per worker, a WorkerClock and a StageSlot per stage,
// the block padded to a cache line so that no two workers write one line. They live in the
// caller's heap, or in the run's shared mapping when workers run in processes.
class StatsBlocks {
 public:
  static std::size_t block_bytes(std::size_t stages) noexcept {
    const std::size_t bytes = sizeof(WorkerClock) + stages * sizeof(StageSlot);
    return (bytes + kCacheLine - 1) / kCacheLine * kCacheLine;
  }
  // Bytes of external memory for `workers` blocks of `stages` stages (64-byte aligned).
  static std::size_t bytes_for(std::size_t workers, std::size_t stages) noexcept {
    return workers * block_bytes(stages);
  }

  // In the caller's heap.
  StatsBlocks(std::size_t workers, std::size_t stages)
      : owned_(static_cast<std::byte*>(
            ::operator new(bytes_for(workers, stages), std::align_val_t{kCacheLine}))) {
    construct(owned_.get(), workers, stages);
  }

  // In `memory`: bytes_for(workers, stages) bytes, 64-byte aligned.
  StatsBlocks(std::size_t workers, std::size_t stages, std::byte* memory) noexcept {
    construct(memory, workers, stages);
  }

  [[nodiscard]] std::size_t workers() const noexcept { return workers_; }
  [[nodiscard]] WorkerClock& clock(std::size_t worker) const noexcept {
    return *std::launder(reinterpret_cast<WorkerClock*>(block(worker)));
  }
  [[nodiscard]] StageSlot* slots(std::size_t worker) const noexcept {
    return std::launder(reinterpret_cast<StageSlot*>(block(worker) + sizeof(WorkerClock)));
  }

 private:
  struct AlignedDelete {
    void operator()(std::byte* memory) const noexcept {
      ::operator delete(memory, std::align_val_t{kCacheLine});
    }
  };

  void construct(std::byte* memory, std::size_t workers, std::size_t stages) noexcept {
    memory_ = memory;
    workers_ = workers;
    stride_ = block_bytes(stages);
    for (std::size_t worker = 0; worker < workers; ++worker) {
      std::byte* at = block(worker);
      new (at) WorkerClock{};
      for (std::size_t stage = 0; stage < stages; ++stage) {
        new (at + sizeof(WorkerClock) + stage * sizeof(StageSlot)) StageSlot{};
      }
    }
  }
  [[nodiscard]] std::byte* block(std::size_t worker) const noexcept {
    return memory_ + worker * stride_;
  }

  std::unique_ptr<std::byte, AlignedDelete> owned_;
  std::byte* memory_ = nullptr;
  std::size_t workers_ = 0;
  std::size_t stride_ = 0;
};

// Times one worker's waits on one side (input or output). The link calls begin/end around its
// blocking path only; the fast path (a packet or a slot is there) never reads the clock.
class WaitTimer {
 public:
  WaitTimer(WorkerClock& clock, Side side) noexcept
      : total_(clock.wait_ticks[static_cast<int>(side)]),
        since_(clock.waiting_since[static_cast<int>(side)]) {}

  void begin() noexcept {
    started_ = TickClock::now();
    since_.store(started_, std::memory_order_relaxed);
  }
  void end() noexcept {
    add_owned(total_, TickClock::now() - started_);
    since_.store(0, std::memory_order_relaxed);
  }
  // A wait measured elsewhere: a helper's step of a lent producer (ring_link.hpp), which its
  // input would otherwise have waited for.
  void add(std::int64_t ticks) noexcept { add_owned(total_, ticks); }

 private:
  std::atomic<std::int64_t>& total_;
  std::atomic<std::int64_t>& since_;
  std::int64_t started_ = 0;
};

// Brackets a blocking wait; a null timer (timing off) times nothing.
class WaitScope {
 public:
  explicit WaitScope(WaitTimer* timer) noexcept : timer_(timer) {
    if (timer_ != nullptr) timer_->begin();
  }
  ~WaitScope() {
    if (timer_ != nullptr) timer_->end();
  }
  WaitScope(const WaitScope&) = delete;
  WaitScope& operator=(const WaitScope&) = delete;

 private:
  WaitTimer* timer_;
};

// Everything one worker records, handed to its link ends and fused stages.
//
// Thread affinity: the worker's owner: its thread, or while it is lent the helper that runs
// its step (help_desk.hpp, H1).
class WorkerTally {
 public:
  // `ns_per_tick`: TickClock::ns_per_tick(), read once per run.
  WorkerTally(WorkerClock& clock, StageSlot* slots, bool timing, double ns_per_tick) noexcept
      : clock_(clock),
        slots_(slots),
        input_(clock, Side::input),
        output_(clock, Side::output),
        timing_(timing),
        ns_per_tick_(ns_per_tick) {}
  WorkerTally(const WorkerTally&) = delete;
  WorkerTally& operator=(const WorkerTally&) = delete;

  void start() noexcept { clock_.started_ns.store(now_ns(), std::memory_order_relaxed); }
  void finish() noexcept { clock_.finished_ns.store(now_ns(), std::memory_order_relaxed); }

  // The input link handed over a packet.
  void took() noexcept { add_owned(clock_.taken, std::uint64_t{1}); }

  [[nodiscard]] WaitTimer* input_timer() noexcept { return timing_ || waits_ ? &input_ : nullptr; }
  [[nodiscard]] WaitTimer* output_timer() noexcept { return timing_ || waits_ ? &output_ : nullptr; }
  // Times the waits even with timing off: a worker that may be lent measures its own work
  // (lend.hpp), which is its time less its waits.
  void time_waits() noexcept { waits_ = true; }
  [[nodiscard]] WorkerClock& clock() noexcept { return clock_; }
  [[nodiscard]] bool timing() const noexcept { return timing_; }
  [[nodiscard]] double ns_per_tick() const noexcept { return ns_per_tick_; }

  // Timing one resume of a fused stage's generator (ResumeSchedule): begin, resume, end. The
  // clock reads of timed resumes nested inside (the stage before it, sampled at the same time)
  // are taken out, and so is this measurement's own read.
  struct Timing {
    std::int64_t started;
    std::int64_t overhead_before;
  };
  [[nodiscard]] Timing begin_timing() noexcept { return Timing{TickClock::now(), timer_overhead_}; }
  // Records the resume after `count` packets with `schedule`.
  void end_timing(const Timing& timing, StageSlot& slot, std::uint64_t count,
                  ResumeSchedule& schedule) noexcept {
    const std::int64_t read = TickClock::read_cost();
    const std::int64_t nested = timer_overhead_ - timing.overhead_before;
    const std::int64_t elapsed = TickClock::now() - timing.started - nested - read;
    // As seen by an enclosing measurement: two clock reads and the recording.
    timer_overhead_ += 2 * read;
    schedule.record(slot, count, std::max<std::int64_t>(elapsed, 0));
  }
  [[nodiscard]] StageSlot& slot(std::size_t stage) noexcept { return slots_[stage]; }

 private:
  WorkerClock& clock_;
  StageSlot* slots_;
  WaitTimer input_;
  WaitTimer output_;
  bool timing_;
  bool waits_ = false;
  double ns_per_tick_;
  std::int64_t timer_overhead_ = 0;  // ticks spent in this worker's resume timing
};

}  // namespace plumb::detail
