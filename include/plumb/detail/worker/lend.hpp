#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/worker/lend.hpp: lend_into, the output loop of a worker that may be lent to the
// consumers of its output link (HelpDesk), and the policy that decides when it is.

#include <plumb/detail/core/input.hpp>
#include <plumb/detail/link/help_desk.hpp>
#include <plumb/detail/link/link_core.hpp>
#include <plumb/detail/link/solo_gate.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/worker/chain.hpp>
#include <plumb/worker.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>

namespace plumb::detail {

// Which workers are lent: by cost (the default), all that may be, or none. The test suite
// forces `always` and `never` on every run (tests/main.cpp, PLUMB_TEST_LENDING) to run each
// test under both engines; nothing else sets it.
enum class Lending : std::uint8_t { adaptive, always, never };

inline std::atomic<Lending>& lending_override_for_tests() noexcept {
  static std::atomic<Lending> value{Lending::adaptive};
  return value;
}

// When a worker is lent. A step run by a helper saves its consumer a wake-up (15-30 us on this
// kind of machine, docs/design/lending.md) and a switch; it costs the overlap of the two
// stages. So a worker is lent while its step costs less than theta = 100 ns + 20 us / capacity
// (the wake-ups a link of that capacity pays per packet, plus a cross-core hand-off): lent once
// the median of its costs at home is under theta / 2, taken back once the median of its last
// timed helped steps is over 2 theta (hysteresis), or when a step stalls (HelpDesk::watch()).
//
// A step's cost is its time less its waits for input (and less any upstream step it ran as a
// helper itself, which its input wait includes): the worker's own work.
//
// Clock reads cost 20-40 ns where the clock is not the TSC (a virtual machine's kvm-clock), as
// much as a cheap step, so only some packets are timed: at home, after the first (its set-up),
// a window of kWindow packets, then the decision; a worker that stays home measures again after
// a gap that doubles each time (up to kMaxGap packets), and so does one taken back. While lent,
// one step in kSampleEvery is timed, and its time stands for the kSampleEvery steps around it.
//
// Thread affinity: the worker's current owner (H1).
class LendPolicy {
 public:
  static constexpr std::uint64_t kWindow = 8;
  static constexpr std::uint64_t kFirstGap = 64;
  static constexpr std::uint64_t kMaxGap = 65536;
  static constexpr std::uint64_t kSampleEvery = 16;

