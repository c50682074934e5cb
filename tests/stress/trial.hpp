#pragma once
// SPDX-License-Identifier: MIT
// tests/stress/trial.hpp: one random pipeline of the stress harness, drawn from a seed: its
// stages, modes, packet rules and injected fault, the packets it must deliver, and its text.

#include <plumb/run_options.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace plumb::stress {

// --- Deterministic randomness: the same seed draws the same trial on every build --------------

// splitmix64's finalizer: a bijective mix of 64 bits.
constexpr std::uint64_t mix(std::uint64_t value) noexcept {
  value += 0x9E3779B97F4A7C15ull;
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
  return value ^ (value >> 31);
}

constexpr std::uint64_t mix(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) noexcept {
  return mix(mix(mix(a) ^ b) ^ c);
}

// A tiny generator with its own arithmetic (not <random>'s distributions, whose results the
// standard leaves to the library): a seed reruns the same trial with any compiler.
class Random {
 public:
  explicit Random(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept { return mix(state_++); }
  // Uniform in [low, high].
  std::int64_t range(std::int64_t low, std::int64_t high) noexcept {
    return low + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(high - low + 1));
  }
  // True with probability percent/100.
  bool chance(int percent) noexcept { return range(0, 99) < percent; }
  template <class T, std::size_t N>
  const T& pick(const std::array<T, N>& values) noexcept {
    return values[static_cast<std::size_t>(range(0, N - 1))];
  }

 private:
  std::uint64_t state_;
};

// --- What a trial is ---------------------------------------------------------------------------

inline constexpr std::size_t kMaxStages = 6;
// Most packets that may reach the sink in one trial (the ledger has a counter for each).
inline constexpr std::size_t kMaxDelivered = 12000;
// Encoded size of a packet beyond its payload: id (8), flags (4) and payload length (8), padded
// to 64 bytes (plumb aligns a vector of plain elements so that it can be read in place). Exact,
// so that the largest packets fill their slots to the byte (tests/stress/trial_test.cpp).
inline constexpr std::size_t kPacketOverhead = 64;

enum class FaultKind {
  none,
  exception,     // a stage throws (four flavours, below)
  kill,          // a worker process raises SIGKILL on itself
  exit_zero,     // a worker process calls _exit(0) mid-stream
  exit_nonzero,  // a worker process calls _exit(3), or one of plumb's own exit codes
  early_return,  // a processor or sink returns while its input may still have packets
  stop,          // the caller's stop_token is triggered mid-stream
  oversize,      // a stage yields a message over its max_message_size
  stuck,         // a worker process sleeps far past the grace period (inactivity timeout on)
  // From outside the stages, at a random moment (the run may finish first):
  kill_external,  // the caller's watcher thread SIGKILLs one of the worker processes
  stop_external,  // the caller's watcher thread requests stop
  caller_killed,  // the harness SIGKILLs or SIGTERMs the calling process mid-run
};
inline constexpr std::array kFaultKinds{FaultKind::exception,    FaultKind::kill,
                                        FaultKind::exit_zero,    FaultKind::exit_nonzero,
                                        FaultKind::early_return, FaultKind::stop,
                                        FaultKind::oversize,     FaultKind::stuck,
                                        FaultKind::kill_external, FaultKind::stop_external,
                                        FaultKind::caller_killed};

constexpr const char* name_of(FaultKind kind) noexcept {
  switch (kind) {
    case FaultKind::none: return "none";
    case FaultKind::exception: return "exception";
    case FaultKind::kill: return "sigkill";
    case FaultKind::exit_zero: return "exit0";
    case FaultKind::exit_nonzero: return "exit_nonzero";
    case FaultKind::early_return: return "early_return";
    case FaultKind::stop: return "stop";
    case FaultKind::oversize: return "oversize";
    case FaultKind::stuck: return "stuck";
    case FaultKind::kill_external: return "sigkill_external";
    case FaultKind::stop_external: return "stop_external";
    case FaultKind::caller_killed: return "caller_killed";
  }
  return "?";
}

// What a throwing stage throws: each crosses a process boundary differently (brief 3).
enum class Flavor { runtime_error, out_of_range, derived, not_std };
inline constexpr std::array kFlavors{Flavor::runtime_error, Flavor::out_of_range, Flavor::derived,
                                     Flavor::not_std};
