// SPDX-License-Identifier: MIT
// tests/buffer_test.cpp: plumb::Buffer and make_buffer: packets written in place (in the output
// slot across processes), recycled memory within a process, and the bounds and errors.

#include <plumb/graph.hpp>
#include <plumb/plumb.hpp>

#include "support/modes.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

using plumb::Buffer;
using plumb::Generator;
using plumb::Mode;
using plumb::Stream;
using plumb::View;
using namespace std::chrono_literals;

namespace {

using Words = Buffer<std::uint64_t>;
constexpr std::size_t kWords = 200'000;  // 1.6 MB: a block mapped on its own, zero when fresh
constexpr std::size_t kSlot = kWords * sizeof(std::uint64_t) + 64;

std::uint64_t address_of(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer); }

// Word 0: the address the producer wrote the packet at; word 1: its number; word 2: 1 if the
// memory make_buffer gave held an earlier packet (recycled, not fresh zeros); the rest: number.
Generator<Words> numbered(int count) {
  for (int i = 0; i < count; ++i) {
    Words words = plumb::make_buffer<std::uint64_t>(kWords);
    const bool recycled = words[1] != 0 || words[kWords - 1] != 0;
    words[0] = address_of(words.data());
    words[1] = static_cast<std::uint64_t>(i) + 1;
    words[2] = recycled ? 1 : 0;
    for (std::size_t k = 3; k < kWords; ++k) words[k] = static_cast<std::uint64_t>(i) + 1;
    co_yield std::move(words);
  }
}

struct Seen {
  std::uint64_t packets = 0;
  std::uint64_t sum = 0;
  std::uint64_t in_place = 0;  // read at the address its producer wrote it at
  std::uint64_t recycled = 0;
  bool intact = true;
};

template <class Packet>
void look(Seen& seen, const Packet& words) {
  ++seen.packets;
  seen.sum += words[1];
  if (words[0] == address_of(words.data())) ++seen.in_place;
  seen.recycled += words[2];
  if (words.size() != kWords || words[kWords - 1] != words[1] || words[kWords / 2] != words[1]) seen.intact = false;
}

Seen read_in_place(Stream<View<Words>> in) {
  Seen seen;
  for (const auto& words : in) look(seen, words);
  return seen;
}

// Reads in place, writes in place: word 1 plus 1000, the rest copied.
Generator<Words> relay(Stream<View<Words>> in) {
  for (const auto& words : in) {
    Words out = plumb::make_buffer<std::uint64_t>(words.size());
    const bool read_in_place = words[0] == address_of(words.data());
    for (std::size_t k = 0; k < words.size(); ++k) out[k] = words[k] + 1000;
    out[0] = address_of(out.data());
    out[2] = read_in_place ? 1 : 0;  // the relay's own read, checked by the sink
    co_yield std::move(out);
  }
}

Seen read_relayed(Stream<View<Words>> in) {
  Seen seen;
  for (const auto& words : in) {
    ++seen.packets;
    seen.sum += words[1];
    if (words[0] == address_of(words.data())) ++seen.in_place;
    seen.recycled += words[2];  // here: packets the relay read in place
    if (words[kWords - 1] != words[1]) seen.intact = false;
  }
  return seen;
}

std::uint64_t sum_to(int count) { return static_cast<std::uint64_t>(count) * (count + 1) / 2; }

}  // namespace

TEST_CASE("buffer: a make_buffer packet is read where its producer wrote it, in every mode") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::sequential, Mode::thread, Mode::process}));
  const int in_flight = GENERATE(1, 3);
  CAPTURE(plumb::test::mode_name(mode), in_flight);
  constexpr int kCount = 40;
  plumb::Pipeline pipeline{
      plumb::stage(numbered, kCount).max_message_size(kSlot).in_flight(in_flight),
      plumb::stage(read_in_place),
  };
  const Seen seen = pipeline.run({.mode = mode, .inactivity_timeout = 20s});
  CHECK(seen.packets == kCount);
  CHECK(seen.sum == sum_to(kCount));
  CHECK(seen.intact);
  // In process mode the producer wrote into the shared-memory slot (mapped at one address in
  // every worker process), so the consumer's View points where the producer wrote: no copy.
  CHECK(seen.in_place == kCount);
}

