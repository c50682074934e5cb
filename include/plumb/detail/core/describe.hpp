#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/describe.hpp: how errors name stages, exceptions and types.

#include <plumb/detail/core/format.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>

namespace plumb::detail {

// "stage 2 ('parse')" for a named stage, "stage 2" for one that kept its default name.
inline std::string describe_stage(std::size_t index, std::string_view name) {
  if (name == detail::format("stage {}", index)) return detail::format("stage {}", index);
  return detail::format("stage {} ('{}')", index, name);
}

inline std::string describe_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& exception) {
    return exception.what();
  } catch (...) {
    return "an exception of a type not derived from std::exception";
  }
}

inline std::string demangle(const char* mangled) {
  int status = 0;
  const std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

// The readable name of T, for messages.
template <class T>
std::string type_name() {
  return demangle(typeid(T).name());
}

}  // namespace plumb::detail
