// SPDX-License-Identifier: MIT
// examples/parallel_gzip.cpp: gzip with N worker processes, pigz-style.
//
//   example_parallel_gzip INPUT OUTPUT [--workers N] [--level 0-9] [--chunk KIB] [--stats]
//
// read (one process) -> compress (N worker processes) -> write (one process):
// - read cuts INPUT into chunks of 128 KiB and sends each with the 32 KiB before it;
// - compress deflates a chunk with zlib, primed with those 32 KiB as its dictionary, so
//   matches still reach back across chunk boundaries (the ratio stays gzip's). Every chunk but
//   the last ends with a sync flush: its deflate blocks end on a byte boundary and none is
//   final, so the chunks concatenate into one valid deflate stream;
// - write puts the chunks back in input order (the workers finish them out of order), wraps
//   them in a gzip header and trailer, and combines the chunks' CRC-32s.
// The output is one ordinary gzip member: `gzip -t`, `gzip -d` and `pigz -d` read it. It is
// written to a temporary file beside OUTPUT and renamed over it only when the run succeeded.

#include <plumb/plumb.hpp>

#include "support/cli.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::size_t kWindow = 32 * 1024;  // deflate's window: how far back a match reaches

struct Chunk {
  std::uint64_t sequence = 0;
  bool last = false;
  Bytes dictionary;  // the kWindow bytes of input before `data` (fewer at the start)
  Bytes data;
};

struct Compressed {
  std::uint64_t sequence = 0;
  bool last = false;
  std::uint32_t crc = 0;      // CRC-32 of the chunk's input
  std::uint64_t length = 0;   // input bytes
  Bytes deflated;
};

struct Summary {
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t chunks = 0;
};

std::runtime_error file_error(std::string_view what, const std::string& path) {
  return std::runtime_error(std::string(what) + " '" + path + "': " + std::strerror(errno));
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open(const std::string& path, const char* mode) {
  File file(std::fopen(path.c_str(), mode));
  if (!file) throw file_error(*mode == 'r' ? "cannot open input" : "cannot create output", path);
  return file;
}

// Source: the input in chunks, each with the window before it. Reads one chunk ahead, to
// mark the last one (an empty input is one empty, last chunk).
plumb::Generator<Chunk> read_chunks(std::string path, std::size_t chunk_size) {
  const File file = open(path, "rb");
  auto fill = [&](Bytes& buffer) {
    buffer.resize(chunk_size);
    const std::size_t got = std::fread(buffer.data(), 1, chunk_size, file.get());
    if (got < chunk_size && std::ferror(file.get())) throw file_error("cannot read", path);
    buffer.resize(got);
  };
  Bytes current;
  fill(current);
  Bytes window;
  for (std::uint64_t sequence = 0;; ++sequence) {
    Bytes next;
    if (current.size() == chunk_size) fill(next);
    const bool last = next.empty();
    Bytes tail(current.end() - static_cast<std::ptrdiff_t>(std::min(kWindow, current.size())),
               current.end());
    Chunk chunk{sequence, last, std::move(window), std::move(current)};
    co_yield std::move(chunk);
    if (last) co_return;
    // The next chunk's dictionary: the last kWindow bytes before it (this chunk is a whole
    // chunk_size, so at least kWindow when chunk_size >= kWindow).
    window = std::move(tail);
    current = std::move(next);
  }
}

// One zlib deflate state per worker, reset for each chunk.
class Deflater {
 public:
  explicit Deflater(int level) {
    // windowBits -15: raw deflate, no zlib header; the writer adds gzip's.
    if (deflateInit2(&stream_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("zlib: deflateInit2 failed (level " + std::to_string(level) + ")");
    }
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  ~Deflater() { deflateEnd(&stream_); }

  Bytes deflate(const Chunk& chunk) {
    check(deflateReset(&stream_), "deflateReset");
    if (!chunk.dictionary.empty()) {
      check(deflateSetDictionary(&stream_, chunk.dictionary.data(),
                                 static_cast<uInt>(chunk.dictionary.size())),
            "deflateSetDictionary");
    }
    // deflateBound covers Z_FINISH; a sync flush adds at most an empty stored block (5 bytes)
    // more, and the loop below grows the buffer if zlib ever needs more still.
    Bytes out(deflateBound(&stream_, static_cast<uLong>(chunk.data.size())) + 16);
    stream_.next_in = const_cast<Bytef*>(chunk.data.data());  // zlib's API is not const
    stream_.avail_in = static_cast<uInt>(chunk.data.size());
    std::size_t used = 0;
    const int flush = chunk.last ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
      stream_.next_out = out.data() + used;
      stream_.avail_out = static_cast<uInt>(out.size() - used);
      const int status = ::deflate(&stream_, flush);
      if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
        check(status, "deflate");
      }
      used = out.size() - stream_.avail_out;
      const bool done = chunk.last ? status == Z_STREAM_END
                                   : stream_.avail_in == 0 && stream_.avail_out > 0;
      if (done) break;
      out.resize(out.size() * 2);
    }
    out.resize(used);
    return out;
  }

 private:
  static void check(int status, const char* call) {
    if (status != Z_OK) throw std::runtime_error(std::string("zlib: ") + call + " failed");
  }
  z_stream stream_{};
};

// Processor: runs in each of the N worker processes.
plumb::Generator<Compressed> deflate_chunks(plumb::Stream<Chunk> in, int level) {
  Deflater deflater(level);
  for (const Chunk& chunk : in) {
    const auto crc = static_cast<std::uint32_t>(
        crc32(0, chunk.data.data(), static_cast<uInt>(chunk.data.size())));
    Compressed compressed{chunk.sequence, chunk.last, crc, chunk.data.size(),
                          deflater.deflate(chunk)};
    co_yield std::move(compressed);
  }
}

void put_le32(std::FILE* file, std::uint32_t value) {
  const std::uint8_t bytes[4] = {static_cast<std::uint8_t>(value), static_cast<std::uint8_t>(value >> 8),
                                 static_cast<std::uint8_t>(value >> 16),
                                 static_cast<std::uint8_t>(value >> 24)};
  std::fwrite(bytes, 1, sizeof bytes, file);
}

// Sink: writes the gzip member. The compress stage is ordered(), so the chunks arrive in input
// order, at most in_flight of them waiting for a slow one; the sequence number only checks it.
Summary write_gzip(plumb::Stream<Compressed> in, std::string path) {
  const File file = open(path, "wb");
  // Header: magic, deflate, no flags, no mtime, no extra flags, OS unknown (RFC 1952).
  const std::uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
  std::fwrite(header, 1, sizeof header, file.get());

  Summary summary;
  std::uint32_t crc = 0;
  bool finished = false;
  for (const Compressed& chunk : in) {
    if (chunk.sequence != summary.chunks) {
      throw std::logic_error("write: chunk " + std::to_string(chunk.sequence) +
                             " arrived where chunk " + std::to_string(summary.chunks) + " belongs");
    }
    std::fwrite(chunk.deflated.data(), 1, chunk.deflated.size(), file.get());
    crc = static_cast<std::uint32_t>(crc32_combine(crc, chunk.crc, static_cast<z_off_t>(chunk.length)));
    summary.bytes_in += chunk.length;
    summary.bytes_out += chunk.deflated.size();
    finished = chunk.last;
    ++summary.chunks;
  }
  if (!finished) throw std::runtime_error("write: the stream ended without its last chunk");
  put_le32(file.get(), crc);
  put_le32(file.get(), static_cast<std::uint32_t>(summary.bytes_in));  // ISIZE: size mod 2^32
  if (std::fflush(file.get()) != 0 || std::ferror(file.get())) throw file_error("cannot write", path);
  summary.bytes_out += sizeof header + 8;
  return summary;
}

struct Arguments {
  std::string input, output;
  int workers = 2;
  int level = 6;
  std::size_t chunk_kib = 128;
  bool stats = false;
};

}  // namespace

