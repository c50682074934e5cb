// SPDX-License-Identifier: MIT
// examples/inference_service.cpp: a classifier served to many client threads, one request at a
// time, with plumb::Service.
//
//   example_inference_service [--clients C] [--requests R] [--mode sequential|thread|process]
//
//   submit -> preprocess -> infer (2 workers; processes by default) -> postprocess -> futures
//
// C client threads (default 4) each send R requests (default 50), one after the other, and
// wait for each answer: the request/response pattern of a model server. Every 25th request is
// empty, which preprocess rejects: that request's future throws, and the service goes on.
// Prints how many requests were answered and failed, and the median and 99th percentile
// latency. Exits 1 if an answer differs from classifying the request directly, or if the
// failures are not exactly the empty requests.

#include <plumb/plumb.hpp>

#include "support/mode.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kFeatures = 64;
constexpr std::size_t kClasses = 8;

using Features = std::array<float, kFeatures>;
using Scores = std::array<float, kClasses>;

struct Answer {
  std::string label;
  float score = 0;
};

// A linear model: fixed pseudo-random weights, shared read-only by every worker.
struct Model {
  std::vector<float> weights;  // kClasses x kFeatures
};

Model make_model() {
  Model model;
  std::uint32_t state = 12345;
  for (std::size_t i = 0; i < kClasses * kFeatures; ++i) {
    state = state * 1664525u + 1013904223u;
    model.weights.push_back(static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f);
  }
  return model;
}

Features features_of(std::string_view text) {
  if (text.empty()) throw std::invalid_argument("empty request: nothing to classify");
  Features features{};
  for (const char c : text) features[static_cast<unsigned char>(c) % kFeatures] += 1.0f;
  for (float& value : features) value /= static_cast<float>(text.size());
  return features;
}

Scores scores_of(const Features& features, const Model& model) {
  Scores scores{};
  for (int round = 0; round < 200; ++round) {  // stands for a heavier model
    for (std::size_t c = 0; c < kClasses; ++c) {
      float sum = 0;
      for (std::size_t f = 0; f < kFeatures; ++f) {
        sum += model.weights[c * kFeatures + f] * features[f];
      }
      scores[c] = sum;
    }
  }
  return scores;
}

Answer answer_of(const Scores& scores) {
  const auto best = std::max_element(scores.begin(), scores.end());
  return Answer{"class " + std::to_string(best - scores.begin()), *best};
}

// The stages: each a plain generator, one output per input.
plumb::Generator<Features> preprocess(plumb::Stream<std::string> in) {
  for (const std::string& text : in) co_yield features_of(text);
}

plumb::Generator<Scores> infer(plumb::Stream<Features> in, Model model) {
  for (const Features& features : in) co_yield scores_of(features, model);
}

plumb::Generator<Answer> postprocess(plumb::Stream<Scores> in) {
  for (const Scores& scores : in) co_yield answer_of(scores);
}

std::string request_text(int client, int request) {
  if (request % 25 == 24) return "";
  return "client " + std::to_string(client) + " asks about item " +
         std::to_string(request * 7919 % 1000);
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 4;
  int requests = 50;
  plumb::Mode mode = plumb::Mode::process;
  examples::CommandLine command_line{
      "example_inference_service",
      "Serves a classifier to client threads that send one request at a time (plumb::Service)"};
  command_line.add_option("--clients", clients, "Client threads")->check(examples::kPositive);
  command_line.add_option("--requests", requests, "Requests each client sends, one after the other")
      ->check(examples::kPositive);
  examples::add_mode_option(command_line, mode);
  CLI11_PARSE(command_line, argc, argv);

  const Model model = make_model();
  plumb::Service service{plumb::stage(preprocess).name("preprocess"),
                         plumb::stage(infer, model).workers(2).name("infer"),
                         plumb::stage(postprocess).mode(plumb::Mode::thread).name("postprocess")};
  service.start(mode);

  std::mutex mutex;
  std::vector<double> latencies_ms;
  int answered = 0;
  int failed = 0;
  bool ok = true;
  {
    std::vector<std::jthread> threads;
    for (int client = 0; client < clients; ++client) {
      threads.emplace_back([&, client] {
        for (int request = 0; request < requests; ++request) {
          const std::string text = request_text(client, request);
          const auto sent = std::chrono::steady_clock::now();
          std::future<Answer> answer = service.submit(text);
          try {
            const Answer got = answer.get();
            const double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent)
                    .count();
            const Answer expected = answer_of(scores_of(features_of(text), model));
            const std::lock_guard lock(mutex);
            latencies_ms.push_back(ms);
            ++answered;
            ok = ok && got.label == expected.label && got.score == expected.score;
          } catch (const std::invalid_argument&) {
            const std::lock_guard lock(mutex);
            ++failed;
            ok = ok && text.empty();
          }
        }
      });
    }
  }
  service.close();

  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto percentile = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    const double last = static_cast<double>(latencies_ms.size() - 1);
    return latencies_ms[static_cast<std::size_t>(p * last)];
  };
  const int empty_requests = clients * (requests / 25);
  std::cout << answered << " answered, " << failed << " failed (the " << empty_requests
            << " empty requests); latency p50 " << percentile(0.5) << " ms, p99 "
            << percentile(0.99) << " ms\n";
  ok = ok && failed == empty_requests && answered == clients * requests - empty_requests;
  return ok ? 0 : 1;
}
