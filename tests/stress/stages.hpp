#pragma once
// SPDX-License-Identifier: MIT
// tests/stress/stages.hpp: the shared ledger and the stage bodies of the stress harness. Every stage checks what it receives, follows the trial's packet rules and fires the
// trial's fault when its turn comes.

#include "packet.hpp"
#include "trial.hpp"

#include <plumb/plumb.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace plumb::stress {

// --- The ledger: what every worker saw, in memory shared by all processes of a trial ----------

// Lives in a MAP_SHARED mapping made by the harness before it forks the trial, so the trial,
// its worker processes and the harness all see it. Only lock-free atomics and plain bytes.
struct Ledger {
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                    std::atomic<std::int64_t>::is_always_lock_free &&
                    std::atomic<std::uint32_t>::is_always_lock_free,
                "the ledger is shared between processes: its atomics must be lock-free");

  // The fault: fired by the first worker to reach it (exchange), with the time it fired.
  std::atomic<std::uint32_t> fired{0};
  std::atomic<std::int64_t> fire_ns{0};
  // The stop fault: a stage asks, the trial's watcher thread requests stop and answers.
  std::atomic<std::uint32_t> stop_wanted{0};
  std::atomic<std::uint32_t> stop_done{0};
  // Damage seen anywhere: a payload that does not match its id, an id the sink should not see.
  std::atomic<std::uint64_t> corrupt{0};
  std::atomic<std::uint64_t> unexpected{0};
  std::atomic<std::uint64_t> corrupt_id{0};
  std::atomic<std::uint64_t> corrupt_stage{0};
  // Who fired the fault: the worker's index in its stage and its process.
  std::atomic<std::uint64_t> fired_worker{0};
  std::atomic<std::int64_t> fired_pid{0};
  // Which run of the trial's Pipeline is going on (set by the trial between runs), and in which
  // the fault fired.
  std::atomic<std::uint32_t> run{0};
  std::atomic<std::uint32_t> fired_run{0};
  // Per stage: packets received, the sum of their ids, packets yielded (also the progress
  // report of a hung trial).
  std::atomic<std::uint64_t> received[kMaxStages]{};
  std::atomic<std::uint64_t> received_sum[kMaxStages]{};
  std::atomic<std::uint64_t> yielded[kMaxStages]{};
  // seen[i]: how many times the sink saw the i-th expected id.
  std::atomic<std::uint32_t> seen[kMaxDelivered]{};

  // The trial's verdict, written by the trial process for the harness.
  enum class Verdict : std::uint32_t { none, passed, failed, leaked };
  std::atomic<Verdict> verdict{Verdict::none};
  std::atomic<std::uint32_t> fault_fired{0};
  std::atomic<std::int64_t> worst_latency_ns{0};  // fault fired -> run() threw, the slowest run
  char report[16384]{};
};

inline std::int64_t monotonic_ns() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);  // one clock for every process of the machine
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

// What the stage bodies get as their one constant (copied into every worker, threads and
// forked processes alike; both pointers stay valid in a forked child).
struct Env {
  const Trial* trial;
  Ledger* ledger;
};

// --- Injected faults -----------------------------------------------------------------------------

struct InjectedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct InjectedCode {
  std::uint64_t seed;
};

inline std::string injected_message(const Trial& trial) {
  return fmt::format("plumb_stress: injected {} at stage {} packet {} (seed {})",
                     name_of(trial.fault.flavor), trial.fault.stage, trial.fault.at, trial.seed);
}

inline std::string secondary_message(const Trial& trial, std::size_t stage) {
  return fmt::format("plumb_stress: secondary error of stage {} (seed {})", stage, trial.seed);
}

// In a catch handler of stage `stage`: rethrows, or for the trial's secondary stage throws its
// own error instead (as a stage that catches (...) and reports its own failure would).
[[noreturn]] inline void rethrow_or_translate(const Trial& trial, std::size_t stage) {
  if (trial.fault.secondary == stage) throw std::runtime_error(secondary_message(trial, stage));
  throw;
}

