// SPDX-License-Identifier: MIT
// benchmarks/main.cpp: registers the suite in table order, runs it with Google Benchmark's usual
// console and file output, then prints the results as markdown tables: throughput per
// workload/config and runner, plumb's ratios to oneTBB and to the plain loop, thread mode's
// scheduling settings side by side, the machine's limits, and the targets, each marked met or
// missed.

#include "registry.hpp"
#include "workloads.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {
namespace {

struct Result {
  double items_per_second = 0;
  double bytes_per_second = 0;
  double output_ratio = 0;  // gzip/*: compressed size / input size
  std::optional<double> ctx_per_100_msgs;  // context switches per 100 messages, where counted
  std::string error;
};

// The console reporter, plus a copy of every result for the tables.
class TableReporter final : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      // With --benchmark_repetitions, the median stands for the row; otherwise the one run.
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      Result& result = results_[run.run_name.function_name];
      if (run.run_type == Run::RT_Iteration && seen_median_.contains(run.run_name.function_name)) {
        continue;
      }
      if (median) seen_median_[run.run_name.function_name] = true;
      if (run.error_occurred) {
        result.error = run.error_message;
        continue;
      }
      result.items_per_second = counter(run, "items_per_second");
      result.bytes_per_second = counter(run, "bytes_per_second");
      result.output_ratio = counter(run, "output_ratio");
      if (run.counters.contains("ctx_per_100_msgs")) {
        result.ctx_per_100_msgs = counter(run, "ctx_per_100_msgs");
      }
    }
  }

  [[nodiscard]] bool any_with_prefix(std::string_view prefix) const {
    const auto first = results_.lower_bound(std::string(prefix));
    return first != results_.end() && std::string_view(first->first).starts_with(prefix);
  }

  [[nodiscard]] const Result* find(const std::string& name) const {
    const auto found = results_.find(name);
    return found == results_.end() ? nullptr : &found->second;
  }

 private:
  static double counter(const Run& run, const std::string& name) {
    const auto found = run.counters.find(name);
    return found == run.counters.end() ? 0.0 : static_cast<double>(found->second);
  }

  std::map<std::string, Result> results_;
  std::map<std::string, bool> seen_median_;
};

struct Column {
  std::string_view runner;
  std::string_view title;
};

constexpr std::array<Column, 11> kColumns{{
    {"loop", "loop"},
    {"loop_reused", "loop, one vector reused"},
    {"plumb_sequential", "plumb sequential"},
    {"plumb_thread", "plumb thread"},
    {"plumb_process", "plumb process"},
    {"plumb_process_zero_copy", "plumb process zero-copy reads"},
    {"plumb_mixed", "plumb mixed"},
    {"plumb_sequential_buffers", "plumb sequential Buffer"},
    {"plumb_thread_buffers", "plumb thread Buffer"},
    {"plumb_process_buffers", "plumb process Buffer (zero-copy reads and writes)"},
    {"tbb", "oneTBB"},
}};

constexpr std::array<Workload, 3> kWorkloads{Workload::small, Workload::big, Workload::image};

// The runners that move frames as plumb::Buffer (make_buffer).
constexpr std::array<std::string_view, 3> kBufferRunners{"plumb_sequential_buffers", "plumb_thread_buffers",
                                                         "plumb_process_buffers"};

class Tables {
 public:
  explicit Tables(const TableReporter& reporter) : reporter_(reporter) {}

  // The workload's throughput in `runner`: messages/s for small, bytes/s for big.
  [[nodiscard]] std::optional<double> rate(Workload workload, std::string_view config,
                                           std::string_view runner) const {
    const Result* result =
        reporter_.find(fmt::format("{}/{}/{}", workload_name(workload), config, runner));
    if (result == nullptr || !result->error.empty()) return std::nullopt;
    return workload == Workload::small ? result->items_per_second : result->bytes_per_second;
  }

  [[nodiscard]] std::string cell(Workload workload, std::string_view config,
                                 std::string_view runner) const {
    const Result* result =
        reporter_.find(fmt::format("{}/{}/{}", workload_name(workload), config, runner));
    if (result == nullptr) return "";
    if (!result->error.empty()) return "error";
    return workload == Workload::small ? fmt::format("{:.2f} M/s", result->items_per_second / 1e6)
                                       : fmt::format("{:.2f} GB/s", result->bytes_per_second / 1e9);
  }

