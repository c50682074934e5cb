#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/view_input.hpp: the inputs of a stage that reads Stream<View<T>>: over an object
// in this process (a ring slot or a fused generator), or over a shared-memory slot's bytes.

#include <plumb/codec.hpp>
#include <plumb/detail/input.hpp>
#include <plumb/detail/run_state.hpp>
#include <plumb/detail/shm_link.hpp>
#include <plumb/view.hpp>

#include <cstdint>
#include <optional>

namespace plumb::detail {

// Views each packet of `inner` where it is (the packet stays alive until the next pull).
template <class T>
class ViewInput final : public Input<View<T>> {
 public:
  explicit ViewInput(Input<T>& inner) noexcept : inner_(inner) {}

 private:
  View<T>* pull() override {
    current_.reset();
    T* packet = inner_.next();
    if (packet == nullptr) return nullptr;
    return &ViewAccess<T>::of(current_, *packet);
  }

  Input<T>& inner_;
  std::optional<View<T>> current_;
};

// Views each message of a ShmLink in its slot, without decoding it: the zero-copy read path
// across processes. The layout read here is codec.hpp's: a u64 length, for bulk arrays padding
// to kBulkAlignment from the slot start (slots are 64-byte aligned), then the elements.
template <class T>
class ShmViewInput final : public Input<View<T>> {
 public:
  ShmViewInput(ShmLink<T>& link, const RunState& state, WorkerTally& tally) noexcept
      : holder_(link, state, tally) {}
  void set_order(OrderCursor* order) noexcept { holder_.set_order(order); }
  ~ShmViewInput() override {
    holder_.release([this] { current_.reset(); });
  }

 private:
  View<T>* pull() override {
    const auto message = holder_.next([this] { current_.reset(); });
    if (!message) return nullptr;
    Reader reader(*message);
    const auto size = static_cast<std::size_t>(reader.read<std::uint64_t>());
    using Element = typename T::value_type;
    if constexpr (IsVector<T>::value) reader.align(kBulkAlignment);
    const auto bytes = reader.take(size * sizeof(Element));
    return &ViewAccess<T>::from_bytes(current_, reinterpret_cast<const Element*>(bytes.data()), size);
  }

  ShmSlotHolder<T> holder_;
  std::optional<View<T>> current_;
};

}  // namespace plumb::detail
