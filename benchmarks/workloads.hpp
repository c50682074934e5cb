#pragma once
// SPDX-License-Identifier: MIT
// benchmarks/workloads.hpp: the Python reference's benchmark work, shared by every runner.
//
// Three stages: a source that builds numbered messages, a processor that adds 1 to every element,
// and a sink that folds each message into a checksum. Every runner computes the same checksum,
// and the suite checks it, so a runner that skips work fails instead of winning.

#include <plumb/plumb.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bench {

// `small`: 50,000 messages of 104 bytes.
struct Small {
  std::int64_t id = 0;
  std::array<std::int32_t, 23> values;
};
static_assert(sizeof(Small) == 104);

// `big`: 100 messages of 10,000,000 int32 (40 MB); `image`: 250 messages of 1,000,000 int32
// (4 MB, an image's size).
using Frame = std::vector<std::int32_t>;
// The same frames as plumb::Buffers (make_buffer: written in place, recycled).
using FrameBuffer = plumb::Buffer<std::int32_t>;

struct SmallWork {
  using Message = Small;
  static constexpr std::string_view name = "small";
  static constexpr std::int64_t count = 50'000;
  static constexpr std::int64_t bytes = sizeof(Small);
  // Slot size for links across processes (max_message_size); 0 = plumb's default.
  static constexpr std::size_t slot_bytes = 0;

  static Small make(std::int64_t id) {
    Small message;
    message.id = id;
    message.values.fill(static_cast<std::int32_t>(id));
    return message;
  }
  static void bump(Small& message) noexcept {
    for (std::int32_t& value : message.values) ++value;
  }
  static std::int64_t digest(const Small& message) noexcept {
    return message.values[0] + message.values[22] + message.id;
  }
};

template <class Name, std::int64_t Count, std::size_t Elements>
struct FrameWork {
  using Message = Frame;
  static constexpr std::string_view name = Name::value;
  static constexpr std::int64_t count = Count;
  static constexpr std::size_t elements = Elements;
  static constexpr std::int64_t bytes = elements * sizeof(std::int32_t);
  // The encoded vector: its length word, then the elements at a 64-byte aligned offset.
  static constexpr std::size_t slot_bytes = bytes + 64;

  static Frame make(std::int64_t id) { return Frame(elements, static_cast<std::int32_t>(id)); }
  static void bump(Frame& frame) noexcept {
    for (std::int32_t& value : frame) ++value;
  }
  template <class Sequence>
  static std::int64_t digest(const Sequence& frame) noexcept {
    return frame[0] + frame[frame.size() / 2] + frame[frame.size() - 1];
  }
};

struct BigName {
  static constexpr std::string_view value = "big";
};
struct ImageName {
  static constexpr std::string_view value = "image";
};
using BigWork = FrameWork<BigName, 100, 10'000'000>;
using ImageWork = FrameWork<ImageName, 250, 1'000'000>;

// The checksum every runner must produce.
template <class Work>
constexpr std::int64_t expected_checksum() {
  std::int64_t sum = 0;
  for (std::int64_t id = 0; id < Work::count; ++id) {
    if constexpr (std::is_same_v<Work, SmallWork>) {
      sum += 2 * (id + 1) + id;
    } else {
      sum += 3 * (id + 1);
    }
  }
  return sum;
}

// --- the three stages, as plumb generators ------------------------------------------------------

template <class Work>
plumb::Generator<typename Work::Message> source() {
  for (std::int64_t id = 0; id < Work::count; ++id) co_yield Work::make(id);
}

template <class Work>
plumb::Generator<typename Work::Message> add_one(plumb::Stream<typename Work::Message> in) {
  for (auto& message : in) {
    Work::bump(message);
    co_yield std::move(message);
  }
}

template <class Work>
std::int64_t sink(plumb::Stream<typename Work::Message> in) {
  std::int64_t sum = 0;
  for (const auto& message : in) sum += Work::digest(message);
  return sum;
}

// Zero-copy reads (process mode): the processor reads its input in place and writes the result
// into a buffer of its own, which it reuses: after `co_yield std::move(frame)` the frame is valid
// but unspecified (a link within one process moves from it; a link to another process copies
// it into shared memory and leaves it as it was), so it is resized, never assumed empty. The
// other runners' processors work in place, which reuses memory too.
inline plumb::Generator<Frame> add_one_view(plumb::Stream<plumb::View<Frame>> in) {
  Frame frame;
  for (const auto& view : in) {
    frame.resize(view.size());
    const std::int32_t* from = view.data();
    for (std::size_t i = 0; i < frame.size(); ++i) frame[i] = from[i] + 1;
    co_yield std::move(frame);
  }
}

template <class Work>
std::int64_t sink_view(plumb::Stream<plumb::View<Frame>> in) {
  std::int64_t sum = 0;
  for (const auto& view : in) sum += Work::digest(view);
  return sum;
}

// plumb::Buffer (make_buffer): each packet is written where it travels. Across processes that
// is the output link's shared-memory slot (with View readers: zero-copy reads and writes, no
// byte moved between processes); within a process, recycled memory of the stage's pool.
template <class Work>
plumb::Generator<FrameBuffer> source_buffers() {
  for (std::int64_t id = 0; id < Work::count; ++id) {
    FrameBuffer frame = plumb::make_buffer<std::int32_t>(Work::elements);
    std::fill(frame.begin(), frame.end(), static_cast<std::int32_t>(id));
    co_yield std::move(frame);
  }
}

inline plumb::Generator<FrameBuffer> add_one_buffers(plumb::Stream<plumb::View<FrameBuffer>> in) {
  for (const auto& view : in) {
    FrameBuffer frame = plumb::make_buffer<std::int32_t>(view.size());
    const std::int32_t* from = view.data();
    std::int32_t* to = frame.data();
    for (std::size_t i = 0; i < view.size(); ++i) to[i] = from[i] + 1;
    co_yield std::move(frame);
  }
}

template <class Work>
std::int64_t sink_buffers(plumb::Stream<plumb::View<FrameBuffer>> in) {
  std::int64_t sum = 0;
  for (const auto& view : in) sum += Work::digest(view);
  return sum;
}

// --- configurations -----------------------------------------------------------------------------

struct Config {
  std::string_view name;
  int in_flight;       // packets in flight on each link (TBB: tokens)
  int middle_workers;  // workers of the processor stage
};

inline constexpr std::array<Config, 4> kConfigs{{
    {"sequential", 1, 1},
    {"buffered", 4, 1},
    {"parallel", 12, 4},
    {"deep", 1024, 1},
}};

}  // namespace bench
