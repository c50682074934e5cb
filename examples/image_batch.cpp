// SPDX-License-Identifier: MIT
// examples/image_batch.cpp: batch image classification, shaped like an ML inference service.
//
//   example_image_batch [--images N] [--dir DIR]
//
// First writes N test images (binary PPM, 160x120 to 640x480) of four kinds (horizontal
// stripes, vertical stripes, checkerboard, smooth) into DIR (default: a temporary directory,
// removed afterwards); then classifies them from disk:
//
//   list (caller) -> load + preprocess (2 worker processes, fused) -> infer (1 process, like a
//   GPU) -> postprocess (1 process) -> aggregate (caller's thread)
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

#include <plumb/plumb.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;

constexpr int kSide = 64;  // the model's input: kSide x kSide grey values
constexpr std::size_t kClasses = 4;
constexpr std::array<std::string_view, kClasses> kKinds{"horizontal", "vertical", "checker",
                                                         "smooth"};

struct Image {
  std::string name;
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;  // width * height * 3
};

struct Tensor {
  std::string name;
  std::vector<float> grey;  // kSide * kSide, mean 0, variance 1
};

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

// ---------------------------------------------------------------------------------------------
// Test images: a deterministic pattern of the given kind, with noise.

Image draw(std::size_t index, std::size_t kind) {
  Image image;
  image.width = 160 + static_cast<int>(index * 37 % 481);  // 160..640
  image.height = image.width * 3 / 4;
  image.name = "img_" + std::to_string(index) + "_" + std::string(kKinds[kind]) + ".ppm";
  image.rgb.resize(static_cast<std::size_t>(image.width * image.height * 3));
  const int period = std::max(image.width / 8, 4);
  std::uint32_t noise = static_cast<std::uint32_t>(index) * 2654435761U + 1;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const bool band_x = (x / period) % 2 != 0;
      const bool band_y = (y / period) % 2 != 0;
      double value = 0;
      switch (kind) {
        case 0: value = band_y ? 220 : 30; break;
        case 1: value = band_x ? 220 : 30; break;
        case 2: value = band_x != band_y ? 220 : 30; break;
        default:
          value = 128 + 100 * std::cos(3.0 * (x + y) / (image.width + image.height));
      }
      noise = noise * 1664525U + 1013904223U;  // a linear congruential generator
      value += static_cast<double>(noise >> 24) / 255.0 * 40 - 20;
      const auto grey = static_cast<std::uint8_t>(std::clamp(value, 0.0, 255.0));
      const std::size_t at = static_cast<std::size_t>((y * image.width + x) * 3);
      image.rgb[at] = grey;
      image.rgb[at + 1] = static_cast<std::uint8_t>(grey * 3 / 4);
      image.rgb[at + 2] = static_cast<std::uint8_t>(255 - grey);
    }
  }
  return image;
}

void write_ppm(const fs::path& path, const Image& image) {
  std::ofstream out(path, std::ios::binary);
  out << "P6\n" << image.width << ' ' << image.height << "\n255\n";
  out.write(reinterpret_cast<const char*>(image.rgb.data()),
            static_cast<std::streamsize>(image.rgb.size()));
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

Image read_ppm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int width = 0, height = 0, max = 0;
  in >> magic >> width >> height >> max;
  in.get();  // the one whitespace byte after the header
  if (!in || magic != "P6" || width <= 0 || height <= 0 || width > 16384 || height > 16384 ||
      max != 255) {
    throw std::runtime_error("load: '" + path + "' is not an 8-bit binary PPM (P6)");
  }
  Image image{fs::path(path).filename().string(), width, height, {}};
  image.rgb.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);
  in.read(reinterpret_cast<char*>(image.rgb.data()), static_cast<std::streamsize>(image.rgb.size()));
  if (!in) throw std::runtime_error("load: '" + path + "' is truncated");
  return image;
}

plumb::Generator<Image> load(plumb::Stream<std::string> paths) {
  for (const std::string& path : paths) co_yield read_ppm(path);
}

// Grey, resized to kSide x kSide by averaging each output pixel's source area, blurred with a
// 3x3 Gaussian, normalized to mean 0 and variance 1.
Tensor preprocess_one(const Image& image) {
  std::vector<float> small(kSide * kSide);
  for (int oy = 0; oy < kSide; ++oy) {
    const int y0 = oy * image.height / kSide, y1 = std::max(y0 + 1, (oy + 1) * image.height / kSide);
    for (int ox = 0; ox < kSide; ++ox) {
      const int x0 = ox * image.width / kSide, x1 = std::max(x0 + 1, (ox + 1) * image.width / kSide);
      float sum = 0;
      for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
          const std::uint8_t* p = &image.rgb[static_cast<std::size_t>((y * image.width + x) * 3)];
          sum += 0.299F * p[0] + 0.587F * p[1] + 0.114F * p[2];
        }
      }
      small[static_cast<std::size_t>(oy * kSide + ox)] = sum / static_cast<float>((y1 - y0) * (x1 - x0));
    }
  }
  Tensor tensor{image.name, std::vector<float>(kSide * kSide)};
  auto at = [&](int x, int y) {
    return small[static_cast<std::size_t>(std::clamp(y, 0, kSide - 1) * kSide + std::clamp(x, 0, kSide - 1))];
  };
  double mean = 0, square = 0;
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      const float blurred = (4 * at(x, y) + 2 * (at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1)) +
                             at(x - 1, y - 1) + at(x + 1, y - 1) + at(x - 1, y + 1) + at(x + 1, y + 1)) / 16;
      tensor.grey[static_cast<std::size_t>(y * kSide + x)] = blurred;
      mean += blurred;
      square += static_cast<double>(blurred) * blurred;
    }
  }
  mean /= kSide * kSide;
  const double deviation = std::sqrt(std::max(square / (kSide * kSide) - mean * mean, 1e-6));
  for (float& value : tensor.grey) value = static_cast<float>((value - mean) / deviation);
  return tensor;
}