constexpr const char* name_of(Flavor flavor) noexcept {
  switch (flavor) {
    case Flavor::runtime_error: return "std::runtime_error";
    case Flavor::out_of_range: return "std::out_of_range";
    case Flavor::derived: return "InjectedError (derived from std::runtime_error)";
    case Flavor::not_std: return "InjectedCode (not a std::exception)";
  }
  return "?";
}

constexpr const char* name_of(Mode mode) noexcept {
  switch (mode) {
    case Mode::sequential: return "sequential";
    case Mode::thread: return "thread";
    case Mode::process: return "process";
  }
  return "?";
}

struct Fault {
  FaultKind kind = FaultKind::none;
  std::size_t stage = 0;
  // The first worker of `stage` to reach its `at`-th packet (1-based) fires the fault.
  std::uint64_t at = 1;
  Flavor flavor = Flavor::runtime_error;
  int exit_code = 3;
  // External faults: when, after run() starts; and which worker process (an index into the
  // processes alive at that moment, modulo their count).
  int delay_us = 0;
  std::uint64_t victim = 0;
  int signal = 9;  // caller_killed: SIGKILL (9) or SIGTERM (15)
  // A stage (not the source) that catches whatever ends its stream, plumb's stop included, and
  // throws an error of its own: a secondary error that must not replace the root one.
  std::optional<std::size_t> secondary;

  [[nodiscard]] bool external() const noexcept {
    return kind == FaultKind::kill_external || kind == FaultKind::stop_external ||
           kind == FaultKind::caller_killed;
  }
};

struct StageSpec {
  std::optional<Mode> mode;  // .mode(), if set
  int workers = 1;           // .workers(), applied unless the stage is explicitly fused
  std::optional<std::int64_t> in_flight;
  std::string name;          // .name(), if not empty
  // Processors: packets out per packet in, 0 to fan_max, with drop_percent of them 0.
  int fan_max = 1;
  int drop_percent = 0;
  bool pass_through = true;  // a 1:1 packet is moved on as is (else rebuilt with a new id)
  // Per packet, with probability delay_percent, sleep up to delay_max_us microseconds.
  int delay_percent = 0;
  int delay_max_us = 0;
};

// Where a stage ended up, as plumb's planner decides it (tests/stress/trial.hpp mirrors
// plumb/detail/run/plan.hpp: a stage whose mode is sequential is fused into the one before it).
struct Placement {
  bool fused = false;
  std::size_t group_first = 0;  // the stage whose workers run this stage
  Mode group_mode = Mode::thread;
  int group_workers = 1;
  bool link_crosses_processes = false;  // the link after this stage (group ends only)
  bool ends_group = false;
};

struct Trial {
  std::uint64_t seed = 0;
  Mode run_mode = Mode::thread;
  std::vector<StageSpec> stages;  // source, processors, sink
  bool value_sink = false;        // the sink returns a Summary (one worker)
  std::uint64_t source_count = 0;
  std::size_t payload_min = 4;
  std::size_t payload_max = 4;
  std::size_t max_message_size = 64;
  std::chrono::milliseconds grace{200};
  std::chrono::milliseconds inactivity{0};
  Fault fault;
  // Runs of the same Pipeline object, one after the other (the fault fires in the first).
  int runs = 1;

  // Derived by plan() and simulate().
  std::vector<Placement> placement;
  std::vector<std::uint64_t> stage_inputs;  // packets each stage receives (all workers)
  std::vector<std::uint64_t> stage_input_sums;  // the sum of their ids (mod 2^64)
  std::vector<std::uint64_t> expected;      // ids the sink must see, sorted
  std::uint64_t expected_sum = 0;           // their sum (mod 2^64)
  std::uint64_t bytes_moved = 0;

  [[nodiscard]] std::size_t sink() const noexcept { return stages.size() - 1; }

  // --- The packet rules (pure functions of the seed, so the expected set can be computed) ---

