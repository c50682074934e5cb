#pragma once
// SPDX-License-Identifier: MIT
// examples/support/images.hpp: what the two image examples share: test images of four kinds,
// binary PPM encoding, preprocessing to a 64x64 tensor, and a fixed convolutional "model"
// standing in for a real one. Plain functions: plumb appears only in the examples themselves.
// (Strings are built with fmt::format: GCC 12 at -O3 warns falsely (-Wrestrict) on some
// `"literal" + std::string` concatenations.)

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace images {

inline constexpr int kSide = 64;  // the model's input: kSide x kSide grey values
inline constexpr std::size_t kClasses = 4;
inline constexpr std::array<std::string_view, kClasses> kKinds{"horizontal", "vertical",
                                                                "checker", "smooth"};

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

// The kind named in an image's name ("img_7_checker.ppm" -> 2), or kClasses if none is.
inline std::size_t kind_in_name(std::string_view name) {
  for (std::size_t kind = 0; kind < kClasses; ++kind) {
    if (name.find(fmt::format("_{}.", kKinds[kind])) != std::string_view::npos) return kind;
  }
  return kClasses;
}

// Test image `index` of `kind`: a deterministic pattern (stripes, checkerboard, or a smooth
// gradient), 160x120 to 640x480, with noise.
inline Image draw(std::size_t index, std::size_t kind) {
  Image image;
  image.width = 160 + static_cast<int>(index * 37 % 481);
  image.height = image.width * 3 / 4;
  image.name = fmt::format("img_{}_{}.ppm", index, kKinds[kind]);
  image.rgb.resize(static_cast<std::size_t>(image.width * image.height * 3));
  const int period = std::max(image.width / 8, 4);
  auto noise = static_cast<std::uint32_t>(index * 2654435761U + 1);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const bool band_x = (x / period) % 2 != 0;
      const bool band_y = (y / period) % 2 != 0;
      double value = 0;
      switch (kind) {
        case 0: value = band_y ? 220 : 30; break;
        case 1: value = band_x ? 220 : 30; break;
        case 2: value = band_x != band_y ? 220 : 30; break;
        default: value = 128 + 100 * std::cos(3.0 * (x + y) / (image.width + image.height));
      }
      noise = noise * 1664525U + 1013904223U;  // a linear congruential generator
      value += static_cast<double>(noise >> 24) / 255.0 * 40 - 20;
      const auto grey = static_cast<std::uint8_t>(std::clamp(value, 0.0, 255.0));
      const auto at = static_cast<std::size_t>((y * image.width + x) * 3);
      image.rgb[at] = grey;
      image.rgb[at + 1] = static_cast<std::uint8_t>(grey * 3 / 4);
      image.rgb[at + 2] = static_cast<std::uint8_t>(255 - grey);
    }
  }
  return image;
}

// Binary PPM (P6, 8 bits per channel).
inline std::string encode_ppm(const Image& image) {
  std::string out = fmt::format("P6\n{} {}\n255\n", image.width, image.height);
  out.append(reinterpret_cast<const char*>(image.rgb.data()), image.rgb.size());
  return out;
}

// Throws std::runtime_error naming `name` if `bytes` is not a binary 8-bit PPM.
inline Image decode_ppm(std::string_view bytes, const std::string& name) {
  std::istringstream header{std::string(bytes.substr(0, std::min<std::size_t>(bytes.size(), 64)))};
  std::string magic;
  int width = 0, height = 0, max = 0;
  header >> magic >> width >> height >> max;
  if (!header || magic != "P6" || width <= 0 || height <= 0 || width > 16384 || height > 16384 ||
      max != 255) {
    throw std::runtime_error(fmt::format("'{}' is not an 8-bit binary PPM (P6)", name));
  }
  const auto offset = static_cast<std::size_t>(header.tellg()) + 1;  // one whitespace byte
  const auto size = static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3;
  if (bytes.size() < offset + size) throw std::runtime_error(fmt::format("'{}' is truncated", name));
  Image image{name, width, height, std::vector<std::uint8_t>(size)};
  std::copy_n(bytes.data() + offset, size, reinterpret_cast<char*>(image.rgb.data()));
  return image;
}

