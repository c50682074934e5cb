// SPDX-License-Identifier: MIT
// examples/image_batch.cpp: batch image classification, shaped like an ML inference service.
//
//   example_image_batch [--images N] [--dir DIR]
//
// First writes N test images (binary PPM, 160x120 to 640x480) of four kinds (horizontal
// stripes, vertical stripes, checkerboard, smooth) into DIR (default: a temporary directory,
// removed afterwards); then classifies them from disk:
//
//   list (calling thread) -> load + preprocess (2 worker processes, fused) -> infer (1 process,
//   like a GPU) -> postprocess (1 process) -> aggregate (a thread of the calling process)
//
// - load reads a PPM file; preprocess, fused into the same workers (no hand-off between them),
//   turns it grey, resizes it to 64x64 by area averaging, blurs it (3x3 Gaussian) and
//   normalizes it to mean 0, variance 1;
// - infer is a fixed convolutional "model" standing in for a real one: four 3x3 filters (edges
//   in x, in y, a Laplacian, a diagonal), rectified and pooled to four features, then a linear
//   layer to four class scores;
// - postprocess picks the class with a softmax confidence; aggregate counts and checks each
//   label against the kind written into the file name.
// Prints the statistics table; exits 1 unless every image is classified correctly.

#include "support/cli.hpp"
#include "support/images.hpp"

#include <plumb/plumb.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using images::Image;
using images::kClasses;
using images::kKinds;
using images::Tensor;

struct Scores {
  std::string name;
  std::array<float, kClasses> logits{};
};

struct Label {
  std::string name;
  std::size_t kind = 0;
  float confidence = 0;
};

struct Report {
  std::array<int, kClasses> counts{};
  int images = 0;
  int correct = 0;
  double mean_confidence = 0;
};

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// ---------------------------------------------------------------------------------------------
// The stages.

plumb::Generator<std::string> list(std::string dir) {
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".ppm") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  for (std::string& path : paths) co_yield std::move(path);
}

plumb::Generator<Image> load(plumb::Stream<std::string> paths) {
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) throw std::runtime_error("load: cannot read '" + path + "'");
    co_yield images::decode_ppm(bytes.view(), fs::path(path).filename().string());
  }
}

plumb::Generator<Tensor> preprocess(plumb::Stream<Image> in) {
  for (const Image& image : in) co_yield images::preprocess(image);
}

plumb::Generator<Scores> infer(plumb::Stream<Tensor> tensors, images::Model model) {
  for (const Tensor& tensor : tensors) {
    Scores scores{tensor.name, model(tensor)};
    co_yield std::move(scores);
  }
}

plumb::Generator<Label> postprocess(plumb::Stream<Scores> scores) {
  for (const Scores& score : scores) {
    const auto [kind, confidence] = images::best_class(score.logits);
    // A named label: GCC 12 frees the temporaries of `co_yield Label{...}` twice.
    Label label{score.name, kind, confidence};
    co_yield std::move(label);
  }
}

Report aggregate(plumb::Stream<Label> labels) {
  Report report;
  for (const Label& label : labels) {
    ++report.images;
    ++report.counts[label.kind];
    report.mean_confidence += label.confidence;
    if (images::kind_in_name(label.name) == label.kind) {
      ++report.correct;
    } else {
      std::cerr << "misclassified: " << label.name << " as " << kKinds[label.kind] << "\n";
    }
  }
  if (report.images > 0) report.mean_confidence /= report.images;
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  int count = 64;
  std::string directory;
  examples::CommandLine command_line{
      "example_image_batch",
      "Writes N test images, then classifies them from disk in worker processes"};
  command_line.add_option("--images", count, "How many images to write and classify")
      ->check(examples::kPositive);
  command_line.add_option("--dir", directory,
                          "Where to write the images (default: a temporary directory, removed afterwards)");
  CLI11_PARSE(command_line, argc, argv);
  fs::path dir = directory;
  const bool temporary = dir.empty();
  if (temporary) dir = fs::temp_directory_path() / ("plumb-images-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    const Image image = images::draw(static_cast<std::size_t>(i), static_cast<std::size_t>(i) % kClasses);
    write_file(dir / image.name, images::encode_ppm(image));
  }

  // The links carry paths, 16 KiB tensors and scores: the default 128 KiB slots suffice. The
  // images themselves (up to 900 KiB) never cross a process: load and preprocess share workers.
  plumb::Pipeline pipeline{
      plumb::stage(list, dir.string()).name("list").mode(plumb::Mode::sequential).in_flight(4),
      plumb::stage(load).name("load").workers(2),
      plumb::stage(preprocess).name("preprocess").mode(plumb::Mode::sequential).in_flight(4),
      plumb::stage(infer, images::Model{}).name("infer").in_flight(4),
      plumb::stage(postprocess).name("postprocess").in_flight(4),
      plumb::stage(aggregate).name("aggregate").mode(plumb::Mode::thread),
  };
  Report report;
  try {
    report = pipeline.run(plumb::Mode::process);
  } catch (const std::exception& error) {
    std::cerr << "image_batch: " << error.what() << "\n";
    if (temporary) fs::remove_all(dir);
    return 1;
  }
  if (temporary) fs::remove_all(dir);

  std::cout << report.images << " images, " << report.correct << " classified correctly, mean "
            << "confidence " << report.mean_confidence << "\n";
  for (std::size_t c = 0; c < kClasses; ++c) std::cout << "  " << kKinds[c] << ": " << report.counts[c] << "\n";
  std::cout << pipeline.last_stats().table();
  return report.images == count && report.correct == count ? 0 : 1;
}