  // Packets stage `stage` yields for a packet `id`.
  [[nodiscard]] int fan_out(std::uint64_t id, std::size_t stage) const noexcept {
    const StageSpec& spec = stages[stage];
    const std::uint64_t roll = mix(id, seed, stage);
    if (static_cast<int>(roll % 100) < spec.drop_percent) return 0;
    if (spec.fan_max <= 1) return 1;
    return 1 + static_cast<int>((roll >> 8) % static_cast<std::uint64_t>(spec.fan_max));
  }
  // The id of the j-th packet built from `id` by `stage`.
  [[nodiscard]] std::uint64_t child_id(std::uint64_t id, std::size_t stage, int j) const noexcept {
    return mix(id ^ seed, stage + 1, static_cast<std::uint64_t>(j) + 1);
  }
  [[nodiscard]] bool keeps_id(std::uint64_t id, std::size_t stage) const noexcept {
    return stages[stage].pass_through && fan_out(id, stage) == 1;
  }
  // Payload bytes of packet `id`: log-uniform in [payload_min, payload_max].
  [[nodiscard]] std::size_t payload_size(std::uint64_t id) const noexcept {
    if (payload_max <= payload_min) return payload_min;
    const std::uint64_t roll = mix(id, seed, 0xB17E);
    if ((roll >> 40) % 20 == 0) return payload_max;  // 5%: a slot filled to the byte
    const double low = static_cast<double>(payload_min);
    const double ratio = static_cast<double>(payload_max) / low;
    const double fraction = static_cast<double>(roll % 10000) / 10000.0;
    const double size = low * std::pow(ratio, fraction);
    return std::clamp(static_cast<std::size_t>(size), payload_min, payload_max);
  }
  // Microseconds stage `stage` sleeps for packet `id` (mostly 0).
  [[nodiscard]] int delay_us(std::uint64_t id, std::size_t stage) const noexcept {
    const StageSpec& spec = stages[stage];
    if (spec.delay_percent == 0) return 0;
    const std::uint64_t roll = mix(id, seed ^ 0xD1A7, stage);
    if (static_cast<int>(roll % 100) >= spec.delay_percent) return 0;
    return 1 + static_cast<int>((roll >> 8) % static_cast<std::uint64_t>(spec.delay_max_us));
  }
};

// --- Planning and simulation --------------------------------------------------------------------

// Mirrors plumb's planner: fused groups, their mode and workers, and which links cross a
// process boundary.
inline void plan(Trial& trial) {
  const std::size_t count = trial.stages.size();
  trial.placement.assign(count, Placement{});
  for (std::size_t index = 0; index < count; ++index) {
    const StageSpec& spec = trial.stages[index];
    const Mode mode = spec.mode.value_or(trial.run_mode);
    Placement& place = trial.placement[index];
    if (index > 0 && mode == Mode::sequential) {
      place = trial.placement[index - 1];  // the group's first stage, mode and workers
      place.fused = true;
    } else {
      place.group_first = index;
      place.group_mode = mode;
      place.group_workers = mode == Mode::sequential ? 1 : spec.workers;
    }
  }
  for (std::size_t index = 0; index < count; ++index) {
    Placement& place = trial.placement[index];
    place.ends_group = index + 1 == count || !trial.placement[index + 1].fused;
    if (place.ends_group && index + 1 < count) {
      place.link_crosses_processes = place.group_mode == Mode::process ||
                                     trial.placement[index + 1].group_mode == Mode::process;
    }
  }
}

// Follows every packet through the stages: the ids the sink must see, the packets each stage
// receives, and the payload bytes that move. False if two packets would share an id.
inline bool simulate(Trial& trial) {
  const std::size_t count = trial.stages.size();
  trial.stage_inputs.assign(count, 0);
  trial.stage_input_sums.assign(count, 0);
  trial.bytes_moved = 0;
  std::vector<std::uint64_t> ids(trial.source_count);
  for (std::uint64_t i = 0; i < trial.source_count; ++i) ids[i] = i;
  for (std::size_t stage = 1; stage < count; ++stage) {
    trial.stage_inputs[stage] = ids.size();
    for (std::uint64_t id : ids) {
      trial.bytes_moved += trial.payload_size(id);
      trial.stage_input_sums[stage] += id;
    }
    if (stage == count - 1) break;
    std::vector<std::uint64_t> next;
    for (std::uint64_t id : ids) {
      if (trial.keeps_id(id, stage)) {
        next.push_back(id);
        continue;
      }
      const int fan = trial.fan_out(id, stage);
      for (int j = 0; j < fan; ++j) next.push_back(trial.child_id(id, stage, j));
    }
    ids = std::move(next);
    if (ids.size() > 4 * kMaxDelivered) break;  // the caller shrinks the trial
  }
  std::sort(ids.begin(), ids.end());
  trial.expected = ids;
  trial.expected_sum = 0;
  for (std::uint64_t id : ids) trial.expected_sum += id;
  return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
}

