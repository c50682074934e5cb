#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/link/view_input.hpp: the inputs of a stage that reads Stream<View<T>>: over an object
// in this process (a ring slot or a fused generator), or over a shared-memory slot's bytes.

#include <plumb/codec.hpp>
#include <plumb/detail/core/input.hpp>
#include <plumb/detail/sync/stop_flag.hpp>
#include <plumb/detail/link/shm_link.hpp>
#include <plumb/view.hpp>

#include <cstdint>
#include <optional>
#include <type_traits>
#include <variant>

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
// across processes. The layout read here is the codec's (detail/codec/encode.hpp's
// take_elements: a u64 count, checked against the message; for bulk arrays padding to
// kBulkAlignment from the slot start, as slots are 64-byte aligned; then the elements). Where a user Codec decides the bytes, there is no
// such layout: each message is decoded with it into a T of this input's own, and viewed there.
template <class T>
class ShmViewInput final : public Input<View<T>> {
 public:
  ShmViewInput(ShmLink<T>& link, StopFlag stop, WorkerTally& tally) noexcept
      : holder_(link, stop, tally) {}
  void set_take_hook(TakeHook* hook) noexcept { holder_.set_take_hook(hook); }
  ~ShmViewInput() override {
    holder_.release([this] { current_.reset(); });
  }

 private:
  View<T>* pull() override {
    const auto message = holder_.next([this] { current_.reset(); });
    if (!message) return nullptr;
    Reader reader(*message);
    if constexpr (kViewsInPlace<T>) {
      using Element = typename T::value_type;
      const auto bytes = take_elements<Element>(reader, !IsString<T>::value);
      return &ViewAccess<T>::from_bytes(current_, reinterpret_cast<const Element*>(bytes.data()),
                                        bytes.size() / sizeof(Element));
    } else {
      decode_into(decoded_, reader);  // keeps its buffer from the previous packet where it can
      return &ViewAccess<T>::of(current_, decoded_);
    }
  }

  ShmSlotHolder<T> holder_;
  std::optional<View<T>> current_;
  // The decoded packet, for a T whose bytes a user Codec decides (else unused).
  [[no_unique_address]] std::conditional_t<kViewsInPlace<T>, std::monostate, T> decoded_{};
};

}  // namespace plumb::detail
