#pragma once
// SPDX-License-Identifier: MIT
// tests/stress/packet.hpp: the stress harness's packet: an id and a payload whose bytes follow
// from the id, a live-instance counter, and a user Codec.

#include "trial.hpp"

#include <plumb/codec.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace plumb::stress {

// --- Packets -------------------------------------------------------------------------------------

// A packet: an id and a payload whose bytes are a function of the id, so that any stage can
// tell a damaged or mixed-up packet. Counts its live instances (the thread-mode leak check).
struct Packet {
  static inline std::atomic<long> alive{0};
  static constexpr std::uint32_t kOversized = 1;  // payload deliberately over max_message_size

  std::uint64_t id = 0;
  std::uint32_t flags = 0;
  std::vector<std::uint8_t> payload;

  Packet() noexcept { alive.fetch_add(1, std::memory_order_relaxed); }  // relaxed: a tally
  Packet(const Packet& other) : id(other.id), flags(other.flags), payload(other.payload) {
    alive.fetch_add(1, std::memory_order_relaxed);
  }
  Packet(Packet&& other) noexcept
      : id(other.id), flags(other.flags), payload(std::move(other.payload)) {
    alive.fetch_add(1, std::memory_order_relaxed);
  }
  Packet& operator=(const Packet&) = default;
  Packet& operator=(Packet&&) noexcept = default;
  ~Packet() { alive.fetch_sub(1, std::memory_order_relaxed); }
};

// The payload's bytes: byte i is the low byte of base + i * step, both drawn from the id, so a
// payload from another packet, shifted or cut short does not match.
struct PayloadPattern {
  explicit PayloadPattern(std::uint64_t id) noexcept
      : base(mix(id)), step((mix(id) >> 32) | 1) {}
  [[nodiscard]] std::uint8_t at(std::size_t i) const noexcept {
    return static_cast<std::uint8_t>(base + i * step);
  }
  std::uint64_t base;
  std::uint64_t step;
};

inline void fill_payload(std::vector<std::uint8_t>& bytes, std::uint64_t id, std::size_t size) {
  bytes.resize(size);
  const PayloadPattern pattern(id);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = pattern.at(i);
}

inline bool payload_matches(const Packet& packet) {
  const PayloadPattern pattern(packet.id);
  const std::size_t size = packet.payload.size();
  const std::uint8_t* bytes = packet.payload.data();
  for (std::size_t i = 0; i < size; ++i) {
    if (bytes[i] != pattern.at(i)) return false;
  }
  return true;
}

inline Packet make_packet(const Trial& trial, std::uint64_t id) {
  Packet packet;
  packet.id = id;
  fill_payload(packet.payload, id, trial.payload_size(id));
  return packet;
}

// A packet one byte too big for the trial's max_message_size once encoded.
inline void make_oversized(Packet& packet, const Trial& trial) {
  packet.flags |= Packet::kOversized;
  fill_payload(packet.payload, packet.id, trial.payload_max + 1);
}

// What a value sink returns: the count and the sum of the ids it saw.
struct Summary {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
};

}  // namespace plumb::stress

// A user Codec (the documented customization point), since Packet's counting constructors make
// it more than a plain aggregate.
template <>
struct plumb::Codec<plumb::stress::Packet> {
  static void encode(const plumb::stress::Packet& packet, plumb::Writer& out) {
    out.write(packet.id);
    out.write(packet.flags);
    out.write(packet.payload);
  }
  static plumb::stress::Packet decode(plumb::Reader& in) {
    plumb::stress::Packet packet;
    packet.id = in.read<std::uint64_t>();
    packet.flags = in.read<std::uint32_t>();
    packet.payload = in.read<std::vector<std::uint8_t>>();
    return packet;
  }
};