// Packets worker `worker` of `workers` source workers yields.
inline std::uint64_t source_share(const Trial& trial, std::uint64_t worker, std::uint64_t workers) {
  return trial.source_count / workers + (worker < trial.source_count % workers ? 1 : 0);
}

// --- Drawing a trial from a seed ---------------------------------------------------------------

struct DrawOptions {
  bool faults = true;
  // Modes a trial may use (run mode and per-stage modes).
  bool allow_sequential = true;
  bool allow_thread = true;
  bool allow_process = true;
};

namespace detail_draw {

inline Mode draw_mode(Random& random, const DrawOptions& options) {
  std::array<Mode, 3> allowed{};
  std::size_t count = 0;
  if (options.allow_sequential) allowed[count++] = Mode::sequential;
  if (options.allow_thread) allowed[count++] = Mode::thread;
  if (options.allow_process) allowed[count++] = Mode::process;
  return allowed[static_cast<std::size_t>(random.range(0, static_cast<std::int64_t>(count) - 1))];
}

// Faults that can be injected at `stage` of `trial`.
inline std::vector<FaultKind> eligible(const Trial& trial, std::size_t stage) {
  const Placement& place = trial.placement[stage];
  const bool in_process = place.group_mode == Mode::process;
  std::vector<FaultKind> kinds{FaultKind::exception, FaultKind::stop};
  if (in_process) {
    kinds.insert(kinds.end(), {FaultKind::kill, FaultKind::exit_zero, FaultKind::exit_nonzero,
                               FaultKind::stuck});
  }
  if (stage > 0) kinds.push_back(FaultKind::early_return);
  if (stage < trial.sink() && place.ends_group) kinds.push_back(FaultKind::oversize);
  return kinds;
}

// Packets the slowest-fed worker of `stage` is sure to see: at least one worker reaches this
// count (for a source, every worker does).
inline std::uint64_t sure_packets(const Trial& trial, std::size_t stage) {
  const auto workers = static_cast<std::uint64_t>(trial.placement[stage].group_workers);
  if (stage == 0) return source_share(trial, workers - 1, workers);
  const std::uint64_t inputs = trial.stage_inputs[stage];
  return (inputs + workers - 1) / workers;
}

// The same for packets `stage` yields (the oversize fault counts those).
inline std::uint64_t sure_outputs(const Trial& trial, std::size_t stage) {
  if (stage == 0) return sure_packets(trial, 0);
  const auto workers = static_cast<std::uint64_t>(trial.placement[stage].group_workers);
  const std::uint64_t outputs = stage + 1 < trial.stages.size() ? trial.stage_inputs[stage + 1] : 0;
  return (outputs + workers - 1) / workers;
}

}  // namespace detail_draw

