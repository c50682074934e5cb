// SPDX-License-Identifier: MIT
// tests/docs/guide_test.cpp: the code fragments of docs/guide.md, in a program that compiles and
// runs them. Each fragment appears here verbatim (tests/docs/check_snippets.cmake checks it);
// edit both together. Tests that start worker processes are named "process mode: ..." (a
// ThreadSanitizer build skips them: it sees one process).

#include <plumb/graph.hpp>
#include <plumb/plumb.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

// --- section 1 ----------------------------------------------------------------------------------

struct Job {
  int id = 0;
};
struct Options {
  int scale = 1;
};
struct Image {
  int width = 0;
  std::vector<std::uint8_t> pixels;
};

plumb::Generator<Image> decode(plumb::Stream<Job> in, Options options);   // processor

plumb::Generator<Image> decode(plumb::Stream<Job> in, Options options) {
  for (const Job& job : in) {
    Image image{job.id * options.scale, {}};
    co_yield std::move(image);
  }
}

// --- section 4: a Codec for Image -------------------------------------------------------------

template <> struct plumb::Codec<Image> {
  static void encode(const Image& image, plumb::Writer& out) { out.write(image.width); out.write(image.pixels); }
  static Image decode(plumb::Reader& in) { Image i; i.width = in.read<int>(); i.pixels = in.read<std::vector<std::uint8_t>>(); return i; }
};

namespace {

plumb::Generator<int> numbers(int count) {
  const auto& me = plumb::this_worker();
  for (int i = int(me.index); i < count; i += int(me.count)) co_yield i;
}

long sum_all(plumb::Stream<int> in) {
  long sum = 0;
  for (const int x : in) sum += x;
  return sum;
}

// --- section 3: stream() ------------------------------------------------------------------------

struct Detections {
  int frame = 0;
  bool quit = false;
};
struct Model {
  int last_frame = 5;
};

plumb::Generator<int> read_frames(std::string path) {
  for (int frame = 0; frame < static_cast<int>(path.size()); ++frame) co_yield frame;
}

plumb::Generator<Detections> detect(plumb::Stream<int> in, Model model) {
  for (const int frame : in) {
    Detections found{frame, frame == model.last_frame};
    co_yield std::move(found);
  }
}

int shown = 0;
void show(const Detections& /*found*/) { ++shown; }

// --- section 3: ordered() -----------------------------------------------------------------------

plumb::Generator<std::vector<char>> deflate_chunk(plumb::Stream<std::vector<char>> in, int level) {
  for (auto& chunk : in) {
    chunk.resize(chunk.size() / static_cast<std::size_t>(level));
    co_yield std::move(chunk);
  }
}

// --- section 3: Service -------------------------------------------------------------------------

using Request = int;
using Answer = std::string;

plumb::Generator<int> preprocess(plumb::Stream<Request> in) {
  for (const Request request : in) co_yield request + 1;
}
plumb::Generator<int> infer(plumb::Stream<int> in, Model model) {
  for (const int x : in) co_yield x * model.last_frame;
}
plumb::Generator<Answer> postprocess(plumb::Stream<int> in) {
  for (const int x : in) co_yield std::to_string(x);
}

// --- section 6: graphs --------------------------------------------------------------------------

plumb::Generator<std::string> random_strings(int count) {
  for (int i = 0; i < count; ++i) co_yield std::string(static_cast<std::size_t>(i % 7 + 1), static_cast<char>('a' + i % 26));
}
plumb::Generator<std::string> reverse(plumb::Stream<std::string> in) {
  for (std::string& text : in) {
    std::reverse(text.begin(), text.end());
    co_yield std::move(text);
  }
}
plumb::Generator<std::string> upper(plumb::Stream<std::string> in) {
  for (std::string& text : in) {
    for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    co_yield std::move(text);
  }
}
plumb::Generator<std::string> lower(plumb::Stream<std::string> in) {
  for (std::string& text : in) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    co_yield std::move(text);
  }
}
int printed = 0;
void print(plumb::Stream<std::string> in) {
  for (const std::string& text : in) printed += text.empty() ? 0 : 1;
}

}  // namespace

