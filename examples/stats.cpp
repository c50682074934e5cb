// SPDX-License-Identifier: MIT
// examples/stats.cpp: finding the bottleneck. Runs three versions of one pipeline (read ->
// decode -> infer -> write): one limited by its source, one by its sink, one balanced; shows a
// live progress line, prints each run's statistics table, and writes each as a picture
// (Graphviz dot and Mermaid) into a directory.
//
//   example_stats [OUTPUT_DIR]      (default: the current directory)
//   dot -Tsvg producer_bound.dot -o producer_bound.svg

#include <plumb/plumb.hpp>

#include "support/cli.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Stands in for real work of about `cost` per item: sleeping keeps the example's timings the
// same on a busy two-core machine (sleep counts as busy: the stage is in user code).
void work(std::chrono::microseconds cost) {
  if (cost > 0us) std::this_thread::sleep_for(cost);
}

struct Frame {
  std::int64_t id = 0;
  std::vector<float> pixels;
};

plumb::Generator<std::int64_t> read(std::int64_t count, std::chrono::microseconds cost) {
  for (std::int64_t id = 0; id < count; ++id) {
    work(cost);
    co_yield id;
  }
}

plumb::Generator<Frame> decode(plumb::Stream<std::int64_t> in, std::chrono::microseconds cost) {
  for (std::int64_t id : in) {
    work(cost);
    // A named frame: GCC 12 destroys the temporaries of `co_yield Frame{id, std::vector...}`
    // twice.
    Frame frame{id, std::vector<float>(256, static_cast<float>(id))};
    co_yield std::move(frame);
  }
}

plumb::Generator<double> infer(plumb::Stream<Frame> in, std::chrono::microseconds cost) {
  for (Frame& frame : in) {
    work(cost);
    double sum = 0;
    for (float pixel : frame.pixels) sum += pixel;
    co_yield sum / static_cast<double>(frame.pixels.size());
  }
}

double write(plumb::Stream<double> in, std::chrono::microseconds cost) {
  double total = 0;
  for (double score : in) {
    work(cost);
    total += score;
  }
  return total;
}

struct Costs {
  std::chrono::microseconds read, decode, infer, write;
};

double run_case(const std::string& name, const Costs& costs, const std::filesystem::path& dir) {
  constexpr std::int64_t kFrames = 200;
  plumb::Pipeline pipeline{
      plumb::stage(read, kFrames, costs.read).name("read").in_flight(8),
      plumb::stage(decode, costs.decode).name("decode").workers(2).in_flight(8),
      plumb::stage(infer, costs.infer).name("infer").in_flight(4),
      plumb::stage(write, costs.write).name("write"),
  };
  std::cout << "=== " << name << std::endl;
  const double total = pipeline.run({.mode = plumb::Mode::thread,
                                     .progress = plumb::ProgressLine{},
                                     .progress_interval = 250ms});
  const plumb::Stats& stats = pipeline.last_stats();
  std::cout << stats.table() << std::endl;
  std::ofstream(dir / (name + ".dot")) << stats.dot();
  std::ofstream(dir / (name + ".mmd")) << stats.mermaid();
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  std::string output_dir = ".";
  examples::CommandLine command_line{
      "example_stats",
      "Runs a source-bound, a sink-bound and a balanced pipeline; prints and draws their statistics"};
  command_line.add_option("OUTPUT_DIR", output_dir,
                          "Where the pictures (Graphviz .dot, Mermaid .mmd) go; created if missing");
  CLI11_PARSE(command_line, argc, argv);
  const std::filesystem::path dir = output_dir;
  std::filesystem::create_directories(dir);
  // Expected: sum over frames of the frame's id = 199 * 200 / 2.
  constexpr double kExpected = 19900;
  // Limited by its source: reading takes 5 ms per frame, everything else is quick.
  const double producer = run_case("producer_bound", {5000us, 500us, 1000us, 100us}, dir);
  // Limited by its sink: writing takes 5 ms per frame.
  const double consumer = run_case("consumer_bound", {100us, 500us, 1000us, 5000us}, dir);
  // Balanced: every stage takes about 2 ms per frame and worker (decode has two workers).
  const double balanced = run_case("balanced", {2000us, 4000us, 2000us, 2000us}, dir);
  if (producer != kExpected || consumer != kExpected || balanced != kExpected) {
    std::cerr << "wrong totals: " << producer << " " << consumer << " " << balanced << "\n";
    return 1;
  }
  std::cout << "pictures written to " << std::filesystem::absolute(dir).string()
            << " (render: dot -Tsvg NAME.dot -o NAME.svg)\n";
  return 0;
}
