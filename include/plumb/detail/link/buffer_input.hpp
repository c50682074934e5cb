#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/buffer_input.hpp: ShmBufferInput<U>, a consumer worker's end of a ShmLink of
// plumb::Buffer<U> read as Stream<Buffer<U>>: each message copied into a Buffer from a pool of
// the worker's own.

#include <plumb/buffer.hpp>
#include <plumb/codec.hpp>
#include <plumb/detail/buffer/pool.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/link/shm_link.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>

#include <cstddef>
#include <cstring>
#include <optional>
#include <span>

namespace plumb::detail {

// The consumer owns what it reads (it may keep the Buffer, change it, yield it on), so the
// message is copied out of its slot: into recycled memory, the previous packet's block when the
// consumer let it go. The slot is given back when the next packet is asked for, as ShmInput does.
// A consumer that only reads should take Stream<View<Buffer<U>>>: no copy (ShmViewInput).
template <class U>
class ShmBufferInput final : public Input<Buffer<U>> {
 public:
  ShmBufferInput(ShmLink<Buffer<U>>& link, StopFlag stop, WorkerTally& tally)
      : holder_(link, stop, tally), pool_(BufferPool::make(kKept)) {}
  void set_take_hook(TakeHook* hook) noexcept { holder_.set_take_hook(hook); }
  ~ShmBufferInput() override {
    holder_.release([this] { current_.reset(); });
  }

 private:
  // A packet in the consumer's hands, one it kept, one spare.
  static constexpr std::size_t kKept = 3;

  Buffer<U>* pull() override {
    const auto message = holder_.next([this] { current_.reset(); });
    if (!message) return nullptr;
    Reader reader(*message);
    const std::span<const std::byte> bytes = take_elements<U>(reader, true);
    current_.emplace(BufferAccess::make<U>(pool_->take(bytes.size(), nullptr), bytes.size() / sizeof(U)));
    if (!bytes.empty()) std::memcpy(current_->data(), bytes.data(), bytes.size());
    return &*current_;
  }

  ShmSlotHolder<Buffer<U>> holder_;
  HomeRef<BufferPool> pool_;
  std::optional<Buffer<U>> current_;
};

}  // namespace plumb::detail