inline void pause_us(int microseconds) {
  if (microseconds > 0) std::this_thread::sleep_for(std::chrono::microseconds(microseconds));
}

// Called by stage `stage` with the count of packets this worker has handled (received, or for
// the oversize fault, yielded). If the trial's fault is due here and nobody fired it yet, fires
// it: throws, dies, sleeps or asks for a stop here; returns the kind for the faults the body
// acts on itself (early_return, oversize); else FaultKind::none.
inline FaultKind fire(const Env& env, std::size_t stage, std::uint64_t count, bool on_output) {
  const Trial& trial = *env.trial;
  const Fault& fault = trial.fault;
  if (fault.kind == FaultKind::none || fault.external() || fault.stage != stage || fault.at != count ||
      (fault.kind == FaultKind::oversize) != on_output) {
    return FaultKind::none;
  }
  Ledger& ledger = *env.ledger;
  // acq_rel: exactly one worker (thread or process) wins the exchange.
  if (ledger.fired.exchange(1, std::memory_order_acq_rel) != 0) {
    // Every worker of a stuck stage that gets this far sticks: plumb must kill them all at
    // once after the grace period, not one grace period each.
    // Relaxed: `run` is set before the workers of a run start, `fired_run` before the first one
    // sticks; a worker that misreads it only fails to stick.
    if (fault.kind == FaultKind::stuck &&
        ledger.fired_run.load(std::memory_order_relaxed) == ledger.run.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::seconds(600));
    }
    return FaultKind::none;
  }
  // Relaxed: read by the trial after run() returned (threads joined, processes reaped).
  ledger.fired_worker.store(this_worker().index, std::memory_order_relaxed);
  ledger.fired_pid.store(::getpid(), std::memory_order_relaxed);
  ledger.fired_run.store(ledger.run.load(std::memory_order_relaxed), std::memory_order_relaxed);
  ledger.fire_ns.store(monotonic_ns(), std::memory_order_release);
  switch (fault.kind) {
    case FaultKind::exception:
      switch (fault.flavor) {
        case Flavor::runtime_error: throw std::runtime_error(injected_message(trial));
        case Flavor::out_of_range: throw std::out_of_range(injected_message(trial));
        case Flavor::derived: throw InjectedError(injected_message(trial));
        case Flavor::not_std: throw InjectedCode{trial.seed};
      }
      break;
    case FaultKind::kill:
      ::kill(::getpid(), SIGKILL);
      for (;;) ::pause();
    case FaultKind::exit_zero: ::_exit(0);
    case FaultKind::exit_nonzero: ::_exit(fault.exit_code);
    case FaultKind::stuck:
      // Far past any grace period: plumb must kill this process, not wait for it.
      std::this_thread::sleep_for(std::chrono::seconds(600));
      break;
    case FaultKind::stop: {
      ledger.stop_wanted.store(1, std::memory_order_release);  // [sync S1] read by the watcher
      const std::int64_t give_up = monotonic_ns() + 20'000'000'000;
      // acquire: pairs with the watcher's [sync S2] release after request_stop().
      while (ledger.stop_done.load(std::memory_order_acquire) == 0 && monotonic_ns() < give_up) {
        pause_us(100);
      }
      break;
    }
    case FaultKind::early_return:
    case FaultKind::oversize: return fault.kind;
    case FaultKind::kill_external:
    case FaultKind::stop_external:
    case FaultKind::caller_killed:
    case FaultKind::none: break;
  }
  return FaultKind::none;
}

// Counts a received packet and checks its payload.
inline void check_received(const Env& env, const Packet& packet, std::size_t stage) {
  Ledger& ledger = *env.ledger;
  ledger.received[stage].fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
  ledger.received_sum[stage].fetch_add(packet.id, std::memory_order_relaxed);
  const bool size_ok = (packet.flags & Packet::kOversized) != 0 ||
                       packet.payload.size() == env.trial->payload_size(packet.id);
  if (!size_ok || !payload_matches(packet)) {
    if (ledger.corrupt.fetch_add(1, std::memory_order_relaxed) == 0) {  // relaxed: a tally
      ledger.corrupt_id.store(packet.id, std::memory_order_relaxed);
      ledger.corrupt_stage.store(stage, std::memory_order_relaxed);
    }
  }
}

