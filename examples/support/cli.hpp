#pragma once
// SPDX-License-Identifier: MIT
// examples/support/cli.hpp: what the examples' command lines share. They are parsed with CLI11
// (Debian: libcli11-dev), which gives every example --help and rejects what it does not know.

#include <CLI/CLI.hpp>

#include <string>
#include <utility>

namespace examples {

// The command line of one example: `name` is the executable (example_<file>), `description`
// the one line --help starts with. Every option added to it shows its default in --help (the
// value its variable holds when the option is added). Parse it with
// CLI11_PARSE(command_line, argc, argv): --help prints the help and exits 0; a bad command line
// prints CLI11's message and exits with CLI11's code for it (non-zero).
class CommandLine : public CLI::App {
 public:
  CommandLine(std::string name, std::string description)
      : CLI::App(std::move(description), std::move(name)) {
    option_defaults()->always_capture_default();
  }
};

// A check for a whole-number option: at least `least`; `name` is what --help shows after the
// type (as in "INT:POSITIVE"). CLI11 2.1's own PositiveNumber and NonNegativeNumber, when they
// reject a value, print the upper end of their range as a 300-digit number.
inline CLI::Validator at_least(long long least, std::string name) {
  return CLI::Validator(
      [least](std::string& text) -> std::string {
        long long value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "Value " + text + " is not a whole number";
        if (value < least) return "Value " + text + " is less than " + std::to_string(least);
        return {};
      },
      std::move(name));
}

inline const CLI::Validator kPositive = at_least(1, "POSITIVE");
inline const CLI::Validator kNonNegative = at_least(0, "NONNEGATIVE");

}  // namespace examples