  // `lending`: adaptive or always (a worker under `never` has no HelpDesk: LinkSet::lends()).
  // `stage`: the lent worker's stage, whose steps are timed at a phase of their own, so that a
  // timed step rarely has a timed step of the stage before nested in it (whose clock reads it
  // would count).
  LendPolicy(Lending lending, std::size_t capacity, double ns_per_tick, std::size_t stage) noexcept
      : lending_(lending),
        phase_(stage * 7 % kSampleEvery),
        theta_(static_cast<std::int64_t>((100.0 + 20'000.0 / static_cast<double>(capacity)) / ns_per_tick)),
        window_(lending == Lending::always ? 1 : kWindow) {}

  // --- At home -----------------------------------------------------------------------------------

  // Whether to lend before the next packet.
  [[nodiscard]] bool lend_now() const noexcept {
    if (measured_ < window_) return false;
    return lending_ == Lending::always || median_cheap();
  }

  // Whether to time the next packet (then at_home() gets its cost).
  [[nodiscard]] bool timing_next() const noexcept { return skip_ == 0; }

  // A packet was made at home; `ticks`: its cost, if it was timed.
  void at_home(std::int64_t ticks) noexcept {
    if (skip_ != 0) {
      --skip_;
      return;
    }
    if (!started_) {  // the first packet: the set-up
      started_ = true;
      return;
    }
    record(ticks);
    if (measured_ < window_ || lend_now()) return;
    // Stays home: measure again after a gap.
    skip_ = gap_;
    gap_ = std::min(2 * gap_, kMaxGap);
    measured_ = 0;
  }

  // A lead stopped asking its siblings to wait (lend.hpp): measure again after the first gap,
  // which does not grow (its siblings were slow, not its packets dear).
  void pause() noexcept {
    measured_ = 0;
    if (lending_ != Lending::always) skip_ = kFirstGap;
  }

  // The worker was taken back: measure again, after a gap.
  void taken_back() noexcept {
    measured_ = 0;
    if (lending_ == Lending::always) return;
    skip_ = gap_;
    gap_ = std::min(2 * gap_, kMaxGap);
  }

  // --- Lent ------------------------------------------------------------------------------------

  // Starts a lent period: the home's samples stand until helped steps replace them.
  void lent() noexcept { measured_ = std::min(measured_, kWindow); }

  // Whether to time the step after `steps` helped steps.
  [[nodiscard]] bool timing_step(std::uint64_t steps) const noexcept { return (steps + phase_) % kSampleEvery == 0; }

  // A timed helped step cost `ticks`. Returns whether to take the worker back: the median of
  // the last kWindow samples is over 2 theta. A median, not a mean: a step that woke a thread
  // or was preempted costs tens of microseconds once, and must not send a cheap worker home.
  bool helped(std::int64_t ticks) noexcept {
    record(ticks);
    return lending_ == Lending::adaptive && measured_ >= kWindow && median_dear();
  }

 private:
  // The window holds each sample as two bits (cheap: under theta / 2; dear: over 2 theta), not
  // its value: the median's two tests below are then counts, O(1) on every timed step, where a
  // selection over the window cost several percent of a cheap chain's time (measured).
  void record(std::int64_t ticks) noexcept {
    const std::uint32_t bit = 1U << (measured_ % kWindow);
    cheap_ = 2 * ticks < theta_ ? cheap_ | bit : cheap_ & ~bit;
    dear_ = ticks > 2 * theta_ ? dear_ | bit : dear_ & ~bit;
    ++measured_;
  }
  // With a full window (every caller's case), sorted[kWindow / 2] is the median: it is under
  // theta / 2 iff more than half the samples are (the kWindow / 2 + 1 smallest), and over
  // 2 theta iff at least kWindow / 2 are (sorted[kWindow / 2] up to the largest).
  [[nodiscard]] bool median_cheap() const noexcept {
    return static_cast<std::uint64_t>(std::popcount(cheap_)) > kWindow / 2;
  }
  [[nodiscard]] bool median_dear() const noexcept {
    return static_cast<std::uint64_t>(std::popcount(dear_)) >= kWindow / 2;
  }

  Lending lending_;
  std::uint64_t phase_;
  std::int64_t theta_;  // ticks
  std::uint64_t window_;
  std::uint32_t cheap_ = 0;  // bit i: sample i of the window (measured_ % kWindow) was cheap
  std::uint32_t dear_ = 0;   // bit i: it was dear
  std::uint64_t measured_ = 0;
  std::uint64_t skip_ = 0;
  std::uint64_t gap_ = kFirstGap;
  bool started_ = false;
};

// What a stretch of a worker's time cost (ticks): all of it, and the worker's own work (less
// its input waits).
struct Cost {
  std::int64_t all = 0;
  std::int64_t own = 0;
};

// The worker's own work in a stretch of its time: less its input's waits, and less the steps
// its input ran as a helper (NestedSteps: each measured while this stretch is open, timed or
// not; what the timed ones charged to the input timer is taken out of the waits, not twice).
class OwnWork {
 public:
  explicit OwnWork(const WorkerClock& clock) noexcept
      : clock_(clock),
        nested_(NestedSteps::here()),
        nested_ticks_(nested_.ticks),
        nested_charged_(nested_.charged),
        waited_(clock.input_wait_ticks()),
        start_(TickClock::now()) {
    ++nested_.open;
  }
  ~OwnWork() { --nested_.open; }
  OwnWork(const OwnWork&) = delete;
  OwnWork& operator=(const OwnWork&) = delete;

  // The stretch so far: all of it, and the worker's own work.
  [[nodiscard]] Cost end() const noexcept {
    // Less one clock read: the time measured is the stretch's, not the measurement's.
    const std::int64_t all = std::max<std::int64_t>(TickClock::now() - start_ - TickClock::read_cost(), 0);
    const std::int64_t waits = clock_.input_wait_ticks() - waited_ - (nested_.charged - nested_charged_);
    const std::int64_t helped = nested_.ticks - nested_ticks_;
    return {all, std::max<std::int64_t>(all - waits - helped, 0)};
  }

 private:
  const WorkerClock& clock_;
  NestedSteps& nested_;
  std::int64_t nested_ticks_;
  std::int64_t nested_charged_;
  std::int64_t waited_;
  std::int64_t start_;
};

// How long a lead asks its siblings to wait while it works at home, at least, before it stops
// asking (S4): kMaxAsked packets and kMaxAsking.
inline constexpr std::uint64_t kMaxAsked = 64;
inline constexpr std::chrono::nanoseconds kMaxAsking = std::chrono::milliseconds(10);

// Drains `output` (a worker's last generator) into the link of `core` like drain_into()
// (unordered), lending the worker to the link's consumers through `desk` (seat `seat`) whenever
// `policy` says so. `fill(slot, packet)` writes a packet into a slot (giving the slot back if it
// throws); `fail()` records the exception in flight as the run's error, charged to the worker.
// `solo` (may be null): the worker is the lead of a group with an input and several workers,
// lent only while its siblings wait (solo_gate.hpp, S1). Returns at the end of the output;
// throws what the generator throws, or Stopped.
template <class Core, class T, class Fill, class Fail>
void lend_into(Core& core, HelpDesk& desk, std::size_t seat, LendPolicy policy, Input<T>& output,
               WorkerContext& context, Fill&& fill, Fail&& fail, SoloGate* solo = nullptr) {
  const StopFlag stop = context.stop();
  WorkerTally& tally = context.tally();
  WorkerClock& clock = tally.clock();

  // What a helper runs: one packet, on the helper's thread, as this worker (H1: the helper owns
  // the seat, hence everything below).
  struct Lent final : LentWorker {
    Core& core;
    Input<T>& output;
    WorkerClock& clock;
    LendPolicy& policy;
    HelpDesk& desk;
    Fill& fill;
    Fail& fail_with;
    StopFlag stop;

    Lent(Core& c, Input<T>& o, WorkerClock& k, LendPolicy& p, HelpDesk& d, Fill& f, Fail& e,
         StopFlag s) noexcept
        : core(c), output(o), clock(k), policy(p), desk(d), fill(f), fail_with(e), stop(s) {}

    // `ticks`: the step's time as its helper waited for it. The input waits inside it (and the
    // steps its input ran as a helper, LinkInput::charge()) are exact: waits are always timed
    // (WaitTimer). Its own work is sampled: one step in kSampleEvery is timed, and its own work
    // stands for the kSampleEvery around it (LendPolicy). So a step that waited long for its
    // input (behind a slow source) is its helper's wait, timed or not, and not its own work.
    Step step(std::uint32_t slot, std::int64_t& ticks) override {
      // stop_requested() in the worker's code reads the helper's thread's word: the same run's.
      const CurrentStopWordScope stop_word(&stop.word());
      // One writer at a time (H1), so load + store; relaxed as every tally counter.
      const std::uint64_t steps = clock.helped_out.load(std::memory_order_relaxed);
      const std::int64_t waited = clock.input_wait_ticks();
      const bool timed = policy.timing_step(steps);
      Cost cost;
      const bool made = make(slot, MadeBy::helper, timed ? &cost : nullptr);
      ticks = clock.input_wait_ticks() - waited;
      // A stalled step is not a sample of the steps around it: its own work counts once (the
      // stall, less the input waits since the mark, when it was not timed).
      const std::int64_t stall =
          clock.stalled_since.load(std::memory_order_relaxed) != 0 ? take_stall() : 0;
      if (timed) {
        ticks += stall != 0 ? cost.own : cost.own * static_cast<std::int64_t>(LendPolicy::kSampleEvery);
      } else {
        ticks += stall;
      }
      if (ticks != 0) add_owned(clock.helped_ticks, ticks);
      if (stall != 0) judged = true;
      if (!made) return Step::ended;
      clock.helped_out.store(steps + 1, std::memory_order_relaxed);
      if (timed && policy.helped(cost.own)) {
        judged = true;
        desk.recall();
      }
      return Step::packet;
    }

    // The watch marked this step stalled (HelpDesk::watch()): the time since the mark less the
    // input waits since then (counted as waits already), the worker's busy time and its
    // helper's wait.
    std::int64_t take_stall() noexcept {
      // Acquire: pairs with the mark's release ([sync H-M]), for stalled_waits.
      const std::int64_t since = clock.stalled_since.exchange(0, std::memory_order_acquire);
      if (since == 0) return 0;
      const std::int64_t waits = clock.input_wait_ticks() - clock.stalled_waits.load(std::memory_order_relaxed);
      return std::max<std::int64_t>(TickClock::now() - since - waits, 0);
    }

    // One packet into `slot` and queued (true), or the end (false, the slot given back).
    // `cost` (may be null) receives the packet's cost up to its slot filled: the hand-over
    // after it (a consumer's wake-up, at home) is what lending saves, not the worker's work.
    bool make(std::uint32_t slot, MadeBy by, Cost* cost = nullptr) {
      std::optional<OwnWork> work;
      if (cost != nullptr) work.emplace(clock);
      T* packet = nullptr;
      try {
        packet = output.next();
      } catch (...) {
        core.return_slot(slot, stop);
        throw;
      }
      if (packet == nullptr) {
        core.return_slot(slot, stop);
        if (cost != nullptr) *cost = work->end();
        return false;
      }
      fill(slot, *packet);  // gives the slot back if it throws (RingLink::fill)
      if (cost != nullptr) *cost = work->end();
      core.enqueue(slot, stop, by);
      return true;
    }

    void fail() noexcept override { fail_with(); }

    // A step of this lent period stalled, or the policy sent the worker home: its return is a
    // verdict on its cost, even if its turn was over too (S4). Its owner's (H1).
    bool judged = false;
  };
  Lent lent(core, output, clock, policy, desk, fill, fail, stop);

  // The lead's siblings take input again whenever it is home for good or for a while (S1).
  struct Release {
    SoloGate* solo;
    ~Release() {
      if (solo != nullptr) solo->release();
    }
  } const release{solo};
  // Lend now: the policy says so and, for a lead, every sibling waits (asked at the first
  // call). After a turn (S4) the lead asks again at once, the policy not asked: a turn says
  // nothing of its cost. Siblings slow to come to a pull (a long set-up, a long step) are not
  // kept waiting at theirs meanwhile: after kMaxAsked packets and a turn's time of asking, the
  // lead stops asking for a measuring pause.
  bool turn_over = false;
  std::uint64_t asked = 0;
  std::int64_t asked_since = 0;
  auto lend_now = [&] {
    if (!turn_over && !policy.lend_now()) {
      if (solo != nullptr) solo->release();
      return false;
    }
    if (solo == nullptr || solo->quiet()) {
      asked = 0;
      turn_over = false;
      return true;
    }
    if (asked++ == 0) asked_since = now_ns();
    if (asked > kMaxAsked && now_ns() - asked_since > kMaxAsking.count()) {
      asked = 0;
      turn_over = false;
      solo->release();
      policy.pause();
    }
    return false;
  };

  for (;;) {
    // At home: packets as drain_into() makes them, measured, until the policy lends.
    while (!lend_now()) {
      if (!policy.timing_next()) [[likely]] {
        if (!lent.make(core.acquire_slot(stop, tally.output_timer()), MadeBy::producer)) return;
        policy.at_home(0);
        continue;
      }
      Cost cost;
      if (!lent.make(core.acquire_slot(stop, tally.output_timer()), MadeBy::producer, &cost)) return;
      policy.at_home(cost.own);
    }
    // Lent: the home waits (its time counts as blocked, less the helped steps: monitor.hpp).
    policy.lent();
    lent.judged = false;
    HelpDesk::Return back = HelpDesk::Return::ended;
    {
      const WaitScope waiting(tally.output_timer());
      desk.park(seat, lent, clock);
      core.wake_consumers();
      back = desk.wait_home(seat, stop);
    }
    if (back == HelpDesk::Return::ended) {
      // The output ended, or a step threw (then the run is stopping: its error is recorded).
      if (stop.stopping()) throw Stopped{};
      return;
    }
    stop.check();
    if (solo != nullptr) {
      solo->release();  // home, no helper inside its step (S1)
      turn_over = solo->rotated() && !lent.judged;  // the siblings' turn (S4), not a verdict
      if (turn_over) continue;
    }
    policy.taken_back();
  }
}

}  // namespace plumb::detail