inline Trial draw_trial(std::uint64_t seed, const DrawOptions& options) {
  using detail_draw::draw_mode;
  Random random(mix(seed, 0x5EED));
  Trial trial;
  trial.seed = seed;
  trial.run_mode = draw_mode(random, options);
  const auto stage_count = static_cast<std::size_t>(random.range(2, kMaxStages));
  trial.stages.resize(stage_count);
  for (std::size_t index = 0; index < stage_count; ++index) {
    StageSpec& spec = trial.stages[index];
    if (random.chance(40)) spec.mode = draw_mode(random, options);
    const bool explicitly_fused = spec.mode == Mode::sequential;
    spec.workers = explicitly_fused ? 1 : static_cast<int>(random.range(1, 8));
    if (random.chance(80)) spec.in_flight = random.range(spec.workers, 64);
    if (random.chance(50)) spec.name = fmt::format("s{}", index);
    if (index > 0 && index + 1 < stage_count) {
      spec.fan_max = static_cast<int>(random.pick(std::array{1, 1, 2, 3}));
      spec.drop_percent = static_cast<int>(random.pick(std::array{0, 0, 10, 50}));
      spec.pass_through = random.chance(60);
    }
    if (random.chance(35)) {
      spec.delay_percent = static_cast<int>(random.pick(std::array{1, 5, 20}));
      spec.delay_max_us = static_cast<int>(random.pick(std::array{20, 200, 1000}));
    }
  }
  trial.value_sink = random.chance(40);
  if (trial.value_sink) trial.stages.back().workers = 1;
  plan(trial);
  // A value sink fused into several workers is a ConfigError (tests/pipeline_thread_test.cpp).
  if (trial.value_sink && trial.placement.back().fused && trial.placement.back().group_workers > 1) {
    trial.value_sink = false;
  }
  // A fused stage that ends a group sets the in_flight of the group's output link: it must
  // cover the group's workers.
  for (std::size_t index = 0; index < stage_count; ++index) {
    StageSpec& spec = trial.stages[index];
    const Placement& place = trial.placement[index];
    if (place.fused && spec.in_flight && *spec.in_flight < place.group_workers) {
      spec.in_flight = random.range(place.group_workers, 64);
    }
  }

  // Payloads: 4 bytes to 1 MiB, log-uniform per trial and per packet.
  const std::array<std::size_t, 6> maxima{4, 64, 1024, 16 * 1024, 128 * 1024, 1024 * 1024};
  trial.payload_min = 4;
  trial.payload_max = random.pick(maxima);
  // Shared memory stays bounded: slots x max_message_size over the crossing links.
  for (;;) {
    std::size_t shared = 0;
    for (std::size_t index = 0; index + 1 < stage_count; ++index) {
      if (!trial.placement[index].link_crosses_processes) continue;
      const std::int64_t slots =
          trial.stages[index].in_flight.value_or(trial.placement[index].group_workers);
      shared += static_cast<std::size_t>(slots) * (trial.payload_max + kPacketOverhead);
    }
    if (shared <= (std::size_t{192} << 20) || trial.payload_max <= 1024) break;
    trial.payload_max /= 4;
  }
  trial.max_message_size = trial.payload_max + kPacketOverhead;

  const std::uint64_t count_roll = random.next() % 100;
  trial.source_count = count_roll < 5    ? 0
                       : count_roll < 15 ? 1 + random.next() % 3
                                         : 1 + random.next() % 2000;
  // Keep a trial short: bounded packets, bytes and sleeps.
  for (;;) {
    const bool unique = simulate(trial);
    double sleep_us = 0;
    for (std::size_t index = 0; index < stage_count; ++index) {
      const StageSpec& spec = trial.stages[index];
      const double inputs = index == 0 ? static_cast<double>(trial.source_count)
                                       : static_cast<double>(trial.stage_inputs[index]);
      sleep_us += inputs * spec.delay_percent / 100.0 * spec.delay_max_us / 2.0 /
                  trial.placement[index].group_workers;
    }
    if (unique && trial.expected.size() <= kMaxDelivered && trial.bytes_moved <= (std::uint64_t{48} << 20) &&
        sleep_us <= 400'000) {
      break;
    }
    trial.source_count /= 2;
  }

  trial.grace = std::chrono::milliseconds(random.pick(std::array{20, 100, 500}));
  const bool any_process = std::any_of(trial.placement.begin(), trial.placement.end(),
                                       [](const Placement& place) { return place.group_mode == Mode::process; });
  trial.runs = random.chance(25) ? 2 : 1;
  if (options.faults && random.chance(15)) {
    const std::int64_t roll = random.range(0, 99);
    trial.fault.kind = any_process && roll < 20    ? FaultKind::caller_killed
                       : any_process && roll < 65 ? FaultKind::kill_external
                                                  : FaultKind::stop_external;
    trial.fault.signal = random.chance(50) ? 9 : 15;
    trial.fault.delay_us = static_cast<int>(random.range(0, 40'000));
    trial.fault.victim = static_cast<std::uint64_t>(random.range(0, 999));
  } else if (options.faults && random.chance(60)) {
    // A stage that receives packets, then a fault it allows.
    std::vector<std::size_t> candidates;
    for (std::size_t index = 0; index < stage_count; ++index) {
      if (detail_draw::sure_packets(trial, index) > 0) candidates.push_back(index);
    }
    if (!candidates.empty()) {
      Fault& fault = trial.fault;
      fault.stage = candidates[static_cast<std::size_t>(
          random.range(0, static_cast<std::int64_t>(candidates.size()) - 1))];
      const std::vector<FaultKind> kinds = detail_draw::eligible(trial, fault.stage);
      fault.kind = kinds[static_cast<std::size_t>(random.range(0, static_cast<std::int64_t>(kinds.size()) - 1))];
      if (fault.kind == FaultKind::oversize && detail_draw::sure_outputs(trial, fault.stage) == 0) {
        fault.kind = FaultKind::exception;  // the stage yields nothing: nothing can be too big
      }
      const std::uint64_t sure = fault.kind == FaultKind::oversize
                                     ? detail_draw::sure_outputs(trial, fault.stage)
                                     : detail_draw::sure_packets(trial, fault.stage);
      fault.at = static_cast<std::uint64_t>(random.range(1, static_cast<std::int64_t>(sure)));
      fault.flavor = random.pick(kFlavors);
      fault.exit_code = random.pick(std::array{3, 3, 70, 71, 72});
      // Stretched by 4 under sanitizers, when the trial runs.
      if (fault.kind == FaultKind::stuck) trial.inactivity = std::chrono::milliseconds(500);
      if (random.chance(30)) {
        const auto stage = static_cast<std::size_t>(random.range(1, static_cast<std::int64_t>(stage_count) - 1));
        if (stage != fault.stage) fault.secondary = stage;
      }
    }
  }
  return trial;
}

// --- The trial as text: enough to rebuild it by hand ----------------------------------------------

inline std::string describe(const Trial& trial) {
  std::string text = fmt::format(
      "seed {}: run mode {}, {} stages, {} source packets, {} delivered, payload {}..{} bytes, "
      "max_message_size {}, grace {} ms, inactivity timeout {} ms, {} run{} of one Pipeline\n",
      trial.seed, name_of(trial.run_mode), trial.stages.size(), trial.source_count,
      trial.expected.size(), trial.payload_min, trial.payload_max, trial.max_message_size,
      trial.grace.count(), trial.inactivity.count(), trial.runs, trial.runs == 1 ? "" : "s");
  for (std::size_t index = 0; index < trial.stages.size(); ++index) {
    const StageSpec& spec = trial.stages[index];
    const Placement& place = trial.placement[index];
    const char* role = index == 0 ? "source" : index == trial.sink() ? (trial.value_sink ? "sink (value)" : "sink (void)") : "processor";
    text += fmt::format("  stage {} {}{}: .mode({}) .workers({}) .in_flight({}) -> {}", index, role,
                        spec.name.empty() ? "" : fmt::format(" '{}'", spec.name),
                        spec.mode ? name_of(*spec.mode) : "unset", spec.workers,
                        spec.in_flight ? std::to_string(*spec.in_flight) : "unset",
                        place.fused ? fmt::format("fused into stage {}", place.group_first)
                                    : fmt::format("{} x{}", name_of(place.group_mode), place.group_workers));
    if (place.ends_group && index < trial.sink()) {
      text += place.link_crosses_processes ? ", shared-memory link" : ", in-process link";
    }
    if (index > 0 && index < trial.sink()) {
      text += fmt::format(", fan-out 0..{} drop {}%{}", spec.fan_max, spec.drop_percent,
                          spec.pass_through ? " pass-through" : "");
    }
    if (index > 0) text += fmt::format(", {} packets in", trial.stage_inputs[index]);
    if (spec.delay_percent > 0) {
      text += fmt::format(", sleeps <= {} us on {}% of packets", spec.delay_max_us, spec.delay_percent);
    }
    text += '\n';
  }
  const Fault& fault = trial.fault;
  if (fault.kind == FaultKind::none) {
    text += "  fault: none\n";
  } else if (fault.external()) {
    std::string how;
    if (fault.kind == FaultKind::kill_external) {
      how = fmt::format(", victim: worker process {} (mod the live ones)", fault.victim);
    } else if (fault.kind == FaultKind::caller_killed) {
      how = fault.signal == 9 ? ", SIGKILL" : ", SIGTERM";
    }
    text += fmt::format("  fault: {} {} us after the {} starts{}\n", name_of(fault.kind), fault.delay_us,
                        fault.kind == FaultKind::caller_killed ? "trial process" : "first run()", how);
  } else {
    text += fmt::format("  fault: {} at stage {}, packet {} of the first worker to get there", name_of(fault.kind),
                        fault.stage, fault.at);
    if (fault.kind == FaultKind::exception) text += fmt::format(", throws {}", name_of(fault.flavor));
    if (fault.kind == FaultKind::exit_nonzero) text += fmt::format(", status {}", fault.exit_code);
    if (fault.secondary) {
      text += fmt::format("; stage {} turns whatever ends its stream into an error of its own", *fault.secondary);
    }
    text += '\n';
  }
  return text;
}

}  // namespace plumb::stress