// Grey, resized to kSide x kSide by averaging each output pixel's source area, blurred with a
// 3x3 Gaussian, normalized to mean 0 and variance 1.
inline Tensor preprocess(const Image& image) {
  std::vector<float> small(kSide * kSide);
  for (int oy = 0; oy < kSide; ++oy) {
    const int y0 = oy * image.height / kSide;
    const int y1 = std::max(y0 + 1, (oy + 1) * image.height / kSide);
    for (int ox = 0; ox < kSide; ++ox) {
      const int x0 = ox * image.width / kSide;
      const int x1 = std::max(x0 + 1, (ox + 1) * image.width / kSide);
      float sum = 0;
      for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
          const std::uint8_t* p = &image.rgb[static_cast<std::size_t>((y * image.width + x) * 3)];
          sum += 0.299F * p[0] + 0.587F * p[1] + 0.114F * p[2];
        }
      }
      small[static_cast<std::size_t>(oy * kSide + ox)] =
          sum / static_cast<float>((y1 - y0) * (x1 - x0));
    }
  }
  auto at = [&](int x, int y) {
    return small[static_cast<std::size_t>(std::clamp(y, 0, kSide - 1) * kSide +
                                          std::clamp(x, 0, kSide - 1))];
  };
  Tensor tensor{image.name, std::vector<float>(kSide * kSide)};
  double mean = 0, square = 0;
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      const float blurred =
          (4 * at(x, y) + 2 * (at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1)) +
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

// The "model", weights fixed at compile time: four 3x3 filters, rectified and averaged over the
// image into four features, then a linear layer to class scores.
struct Model {
  // Edges along x, edges along y, a Laplacian, a diagonal.
  std::array<std::array<float, 9>, 4> filters{{{-1, 0, 1, -2, 0, 2, -1, 0, 1},
                                               {-1, -2, -1, 0, 0, 0, 1, 2, 1},
                                               {0, 1, 0, 1, -4, 1, 0, 1, 0},
                                               {0, 1, 2, -1, 0, 1, -2, -1, 0}}};
  // Per class: weights of the four features, then a bias. Horizontal stripes have y edges only,
  // vertical stripes x edges only, a checkerboard both, a smooth image almost none.
  std::array<std::array<float, 5>, kClasses> linear{{{-2.0F, 2.0F, 0.0F, -1.0F, 0.0F},
                                                     {2.0F, -2.0F, 0.0F, -1.0F, 0.0F},
                                                     {1.5F, 1.5F, 0.0F, 0.0F, -3.0F},
                                                     {-1.5F, -1.5F, -0.5F, -1.5F, 2.0F}}};

  [[nodiscard]] std::array<float, kClasses> operator()(const Tensor& tensor) const {
    std::array<float, 4> features{};
    for (std::size_t f = 0; f < filters.size(); ++f) {
      double pooled = 0;
      for (int y = 1; y < kSide - 1; ++y) {
        for (int x = 1; x < kSide - 1; ++x) {
          float response = 0;
          for (int k = 0; k < 9; ++k) {
            response += filters[f][static_cast<std::size_t>(k)] *
                        tensor.grey[static_cast<std::size_t>((y + k / 3 - 1) * kSide + x + k % 3 - 1)];
          }
          pooled += std::abs(response);
        }
      }
      features[f] = static_cast<float>(pooled / ((kSide - 2) * (kSide - 2)));
    }
    std::array<float, kClasses> logits{};
    for (std::size_t c = 0; c < kClasses; ++c) {
      logits[c] = linear[c][4];
      for (std::size_t f = 0; f < features.size(); ++f) logits[c] += linear[c][f] * features[f];
    }
    return logits;
  }
};

// The best class and its softmax probability.
inline std::pair<std::size_t, float> best_class(const std::array<float, kClasses>& logits) {
  const auto best = static_cast<std::size_t>(std::max_element(logits.begin(), logits.end()) -
                                             logits.begin());
  float total = 0;
  for (const float logit : logits) total += std::exp(logit - logits[best]);
  return {best, 1 / total};
}

}  // namespace images