plumb::Generator<Tensor> preprocess(plumb::Stream<Image> images) {
  for (const Image& image : images) co_yield preprocess_one(image);
}

// The "model": weights fixed at compile time.
struct Model {
  // 3x3 filters: edges along x, edges along y, a Laplacian, a diagonal.
  std::array<std::array<float, 9>, 4> filters{{{-1, 0, 1, -2, 0, 2, -1, 0, 1},
                                               {-1, -2, -1, 0, 0, 0, 1, 2, 1},
                                               {0, 1, 0, 1, -4, 1, 0, 1, 0},
                                               {0, 1, 2, -1, 0, 1, -2, -1, 0}}};
  // Class scores from the four pooled features (x edges, y edges, Laplacian, diagonal), and a
  // bias: horizontal stripes have y edges only, vertical x edges only, a checkerboard both, a
  // smooth image almost none.
  std::array<std::array<float, 5>, kClasses> linear{{{-2.0F, 2.0F, 0.0F, -1.0F, 0.0F},
                                                     {2.0F, -2.0F, 0.0F, -1.0F, 0.0F},
                                                     {1.5F, 1.5F, 0.0F, 0.0F, -3.0F},
                                                     {-1.5F, -1.5F, -0.5F, -1.5F, 2.0F}}};
};

plumb::Generator<Scores> infer(plumb::Stream<Tensor> tensors, Model model) {
  for (const Tensor& tensor : tensors) {
    std::array<float, 4> features{};
    for (std::size_t f = 0; f < model.filters.size(); ++f) {
      double pooled = 0;
      for (int y = 1; y < kSide - 1; ++y) {
        for (int x = 1; x < kSide - 1; ++x) {
          float response = 0;
          for (int k = 0; k < 9; ++k) {
            response += model.filters[f][static_cast<std::size_t>(k)] *
                        tensor.grey[static_cast<std::size_t>((y + k / 3 - 1) * kSide + x + k % 3 - 1)];
          }
          pooled += std::abs(response);
        }
      }
      features[f] = static_cast<float>(pooled / ((kSide - 2) * (kSide - 2)));
    }
    Scores scores{tensor.name, {}};
    for (std::size_t c = 0; c < kClasses; ++c) {
      float logit = model.linear[c][4];
      for (std::size_t f = 0; f < 4; ++f) logit += model.linear[c][f] * features[f];
      scores.logits[c] = logit;
    }
    co_yield std::move(scores);
  }
}

plumb::Generator<Label> postprocess(plumb::Stream<Scores> scores) {
  for (const Scores& score : scores) {
    const auto best = static_cast<std::size_t>(
        std::max_element(score.logits.begin(), score.logits.end()) - score.logits.begin());
    float total = 0;
    for (float logit : score.logits) total += std::exp(logit - score.logits[best]);
    // A named label: GCC 12 frees the temporaries of `co_yield Label{...}` twice.
    Label label{score.name, best, 1 / total};
    co_yield std::move(label);
  }
}

Report aggregate(plumb::Stream<Label> labels) {
  Report report;
  for (const Label& label : labels) {
    ++report.images;
    ++report.counts[label.kind];
    report.mean_confidence += label.confidence;
    if (label.name.find("_" + std::string(kKinds[label.kind]) + ".") != std::string::npos) {
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
  fs::path dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view option = argv[i], value = argv[i + 1];
    if (option == "--images") {
      std::from_chars(value.data(), value.data() + value.size(), count);
    } else if (option == "--dir") {
      dir = value;
    }
  }
  if (argc % 2 == 0 || count < 1) {
    std::cerr << "usage: example_image_batch [--images N (>= 1)] [--dir DIR]\n";
    return 2;
  }
  const bool temporary = dir.empty();
  if (temporary) dir = fs::temp_directory_path() / ("plumb-images-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    const Image image = draw(static_cast<std::size_t>(i), static_cast<std::size_t>(i) % kClasses);
    write_ppm(dir / image.name, image);
  }

  // The links carry paths, 16 KiB tensors and scores: the default 128 KiB slots suffice. The
  // images themselves (up to 900 KiB) never cross a process: load and preprocess share workers.
  plumb::Pipeline pipeline{
      plumb::stage(list, dir.string()).name("list").mode(plumb::Mode::sequential).in_flight(4),
      plumb::stage(load).name("load").workers(2).in_flight(4),
      plumb::stage(preprocess).name("preprocess").mode(plumb::Mode::sequential).in_flight(4),
      plumb::stage(infer, Model{}).name("infer").in_flight(2),
      plumb::stage(postprocess).name("postprocess"),
      plumb::stage(aggregate).name("aggregate").mode(plumb::Mode::thread),
  };
  const Report report = pipeline.run(plumb::Mode::process);
  if (temporary) fs::remove_all(dir);

  std::cout << report.images << " images, " << report.correct << " classified correctly, mean "
            << "confidence " << report.mean_confidence << "\n";
  for (std::size_t c = 0; c < kClasses; ++c) std::cout << "  " << kKinds[c] << ": " << report.counts[c] << "\n";
  std::cout << pipeline.last_stats().table();
  return report.images == count && report.correct == count ? 0 : 1;
}