TEST_CASE("guide: stage signatures and a Codec") {
  int widths = 0;
  for (const Image& image : decode(plumb::Stream<Job>{Job{1}, Job{2}}, Options{3})) widths += image.width;
  CHECK(widths == 9);
  Image image{4, {1, 2, 3}};
  std::vector<std::byte> bytes(plumb::serialized_size(image));
  plumb::Writer writer(bytes);
  writer.write(image);
  plumb::Reader reader(bytes);
  CHECK(reader.read<Image>().pixels.size() == 3);
}

TEST_CASE("guide: unit-test a stage without a pipeline") {
  std::vector<int> my_vector{4, 5};
  plumb::Stream<int> listed{1, 2, 3};                    // copies of a braced list
  plumb::Stream<int> owned(std::vector<int>{1, 2});      // owns an rvalue container
  plumb::Stream<int> borrowed(my_vector);                // borrows an lvalue range (must outlive it)
  plumb::Stream<int> chained(numbers(3));                // owns a generator: chain stages by hand
  CHECK(sum_all(std::move(listed)) == 6);
  CHECK(sum_all(std::move(owned)) == 3);
  CHECK(sum_all(std::move(borrowed)) == 9);
  CHECK(sum_all(std::move(chained)) == 3);
}

TEST_CASE("guide: running") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(sum_all)};
  std::stop_source stop_source;
  long sum = pipeline.run();                                     // Mode::thread
  sum += pipeline.run(plumb::Mode::sequential);
  sum += pipeline.run({.mode = plumb::Mode::thread,
                       .inactivity_timeout = std::chrono::seconds(30),
                       .stop_token = stop_source.get_token(),
                       .progress = plumb::ProgressLine{}});  // or [](const plumb::Stats& s) {...}
  CHECK(sum == 3 * 45);
}

TEST_CASE("guide: a source with workers splits its work") {
  plumb::Pipeline pipeline{plumb::stage(numbers, 10).workers(3), plumb::stage(sum_all)};
  CHECK(pipeline.run() == 45);
}

TEST_CASE("process mode: guide: stream() and ordered()") {
  std::string path = "0123456789";
  Model model;
  plumb::Pipeline pipeline{plumb::stage(read_frames, path),
                           plumb::stage(detect, model).workers(4).in_flight(8).ordered()};
  for (const Detections& found : pipeline.stream(plumb::Mode::process)) {
    if (found.quit) break;            // stops the pipeline cleanly, no error
    show(found);
  }
  CHECK(shown == 5);
  const int level = 2;
  auto deflate = plumb::stage(deflate_chunk, level).workers(4).in_flight(8).ordered();
  (void)deflate;
}

TEST_CASE("process mode: guide: Service") {
  Model model;
  const Request request = 1;
  plumb::Service service{plumb::stage(preprocess),
                         plumb::stage(infer, model).workers(2),
                         plumb::stage(postprocess)};
  service.start(plumb::Mode::process);
  std::future<Answer> answer = service.submit(request);   // from any thread
  // ... more items, from any threads
  service.close();                                        // answers every accepted item
  CHECK(answer.get() == "10");
}

TEST_CASE("process mode: guide: graphs") {
  plumb::Graph graph{
      plumb::node<"inp">(plumb::stage(random_strings, 100)),
      plumb::node<"n1">(plumb::stage(reverse), plumb::from<"inp">),
      plumb::node<"n2">(plumb::stage(upper), plumb::from<"n1">),
      plumb::node<"n3">(plumb::stage(lower), plumb::from<"n1", "n2">),
      plumb::node<"n4">(plumb::stage(print), plumb::from<"n2", "n3">),
  };
  graph.run(plumb::Mode::thread);
  CHECK(printed == 300);

  int seen = 0;
  plumb::Graph tagged{
      plumb::node<"inp">(plumb::stage(random_strings, 100)),
      plumb::node<"upper">(plumb::stage(upper), plumb::from<"inp">),
      plumb::node<"lower">(plumb::stage(lower), plumb::from<"inp">),
      plumb::node<"both">(plumb::stage(reverse), plumb::from<"upper", "lower">),  // the output
  };
  for (const std::string& text : tagged.stream(plumb::Mode::process)) std::puts(text.c_str());
  for (const std::string& text : tagged.stream(plumb::Mode::thread)) seen += text.empty() ? 0 : 1;
  CHECK(seen == 200);
}