TEST_CASE("buffer: a stage that reads in place and writes in place moves no bytes across processes") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::sequential, Mode::thread, Mode::process}));
  const int workers = GENERATE(1, 3);
  CAPTURE(plumb::test::mode_name(mode), workers);
  constexpr int kCount = 30;
  plumb::Pipeline pipeline{
      plumb::stage(numbered, kCount).max_message_size(kSlot).in_flight(3),
      plumb::stage(relay).workers(workers).max_message_size(kSlot).in_flight(4),
      plumb::stage(read_relayed),
  };
  const Seen seen = pipeline.run({.mode = mode, .inactivity_timeout = 20s});
  CHECK(seen.packets == kCount);
  CHECK(seen.sum == sum_to(kCount) + 1000 * kCount);
  CHECK(seen.intact);
  CHECK(seen.in_place == kCount);  // the sink read the relay's buffer where it wrote it
  CHECK(seen.recycled == kCount);  // the relay read the source's buffer where it wrote it
}

TEST_CASE("buffer: make_buffer recycles memory, bounded by the packets in flight") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::sequential, Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  constexpr int kCount = 60;
  plumb::Pipeline pipeline{
      plumb::stage(numbered, kCount).max_message_size(kSlot).in_flight(2),
      plumb::stage(read_in_place),
  };
  const Seen seen = pipeline.run({.mode = mode, .inactivity_timeout = 20s});
  REQUIRE(seen.packets == kCount);
  // Fresh memory (mapped, or a slot used for the first time) is zeros; recycled memory holds an
  // earlier packet. Only the first few packets (what can be in flight at once) get fresh memory.
  CHECK(seen.recycled >= kCount - 6);
}

namespace {

Generator<Words> plain_words(int count, std::size_t size) {
  for (int i = 0; i < count; ++i) {
    Words words = plumb::make_buffer<std::uint64_t>(size);
    for (auto& word : words) word = static_cast<std::uint64_t>(i);
    co_yield std::move(words);
  }
}

// Keeps every packet it is given (more than in_flight), then checks them all.
std::uint64_t keep_all(Stream<Words> in) {
  std::vector<Words> kept;
  for (auto& words : in) kept.push_back(std::move(words));
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    for (const std::uint64_t word : kept[i]) {
      if (word != i) throw std::runtime_error("a kept Buffer changed: packet " + std::to_string(i));
    }
    sum += kept[i].size();
  }
  return sum;
}

// Changes each packet in place and sends it on (zero copies within one process).
Generator<Words> bump(Stream<Words> in) {
  for (auto& words : in) {
    for (auto& word : words) word += 7;
    co_yield std::move(words);
  }
}

std::uint64_t total(Stream<View<Words>> in) {
  std::uint64_t sum = 0;
  for (const auto& words : in) {
    for (const std::uint64_t word : words) sum += word;
  }
  return sum;
}

std::uint64_t total_owned(Stream<Words> in) {
  std::uint64_t sum = 0;
  for (const auto& words : in) {
    for (const std::uint64_t word : words) sum += word;
  }
  return sum;
}

}  // namespace

TEST_CASE("buffer: a consumer of Stream<Buffer> owns its packets: it may keep them or send them on") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::sequential, Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  constexpr int kCount = 25;
  constexpr std::size_t kSize = 1000;
  SECTION("kept beyond in_flight") {
    plumb::Pipeline pipeline{plumb::stage(plain_words, kCount, kSize).in_flight(2), plumb::stage(keep_all)};
    CHECK(pipeline.run({.mode = mode, .inactivity_timeout = 20s}) == kCount * kSize);
  }
  SECTION("changed in place and yielded on") {
    plumb::Pipeline pipeline{plumb::stage(plain_words, kCount, kSize).in_flight(2),
                             plumb::stage(bump).workers(2), plumb::stage(total)};
    const std::uint64_t expected = kSize * (sum_to(kCount - 1) + 7 * kCount);
    CHECK(pipeline.run({.mode = mode, .inactivity_timeout = 20s}) == expected);
  }
}