  [[nodiscard]] std::string ratio(Workload workload, std::string_view config,
                                  std::string_view runner, std::string_view base) const {
    const auto top = rate(workload, config, runner);
    const auto bottom = rate(workload, config, base);
    if (!top || !bottom || *bottom <= 0) return "-";
    const double value = *top / *bottom;
    return value < 0.1 ? fmt::format("{:.3f}x", value) : fmt::format("{:.2f}x", value);
  }

  void throughput() const {
    table("Throughput (small: messages/s, big and image: bytes/s; higher is better)", false,
          [&](Workload workload, std::string_view config, std::string_view runner) {
            return cell(workload, config, runner);
          });
  }

  void ratios() const {
    table("plumb's ratios (to oneTBB / to the loop)", true,
          [&](Workload workload, std::string_view config, std::string_view runner) {
            if (!rate(workload, config, runner)) return std::string();
            return fmt::format("{} / {}", ratio(workload, config, runner, "tbb"),
                               ratio(workload, config, runner, "loop"));
          });
  }

  // Thread mode with Scheduling::adaptive and ::pinned: the sched/* rows (<row>/adaptive and
  // <row>/pinned) and small/<config>/plumb_thread against plumb_thread_pinned.
  void scheduling() const {
    struct Pair {
      std::string label;
      std::string adaptive;
      std::string pinned;
    };
    std::vector<Pair> pairs;
    for (std::string_view row : kSchedulingRows) {
      pairs.push_back({std::string(row), fmt::format("{}/adaptive", row), fmt::format("{}/pinned", row)});
    }
    for (const Config& config : kConfigs) {
      pairs.push_back({fmt::format("small/{} thread", config.name),
                       fmt::format("small/{}/plumb_thread", config.name),
                       fmt::format("small/{}/plumb_thread_pinned", config.name)});
    }
    const auto shown = [&](const Pair& pair) {
      return reporter_.find(pair.adaptive) != nullptr || reporter_.find(pair.pinned) != nullptr;
    };
    if (std::none_of(pairs.begin(), pairs.end(), shown)) return;
    fmt::print("\n## Scheduling: adaptive vs pinned (thread mode; messages/s, context switches per "
               "100 messages)\n\n| row | adaptive | pinned | adaptive / pinned | switches/100 "
               "adaptive | switches/100 pinned |\n|---|---:|---:|---:|---:|---:|\n");
    for (const Pair& pair : pairs) {
      if (!shown(pair)) continue;
      fmt::print("| {} | {} | {} | {} | {} | {} |\n", pair.label, rate_cell(pair.adaptive),
                 rate_cell(pair.pinned), ratio_of(pair.adaptive, pair.pinned),
                 switches_cell(pair.adaptive), switches_cell(pair.pinned));
    }
    if (reporter_.find(std::string(kSchedulingOneThread)) != nullptr) {
      fmt::print("\n{} (the cpu20us work in one loop on one thread): {}\n", kSchedulingOneThread,
                 rate_cell(std::string(kSchedulingOneThread)));
    }
  }

