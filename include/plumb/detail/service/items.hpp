#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/service/items.hpp: what travels between a Service's stages: each item's number with its
// value or its error, and how both cross a process boundary.

#include <plumb/codec.hpp>
#include <plumb/detail/run/remote_error.hpp>
#include <plumb/detail/run/shared_memory.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace plumb {
namespace detail {

// --- What travels between the stages of a Service ---------------------------------------------

// An item's error on its way from the stage that raised it to the item's future. An
// exception_ptr cannot cross fork(): its kind, type name and message travel instead (a Report,
// as remote_error.hpp describes it, with its texts cut to the same sizes).
struct ItemError {
  RemoteKind kind = RemoteKind::other;
  std::string type_name;  // mangled, as typeid().name()
  std::string what;
  std::uint64_t stage_index = 0;
  std::string stage_name;
  std::uint64_t worker_index = 0;
  std::int64_t pid = 0;
};

// One packet of a Service: the item's number (its future's key) and either its value or the
// error that ended it.
template <class T>
struct Tagged {
  std::uint64_t id = 0;
  std::optional<T> value{};
  std::optional<ItemError> error{};
};

template <class T>
struct SerialTraits<Tagged<T>> {
  static constexpr bool serializable = is_serializable_v<T>;
};

}  // namespace detail

/// How an item's error crosses a process boundary inside a Service (internal).
template <>
struct Codec<detail::ItemError> {
  /// Writes every field, in order.
  static void encode(const detail::ItemError& error, Writer& out) {
    out.write(static_cast<std::uint32_t>(error.kind));
    out.write(error.type_name);
    out.write(error.what);
    out.write(error.stage_index);
    out.write(error.stage_name);
    out.write(error.worker_index);
    out.write(error.pid);
  }
  /// Reads what encode() wrote.
  static detail::ItemError decode(Reader& in) {
    detail::ItemError error;
    error.kind = static_cast<detail::RemoteKind>(in.read<std::uint32_t>());
    error.type_name = in.read<std::string>();
    error.what = in.read<std::string>();
    error.stage_index = in.read<std::uint64_t>();
    error.stage_name = in.read<std::string>();
    error.worker_index = in.read<std::uint64_t>();
    error.pid = in.read<std::int64_t>();
    return error;
  }
};

/// How a Service's packets cross a process boundary (internal): item number, value or error.
template <class T>
  requires is_serializable_v<T>
struct Codec<detail::Tagged<T>> {
  /// Writes the item number, then the optional value and the optional error.
  static void encode(const detail::Tagged<T>& packet, Writer& out) {
    write(out, packet.id, packet.value ? &*packet.value : nullptr,
          packet.error ? &*packet.error : nullptr);
  }
  /// Reads what encode() wrote.
  static detail::Tagged<T> decode(Reader& in) {
    detail::Tagged<T> packet;
    packet.id = in.read<std::uint64_t>();
    if (in.read<std::uint8_t>() != 0) packet.value.emplace(in.read<T>());
    if (in.read<std::uint8_t>() != 0) packet.error.emplace(in.read<detail::ItemError>());
    return packet;
  }
  /// The bytes encode() writes for a packet of item `id` holding `value` (without making one).
  static std::size_t size_with(const T& value) {
    Writer counter;
    write(counter, 0, &value, nullptr);
    return counter.size();
  }

 private:
  static void write(Writer& out, std::uint64_t id, const T* value, const detail::ItemError* error) {
    out.write(id);
    out.write(std::uint8_t{value != nullptr});
    if (value != nullptr) out.write(*value);
    out.write(std::uint8_t{error != nullptr});
    if (error != nullptr) out.write(*error);
  }
};

namespace detail {

inline constexpr const char* kSubmitStageName = "submit";
inline constexpr const char* kAnswerStageName = "answers";

}  // namespace detail
}  // namespace plumb
