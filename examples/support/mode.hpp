#pragma once
// SPDX-License-Identifier: MIT
// examples/support/mode.hpp: the --mode option of the examples that take one.

#include <plumb/run_options.hpp>

#include <string_view>

namespace examples {

// "sequential", "thread", or anything else for "process".
inline plumb::Mode parse_mode(std::string_view text) {
  if (text == "sequential") return plumb::Mode::sequential;
  if (text == "thread") return plumb::Mode::thread;
  return plumb::Mode::process;
}

}  // namespace examples
