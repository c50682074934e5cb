#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/input.hpp: Input<T>, the pull interface behind every Stream<T>.

#include <memory>

namespace plumb::detail {

// What a consumer pulls from: a link (thread or process mode), the generator of a fused stage
// before it (sequential mode and fused groups), or a range the user wrapped in a Stream.
//
// Packet lifetime: the pointer next() returns stays valid until the following next() call,
// which releases the packet (its slot goes back to the producer).
//
// Thread affinity: one consumer thread at a time.
class InputBase {
 public:
  InputBase() = default;
  InputBase(const InputBase&) = delete;
  InputBase& operator=(const InputBase&) = delete;
  virtual ~InputBase() = default;

  // True once next() returned nullptr.
  [[nodiscard]] bool ended() const noexcept { return ended_; }

  // For the runner, after the consumer's body returned: true if the stream still had a packet
  // (which would be lost). Pulls at most one more packet; may block until the producer either
  // delivers one or ends.
  [[nodiscard]] bool has_unread() { return !ended_ && next_erased() != nullptr; }

 protected:
  virtual void* next_erased() = 0;
  bool ended_ = false;
};

template <class T>
class Input : public InputBase {
 public:
  // The next packet, or nullptr at the end of the stream. Releases the previous packet.
  T* next() {
    T* packet = pull();
    if (packet == nullptr) ended_ = true;
    return packet;
  }

 protected:
  virtual T* pull() = 0;

 private:
  void* next_erased() final { return next(); }
};

}  // namespace plumb::detail