  void graphs() const {
    bool any = false;
    for (std::string_view row : kGraphRows) {
      for (std::string_view runner : kGraphRunners) {
        if (reporter_.find(fmt::format("{}/{}", row, runner)) != nullptr) any = true;
      }
    }
    if (!any) return;
    fmt::print("\n## Graphs: a diamond (source -> two branches -> join -> sink; messages/s, "
               "context switches per 100 messages)\n\n| row | plumb sequential | plumb thread | "
               "plumb process | oneTBB flow graph | thread / oneTBB | switches/100 thread | "
               "switches/100 oneTBB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::string_view row : kGraphRows) {
      const auto full = [&](std::string_view runner) { return fmt::format("{}/{}", row, runner); };
      fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} |\n", row, rate_cell(full("plumb_sequential")),
                 rate_cell(full("plumb_thread")), rate_cell(full("plumb_process")), rate_cell(full("tbb_flow")),
                 ratio_of(full("plumb_thread"), full("tbb_flow")), switches_cell(full("plumb_thread")),
                 switches_cell(full("tbb_flow")));
    }
  }

  void limits() const {
    const Result* copy = reporter_.find("limits/memcpy_40MB");
    const Result* handoff = reporter_.find("limits/spsc_handoff_small");
    if (copy == nullptr && handoff == nullptr) return;
    fmt::print("\n## The machine's limits\n\n| limit | measured |\n|---|---:|\n");
    if (copy != nullptr && copy->error.empty()) {
      fmt::print("| memcpy of 40 MB | {:.2f} GB/s ({:.2f} ms) |\n", copy->bytes_per_second / 1e9,
                 1e3 / copy->items_per_second);
    }
    if (handoff != nullptr && handoff->error.empty()) {
      fmt::print("| 2-thread lock-free SPSC hand-off, 104-byte messages | {:.2f} M/s |\n",
                 handoff->items_per_second / 1e6);
    }
  }

  // The statistics' timing (RunOptions::timing) on and off, side by side.
  void stats_overhead() const {
    bool any = false;
    for (const Config& config : kConfigs) {
      for (std::string_view runner : {"plumb_sequential", "plumb_thread", "plumb_process"}) {
        if (rate(Workload::small, config.name, fmt::format("{}_untimed", runner))) any = true;
      }
    }
    if (!any) return;
    fmt::print("\n## Statistics: timing on / off (RunOptions::timing; small, messages/s)\n\n"
               "| workload/config | plumb sequential | plumb thread | plumb process |\n|---|---:|---:|---:|\n");
    for (const Config& config : kConfigs) {
      fmt::print("| small/{} |", config.name);
      for (std::string_view runner : {"plumb_sequential", "plumb_thread", "plumb_process"}) {
        const auto on = rate(Workload::small, config.name, runner);
        const auto off = rate(Workload::small, config.name, fmt::format("{}_untimed", runner));
        if (!on || !off || *off <= 0) {
          fmt::print(" - |");
          continue;
        }
        fmt::print(" {:.2f} / {:.2f} M/s ({:+.1f}%) |", *on / 1e6, *off / 1e6, 100 * (*on / *off - 1));
      }
      fmt::print("\n");
    }
  }

  // .ordered() on the middle stage, on / off, side by side (small messages, several workers).
  void ordering_overhead() const {
    bool any = false;
    for (const Config& config : kConfigs) {
      for (std::string_view runner : {"plumb_thread", "plumb_process"}) {
        if (rate(Workload::small, config.name, fmt::format("{}_ordered", runner))) any = true;
      }
    }
    if (!any) return;
    fmt::print("\n## Ordering: .ordered() on the middle stage, on / off (small, messages/s)\n\n"
               "| workload/config | plumb thread | plumb process |\n|---|---:|---:|\n");
    for (const Config& config : kConfigs) {
      if (config.middle_workers < 2) continue;
      fmt::print("| small/{} |", config.name);
      for (std::string_view runner : {"plumb_thread", "plumb_process"}) {
        const auto on = rate(Workload::small, config.name, fmt::format("{}_ordered", runner));
        const auto off = rate(Workload::small, config.name, runner);
        if (!on || !off || *off <= 0) {
          fmt::print(" - |");
          continue;
        }
        fmt::print(" {:.2f} / {:.2f} M/s ({:+.1f}%) |", *on / 1e6, *off / 1e6, 100 * (*on / *off - 1));
      }
      fmt::print("\n");
    }
  }

  // examples/parallel_gzip against pigz with as many workers, and gzip.
  void compression() const {
    if (!reporter_.any_with_prefix("gzip/")) return;
    fmt::print("\n## Compression: examples/parallel_gzip, pigz, gzip (level 6, 32 MiB of "
               "/usr/include headers)\n\n| runner | throughput | output | to pigz, same "
               "workers |\n|---|---:|---:|---:|\n");
    for (const auto& [runner, peer] : {std::pair{"parallel_gzip_w1", "pigz_p1"},
                                       {"pigz_p1", ""},
                                       {"parallel_gzip_w2", "pigz_p2"},
                                       {"pigz_p2", ""},
                                       {"gzip", ""}}) {
      const Result* result = reporter_.find(fmt::format("gzip/{}", runner));
      if (result == nullptr) continue;
      if (!result->error.empty()) {
        std::string error = result->error;  // a '|' would end the table cell
        std::replace(error.begin(), error.end(), '|', '/');
        fmt::print("| {} | error: {} | | |\n", runner, error);
        continue;
      }
      const Result* base = *peer ? reporter_.find(fmt::format("gzip/{}", peer)) : nullptr;
      const bool compared = base != nullptr && base->error.empty() && base->bytes_per_second > 0;
      fmt::print("| {} | {:.1f} MB/s | {:.2f}% | {} |\n", runner, result->bytes_per_second / 1e6,
                 100 * result->output_ratio,
                 compared ? fmt::format("{:.2f}x", result->bytes_per_second /
                                                       base->bytes_per_second)
                          : "");
    }
  }

  // examples/redis_worker: 1 and 2 instances sharing one Redis Stream.
  void scale_out() const {
    if (!reporter_.any_with_prefix("redis/")) return;
    fmt::print("\n## Scale-out: examples/redis_worker instances on one Redis Stream (this machine)\n\n"
               "| work per job | 1 instance | 2 instances | 2 to 1 |\n|---|---:|---:|---:|\n");
    for (const auto& [work, title] : {std::pair{"cpu", "500 us CPU"}, {"wait", "2 ms wait + 50 us CPU"}}) {
      const Result* one = reporter_.find(fmt::format("redis/{}/instances:1", work));
      const Result* two = reporter_.find(fmt::format("redis/{}/instances:2", work));
      const auto cell = [](const Result* result) {
        if (result == nullptr) return std::string("-");
        if (!result->error.empty()) return std::string("error");
        return fmt::format("{:.0f} jobs/s", result->items_per_second);
      };
      const bool compared = one != nullptr && two != nullptr && one->error.empty() && two->error.empty() &&
                            one->items_per_second > 0;
      fmt::print("| {} | {} | {} | {} |\n", title, cell(one), cell(two),
                 compared ? fmt::format("{:.2f}x", two->items_per_second / one->items_per_second) : "");
    }
  }

  void targets() const {
    fmt::print("\n## Targets\n\n| target | measured | |\n|---|---:|---|\n");
    using enum Workload;
    target("small/sequential: plumb sequential >= 4x oneTBB", small, "sequential",
           "plumb_sequential", "tbb", 4.0);
    target("small/sequential: plumb sequential >= 1/3 of the loop", small, "sequential",
           "plumb_sequential", "loop", 1.0 / 3);
    for (const Config& config : kConfigs) {
      target(fmt::format("small/{}: plumb thread >= oneTBB", config.name), small, config.name,
             "plumb_thread", "tbb", 1.0);
    }
    for (const Config& config : kConfigs) {
      target(fmt::format("small/{}: plumb thread >= 2x oneTBB (aim)", config.name), small,
             config.name, "plumb_thread", "tbb", 2.0);
    }
    if (const auto deep = rate(small, "deep", "plumb_thread")) {
      mark("small/deep: plumb thread >= 14 M messages/s", fmt::format("{:.2f} M/s", *deep / 1e6),
           *deep >= 14e6);
    }
    for (const Config& config : kConfigs) {
      if (const auto switches = switches_per_100(fmt::format("small/{}/plumb_thread", config.name))) {
        mark(fmt::format("small/{}: plumb thread context switches < 1 per 100 messages", config.name),
             fmt::format("{:.2f} per 100", *switches), *switches < 1);
      }
    }
    // Adaptive scheduling must not lose to pinned where stages need their threads; 5% is left
    // for the noise of a shared 2-core machine.
    for (std::string_view row : kSchedulingRows) {
      target(fmt::format("{}: adaptive >= pinned (met at >= 0.95x: noise)", row),
             fmt::format("{}/adaptive", row), fmt::format("{}/pinned", row), 0.95);
    }
    for (std::string_view row : kSchedulingRows) {
      if (!row.starts_with("sched/cpu20us/")) continue;
      target(fmt::format("{}: adaptive >= 1.5x one thread", row), fmt::format("{}/adaptive", row),
             std::string(kSchedulingOneThread), 1.5);
    }
    for (const Config& config : kConfigs) {
      target(fmt::format("small/{}: plumb process >= 0.5x plumb thread", config.name), small,
             config.name, "plumb_process", "plumb_thread", 0.5);
    }
    for (std::string_view runner : {"plumb_sequential", "plumb_thread", "plumb_process"}) {
      target(fmt::format("small/deep: {} with timing >= 0.95x without (issue 7)", runner), small,
             "deep", runner, fmt::format("{}_untimed", runner), 0.95);
    }
    for (const Workload frames : {big, image}) {
      const std::string_view work = workload_name(frames);
      for (const Config& config : kConfigs) {
        if (frames == big) {  // the earlier issues' targets, for the 40 MB frames they were set on
          target(fmt::format("big/{}: plumb thread >= oneTBB", config.name), big, config.name,
                 "plumb_thread", "tbb", 1.0);
          target(fmt::format("big/{}: plumb process zero-copy reads >= 0.8x plumb thread", config.name), big,
                 config.name, "plumb_process_zero_copy", "plumb_thread", 0.8);
          target(fmt::format("big/{}: plumb process (copies) >= 0.5x plumb thread", config.name), big,
                 config.name, "plumb_process", "plumb_thread", 0.5);
        }
        // Issue 23: Buffers written in place.
        target(fmt::format("{}/{}: plumb process Buffer (zero-copy reads and writes) >= 0.9x plumb thread Buffer",
                           work, config.name),
               frames, config.name, "plumb_process_buffers", "plumb_thread_buffers", 0.9);
        // The image loop's 4 MB vector is served again by malloc (its mmap threshold rises after
        // the first free) and fits the cache: the 2x targets are the 40 MB workload's.
        if (frames != big) continue;
        best_target(fmt::format("{}/{}: best plumb Buffer runner >= 2x the loop (fresh vector per message)",
                                work, config.name),
                    frames, config.name, "loop", 2.0);
        if (config.name == "buffered" || config.name == "parallel") {
          best_target(fmt::format("{}/{}: best plumb Buffer runner >= 2x oneTBB", work, config.name), frames,
                      config.name, "tbb", 2.0);
        }
      }
    }
  }

 private:
  // A markdown table: a row per workload/config that ran, a column per runner (plumb's only if
  // `plumb_only`), each cell from `cell(workload, config, runner)`.
  template <class Cell>
  void table(std::string_view heading, bool plumb_only, Cell&& cell) const {
    const auto shown = [&](const Column& column) {
      return !plumb_only || column.runner.starts_with("plumb");
    };
    fmt::print("\n## {}\n\n| workload/config |", heading);
    for (const Column& column : kColumns) {
      if (shown(column)) fmt::print(" {} |", column.title);
    }
    fmt::print("\n|---|");
    for (const Column& column : kColumns) {
      if (shown(column)) fmt::print("---:|");
    }
    fmt::print("\n");
    for (Workload workload : kWorkloads) {
      for (const Config& config : kConfigs) {
        if (!any(workload, config.name)) continue;
        fmt::print("| {}/{} |", workload_name(workload), config.name);
        for (const Column& column : kColumns) {
          if (shown(column)) fmt::print(" {} |", cell(workload, config.name, column.runner));
        }
        fmt::print("\n");
      }
    }
  }

  [[nodiscard]] bool any(Workload workload, std::string_view config) const {
    for (const Column& column : kColumns) {
      if (reporter_.find(fmt::format("{}/{}/{}", workload_name(workload), config,
                                     column.runner)) != nullptr) {
        return true;
      }
    }
    return false;
  }

  void target(const std::string& label, Workload workload, std::string_view config,
              std::string_view runner, std::string_view base, double goal) const {
    const auto top = rate(workload, config, runner);
    const auto bottom = rate(workload, config, base);
    if (!top || !bottom || *bottom <= 0) return;
    mark(label, fmt::format("{:.2f}x", *top / *bottom), *top / *bottom >= goal);
  }

  // The best of the Buffer runners against `base`; the label names the best one.
  void best_target(const std::string& label, Workload workload, std::string_view config,
                   std::string_view base, double goal) const {
    std::optional<double> best;
    std::string_view best_runner;
    for (std::string_view runner : kBufferRunners) {
      const auto value = rate(workload, config, runner);
      if (value && (!best || *value > *best)) {
        best = value;
        best_runner = runner;
      }
    }
    const auto bottom = rate(workload, config, base);
    if (!best || !bottom || *bottom <= 0) return;
    mark(fmt::format("{} ({})", label, best_runner), fmt::format("{:.2f}x", *best / *bottom),
         *best / *bottom >= goal);
  }

  // As above, for two benchmarks named in full (messages/s).
  void target(const std::string& label, const std::string& name, const std::string& base,
              double goal) const {
    const auto top = messages_per_second(name);
    const auto bottom = messages_per_second(base);
    if (!top || !bottom || *bottom <= 0) return;
    mark(label, fmt::format("{:.2f}x", *top / *bottom), *top / *bottom >= goal);
  }

  [[nodiscard]] std::optional<double> messages_per_second(const std::string& name) const {
    const Result* result = reporter_.find(name);
    if (result == nullptr || !result->error.empty()) return std::nullopt;
    return result->items_per_second;
  }

  [[nodiscard]] std::optional<double> switches_per_100(const std::string& name) const {
    const Result* result = reporter_.find(name);
    if (result == nullptr || !result->error.empty()) return std::nullopt;
    return result->ctx_per_100_msgs;
  }

  [[nodiscard]] std::string rate_cell(const std::string& name) const {
    const Result* result = reporter_.find(name);
    if (result == nullptr) return "-";
    if (!result->error.empty()) return "error";
    const double rate = result->items_per_second;
    if (rate >= 1e6) return fmt::format("{:.2f} M/s", rate / 1e6);
    if (rate >= 1e3) return fmt::format("{:.2f} k/s", rate / 1e3);
    return fmt::format("{:.1f} /s", rate);
  }

  [[nodiscard]] std::string ratio_of(const std::string& name, const std::string& base) const {
    const auto top = messages_per_second(name);
    const auto bottom = messages_per_second(base);
    if (!top || !bottom || *bottom <= 0) return "-";
    return fmt::format("{:.2f}x", *top / *bottom);
  }

  [[nodiscard]] std::string switches_cell(const std::string& name) const {
    const auto switches = switches_per_100(name);
    return switches ? fmt::format("{:.2f}", *switches) : "-";
  }

  static void mark(const std::string& label, const std::string& value, bool met) {
    fmt::print("| {} | {} | {} |\n", label, value, met ? "met" : "**missed**");
  }

  const TableReporter& reporter_;
};

}  // namespace
}  // namespace bench

