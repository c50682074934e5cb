#pragma once
// SPDX-License-Identifier: MIT
// plumb/stage_stats.hpp: the parts of plumb::Stats (stats.hpp): what each worker, link and stage
// of a run did, and the run's shared memory.

#include <plumb/run_options.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace plumb {

/// What one worker of a stage did during a run.
///
/// `busy + starved + blocked` is the time from the worker's start to its end (or to the
/// snapshot, while it runs). For a stage fused into the workers of the stage before it, `busy`
/// is this stage's estimated share of the worker's busy time (see `StageStats::busy`).
struct WorkerStats {
  /// Packets this worker took from its input (0 for a source).
  std::uint64_t packets_in = 0;
  /// Packets this worker yielded (0 for the sink).
  std::uint64_t packets_out = 0;
  /// Time in user code and in plumb's own per-packet work (moving, serializing, copying).
  std::chrono::nanoseconds busy{};
  /// Time waiting for an input packet.
  std::chrono::nanoseconds starved{};
  /// Time waiting for a free slot on the output link.
  std::chrono::nanoseconds blocked{};
  /// Of `packets_out`, those yielded while the worker was lent: made on the thread of a worker
  /// of the next stage, which ran this worker's step instead of waiting for its packet (see
  /// `Scheduling::adaptive`). Their time counts as this worker's `busy` (and as the helper's
  /// `starved`). For a run of fused stages: on the last one.
  std::uint64_t helped_out = 0;
  /// False once the worker has ended.
  bool running = false;
};

/// The link from a stage to the next (absent where the next stage is fused: no link).
struct LinkStats {
  /// Its slots: the producing stage's in_flight.
  std::size_t capacity = 0;
  /// True if it crosses a process boundary (a shared-memory ring).
  bool shared = false;
  /// Packets queued (produced, not yet taken) at the snapshot; 0 after a run that finished.
  std::uint64_t queued = 0;
  /// Packets queued, averaged over the run (sampled about every 10 ms); `queued` until the
  /// first sample.
  double mean_queued = 0;
};

/// What one stage did during a run: the sums over its workers, and each worker's part.
struct StageStats {
  /// Its name (`.name()`, else "stage N").
  std::string name;
  /// Where its workers ran: thread, process, or sequential (in the calling thread, or fused).
  Mode mode = Mode::thread;
  /// True if it ran inside the workers of the stage before it (no link, no workers of its own).
  bool fused = false;
  /// Its workers (for a fused stage: those of the stage it is fused into).
  std::size_t workers = 1;
  /// Packets taken from its input, summed over its workers (0 for the source).
  std::uint64_t packets_in = 0;
  /// Packets yielded, summed over its workers (0 for the sink).
  std::uint64_t packets_out = 0;
  /// Of `packets_out`, those made on the next stage's threads (see `WorkerStats::helped_out`).
  std::uint64_t helped_out = 0;
  /// A plumb::Service's stage: the items that failed in it (their futures got its exception).
  /// A failed item still passes on to the next stages, which let it by: it counts in their
  /// `packets_in` and `packets_out`, and in this stage's `packets_out`. 0 in a Pipeline.
  std::uint64_t failed_items = 0;
  /// Busy time (see `WorkerStats::busy`), summed over its workers. A run of fused stages shares
  /// its workers' time: their `starved` goes to the first stage of the run, their `blocked` to
  /// the last, and their `busy` is split among them by sampling (each stage's first 16 packets
  /// and 16 in every 16384 are timed, or every packet of a stage that takes 2 us or more), so
  /// for fused stages it is an estimate, rough for stages that take well under a microsecond
  /// per packet.
  std::chrono::nanoseconds busy{};
  /// Time waiting for an input packet, summed over its workers (see `busy` for fused stages).
  std::chrono::nanoseconds starved{};
  /// Time waiting for a free output slot, summed over its workers (see `busy` for fused
  /// stages).
  std::chrono::nanoseconds blocked{};
  /// Share of the run's time its workers were busy: `busy / (elapsed * workers)`, in [0, 1].
  double busy_fraction = 0;
  /// Share of the run's time its workers were starved: `starved / (elapsed * workers)`, in [0, 1].
  double starved_fraction = 0;
  /// Share of the run's time its workers were blocked: `blocked / (elapsed * workers)`, in [0, 1].
  double blocked_fraction = 0;
  /// Packets out (for the sink: in) per second of the run.
  double rate = 0;
  /// Its output link, if it has one (a Pipeline's stages).
  std::optional<LinkStats> output;
  /// A plumb::Graph's node: the nodes it reads, by index, one per input (empty for a source,
  /// and for every stage of a Pipeline).
  std::vector<std::size_t> inputs;
  /// A plumb::Graph's node: its one input link, which every node it reads writes (its slots:
  /// the sum of their in_flight), if it has inputs.
  std::optional<LinkStats> input;
  /// Per worker, by worker index.
  std::vector<WorkerStats> per_worker;
};

/// The shared-memory mapping of a run with worker processes: its links across processes, its
/// counters and its result. Each run's worker processes are new, so each faults in every page
/// of it that it touches, once per run: on 4 KiB pages that can cost more than the packets'
/// work (guide, section 4, "Huge pages for shared memory").
struct SharedMemoryStats {
  /// The size of the mapping the run used, in bytes (a Pipeline reuses a larger one from an
  /// earlier run); 0 if no worker process ran.
  std::size_t bytes = 0;
  /// True if it was advised onto transparent huge pages (plumb does from 8 MiB on) and the
  /// kernel's settings allowed them for shared memory when it was made
  /// (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`, and since Linux 6.11 the 2 MiB size's
  /// own `hugepages-2048kB/shmem_enabled`): its pages are then 2 MiB ones, unless the kernel
  /// found no free 2 MiB of memory.
  bool huge_pages = false;
};

}  // namespace plumb
