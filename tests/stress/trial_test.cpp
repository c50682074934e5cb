// SPDX-License-Identifier: MIT
// tests/stress/trial_test.cpp: the stress harness's trial generator draws what issue 6 asks
// for (every shape, mode, size and fault), draws the same trial from the same seed, and agrees
// with plumb's own planner about where every stage runs.

#include <plumb/plumb.hpp>

#include "stress/packet.hpp"
#include "stress/trial.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

using plumb::Mode;
using plumb::stress::DrawOptions;
using plumb::stress::FaultKind;
using plumb::stress::Trial;

namespace {

std::vector<plumb::StageOptions> options_of(const Trial& trial) {
  std::vector<plumb::StageOptions> options;
  for (const auto& spec : trial.stages) {
    plumb::StageOptions stage;
    stage.workers = spec.workers;
    stage.in_flight = spec.in_flight;
    stage.name = spec.name;
    stage.mode = spec.mode;
    stage.max_message_size = trial.max_message_size;
    options.push_back(stage);
  }
  return options;
}

}  // namespace

TEST_CASE("the same seed draws the same trial", "[stress_harness]") {
  for (std::uint64_t seed : {0ull, 1ull, 12ull, 123456789ull}) {
    const Trial first = plumb::stress::draw_trial(seed, DrawOptions{});
    const Trial second = plumb::stress::draw_trial(seed, DrawOptions{});
    CHECK(plumb::stress::describe(first) == plumb::stress::describe(second));
    CHECK(first.expected == second.expected);
  }
  CHECK(plumb::stress::describe(plumb::stress::draw_trial(1, DrawOptions{})) !=
        plumb::stress::describe(plumb::stress::draw_trial(2, DrawOptions{})));
}

TEST_CASE("trials cover every shape, mode, size and fault, and plumb's planner agrees",
          "[stress_harness]") {
  std::set<std::size_t> stage_counts;
  std::set<int> workers;
  std::set<std::int64_t> in_flights;
  std::set<Mode> run_modes;
  std::set<Mode> stage_modes;
  std::set<FaultKind> faults;
  std::set<std::size_t> payload_maxima;
  bool fan_out = false, drop = false, fused = false, crossing = false, empty_source = false;
  bool value_sink = false, void_sink = false, delays = false;
  for (std::uint64_t seed = 0; seed < 3000; ++seed) {
    const Trial trial = plumb::stress::draw_trial(seed, DrawOptions{});
    INFO(plumb::stress::describe(trial));
    stage_counts.insert(trial.stages.size());
    run_modes.insert(trial.run_mode);
    faults.insert(trial.fault.kind);
    payload_maxima.insert(trial.payload_max);
    empty_source = empty_source || trial.source_count == 0;
    (trial.value_sink ? value_sink : void_sink) = true;
    for (std::size_t index = 0; index < trial.stages.size(); ++index) {
      const auto& spec = trial.stages[index];
      workers.insert(spec.workers);
      if (spec.in_flight) in_flights.insert(*spec.in_flight);
      if (spec.mode) stage_modes.insert(*spec.mode);
      fan_out = fan_out || spec.fan_max > 1;
      drop = drop || spec.drop_percent > 0;
      delays = delays || spec.delay_percent > 0;
      fused = fused || trial.placement[index].fused;
      crossing = crossing || trial.placement[index].link_crosses_processes;
    }
    REQUIRE(trial.expected.size() <= plumb::stress::kMaxDelivered);

    // plumb's own checks accept the trial, and its planner places the stages as the harness
    // expects (the harness's judgement of faults depends on it).
    const std::vector<plumb::StageOptions> options = options_of(trial);
    std::vector<const plumb::StageOptions*> pointers;
    std::vector<std::string> names;
    for (std::size_t index = 0; index < options.size(); ++index) {
      pointers.push_back(&options[index]);
      names.push_back(options[index].name.empty() ? "stage " + std::to_string(index) : options[index].name);
    }
    REQUIRE_NOTHROW(plumb::detail::validate_stages(pointers, names, trial.value_sink));
    plumb::detail::Plan plan;
    REQUIRE_NOTHROW(plan = plumb::detail::make_plan(pointers, names, trial.run_mode, trial.value_sink));
    for (std::size_t index = 0; index < trial.stages.size(); ++index) {
      CHECK(plan.fused[index] == trial.placement[index].fused);
    }
    for (const auto& group : plan.groups) {
      for (std::size_t index = group.first; index <= group.last; ++index) {
        CHECK(trial.placement[index].group_first == group.first);
        CHECK(trial.placement[index].group_mode == group.mode);
        CHECK(static_cast<std::size_t>(trial.placement[index].group_workers) == group.workers);
      }
    }
  }
  CHECK(stage_counts == std::set<std::size_t>{2, 3, 4, 5, 6});
  CHECK(workers == std::set<int>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(in_flights.count(1) == 1);
  CHECK(in_flights.count(64) == 1);
  CHECK(run_modes.size() == 3);
  CHECK(stage_modes.size() == 3);
  CHECK(faults.size() == plumb::stress::kFaultKinds.size() + 1);  // and trials without a fault
  CHECK(payload_maxima.count(4) == 1);
  CHECK(payload_maxima.count(std::size_t{1} << 20) == 1);
  CHECK(fan_out);
  CHECK(drop);
  CHECK(fused);
  CHECK(crossing);
  CHECK(empty_source);
  CHECK(value_sink);
  CHECK(void_sink);
  CHECK(delays);
}

TEST_CASE("the harness options --modes and --faults off restrict what is drawn", "[stress_harness]") {
  DrawOptions threads_only;
  threads_only.allow_process = false;
  DrawOptions no_faults;
  no_faults.faults = false;
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    const Trial trial = plumb::stress::draw_trial(seed, threads_only);
    CHECK(trial.run_mode != Mode::process);
    for (const auto& place : trial.placement) CHECK(place.group_mode != Mode::process);
    CHECK(trial.fault.kind != FaultKind::kill);
    CHECK(trial.fault.kind != FaultKind::kill_external);
    CHECK(trial.fault.kind != FaultKind::stuck);
    CHECK(trial.fault.kind != FaultKind::caller_killed);
    CHECK(plumb::stress::draw_trial(seed, no_faults).fault.kind == FaultKind::none);
  }
}

TEST_CASE("the harness's packet overhead is exact, so the largest packets fill their slots",
          "[stress_harness]") {
  // The oversize fault adds one byte to the largest payload; with an inexact overhead it would
  // not test the limit's edge.
  const Trial trial = plumb::stress::draw_trial(7, DrawOptions{});
  for (std::size_t payload : {std::size_t{0}, std::size_t{4}, std::size_t{1000}, std::size_t{1} << 20}) {
    plumb::stress::Packet packet;
    packet.payload.resize(payload);
    CHECK(plumb::serialized_size(packet) == payload + plumb::stress::kPacketOverhead);
  }
  plumb::stress::Packet largest = plumb::stress::make_packet(trial, 0);
  plumb::stress::fill_payload(largest.payload, 0, trial.payload_max);
  CHECK(plumb::serialized_size(largest) == trial.max_message_size);
  plumb::stress::make_oversized(largest, trial);
  CHECK(plumb::serialized_size(largest) == trial.max_message_size + 1);
}