namespace {
// One line of a sysfs file, or "unknown" where it cannot be read.
std::string sysfs_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line.empty() ? std::string("unknown") : line;
}
}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // What the big/ and image/ rows measure depends on them (docs/guide.md, huge pages): private
  // Buffers use THP where `enabled` allows, process-mode slots where `shmem_enabled` does.
  benchmark::AddCustomContext("thp_enabled", sysfs_line("/sys/kernel/mm/transparent_hugepage/enabled"));
  benchmark::AddCustomContext("thp_shmem_enabled",
                              sysfs_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled"));
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (bench::Workload workload : bench::kWorkloads) {
    for (const bench::Config& config : bench::kConfigs) {
      bench::register_plumb(workload, config);
      bench::register_tbb(workload, config);
    }
  }
  bench::register_scheduling();
  bench::register_graph();
  bench::register_limits();
  bench::register_gzip();
  bench::register_redis();

  bench::TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::cout << std::flush;  // the console reporter's lines come first
  const bench::Tables tables(reporter);
  tables.throughput();
  tables.ratios();
  tables.stats_overhead();
  tables.ordering_overhead();
  tables.scheduling();
  tables.graphs();
  tables.limits();
  tables.compression();
  tables.scale_out();
  tables.targets();
  bench::show_stats();
  benchmark::Shutdown();
  return 0;
}
