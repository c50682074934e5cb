// SPDX-License-Identifier: MIT
// examples/graph_strings.cpp: the test graph of the "pipelines" library plumb grew from, as a
// plumb::Graph:
//
//   inp -> n1 -> n2 -> n4
//           |     |
//           +-----+--> n3 -> n4      (n1 -> n3, n2 -> n3, n2 -> n4, n3 -> n4)
//
//   example_graph_strings [--count N] [--seed S] [--mode sequential|thread|process] [--dot FILE]
//
// inp yields N random strings; n1 reverses each, n2 upper-cases, n3 lower-cases, n4 prints
// every string it receives ("n4: ..."). Every node sends each packet to every node that reads
// it, so each string reaches n4 in three forms: n1 -> n2 (upper), n1 -> n3 and n1 -> n2 -> n3
// (lower, twice). n4 also returns what it saw; the example checks the three forms of every
// string and exits 1 if one is missing. --dot writes the run's statistics as a Graphviz graph
// (docs/images/graph_strings.svg is one).

#include <plumb/graph.hpp>

#include "support/cli.hpp"
#include "support/mode.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

plumb::Generator<std::string> random_strings(int count, std::uint32_t seed) {
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> length(3, 12);
  std::uniform_int_distribution<int> letter(0, 51);
  for (int i = 0; i < count; ++i) {
    std::string text;
    for (int n = length(random); n > 0; --n) {
      const int pick = letter(random);
      text += static_cast<char>(pick < 26 ? 'a' + pick : 'A' + pick - 26);
    }
    co_yield text;
  }
}

plumb::Generator<std::string> reverse(plumb::Stream<std::string> in) {
  for (std::string& text : in) {
    std::string reversed(text.rbegin(), text.rend());
    co_yield reversed;
  }
}

std::string with_case(std::string text, bool upper) {
  for (char& c : text) {
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

plumb::Generator<std::string> upper(plumb::Stream<std::string> in) {
  for (std::string& text : in) {
    std::string changed = with_case(text, true);
    co_yield changed;
  }
}

plumb::Generator<std::string> lower(plumb::Stream<std::string> in) {
  for (std::string& text : in) {
    std::string changed = with_case(text, false);
    co_yield changed;
  }
}

// Prints every string as it arrives, and returns them all (from a worker process too).
std::vector<std::string> print(plumb::Stream<std::string> in) {
  std::vector<std::string> seen;
  for (std::string& text : in) {
    std::cout << "n4: " << text << '\n';
    seen.push_back(std::move(text));
  }
  std::cout.flush();
  return seen;
}

}  // namespace

int main(int argc, char** argv) {
  int count = 20;
  std::uint32_t seed = 7;
  plumb::Mode mode = plumb::Mode::thread;
  std::string dot;
  examples::CommandLine command_line{"example_graph_strings",
                                     "Random strings through the graph inp -> n1 -> {n2, n3} -> n4"};
  command_line.add_option("--count", count, "How many strings inp generates")->check(examples::kPositive);
  command_line.add_option("--seed", seed, "The random strings' seed");
  examples::add_mode_option(command_line, mode);
  command_line.add_option("--dot", dot, "Write the run's statistics as a Graphviz graph to this file");
  CLI11_PARSE(command_line, argc, argv);

  plumb::Graph graph{
      plumb::node<"inp">(plumb::stage(random_strings, count, seed)),
      plumb::node<"n1">(plumb::stage(reverse), plumb::from<"inp">),
      plumb::node<"n2">(plumb::stage(upper), plumb::from<"n1">),
      plumb::node<"n3">(plumb::stage(lower), plumb::from<"n1", "n2">),
      plumb::node<"n4">(plumb::stage(print), plumb::from<"n2", "n3">),
  };
  const std::vector<std::string> seen = graph.run(mode);

  // Each generated string in its three forms, as n4 must have seen them.
  std::map<std::string, int> missing;
  auto strings = random_strings(count, seed);
  for (const std::string& text : strings) {
    const std::string reversed(text.rbegin(), text.rend());
    ++missing[with_case(reversed, true)];
    missing[with_case(reversed, false)] += 2;
  }
  for (const std::string& text : seen) --missing[text];
  const bool complete = std::all_of(missing.begin(), missing.end(), [](const auto& entry) { return entry.second == 0; });
  std::cout << (complete ? "complete" : "INCOMPLETE") << ": n4 received " << seen.size() << " strings, "
            << "the three forms of each of the " << count << " strings inp generated\n";
  std::cout << graph.last_stats().table();
  if (!dot.empty()) std::ofstream(dot) << graph.last_stats().dot();
  return complete ? 0 : 1;
}
