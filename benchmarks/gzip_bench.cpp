// SPDX-License-Identifier: MIT
// benchmarks/gzip_bench.cpp: examples/parallel_gzip against Debian's pigz and gzip, on the same
// 32 MiB file (the C headers, *.h, under /usr/include: real text), at level 6, each as a separate
// process writing to a file. Every output is checked once (gzip -t and a byte-exact round
// trip) before it is timed. Names: gzip/<runner>, e.g. gzip/parallel_gzip_w2 (2 workers),
// gzip/pigz_p2 (2 threads). Counter `output_ratio`: compressed size / input size.

#include "registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

namespace bench {
#ifdef PLUMB_PARALLEL_GZIP  // defined when examples/parallel_gzip is built
namespace {

namespace fs = std::filesystem;

constexpr std::uintmax_t kCorpusBytes = std::uintmax_t{32} << 20;

// A file that is removed at exit.
struct TemporaryFile {
  explicit TemporaryFile(fs::path file) : path(std::move(file)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  fs::path path;
};

// The corpus: headers under /usr/include in path order, concatenated up to kCorpusBytes (built
// once per run of the suite, in the temporary directory).
const fs::path& corpus() {
  static const TemporaryFile file{[] {
    // Names with the pid: two suites running at once must not share files.
    const fs::path file = fs::temp_directory_path() / fmt::format("plumb-gzip-{}-corpus", ::getpid());
    std::vector<fs::path> headers;
    for (const auto& entry : fs::recursive_directory_iterator(
             "/usr/include", fs::directory_options::skip_permission_denied)) {
      if (entry.is_regular_file() && entry.path().extension() == ".h") headers.push_back(entry);
    }
    std::sort(headers.begin(), headers.end());
    std::ofstream out(file, std::ios::binary);
    std::uintmax_t written = 0;
    // Round after round until the corpus is full; a round that adds nothing ends it (the check
    // below then fails).
    for (std::uintmax_t before = ~std::uintmax_t{0}; written < kCorpusBytes && written != before;) {
      before = written;
      for (const fs::path& header : headers) {
        std::ifstream in(header, std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto take = std::min<std::uintmax_t>(text.size(), kCorpusBytes - written);
        out.write(text.data(), static_cast<std::streamsize>(take));
        written += take;
        if (written == kCorpusBytes) break;
      }
    }
    if (!out || written != kCorpusBytes) throw std::runtime_error("cannot build the gzip corpus");
    return file;
  }()};
  return file.path;
}

void shell(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

// Times `command`, a shell command that compresses IN into OUT; checks its output first.
void add_runner(const std::string& runner, const std::string& command) {
  add("gzip/" + runner, true, [runner, command](benchmark::State& state) {
    const fs::path input = corpus();
    const fs::path output =
        fs::temp_directory_path() / fmt::format("plumb-gzip-{}-{}.gz", ::getpid(), runner);
    const std::string run = fmt::format("IN='{}' OUT='{}'; {}", input.string(), output.string(),
                                        command);
    shell(run);
    shell(fmt::format("gzip -t '{1}' && gzip -dc '{1}' | cmp -s - '{0}'", input.string(),
                      output.string()));
    for (auto _ : state) shell(run);
    const auto in_bytes = static_cast<double>(fs::file_size(input));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(in_bytes));
    state.counters["output_ratio"] = static_cast<double>(fs::file_size(output)) / in_bytes;
    fs::remove(output);
  });
}

}  // namespace
#endif

void register_gzip() {
#ifdef PLUMB_PARALLEL_GZIP
  const std::string tool = fmt::format("'{}' \"$IN\" \"$OUT\"", PLUMB_PARALLEL_GZIP);
  add_runner("parallel_gzip_w1", tool + " --workers 1 > /dev/null");
  add_runner("pigz_p1", "pigz -6 -p 1 -c \"$IN\" > \"$OUT\"");
  add_runner("parallel_gzip_w2", tool + " --workers 2 > /dev/null");
  add_runner("pigz_p2", "pigz -6 -p 2 -c \"$IN\" > \"$OUT\"");
  add_runner("gzip", "gzip -6 -c \"$IN\" > \"$OUT\"");
#endif
}

}  // namespace bench
