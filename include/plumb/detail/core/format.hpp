#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/core/format.hpp: how plumb formats its messages and renderings (fmt), with its
// format strings checked at compile time in plumb's own build only.

#include <fmt/core.h>

#include <string>

namespace plumb::detail {

// fmt checks a format string against its arguments at compile time, which costs a few
// milliseconds per call: ~0.2 s (GCC 12) for plumb's calls, in every translation unit that
// includes plumb. Those strings are plumb's own and fixed, so they are checked where plumb is
// built and tested (PLUMB_CHECK_FORMAT_STRINGS, set for plumb's tests: for a whole program or
// not at all), and read at run time everywhere else; a bad one would throw fmt::format_error.
#if defined(PLUMB_CHECK_FORMAT_STRINGS)
template <class... Args>
using FormatString = fmt::format_string<Args...>;
#else
template <class... Args>
using FormatString = fmt::string_view;
#endif

// fmt::format.
template <class... Args>
std::string format(FormatString<Args...> pattern, Args&&... args) {
  return fmt::vformat(pattern, fmt::make_format_args(args...));
}

// Appends to `out`.
template <class... Args>
void format_to(std::string& out, FormatString<Args...> pattern, Args&&... args) {
  // Through fmt::vformat, which libfmt exports: fmt 9's vformat_to into a back inserter needs a
  // template that only fmt/format.h defines, and Clang then fails to link it against libfmt.
  out += fmt::vformat(pattern, fmt::make_format_args(args...));
}

}  // namespace plumb::detail
