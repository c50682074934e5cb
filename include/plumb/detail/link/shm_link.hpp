#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/shm_link.hpp: ShmLink<T>, a link that crosses a process boundary: in_flight
// slots in the run's shared mapping (max_message_size bytes each, or the exact size when every
// message has the same size), packets serialized into them.

#include <plumb/codec.hpp>
#include <plumb/detail/buffer/home.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/link/link_core.hpp>
#include <plumb/detail/link/take.hpp>
#include <plumb/detail/stats/tally.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace plumb::detail {

// Layout in the arena: [LinkCore<process_shared> + rings][sizes: capacity x u64][slots: capacity
// x slot_bytes, each 64-byte aligned]. The handle itself (this object) lives in the caller's
// heap and is inherited by fork(); it only holds addresses into the mapping, which every worker
// process maps at the same address. A link of plumb::Buffer keeps the rings even with one worker
// on each side (LinkPath::rings): its producer may hold a slot in a Buffer while it takes another. Invariant L2 of LinkCore: a slot holds a message exactly
// while its index is in the ready ring or in a consumer's hands; sizes_[slot] is its length.
template <class T>
class ShmLink {
  using Core = LinkCore<Sharing::process_shared>;

 public:
  static constexpr std::uint32_t kEnd = Core::kEnd;

  static std::size_t bytes_for(std::size_t capacity, std::size_t slot_bytes) noexcept {
    return core_bytes(capacity) + sizes_bytes(capacity) + capacity * round_slot(slot_bytes);
  }

  // Builds the link in `memory` (bytes_for(...) bytes of the arena, 64-byte aligned).
  ShmLink(std::byte* memory, std::size_t capacity, std::size_t slot_bytes, std::size_t producers,
          std::size_t consumers)
      : core_(Core::create(memory, capacity, producers, consumers,
                           IsBuffer<T>::value ? LinkPath::rings : LinkPath::any)),
        sizes_(reinterpret_cast<std::uint64_t*>(memory + core_bytes(capacity))),
        slots_(memory + core_bytes(capacity) + sizes_bytes(capacity)),
        slot_bytes_(slot_bytes),
        slot_stride_(round_slot(slot_bytes)) {}

  ShmLink(const ShmLink&) = delete;
  ShmLink& operator=(const ShmLink&) = delete;

  [[nodiscard]] Core& core() noexcept { return *core_; }
  [[nodiscard]] std::size_t slot_bytes() const noexcept { return slot_bytes_; }

  // --- Producer API ---------------------------------------------------------------------------

  // Serializes `value` into `slot` (from acquire_slot), not queued yet (the producer queues it,
  // or an ordered group's gate does in turn); returns 0. If the message would not fit, writes
  // nothing, gives the slot back and returns its size (the caller raises the error). If
  // encoding throws, gives the slot back.
  std::size_t fill(std::uint32_t slot, const T& value, StopFlag stop) {
    std::size_t size = 0;
    try {
      size = serialized_size(value);
      if (size > slot_bytes_) {
        core_->return_slot(slot, stop);
        return size;
      }
      Writer writer(std::span<std::byte>(slot_data(slot), size));
      writer.write(value);
      if (writer.size() != size) {
        throw Error("plumb.encode_error: a message shrank while it was written (a Codec's encode "
                    "must write the same bytes every time it is called for the same value)");
      }
    } catch (...) {
      core_->return_slot(slot, stop);
      throw;
    }
    sizes_[slot] = size;  // published with the slot by enqueue ([sync R-P2], or [sync S-T1])
    return 0;
  }

  // The bytes of `slot` (from acquire_slot), for a message written in place (plumb::Buffer's
  // exec/slot_source.hpp) instead of by fill().
  [[nodiscard]] std::span<std::byte> slot_memory(std::uint32_t slot) const noexcept {
    return {slot_data(slot), slot_bytes_};
  }
  // The message written in place in `slot` is `size` bytes long (<= slot_bytes()).
  void set_size(std::uint32_t slot, std::size_t size) noexcept {
    sizes_[slot] = size;  // published with the slot by enqueue, as in fill()
  }

