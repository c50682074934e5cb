// SPDX-License-Identifier: MIT
// examples/file_index.cpp: an index of a directory's files, built by a graph that branches and
// joins: each file is read once, three branches work on it at the same time, and a join by key
// puts their results back together into one record per file.
//
//   example_file_index [--dir DIR] [--out FILE] [--mode sequential|thread|process]
//
//   files -> hash      (FNV-1a, 64 bits)                          -+
//         -> compress  (zlib level 6; 2 workers: the slow branch)  +-> record -> write
//         -> kind      (text, gzip, ELF, PNG, empty, binary)      -+
//
// `files` reads every regular file under DIR (default /usr/share/common-licenses, which every
// Debian system has) and sends it to the three branches; `record` joins their results by path
// (plumb::join_by_key: the compress branch has two workers, so its results come out of order);
// `write` writes one tab-separated line per file to FILE (default: standard output), sorted by
// path, and returns the number of records. Exits 1 unless every file has its record.

#include <plumb/graph.hpp>

#include "support/cli.hpp"
#include "support/mode.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct File {
  std::string path;
  std::string bytes;
};

struct Hashed {
  std::string path;
  std::uint64_t hash = 0;
};

struct Compressed {
  std::string path;
  std::uint64_t size = 0;
  std::uint64_t compressed = 0;
};

struct Kind {
  std::string path;
  std::string kind;
};

plumb::Generator<File> files(std::string directory) {
  std::vector<fs::path> paths;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(directory)) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const fs::path& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    File file{path.string(), std::string(std::istreambuf_iterator<char>(in), {})};
    co_yield file;
  }
}

plumb::Generator<Hashed> hash(plumb::Stream<File> in) {
  for (File& file : in) {
    std::uint64_t value = 14695981039346656037ULL;  // FNV-1a
    for (char byte : file.bytes) {
      value ^= static_cast<unsigned char>(byte);
      value *= 1099511628211ULL;
    }
    Hashed hashed{file.path, value};
    co_yield hashed;
  }
}

plumb::Generator<Compressed> compress_each(plumb::Stream<File> in) {
  std::vector<Bytef> buffer;
  for (File& file : in) {
    uLongf size = compressBound(static_cast<uLong>(file.bytes.size()));
    buffer.resize(size);
    if (compress2(buffer.data(), &size, reinterpret_cast<const Bytef*>(file.bytes.data()),
                  static_cast<uLong>(file.bytes.size()), 6) != Z_OK) {
      throw std::runtime_error("zlib could not compress " + file.path);
    }
    Compressed compressed{file.path, file.bytes.size(), size};
    co_yield compressed;
  }
}

std::string kind_of(const std::string& bytes) {
  const auto starts = [&](std::string_view magic) { return std::string_view(bytes).starts_with(magic); };
  if (bytes.empty()) return "empty";
  if (starts("\x1f\x8b")) return "gzip";
  if (starts("\x7f" "ELF")) return "ELF";
  if (starts("\x89PNG")) return "PNG";
  const bool text = std::all_of(bytes.begin(), bytes.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 || c == '\n' || c == '\r' || c == '\t' || c == '\f' || u >= 0x80;
  });
  return text ? "text" : "binary";
}

plumb::Generator<Kind> kind(plumb::Stream<File> in) {
  for (File& file : in) {
    Kind found{file.path, kind_of(file.bytes)};
    co_yield found;
  }
}

// The join's key: the path, whichever branch the result comes from.
struct ByPath {
  const std::string& operator()(const Hashed& hashed) const { return hashed.path; }
  const std::string& operator()(const Compressed& compressed) const { return compressed.path; }
  const std::string& operator()(const Kind& kind) const { return kind.path; }
};

plumb::Generator<std::string> record(plumb::Stream<std::tuple<Hashed, Compressed, Kind>> in) {
  for (auto& [hashed, compressed, kind] : in) {
    std::ostringstream line;
    line << hashed.path << '\t' << std::hex << hashed.hash << std::dec << '\t' << compressed.size << '\t'
         << compressed.compressed << '\t' << kind.kind;
    std::string text = line.str();
    co_yield text;
  }
}

std::size_t write_index(plumb::Stream<std::string> in, std::string out) {
  std::vector<std::string> lines;
  for (std::string& line : in) lines.push_back(std::move(line));
  std::sort(lines.begin(), lines.end());
  std::ofstream file;
  if (!out.empty()) file.open(out);
  std::ostream& stream = out.empty() ? std::cout : file;
  stream << "path\tfnv1a64\tbytes\tzlib6\tkind\n";
  for (const std::string& line : lines) stream << line << '\n';
  stream.flush();
  if (!stream) throw std::runtime_error("cannot write " + (out.empty() ? std::string("the output") : out));
  return lines.size();
}

}  // namespace

int main(int argc, char** argv) {
  std::string directory = "/usr/share/common-licenses";
  std::string out;
  plumb::Mode mode = plumb::Mode::thread;
  examples::CommandLine command_line{"example_file_index",
                                     "Indexes a directory's files: hash, compressed size and kind, joined per file"};
  command_line.add_option("--dir", directory, "The directory to index");
  command_line.add_option("--out", out, "Where to write the index (default: standard output)");
  examples::add_mode_option(command_line, mode);
  CLI11_PARSE(command_line, argc, argv);

  std::size_t expected = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(directory)) {
    if (entry.is_regular_file()) ++expected;
  }
  // Files cross processes whole: slots of 16 MiB for the branches' input, the default for the
  // small results.
  plumb::Graph graph{
      plumb::node<"files">(plumb::stage(files, directory).max_message_size(16 << 20).in_flight(4)),
      plumb::node<"hash">(plumb::stage(hash), plumb::from<"files">),
      plumb::node<"compress">(plumb::stage(compress_each).workers(mode == plumb::Mode::sequential ? 1 : 2).in_flight(4),
                              plumb::from<"files">),
      plumb::node<"kind">(plumb::stage(kind), plumb::from<"files">),
      plumb::node<"record">(plumb::stage(record), plumb::join_by_key<"hash", "compress", "kind">(ByPath{})),
      plumb::node<"write">(plumb::stage(write_index, out), plumb::from<"record">),
  };
  const std::size_t written = graph.run(mode);
  std::cerr << graph.last_stats().table();
  if (written != expected) {
    std::cerr << "example_file_index: " << written << " records for " << expected << " files\n";
    return 1;
  }
  std::cerr << "example_file_index: " << written << " files indexed\n";
  return 0;
}
