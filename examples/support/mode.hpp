#pragma once
// SPDX-License-Identifier: MIT
// examples/support/mode.hpp: the --mode option of the examples that take one.

#include "cli.hpp"

#include <plumb/run_options.hpp>

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace examples {

// Adds --mode sequential|thread|process to `command_line`: parsing it sets `mode`, whose value
// now is the default --help shows. Any other word is a command-line error.
inline CLI::Option* add_mode_option(CLI::App& command_line, plumb::Mode& mode) {
  static constexpr std::array<std::pair<const char*, plumb::Mode>, 3> kModes{{
      {"sequential", plumb::Mode::sequential},
      {"thread", plumb::Mode::thread},
      {"process", plumb::Mode::process},
  }};
  std::vector<std::string> names;
  std::string current;
  for (const auto& [name, value] : kModes) {
    names.emplace_back(name);
    if (value == mode) current = name;
  }
  const auto set = [&mode](const std::string& name) {
    for (const auto& [known, value] : kModes) {
      if (name == known) mode = value;
    }
  };
  return command_line
      .add_option_function<std::string>(
          "--mode", set,
          "Where the workers run (sequential: fused into the calling thread)")
      ->check(CLI::IsMember(names))
      ->default_str(current);
}

}  // namespace examples
