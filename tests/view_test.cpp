// SPDX-License-Identifier: MIT
// tests/view_test.cpp: plumb::View<T>, reading large packets in place in every mode.

#include <plumb/plumb.hpp>

#include "support/modes.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using plumb::View;

namespace {

using Frame = std::vector<std::int32_t>;
constexpr std::size_t kFrameInts = 10'000'000;  // 40 MB

Generator<Frame> frames(int count) {
  for (int i = 0; i < count; ++i) {
    Frame frame(kFrameInts, i);
    frame.front() = -1;
    frame.back() = i + 1;
    co_yield std::move(frame);
  }
}

// Whether `address` lies in a shared mapping of this process (the "s" in /proc/self/maps).
bool in_shared_mapping(const void* address) {
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range;
    std::string permissions;
    fields >> range >> permissions;
    const auto dash = range.find('-');
    const auto low = std::stoull(range.substr(0, dash), nullptr, 16);
    const auto high = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (target >= low && target < high) return permissions.size() == 4 && permissions[3] == 's';
  }
  return false;
}

struct FrameReport {
  long sum_of_ends = 0;
  std::size_t frames = 0;
  std::size_t ints = 0;
  std::size_t in_shared_memory = 0;
  std::size_t aligned = 0;
};

}  // namespace

template <>
struct plumb::Codec<FrameReport> {
  static void encode(const FrameReport& report, plumb::Writer& out) {
    out.write(report.sum_of_ends);
    out.write(report.frames);
    out.write(report.ints);
    out.write(report.in_shared_memory);
    out.write(report.aligned);
  }
  static FrameReport decode(plumb::Reader& in) {
    FrameReport report;
    report.sum_of_ends = in.read<long>();
    report.frames = in.read<std::size_t>();
    report.ints = in.read<std::size_t>();
    report.in_shared_memory = in.read<std::size_t>();
    report.aligned = in.read<std::size_t>();
    return report;
  }
};

namespace {

// A vector type whose bytes a user Codec decides: a tag that, read as the built-in layout
// (a u64 count, then the elements), would claim 0x4000000000000001 elements, whose size in bytes
// wraps to 4; then a u32 count and the values.
struct Sample {
  std::int32_t value;
};
using Samples = std::vector<Sample>;
constexpr std::uint64_t kSamplesTag = 0x4000000000000001;

// An element type with a Codec of its own (a float on the wire).
struct Celsius {
  double degrees;
};

}  // namespace

template <>
struct plumb::Codec<Samples> {
  static void encode(const Samples& samples, plumb::Writer& out) {
    out.write(kSamplesTag);
    out.write(static_cast<std::uint32_t>(samples.size()));
    for (const Sample& sample : samples) out.write(sample.value);
  }
  static Samples decode(plumb::Reader& in) {
    if (in.read<std::uint64_t>() != kSamplesTag) throw plumb::DecodeError("not Samples");
    Samples samples(in.read<std::uint32_t>());
    for (Sample& sample : samples) sample.value = in.read<std::int32_t>();
    return samples;
  }
};

template <>
struct plumb::Codec<Celsius> {
  static void encode(const Celsius& value, plumb::Writer& out) { out.write(static_cast<float>(value.degrees)); }
  static Celsius decode(plumb::Reader& in) { return Celsius{in.read<float>()}; }
};

namespace {

FrameReport inspect(Stream<View<Frame>> in) {
  FrameReport report;
  for (const View<Frame>& frame : in) {
    report.sum_of_ends += frame.front() + frame[frame.size() - 1];
    report.frames += 1;
    report.ints += frame.size();
    report.in_shared_memory += in_shared_mapping(frame.data()) ? 1 : 0;
    report.aligned += reinterpret_cast<std::uintptr_t>(frame.data()) % 64 == 0 ? 1 : 0;
  }
  return report;
}

}  // namespace

TEST_CASE("a View can be neither copied nor moved, so it cannot outlive its packet", "[view]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<View<Frame>>);
  STATIC_REQUIRE_FALSE(std::is_move_constructible_v<View<Frame>>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<View<std::string>>);
  STATIC_REQUIRE_FALSE(std::is_move_constructible_v<View<std::string>>);
}