// The sink's record: one more sighting of `id`.
inline void record_delivery(const Env& env, std::uint64_t id) {
  const std::vector<std::uint64_t>& expected = env.trial->expected;
  const auto found = std::lower_bound(expected.begin(), expected.end(), id);
  if (found == expected.end() || *found != id) {
    env.ledger->unexpected.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
    return;
  }
  const auto index = static_cast<std::size_t>(found - expected.begin());
  env.ledger->seen[index].fetch_add(1, std::memory_order_relaxed);  // relaxed: read after run()
}

// --- The stage bodies ----------------------------------------------------------------------------
// Internal linkage: Clang 14 with AddressSanitizer cannot assemble inline coroutines in headers
// (docs/guide.md), and this header has one includer.

namespace {

Generator<Packet> source(Env env) {
  const Trial& trial = *env.trial;
  const WorkerInfo& me = this_worker();
  std::uint64_t produced = 0;
  for (std::uint64_t index = me.index; index < trial.source_count; index += me.count) {
    ++produced;
    Packet packet = make_packet(trial, index);
    pause_us(trial.delay_us(index, 0));
    (void)fire(env, 0, produced, false);
    if (fire(env, 0, produced, true) == FaultKind::oversize) make_oversized(packet, trial);
    env.ledger->yielded[0].fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
    co_yield std::move(packet);
  }
}

Generator<Packet> processor(Stream<Packet> in, Env env, std::size_t stage) {
  const Trial& trial = *env.trial;
  std::uint64_t received = 0;
  std::uint64_t produced = 0;
  try {
    for (Packet& packet : in) {
      check_received(env, packet, stage);
      pause_us(trial.delay_us(packet.id, stage));
      const FaultKind fault = fire(env, stage, ++received, false);
      if (trial.keeps_id(packet.id, stage)) {
        Packet out = (packet.flags & Packet::kOversized) != 0 ? make_packet(trial, packet.id) : std::move(packet);
        if (fire(env, stage, ++produced, true) == FaultKind::oversize) make_oversized(out, trial);
        env.ledger->yielded[stage].fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
        co_yield std::move(out);
      } else {
        const int fan = trial.fan_out(packet.id, stage);
        for (int j = 0; j < fan; ++j) {
          Packet child = make_packet(trial, trial.child_id(packet.id, stage, j));
          if (fire(env, stage, ++produced, true) == FaultKind::oversize) make_oversized(child, trial);
          env.ledger->yielded[stage].fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
          co_yield std::move(child);
        }
      }
      if (fault == FaultKind::early_return) co_return;
    }
  } catch (...) {
    rethrow_or_translate(trial, stage);
  }
}

// Returns false where the sink's fault says to return early.
bool sink_one(const Env& env, const Packet& packet, std::size_t stage, std::uint64_t received) {
  check_received(env, packet, stage);
  pause_us(env.trial->delay_us(packet.id, stage));
  const FaultKind fault = fire(env, stage, received, false);
  record_delivery(env, packet.id);
  return fault != FaultKind::early_return;
}

void void_sink(Stream<Packet> in, Env env) {
  const std::size_t stage = env.trial->sink();
  std::uint64_t received = 0;
  try {
    for (Packet& packet : in) {
      if (!sink_one(env, packet, stage, ++received)) return;
    }
  } catch (...) {
    rethrow_or_translate(*env.trial, stage);
  }
}

Summary value_sink(Stream<Packet> in, Env env) {
  const std::size_t stage = env.trial->sink();
  Summary summary;
  std::uint64_t received = 0;
  try {
    for (Packet& packet : in) {
      summary.count += 1;
      summary.sum += packet.id;
      if (!sink_one(env, packet, stage, ++received)) return summary;
    }
  } catch (...) {
    rethrow_or_translate(*env.trial, stage);
  }
  return summary;
}

}  // namespace

}  // namespace plumb::stress