  // Maps the slots into this process's page tables in one call, for a worker that is about to
  // write (`for_writing`) or read them, where slots are large (1 MiB or more): a new worker
  // process otherwise takes a page fault on every 4 KiB of every slot it touches, each run
  // (fork does not copy the page tables of shared mappings), which costs more than the copy it
  // saves on a virtual machine. A hint: ignored where the kernel lacks it (before Linux 5.14).
  void prefault(bool for_writing) const noexcept {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    if (slot_bytes_ < kLargeSlot) return;
    (void)::madvise(slots_, core_->capacity() * slot_stride_, for_writing ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
#else
    (void)for_writing;
#endif
  }

  // --- Consumer API ---------------------------------------------------------------------------

  // The message in `slot` (from take()), in place.
  [[nodiscard]] std::span<const std::byte> message(std::uint32_t slot) const noexcept {
    return {slot_data(slot), static_cast<std::size_t>(sizes_[slot])};
  }

  void release(std::uint32_t slot, StopFlag stop) noexcept { core_->recycle(slot, stop); }

 private:
  static std::size_t round_slot(std::size_t bytes) noexcept {
    return (bytes + kCacheLine - 1) / kCacheLine * kCacheLine;
  }
  static std::size_t core_bytes(std::size_t capacity) noexcept {
    return round_slot(Core::bytes_for(capacity));
  }
  static std::size_t sizes_bytes(std::size_t capacity) noexcept {
    return round_slot(capacity * sizeof(std::uint64_t));
  }
  [[nodiscard]] std::byte* slot_data(std::uint32_t slot) const noexcept {
    return slots_ + static_cast<std::size_t>(slot) * slot_stride_;
  }

  static constexpr std::size_t kLargeSlot = std::size_t{1} << 20;

  Core* core_;
  std::uint64_t* sizes_;
  std::byte* slots_;
  std::size_t slot_bytes_;
  std::size_t slot_stride_;
};

// A consumer worker's hold on one slot of a ShmLink: taken with take(), given back (after
// `before_release`, which destroys what refers to the slot) when the next one is taken or the
// holder goes away. ShmInput and ShmViewInput share it.
template <class T>
class ShmSlotHolder {
 public:
  ShmSlotHolder(ShmLink<T>& link, StopFlag stop, WorkerTally& tally) noexcept
      : link_(link), stop_(stop), tally_(tally) {}
  ShmSlotHolder(const ShmSlotHolder&) = delete;
  ShmSlotHolder& operator=(const ShmSlotHolder&) = delete;
  ~ShmSlotHolder() = default;

  // An ordering layer numbers the packets this input takes (take.hpp).
  void set_take_hook(TakeHook* hook) noexcept { hook_ = hook; }

  // Releases the held slot and waits for the next message; empty at the end of the stream.
  template <class BeforeRelease>
  std::optional<std::span<const std::byte>> next(BeforeRelease&& before_release) {
    release(before_release);
    const std::uint32_t slot = take_next(link_.core(), stop_, tally_.input_timer(), hook_);
    if (slot == ShmLink<T>::kEnd) return std::nullopt;
    tally_.took();
    held_ = slot;
    return link_.message(slot);
  }

  template <class BeforeRelease>
  void release(BeforeRelease&& before_release) noexcept {
    if (held_ == ShmLink<T>::kEnd) return;
    before_release();
    link_.release(std::exchange(held_, ShmLink<T>::kEnd), stop_);
  }

 private:
  ShmLink<T>& link_;
  StopFlag stop_;
  WorkerTally& tally_;
  TakeHook* hook_ = nullptr;
  std::uint32_t held_ = ShmLink<T>::kEnd;
};

// A consumer worker's end of a ShmLink: it decodes each message into a T of its own, and gives
// the slot back (destroying that T first, except a vector of plain elements, whose buffer is
// reused for the next message) when it asks for the next one, so packets in flight are counted
// exactly as on an in-process link.
template <class T>
class ShmInput final : public Input<T> {
 public:
  ShmInput(ShmLink<T>& link, StopFlag stop, WorkerTally& tally) noexcept
      : holder_(link, stop, tally) {}
  void set_take_hook(TakeHook* hook) noexcept { holder_.set_take_hook(hook); }
  ~ShmInput() override {
    holder_.release([this] { current_.reset(); });
  }

 private:
  T* pull() override {
    if constexpr (kDecodesInPlace<T>) {
      // A vector of plain elements: decoded into the same T every time, keeping its buffer
      // (a 40 MB frame then costs a copy, not an allocation and 10,000 page faults). The T is
      // the worker's own copy, so keeping it does not hold the slot.
      const auto message = holder_.next([] {});
      if (!message) {
        current_.reset();
        return nullptr;
      }
      Reader reader(*message);
      if (!current_) current_.emplace();
      decode_into(*current_, reader);
      return &*current_;
    } else {
      const auto message = holder_.next([this] { current_.reset(); });
      if (!message) return nullptr;
      Reader reader(*message);
      return &current_.emplace(reader.read<T>());
    }
  }

  ShmSlotHolder<T> holder_;
  std::optional<T> current_;
};

}  // namespace plumb::detail