// Across processes a View reads the shared slot itself, which starts 64-byte aligned; within one
// process it reads the producer's own vector. Six frames through two slots reuse each slot.
TEST_CASE("a consumer reads 40 MB packets where the link keeps them: in place in the shared slot "
          "across processes, the producer's vector within one",
          "[view][process]") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::process, Mode::thread, Mode::sequential}));
  INFO("mode " << plumb::test::mode_name(mode));
  plumb::Pipeline pipeline{plumb::stage(frames, 6).in_flight(2).max_message_size(kFrameInts * 4 + 64),
                           plumb::stage(inspect)};
  const FrameReport report = pipeline.run(mode);
  CHECK(report.frames == 6);
  CHECK(report.ints == 6 * kFrameInts);
  CHECK(report.sum_of_ends == 6 * -1 + (1 + 2 + 3 + 4 + 5 + 6));
  if (mode == Mode::process) {
    CHECK(report.in_shared_memory == 6);  // no copy into the consumer's heap
    CHECK(report.aligned == 6);
  } else {
    CHECK(report.in_shared_memory == 0);  // the producer's own vector, in this process
  }
}

TEST_CASE("Views of strings, fused stages and a processor reading Views", "[view]") {
  auto words = [](int count) -> Generator<std::string> {
    for (int i = 0; i < count; ++i) co_yield std::string(static_cast<std::size_t>(i), 'w');
  };
  auto lengths = [](Stream<View<std::string>> in) -> Generator<std::size_t> {
    for (const auto& word : in) co_yield word.text().size();
  };
  auto total = [](Stream<std::size_t> in) {
    std::size_t sum = 0;
    for (std::size_t n : in) sum += n;
    return sum;
  };
  plumb::Pipeline process{plumb::stage(words, 100), plumb::stage(lengths).workers(2), plumb::stage(total)};
  CHECK(process.run(Mode::process) == 99 * 100 / 2);
  plumb::Pipeline fused{plumb::stage(words, 100), plumb::stage(lengths).mode(Mode::sequential),
                        plumb::stage(total)};
  CHECK(fused.run() == 99 * 100 / 2);
}

TEST_CASE("to_vector and to_string keep an owned copy", "[view]") {
  auto keep = [](Stream<View<Frame>> in) {
    std::vector<Frame> kept;
    for (const auto& frame : in) kept.push_back(frame.to_vector());
    return kept;
  };
  auto small = [](int count) -> Generator<Frame> {
    for (int i = 0; i < count; ++i) {
      Frame frame{i, i + 1};  // not `co_yield Frame{...}`: GCC 12 rejects it (docs/guide.md)
      co_yield std::move(frame);
    }
  };
  plumb::Pipeline pipeline{plumb::stage(small, 3), plumb::stage(keep)};
  const std::vector<Frame> expected{Frame{0, 1}, Frame{1, 2}, Frame{2, 3}};
  CHECK(pipeline.run(Mode::process) == expected);
}

TEST_CASE("a View of a type with a user Codec shows what that Codec decodes, in every mode",
          "[view][process]") {
  auto samples = [](int count) -> Generator<Samples> {
    for (int i = 0; i < count; ++i) {
      Samples batch(20, Sample{i});  // 92 bytes: more than the 64 + 4 the wrapped count takes
      co_yield std::move(batch);
    }
  };
  auto total = [](Stream<View<Samples>> in) {
    long sum = 0;
    for (const View<Samples>& batch : in) {
      sum += static_cast<long>(batch.size()) * 1000;
      for (const Sample& sample : batch) sum += sample.value;
    }
    return sum;
  };
  plumb::Pipeline pipeline{plumb::stage(samples, 4), plumb::stage(total)};
  const long expected = 4 * 20 * 1000 + 20 * (0 + 1 + 2 + 3);
  // Across processes the built-in layout was read: 4.6e18 elements, then SIGSEGV.
  for (const Mode mode : {Mode::process, Mode::thread, Mode::sequential}) {
    CHECK(pipeline.run(mode) == expected);
  }

  auto temperatures = [](int count) -> Generator<std::vector<Celsius>> {
    for (int i = 0; i < count; ++i) {
      std::vector<Celsius> readings{{0.5 * i}, {-1.0}};
      co_yield std::move(readings);
    }
  };
  auto warmest = [](Stream<View<std::vector<Celsius>>> in) {
    double best = -100;
    for (const auto& readings : in) {
      for (const Celsius& reading : readings) best = std::max(best, reading.degrees);
    }
    return best;
  };
  plumb::Pipeline weather{plumb::stage(temperatures, 5), plumb::stage(warmest)};
  for (const Mode mode : {Mode::process, Mode::thread}) CHECK(weather.run(mode) == 2.0);
}
