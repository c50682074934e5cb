#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/run/remote_error.hpp: an exception raised in a worker process, written into shared
// memory and rebuilt in the caller (an exception_ptr cannot cross fork()).

#include <plumb/detail/core/describe.hpp>
#include <plumb/detail/core/format.hpp>
#include <plumb/detail/run/shared_memory.hpp>
#include <plumb/error.hpp>

#include <cxxabi.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace plumb::detail {

// The fields an exception crosses a process boundary as: `kind`, `type_name` (mangled, as
// typeid().name()), `what`, `stage_index`, `stage_name`, `worker_index`, `pid`. A Report holds
// them: SharedFailure (fixed arrays in shared memory, for the run's first error) or a Service's
// ItemError (strings in a packet). Texts are cut to SharedFailure's sizes either way, so a
// report's size is bounded.
template <std::size_t Size>
void copy_text(char (&out)[Size], std::string_view text, std::size_t /*capacity*/ = Size) noexcept {
  const std::size_t length = std::min(text.size(), Size - 1);
  std::memcpy(out, text.data(), length);
  out[length] = '\0';
}
inline void copy_text(std::string& out, std::string_view text, std::size_t capacity) {
  out.assign(text.substr(0, capacity - 1));
}

// Describes `error` (raised by the worker `failure` names, if known) into `report`. Into a
// SharedFailure it allocates nothing (it may be reporting a std::bad_alloc): the type name is
// copied mangled and demangled by the caller. The standard types are matched exactly (typeid),
// so that a user's class derived from, say, std::runtime_error arrives as RemoteError with its
// own name instead of being sliced.
template <class Report>
void write_remote(Report& report, const std::exception_ptr& error,
                  const std::optional<Failure>& failure) noexcept(std::is_same_v<Report, SharedFailure>) {
  constexpr std::size_t kTypeName = sizeof(SharedFailure::type_name);
  constexpr std::size_t kWhat = sizeof(SharedFailure::what);
  try {
    std::rethrow_exception(error);
  } catch (const Error& exception) {
    report.kind = RemoteKind::plumb_error;
    copy_text(report.type_name, typeid(exception).name(), kTypeName);
    copy_text(report.what, exception.what(), kWhat);
  } catch (const std::exception& exception) {
    const std::type_info& type = typeid(exception);
    report.kind = type == typeid(std::logic_error)       ? RemoteKind::logic_error
                  : type == typeid(std::invalid_argument) ? RemoteKind::invalid_argument
                  : type == typeid(std::domain_error)     ? RemoteKind::domain_error
                  : type == typeid(std::length_error)     ? RemoteKind::length_error
                  : type == typeid(std::out_of_range)     ? RemoteKind::out_of_range
                  : type == typeid(std::runtime_error)    ? RemoteKind::runtime_error
                  : type == typeid(std::range_error)      ? RemoteKind::range_error
                  : type == typeid(std::overflow_error)   ? RemoteKind::overflow_error
                  : type == typeid(std::underflow_error)  ? RemoteKind::underflow_error
                  : type == typeid(std::bad_alloc)        ? RemoteKind::bad_alloc
                                                          : RemoteKind::other;
    copy_text(report.type_name, type.name(), kTypeName);
    copy_text(report.what, exception.what(), kWhat);
  } catch (...) {
    const std::type_info* type = abi::__cxa_current_exception_type();
    report.kind = RemoteKind::other;
    copy_text(report.type_name, type != nullptr ? type->name() : "", kTypeName);
    copy_text(report.what, "(not a std::exception: no message)", kWhat);
  }
  report.pid = ::getpid();
  if (failure) {
    report.stage_index = failure->stage_index;
    report.worker_index = failure->worker_index;
    copy_text(report.stage_name, failure->stage_name, sizeof(SharedFailure::stage_name));
  }
}

// In the caller: the exception that `report` describes, rebuilt.
template <class Report>
std::pair<std::exception_ptr, Failure> rebuild_remote(const Report& block) {
  const std::string what(block.what);
  const std::string name(block.stage_name);
  const auto stage = static_cast<std::size_t>(block.stage_index);
  const auto worker = static_cast<std::size_t>(block.worker_index);
  Failure failure{stage, name, worker, what, static_cast<long>(block.pid)};
  const auto error = [&]() -> std::exception_ptr {
    switch (block.kind) {
      case RemoteKind::logic_error: return std::make_exception_ptr(std::logic_error(what));
      case RemoteKind::invalid_argument: return std::make_exception_ptr(std::invalid_argument(what));
      case RemoteKind::domain_error: return std::make_exception_ptr(std::domain_error(what));
      case RemoteKind::length_error: return std::make_exception_ptr(std::length_error(what));
      case RemoteKind::out_of_range: return std::make_exception_ptr(std::out_of_range(what));
      case RemoteKind::runtime_error: return std::make_exception_ptr(std::runtime_error(what));
      case RemoteKind::range_error: return std::make_exception_ptr(std::range_error(what));
      case RemoteKind::overflow_error: return std::make_exception_ptr(std::overflow_error(what));
      case RemoteKind::underflow_error: return std::make_exception_ptr(std::underflow_error(what));
      case RemoteKind::bad_alloc: return std::make_exception_ptr(std::bad_alloc());
      case RemoteKind::plumb_error:
        return std::make_exception_ptr(StageError(what, stage, name, worker));
      case RemoteKind::other: break;
    }
    const std::string mangled(block.type_name);
    const std::string type = !mangled.empty() ? demangle(mangled.c_str()) : "an unknown type";
    return std::make_exception_ptr(
        RemoteError(detail::format("plumb.remote_error: {} worker {} (pid {}) threw {}: {}",
                                   describe_stage(stage, name), worker, block.pid, type, what),
                    stage, name, worker, type));
  }();
  return {error, std::move(failure)};
}

}  // namespace plumb::detail