namespace {

Generator<Words> empty_buffers(int count) {
  for (int i = 0; i < count; ++i) {
    Words empty = plumb::make_buffer<std::uint64_t>(0);
    co_yield std::move(empty);
  }
}

std::uint64_t count_packets(Stream<View<Words>> in) {
  std::uint64_t packets = 0;
  for (const auto& words : in) packets += 1 + words.size();
  return packets;
}

// A source of plain numbers that keeps a make_buffer Buffer as scratch memory for its life.
Generator<int> numbers_with_scratch(int count) {
  Words scratch = plumb::make_buffer<std::uint64_t>(kWords);
  for (int i = 0; i < count; ++i) {
    scratch[0] = static_cast<std::uint64_t>(i);
    co_yield static_cast<int>(scratch[0]);
  }
}

// Fused after it: one make_buffer packet per number.
Generator<Words> expand(Stream<int> in) {
  for (const int number : in) {
    Words words = plumb::make_buffer<std::uint64_t>(kWords);
    words[0] = address_of(words.data());
    for (std::size_t k = 1; k < kWords; ++k) words[k] = static_cast<std::uint64_t>(number) + 1;
    words[2] = 0;
    co_yield std::move(words);
  }
}

}  // namespace

TEST_CASE("process mode: a stage fused before a Buffer stage does not take that stage's slots") {
  if (!plumb::test::kWorkerProcessesChecked) return;
  constexpr int kCount = 10;
  plumb::Pipeline pipeline{plumb::stage(numbers_with_scratch, kCount),
                           plumb::stage(expand).name("expand").mode(Mode::sequential).max_message_size(kSlot).in_flight(1),
                           plumb::stage(read_in_place)};
  const Seen seen = pipeline.run({.mode = Mode::process, .inactivity_timeout = 20s});
  CHECK(seen.packets == kCount);
  CHECK(seen.sum == sum_to(kCount));
  CHECK(seen.in_place == kCount);  // expand's own Buffers still go out in their slots
}

TEST_CASE("process mode: make_buffer over the output link's max_message_size is the stage's error") {
  if (!plumb::test::kWorkerProcessesChecked) return;
  plumb::Pipeline pipeline{plumb::stage(numbered, 3).name("frames").max_message_size(kSlot - 8),
                           plumb::stage(read_in_place)};
  try {
    (void)pipeline.run({.mode = Mode::process, .inactivity_timeout = 20s});
    FAIL("no error");
  } catch (const plumb::StageError& error) {
    const std::string what = error.what();
    CHECK_THAT(what, Catch::Contains("'frames'") && Catch::Contains("asked plumb::make_buffer for 200000 elements") &&
                         Catch::Contains("raise .max_message_size() on") && Catch::Contains(std::to_string(kSlot)));
  }
  REQUIRE(pipeline.last_failure());
  CHECK(pipeline.last_failure()->stage_name == "frames");
  // Slots smaller than the 64-byte header hold no Buffer at all, not even an empty one.
  plumb::Pipeline tiny{plumb::stage(empty_buffers, 2).name("tiny").max_message_size(32), plumb::stage(count_packets)};
  CHECK_THROWS_WITH(tiny.run({.mode = Mode::process, .inactivity_timeout = 20s}),
                    Catch::Contains("'tiny'") && Catch::Contains("asked plumb::make_buffer for 0 elements"));
  plumb::Pipeline fits{plumb::stage(empty_buffers, 2).max_message_size(64), plumb::stage(count_packets)};
  CHECK(fits.run({.mode = Mode::process, .inactivity_timeout = 20s}) == 2);
}

namespace {

// Drops a Buffer unyielded, then makes two and yields them (first, or second first).
Generator<Words> two_at_once(int count, bool second_first) {
  for (int i = 0; i < count; ++i) {
    { Words dropped = plumb::make_buffer<std::uint64_t>(kWords); }  // its slot goes back
    Words first = plumb::make_buffer<std::uint64_t>(kWords);        // the slot
    Words second = plumb::make_buffer<std::uint64_t>(kWords);       // pool memory (held slot)
    for (auto& word : first) word = 1;
    for (auto& word : second) word = 2;
    if (second_first) {
      co_yield std::move(second);
      co_yield std::move(first);
    } else {
      co_yield std::move(first);
      co_yield std::move(second);
    }
  }
}

std::uint64_t count_words(Stream<View<Words>> in) {
  std::uint64_t sum = 0;
  for (const auto& words : in) sum += words[0] + words[kWords - 1];
  return sum;
}

// Two workers read the link (so it has a slot for each producer and more), the sink sums.
Generator<std::uint64_t> ends(Stream<View<Words>> in) {
  for (const auto& words : in) co_yield words[0] + words[kWords - 1];
}

std::uint64_t add_up(Stream<std::uint64_t> in) {
  std::uint64_t sum = 0;
  for (const std::uint64_t value : in) sum += value;
  return sum;
}

// co_yield of an lvalue Buffer yields a copy; the original keeps its slot.
Generator<Words> yields_copies(int count) {
  Words words = plumb::make_buffer<std::uint64_t>(kWords);
  for (auto& word : words) word = 3;
  for (int i = 0; i < count; ++i) co_yield words;
}

}  // namespace