int main(int argc, char** argv) {
  Arguments arguments;
  examples::CommandLine command_line{"example_parallel_gzip",
                                     "Compresses INPUT into the gzip file OUTPUT with N worker processes, pigz-style"};
  command_line.add_option("INPUT", arguments.input, "The file to compress")->required();
  command_line.add_option("OUTPUT", arguments.output, "The gzip file to write (replaced only on success)")
      ->required();
  command_line.add_option("--workers", arguments.workers, "Compress worker processes")
      ->check(CLI::Range(1, 128));
  command_line.add_option("--level", arguments.level, "Compression level (0: none, 9: smallest)")
      ->check(CLI::Range(0, 9));
  command_line.add_option("--chunk", arguments.chunk_kib, "KiB of input per chunk")
      ->check(CLI::Range(std::size_t{32}, std::size_t{64} * 1024));
  command_line.add_flag("--stats", arguments.stats, "Print the statistics table after the run");
  CLI11_PARSE(command_line, argc, argv);
  // The temporary file beside OUTPUT, with the permissions a new file would get.
  std::string partial = arguments.output + ".partial-XXXXXX";
  const int fd = ::mkstemp(partial.data());
  if (fd < 0) {
    std::cerr << "parallel_gzip: " << file_error("cannot create output", arguments.output).what()
              << "\n";
    return 1;
  }
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  ::close(fd);
  const std::size_t chunk = arguments.chunk_kib * 1024;
  const auto workers = static_cast<std::size_t>(arguments.workers);
  // A slot holds one encoded packet: the chunk and its window, or the deflated chunk (at most
  // a little larger than its input, for incompressible data), plus a few length fields.
  const std::size_t slot = chunk + kWindow + chunk / 512 + 4096;
  plumb::Pipeline pipeline{
      plumb::stage(read_chunks, arguments.input, chunk).name("read").in_flight(2 * workers)
          .max_message_size(slot),
      plumb::stage(deflate_chunks, arguments.level).name("compress").workers(workers)
          .in_flight(2 * workers).max_message_size(slot).ordered(),
      plumb::stage(write_gzip, partial).name("write"),
  };
  try {
    const Summary summary = pipeline.run(plumb::Mode::process);
    if (std::rename(partial.c_str(), arguments.output.c_str()) != 0) {
      throw file_error("cannot rename the result to", arguments.output);
    }
    std::cout << arguments.input << ": " << summary.bytes_in << " -> " << summary.bytes_out
              << " bytes ("
              << (summary.bytes_in ? 100.0 * static_cast<double>(summary.bytes_out) /
                                         static_cast<double>(summary.bytes_in)
                                   : 100.0)
              << "%), " << summary.chunks << " chunks, " << arguments.workers << " workers\n";
    if (arguments.stats) std::cout << pipeline.last_stats().table();
  } catch (const std::exception& error) {
    std::cerr << "parallel_gzip: " << error.what() << "\n";
    if (const auto& failure = pipeline.last_failure()) {
      std::cerr << "  (stage '" << failure->stage_name << "', worker " << failure->worker_index << ")\n";
    }
    std::remove(partial.c_str());
    return 1;
  }
  return 0;
}
