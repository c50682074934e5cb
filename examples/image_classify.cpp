// SPDX-License-Identifier: MIT
// examples/image_classify.cpp: the Python reference's image example in plumb's idiom: download
// images, decode them, classify them in batches on one model, write the labels.
//
//   example_image_classify [--images N] [--latency MS] [--out LABELS.csv]
//
//   urls (calling thread) -> fetch (8 threads: waiting on the network) -> decode + batch
//   (2 worker processes, fused; reads the downloaded bytes in place) -> classify (1 process,
//   like a GPU) -> write (a thread of the calling process)
//
// Each stage runs where its kind of work belongs: fetch only waits, so threads are enough
// and cheap; decoding is CPU work, so it gets processes of its own; the model is one
// resource, so one worker, fed batches of 8 (at most 4 in flight: being filled by the two
// decoders, queued, or being classified). There is no
// network here: fetch waits --latency ms (default 20) and returns the bytes of a test image
// (binary PPM, up to 900 KiB) drawn for the URL. No byte of a download is copied between fetch
// and decode: fetch writes it into a plumb::Buffer from make_buffer, which is the shared-memory
// slot of the link to the decode processes, and decode reads it there as a
// plumb::View<plumb::Buffer<char>>.
// Exits 1 unless every label matches the kind named in its URL.

#include "support/cli.hpp"
#include "support/images.hpp"

#include <plumb/plumb.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using images::kClasses;
using images::Tensor;

struct Download {
  std::string url;
  std::string bytes;
};

struct Label {
  std::string url;
  std::size_t kind = 0;
  float confidence = 0;
};

struct Written {
  std::size_t labels = 0;
  std::size_t correct = 0;
};

plumb::Generator<std::string> urls(std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    co_yield fmt::format("https://images.example/img_{}_{}.ppm", i, images::kKinds[i % kClasses]);
  }
}

// The most bytes a download may have: pixels, header and URL (the links' slot size).
constexpr std::size_t kLargestDownload = 640 * 480 * 3 + 4096;

// Stands in for an HTTP GET: waits, then receives the image the URL names into a Buffer as
// large as a download may be (the slot itself: fetch's output link leads to the decode
// processes), and shrinks it to what arrived.
plumb::Generator<plumb::Buffer<char>> fetch(plumb::Stream<std::string> in, std::chrono::milliseconds latency) {
  for (const std::string& url : in) {
    std::this_thread::sleep_for(latency);
    const auto underscore = url.find('_');
    std::size_t index = 0;
    std::from_chars(url.data() + underscore + 1, url.data() + url.size(), index);
    // The URL first, then the file: decode recovers the name from the bytes it reads in place.
    const std::string file = images::encode_ppm(images::draw(index, images::kind_in_name(url)));
    plumb::Buffer<char> download = plumb::make_buffer<char>(kLargestDownload - 64);
    if (url.size() + 1 + file.size() > download.size()) throw std::runtime_error("fetch: " + url + " is too large");
    char* end = std::copy(url.begin(), url.end(), download.data());  // as recv() into the buffer
    *end++ = '\n';
    end = std::copy(file.begin(), file.end(), end);
    download.resize(static_cast<std::size_t>(end - download.data()));
    co_yield std::move(download);
  }
}

// Zero-copy input: `download` is a view of the slot fetch wrote the bytes into, valid until
// the next one is asked for; decode_ppm copies the pixels out of it once, into the image.
plumb::Generator<Tensor> decode(plumb::Stream<plumb::View<plumb::Buffer<char>>> in) {
  for (const auto& download : in) {
    const std::string_view bytes(download.data(), download.size());
    const auto newline = bytes.find('\n');
    const std::string url(bytes.substr(0, newline));
    co_yield images::preprocess(images::decode_ppm(bytes.substr(newline + 1), url));
  }
}

plumb::Generator<std::vector<Tensor>> batch(plumb::Stream<Tensor> in, std::size_t size) {
  std::vector<Tensor> batch;
  for (Tensor& tensor : in) {
    batch.push_back(std::move(tensor));
    if (batch.size() == size) {
      std::vector<Tensor> full = std::exchange(batch, {});
      co_yield std::move(full);
    }
  }
  if (!batch.empty()) co_yield std::move(batch);
}

plumb::Generator<std::vector<Label>> classify(plumb::Stream<std::vector<Tensor>> in,
                                              images::Model model) {
  for (const std::vector<Tensor>& tensors : in) {
    std::vector<Label> labels;
    for (const Tensor& tensor : tensors) {
      const auto [kind, confidence] = images::best_class(model(tensor));
      labels.push_back({tensor.name, kind, confidence});
    }
    co_yield std::move(labels);
  }
}

Written write_labels(plumb::Stream<std::vector<Label>> in, std::string path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("write: cannot create '" + path + "'");
  out << "url,label,confidence\n";
  Written written;
  for (const std::vector<Label>& labels : in) {
    for (const Label& label : labels) {
      out << label.url << ',' << images::kKinds[label.kind] << ',' << label.confidence << '\n';
      ++written.labels;
      written.correct += images::kind_in_name(label.url) == label.kind ? 1 : 0;
    }
  }
  if (!out.flush()) throw std::runtime_error("write: cannot write '" + path + "'");
  return written;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t count = 96;
  int latency_ms = 20;
  std::string out = "labels.csv";
  examples::CommandLine command_line{
      "example_image_classify",
      "Downloads (simulated), decodes and classifies N images in batches; writes the labels"};
  command_line.add_option("--images", count, "How many images to classify")->check(examples::kPositive);
  command_line.add_option("--latency", latency_ms, "Milliseconds the simulated network takes per image")
      ->check(examples::kNonNegative);
  command_line.add_option("--out", out, "The CSV file the labels are written to");
  CLI11_PARSE(command_line, argc, argv);

  plumb::Pipeline pipeline{
      plumb::stage(urls, count).name("urls").mode(plumb::Mode::sequential).in_flight(16),
      plumb::stage(fetch, std::chrono::milliseconds(latency_ms)).name("fetch")
          .mode(plumb::Mode::thread).workers(8).in_flight(12).max_message_size(kLargestDownload),
      plumb::stage(decode).name("decode").workers(2),
      plumb::stage(batch, std::size_t{8}).name("batch").mode(plumb::Mode::sequential).in_flight(4)
          .max_message_size(512 * 1024),
      plumb::stage(classify, images::Model{}).name("classify"),
      plumb::stage(write_labels, out).name("write").mode(plumb::Mode::thread),
  };
  const auto start = std::chrono::steady_clock::now();
  const Written written = pipeline.run(plumb::Mode::process);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::cout << written.labels << " images in " << took.count() << " s ("
            << static_cast<double>(written.labels) / took.count() << " per s; one at a time "
            << "the waits alone would take " << static_cast<double>(count * static_cast<std::size_t>(latency_ms)) / 1000
            << " s), " << written.correct << " labelled correctly, written to " << out << "\n"
            << pipeline.last_stats().table();
  return written.labels == count && written.correct == count ? 0 : 1;
}