TEST_CASE("buffer: dropped, second and copied Buffers, in every mode") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::sequential, Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  constexpr int kCount = 6;
  SECTION("a dropped Buffer gives its slot back; a second one is copied in when yielded") {
    plumb::Pipeline pipeline{plumb::stage(two_at_once, kCount, false).max_message_size(kSlot).in_flight(1),
                             plumb::stage(count_words)};
    CHECK(pipeline.run({.mode = mode, .inactivity_timeout = 20s}) == kCount * (2 + 4));
  }
  SECTION("yielding another packet first on a link with one worker on each side") {
    plumb::Pipeline pipeline{plumb::stage(two_at_once, kCount, true).max_message_size(kSlot).in_flight(2),
                             plumb::stage(count_words)};
    CHECK(pipeline.run({.mode = mode, .inactivity_timeout = 20s}) == kCount * (2 + 4));
  }
  SECTION("yielding another packet first: a second slot where the link has one for it") {
    plumb::Pipeline pipeline{plumb::stage(two_at_once, kCount, true).max_message_size(kSlot).in_flight(3),
                             plumb::stage(ends).workers(2), plumb::stage(add_up)};
    CHECK(pipeline.run({.mode = mode, .inactivity_timeout = 20s}) == kCount * (2 + 4));
  }
  SECTION("copies of a Buffer that keeps its slot") {
    plumb::Pipeline pipeline{plumb::stage(yields_copies, kCount).max_message_size(kSlot).in_flight(3),
                             plumb::stage(ends).workers(2), plumb::stage(add_up)};
    CHECK(pipeline.run({.mode = mode, .inactivity_timeout = 20s}) == kCount * 6);
  }
}

TEST_CASE("process mode: a packet yielded while the worker holds the only slot is the stage's error, not a hang") {
  if (!plumb::test::kWorkerProcessesChecked) return;
  plumb::Pipeline pipeline{plumb::stage(two_at_once, 3, true).name("pairs").max_message_size(kSlot).in_flight(1),
                           plumb::stage(count_words)};
  try {
    (void)pipeline.run({.mode = Mode::process, .inactivity_timeout = 20s});
    FAIL("no error");
  } catch (const plumb::StageError& error) {
    const std::string what = error.what();
    CHECK_THAT(what, Catch::Contains("'pairs'") && Catch::Contains("still holds its output slot") &&
                         Catch::Contains("co_yield std::move(buffer)") && Catch::Contains("raise .in_flight()"));
  }
  // The same stage in thread mode (no slots) runs.
  CHECK(pipeline.run({.mode = Mode::thread, .inactivity_timeout = 20s}) == 3 * (2 + 4));
}

namespace {

std::uint64_t fails_at(Stream<View<Words>> in, int at) {
  int seen = 0;
  for (const auto& words : in) {
    if (++seen == at) throw std::runtime_error("sink failed");
    (void)words;
  }
  return 0;
}

}  // namespace

TEST_CASE("buffer: a producer waiting in make_buffer for a slot stops with the run") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  plumb::Pipeline pipeline{plumb::stage(numbered, 1000).max_message_size(kSlot).in_flight(1),
                           plumb::stage(fails_at, 3).name("sink")};
  CHECK_THROWS_WITH(pipeline.run({.mode = mode, .inactivity_timeout = 20s}), Catch::Contains("sink failed"));
  REQUIRE(pipeline.last_failure());
  CHECK(pipeline.last_failure()->stage_name == "sink");
}

namespace {

// An ordered stage with several workers: its Buffers are copied into slots in input order.
Generator<Words> tag(Stream<View<Words>> in) {
  for (const auto& words : in) {
    Words out = plumb::make_buffer<std::uint64_t>(4);
    out[0] = words[1];
    out[1] = out[2] = out[3] = 0;
    co_yield std::move(out);
  }
}

bool in_order(Stream<View<Words>> in) {
  std::uint64_t expected = 1;
  bool ordered = true;
  for (const auto& words : in) ordered = ordered && words[0] == expected++;
  return ordered && expected == 21;
}

}  // namespace

TEST_CASE("buffer: an ordered stage's Buffers leave in input order") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  plumb::Pipeline pipeline{plumb::stage(numbered, 20).max_message_size(kSlot).in_flight(4),
                           plumb::stage(tag).workers(3).ordered(), plumb::stage(in_order)};
  CHECK(pipeline.run({.mode = mode, .inactivity_timeout = 20s}));
}

TEST_CASE("buffer: graph nodes yield Buffers, broadcast as deep copies") {
  const Mode mode = GENERATE(plumb::test::modes({Mode::sequential, Mode::thread, Mode::process}));
  CAPTURE(plumb::test::mode_name(mode));
  constexpr int kCount = 12;
  constexpr std::size_t kSize = 500;
  plumb::Graph graph{
      plumb::node<"src">(plumb::stage(plain_words, kCount, kSize)),
      plumb::node<"bump">(plumb::stage(bump), plumb::from<"src">),
      plumb::node<"sum">(plumb::stage(total_owned), plumb::from<"src", "bump">),
  };
  // Each packet i arrives as is (i) and bumped (i + 7); a shared, not copied, buffer would
  // show the bump twice.
  const std::uint64_t expected = kSize * (2 * sum_to(kCount - 1) + 7 * kCount);
  CHECK(graph.run(mode) == expected);
}

TEST_CASE("buffer: Buffer outside a pipeline") {
  SECTION("make_buffer outside a stage gives fresh memory") {
    Words words = plumb::make_buffer<std::uint64_t>(3);
    REQUIRE(words.size() == 3);
    CHECK(words.capacity() >= 3);
    words[0] = 1;
    words[1] = 2;
    words[2] = 3;
    const Words copy = words;  // deep
    words[0] = 9;
    CHECK(copy.to_vector() == std::vector<std::uint64_t>{1, 2, 3});
    CHECK_FALSE(copy == words);
    Words moved = std::move(words);
    CHECK(moved[0] == 9);
    CHECK(words.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  }
  SECTION("a count no process can map is refused before any arithmetic wraps") {
    CHECK_THROWS_AS(plumb::make_buffer<std::uint8_t>(static_cast<std::size_t>(-1)), std::length_error);
    CHECK_THROWS_AS(Buffer<std::uint64_t>(static_cast<std::size_t>(-1) / 4), std::length_error);
    const Buffer<int> empty;
    const Buffer<int> copy = empty;  // NOLINT(performance-unnecessary-copy-initialization)
    CHECK(copy.empty());
    CHECK(copy.data() == nullptr);
  }
  SECTION("resize shrinks within the capacity, and refuses more") {
    Buffer<float> floats(100);
    floats.resize(10);
    CHECK(floats.size() == 10);
    floats.resize(100);
    CHECK(floats.size() == 100);
    CHECK_THROWS_AS(floats.resize(floats.capacity() + 1), std::length_error);
  }
  SECTION("a generator that yields Buffers is unit-testable on its own") {
    std::uint64_t sum = 0;
    for (const Words& words : plain_words(4, 10)) sum += words[0] * words.size();
    CHECK(sum == 60);
  }
  SECTION("a Buffer crosses as a std::vector of its elements would") {
    Buffer<std::int32_t> buffer(5);
    for (std::size_t i = 0; i < 5; ++i) buffer[i] = static_cast<std::int32_t>(i * i);
    std::vector<std::byte> bytes(plumb::serialized_size(buffer));
    plumb::Writer writer(bytes);
    writer.write(buffer);
    CHECK(bytes.size() == plumb::serialized_size(std::vector<std::int32_t>{0, 1, 4, 9, 16}));
    plumb::Reader reader(bytes);
    CHECK(reader.read<std::vector<std::int32_t>>() == std::vector<std::int32_t>{0, 1, 4, 9, 16});
    plumb::Reader again(bytes);
    CHECK(again.read<Buffer<std::int32_t>>() == buffer);
  }
}
