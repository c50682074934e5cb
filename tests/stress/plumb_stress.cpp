// SPDX-License-Identifier: MIT
// tests/stress/plumb_stress.cpp: the stress harness. Draws random pipelines from seeds (2-6
// stages, 1-8 workers, in_flight 1-64, mixed modes, payloads of 4 bytes to 1 MiB, delays,
// 1:0, 1:1 and 1:N stages), injects faults, and checks every run: exactly-once delivery, the
// injected error as the root error within a bound, and no leaked process, fd, mapping, thread,
// /dev/shm entry or packet. Each trial runs in a forked process of its own, so that a hang or
// a crash is counted and reported with its seed instead of ending the sweep.
//
//   plumb_stress [--runs N] [--minutes M] [--seed S] [--faults on|off]
//                [--modes sequential,thread,process] [--trial-timeout SECONDS] [--verbose]
//
// Ends with `runs=N faults=F failures=X hangs=H leaks=L`; exits 1 if X, H or L is not 0.

#include "../support/lending.hpp"
#include "stages.hpp"
#include "trial.hpp"

#include <plumb/plumb.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

namespace plumb::stress {
namespace {

// Sanitizers make everything several times slower: timing bounds stretch by this much.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kSlowFactor = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int kSlowFactor = 4;
#else
constexpr int kSlowFactor = 1;
#endif
#else
constexpr int kSlowFactor = 1;
#endif

// --- Running one trial's pipeline ----------------------------------------------------------------

template <class Spec>
Spec configured(Spec stage, const StageSpec& spec, const Trial& trial) {
  if (spec.mode) stage.mode(*spec.mode);
  stage.workers(spec.workers);
  if (spec.in_flight) stage.in_flight(*spec.in_flight);
  if (!spec.name.empty()) stage.name(spec.name);
  stage.max_message_size(trial.max_message_size);
  return stage;
}

// What run() did.
struct Outcome {
  std::exception_ptr error;
  std::optional<Summary> summary;  // a value sink's result
  std::optional<Failure> failure;  // last_failure()
  std::int64_t end_ns = 0;         // when run() returned or threw
};

template <class P>
Outcome run_once(P& pipeline, const RunOptions& options) {
  Outcome outcome;
  try {
    if constexpr (std::is_void_v<typename P::result_type>) {
      pipeline.run(options);
    } else {
      outcome.summary = pipeline.run(options);
    }
  } catch (...) {
    outcome.error = std::current_exception();
  }
  outcome.end_ns = monotonic_ns();
  outcome.failure = pipeline.last_failure();
  return outcome;
}

// Builds the trial's Pipeline and passes it to `use`.
template <class Use, std::size_t... Processor>
void with_pipeline(const Env& env, Use& use, std::index_sequence<Processor...>) {
  const Trial& trial = *env.trial;
  const StageSpec& sink_spec = trial.stages[trial.sink()];
  auto build = [&](auto sink) {
    Pipeline pipeline{configured(plumb::stage(source, env), trial.stages[0], trial),
                      configured(plumb::stage(processor, env, std::size_t{Processor + 1}),
                                 trial.stages[Processor + 1], trial)...,
                      configured(std::move(sink), sink_spec, trial)};
    use(pipeline);
  };
  if (trial.value_sink) {
    build(plumb::stage(value_sink, env));
  } else {
    build(plumb::stage(void_sink, env));
  }
}

template <class Use>
void with_trial_pipeline(const Env& env, Use&& use) {
  switch (env.trial->stages.size()) {
    case 2: return with_pipeline(env, use, std::make_index_sequence<0>{});
    case 3: return with_pipeline(env, use, std::make_index_sequence<1>{});
    case 4: return with_pipeline(env, use, std::make_index_sequence<2>{});
    case 5: return with_pipeline(env, use, std::make_index_sequence<3>{});
    case 6: return with_pipeline(env, use, std::make_index_sequence<4>{});
    default: break;
  }
  std::fprintf(stderr, "plumb_stress: a trial with %zu stages\n", env.trial->stages.size());
  std::abort();
}

// --- Judging a run ---------------------------------------------------------------------------

std::string describe_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& exception) {
    return fmt::format("{}: {}", typeid(exception).name(), exception.what());
  } catch (const InjectedCode& code) {
    return fmt::format("InjectedCode{{{}}}", code.seed);
  } catch (...) {
    return "an exception of unknown type";
  }
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// Why `error` is not the injected exception, or "" if it is.
std::string check_injected_exception(const Trial& trial, const std::exception_ptr& error) {
  const bool remote = trial.placement[trial.fault.stage].group_mode == Mode::process;
  const std::string message = injected_message(trial);
  try {
    std::rethrow_exception(error);
  } catch (const InjectedCode& code) {
    if (trial.fault.flavor == Flavor::not_std && !remote && code.seed == trial.seed) return "";
  } catch (const RemoteError& remote_error) {
    const bool derived = trial.fault.flavor == Flavor::derived && contains(remote_error.type_name(), "InjectedError") &&
                         contains(remote_error.what(), message);
    const bool not_std = trial.fault.flavor == Flavor::not_std && contains(remote_error.type_name(), "InjectedCode");
    if (remote && (derived || not_std)) return "";
  } catch (const std::exception& exception) {
    const std::type_info& type = typeid(exception);
    const bool same_text = exception.what() == message;
    if (trial.fault.flavor == Flavor::runtime_error && type == typeid(std::runtime_error) && same_text) return "";
    if (trial.fault.flavor == Flavor::out_of_range && type == typeid(std::out_of_range) && same_text) return "";
    if (trial.fault.flavor == Flavor::derived && !remote && type == typeid(InjectedError) && same_text) return "";
  } catch (...) {
  }
  return fmt::format("expected the injected {} ({}), got {}", name_of(trial.fault.flavor),
                     remote ? "from a worker process" : "the original object", describe_error(error));
}

// Why `error` is not a `Wanted` whose message has `part` and whose stage is `stage`, or "".
template <class Wanted>
std::string check_plumb_error(const std::exception_ptr& error, std::string_view part,
                              std::optional<std::size_t> stage, const char* wanted) {
  try {
    std::rethrow_exception(error);
  } catch (const Wanted& exception) {
    bool ok = contains(exception.what(), part);
    if constexpr (std::is_base_of_v<StageError, Wanted>) {
      if (stage) ok = ok && exception.stage_index() == *stage;
    }
    if (ok) return "";
  } catch (...) {
  }
  return fmt::format("expected {} with \"{}\"{}, got {}", wanted, part,
                     stage ? fmt::format(" from stage {}", *stage) : std::string(), describe_error(error));
}

struct Verdict {
  std::vector<std::string> failures;
  std::vector<std::string> leaks;
  bool fired = false;
};

// The inactivity timeout a trial runs with: stretched under sanitizers, like every bound.
std::chrono::steady_clock::duration inactivity_of(const Trial& trial) { return trial.inactivity * kSlowFactor; }

// Why `outcome` is not what the fired fault must cause, or "". Sets `success_allowed` where a
// fault may also end in a normal return.
std::string check_fault_outcome(const Trial& trial, const Ledger& ledger, const Outcome& outcome,
                                bool& success_allowed) {
  const Fault& fault = trial.fault;
  const std::exception_ptr& error = outcome.error;
  const std::size_t group_first = trial.placement[fault.stage].group_first;
  const bool dies = fault.kind == FaultKind::kill || fault.kind == FaultKind::exit_zero ||
                    fault.kind == FaultKind::exit_nonzero;
  // A secondary stage fused after the failing one, in the same worker, sees the root error come
  // up its own stream and replaces it, as a stage that catches (...) and throws does in a plain
  // chain of generators (tests/pipeline_test.cpp: "a stage that catches an upstream error and
  // throws its own is the one reported"). Anywhere else the root error must win.
  const bool translated_in_chain =
      fault.secondary && *fault.secondary > fault.stage &&
      trial.placement[*fault.secondary].group_first == group_first &&
      (fault.kind == FaultKind::exception || fault.kind == FaultKind::early_return);
  std::string wrong;
  switch (fault.kind) {
    case FaultKind::exception:
      wrong = !error               ? "run() returned after the injected exception"
              : translated_in_chain ? check_plumb_error<std::runtime_error>(
                                          error, secondary_message(trial, *fault.secondary), std::nullopt,
                                          "the fused secondary stage's error")
                                    : check_injected_exception(trial, error);
      break;
    case FaultKind::kill:
      wrong = error ? check_plumb_error<WorkerDiedError>(error, "was killed by signal SIGKILL", group_first,
                                                         "WorkerDiedError")
                    : "run() returned after a worker was killed";
      break;
    case FaultKind::exit_zero:
      wrong = error ? check_plumb_error<WorkerDiedError>(error, "exited with status 0 before finishing its stream",
                                                         group_first, "WorkerDiedError")
                    : "run() returned after a worker exited mid-stream";
      break;
    case FaultKind::exit_nonzero:
      wrong = error ? check_plumb_error<WorkerDiedError>(error, fmt::format("exited with status {}", fault.exit_code),
                                                         group_first, "WorkerDiedError")
                    : "run() returned after a worker exited mid-stream";
      break;
    case FaultKind::early_return:
      // Returning early is an error only if the stream still had a packet (plumb pulls one more
      // to see): either outcome is right, but only these two.
      success_allowed = !error;
      if (error) {
        wrong = translated_in_chain
                    ? check_plumb_error<std::runtime_error>(error, secondary_message(trial, *fault.secondary),
                                                            std::nullopt, "the fused secondary stage's error")
                    : check_plumb_error<StageError>(error, "returned while its input still had packets",
                                                    fault.stage, "StageError");
      }
      break;
    case FaultKind::stop:
      wrong = error ? check_plumb_error<CancelledError>(error, "", std::nullopt, "CancelledError")
                    : "run() returned after a stop request";
      break;
    case FaultKind::oversize:
      if (trial.placement[fault.stage].link_crosses_processes) {
        wrong = error ? check_plumb_error<StageError>(error, "max_message_size", fault.stage, "StageError")
                      : "run() returned after an oversized message on a shared-memory link";
      } else {
        success_allowed = true;  // links inside a process do not limit sizes
        if (error) wrong = "an oversized message on an in-process link (no size limit) made run() throw";
      }
      break;
    case FaultKind::stuck:
      wrong = error ? check_plumb_error<InactivityError>(error, "", std::nullopt, "InactivityError")
                    : "run() returned after a worker got stuck";
      break;
    case FaultKind::stop_external:
      success_allowed = !error;  // the run may have finished first
      if (error) wrong = check_plumb_error<CancelledError>(error, "", std::nullopt, "CancelledError");
      break;
    case FaultKind::kill_external:
      success_allowed = !error;  // the victim may have finished its stream already
      if (error) {
        wrong = check_plumb_error<WorkerDiedError>(error, "was killed by signal SIGKILL", std::nullopt,
                                                   "WorkerDiedError");
        const Placement* died = outcome.failure ? &trial.placement[outcome.failure->stage_index] : nullptr;
        if (wrong.empty() && (died == nullptr || died->group_mode != Mode::process || died->fused)) {
          wrong = "the SIGKILLed worker's failure does not name a stage that runs in processes";
        }
      }
      break;
    case FaultKind::caller_killed:  // the harness judges it: this process does not survive it
    case FaultKind::none: break;
  }
  if (!wrong.empty() || !error) return wrong;

  // The failure report names the worker that fired: its stage (for a dead process, the first
  // stage of its group), its index, and its process.
  const bool blamed = !fault.external() && fault.kind != FaultKind::stop && fault.kind != FaultKind::stuck &&
                      !translated_in_chain;
  if (blamed) {
    if (!outcome.failure) return "last_failure() is empty after a stage's error";
    const Failure& failure = *outcome.failure;
    const std::size_t stage = dies ? group_first : fault.stage;
    const auto worker = ledger.fired_worker.load(std::memory_order_relaxed);
    const long pid = trial.placement[fault.stage].group_mode == Mode::process
                         ? static_cast<long>(ledger.fired_pid.load(std::memory_order_relaxed))
                         : 0;
    if (failure.stage_index != stage || failure.worker_index != worker || failure.pid != pid) {
      return fmt::format("last_failure() names stage {} worker {} pid {}, but stage {} worker {} pid {} fired",
                         failure.stage_index, failure.worker_index, failure.pid, stage, worker, pid);
    }
    if (dies) {
      try {
        std::rethrow_exception(error);
      } catch (const WorkerDiedError& died) {
        if (died.pid() != pid || died.worker_index() != worker) {
          return fmt::format("WorkerDiedError names worker {} pid {}, not worker {} pid {}", died.worker_index(),
                             died.pid(), worker, pid);
        }
      } catch (...) {
      }
    }
  }
  // Promptly: the grace period, the inactivity timeout and a margin.
  const std::int64_t taken = outcome.end_ns - ledger.fire_ns.load(std::memory_order_acquire);
  const std::int64_t bound = std::chrono::nanoseconds(trial.grace + inactivity_of(trial)).count() +
                             std::int64_t{3'000'000'000} * kSlowFactor;
  if (taken > bound) {
    return fmt::format("run() took {} ms after the fault to throw (bound {} ms)", taken / 1'000'000,
                       bound / 1'000'000);
  }
  return "";
}

// Checks the outcome of a run against the trial's fault, and the ledger against the expected
// packets: exactly once after a success (at every stage), at most once after an error.
// `fired`: the fault fired during this run; `first_run`: a stage fault was due in it.
void judge(const Trial& trial, Ledger& ledger, const Outcome& outcome, bool fired, bool first_run,
           std::vector<std::string>& failures) {
  const Fault& fault = trial.fault;
  bool success_allowed = !fired;
  if (fired) {
    if (std::string wrong = check_fault_outcome(trial, ledger, outcome, success_allowed); !wrong.empty()) {
      failures.push_back(std::move(wrong));
    }
    if (outcome.error) {
      const std::int64_t taken = outcome.end_ns - ledger.fire_ns.load(std::memory_order_acquire);
      if (taken > ledger.worst_latency_ns.load(std::memory_order_relaxed)) {
        ledger.worst_latency_ns.store(taken, std::memory_order_relaxed);  // relaxed: one writer
      }
    }
  } else if (first_run && fault.kind != FaultKind::none && !fault.external()) {
    failures.push_back(
        fmt::format("the {} fault never fired: the harness's packet counts are wrong", name_of(fault.kind)));
  }
  if (!fired && outcome.error) {
    failures.push_back(fmt::format("run() threw without a fault: {}", describe_error(outcome.error)));
  }

  // Delivery: never damaged, never twice; exactly once when the run succeeded.
  if (const std::uint64_t corrupt = ledger.corrupt.load(std::memory_order_relaxed); corrupt != 0) {
    failures.push_back(fmt::format("{} damaged packets (first: id {} at stage {})", corrupt,
                                   ledger.corrupt_id.load(std::memory_order_relaxed),
                                   ledger.corrupt_stage.load(std::memory_order_relaxed)));
  }
  if (const std::uint64_t unexpected = ledger.unexpected.load(std::memory_order_relaxed); unexpected != 0) {
    failures.push_back(fmt::format("the sink saw {} packets with ids it should not see", unexpected));
  }
  std::size_t missing = 0;
  std::size_t repeated = 0;
  for (std::size_t i = 0; i < trial.expected.size(); ++i) {
    const std::uint32_t seen = ledger.seen[i].load(std::memory_order_relaxed);
    missing += seen == 0 ? 1 : 0;
    repeated += seen > 1 ? 1 : 0;
  }
  if (repeated != 0) failures.push_back(fmt::format("{} packets delivered more than once", repeated));
  if (outcome.error || !success_allowed) return;
  if (missing != 0) {
    failures.push_back(
        fmt::format("{} of {} packets never reached the sink, yet run() returned", missing, trial.expected.size()));
  }
  // Every stage, not only the sink: a packet lost or doubled before a stage that drops it would
  // leave no trace at the sink.
  for (std::size_t stage = 1; stage < trial.stages.size(); ++stage) {
    const std::uint64_t received = ledger.received[stage].load(std::memory_order_relaxed);
    const std::uint64_t sum = ledger.received_sum[stage].load(std::memory_order_relaxed);
    if (received != trial.stage_inputs[stage] || sum != trial.stage_input_sums[stage]) {
      failures.push_back(fmt::format("stage {} received {} packets (id sum {}), expected {} (id sum {})", stage,
                                     received, sum, trial.stage_inputs[stage], trial.stage_input_sums[stage]));
    }
  }
  if (outcome.summary &&
      (outcome.summary->count != trial.expected.size() || outcome.summary->sum != trial.expected_sum)) {
    failures.push_back(fmt::format("the sink returned count {} sum {}, expected {} and {}", outcome.summary->count,
                                   outcome.summary->sum, trial.expected.size(), trial.expected_sum));
  }
}

// This process's children as the kernel lists them (needs CONFIG_PROC_CHILDREN; none if not),
// at most `capacity` of them. Allocates nothing: the watcher thread calls it while plumb may be
// forking, and clang 14's sanitizer allocators are not fork-safe.
std::size_t own_children(pid_t* pids, std::size_t capacity) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/children", static_cast<int>(::getpid()));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[4096];
  const ssize_t length = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  std::size_t count = 0;
  long value = 0;
  bool digits = false;
  for (ssize_t i = 0; i < std::max<ssize_t>(length, 0); ++i) {
    if (text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + (text[i] - '0');
      digits = true;
    } else if (digits) {
      if (count < capacity) pids[count++] = static_cast<pid_t>(value);
      value = 0;
      digits = false;
    }
  }
  if (digits && count < capacity) pids[count++] = static_cast<pid_t>(value);
  return count;
}

std::vector<pid_t> own_children() {
  std::vector<pid_t> pids(1024);
  pids.resize(own_children(pids.data(), pids.size()));
  return pids;
}

// --- Leak checks -------------------------------------------------------------------------------

std::set<std::string> list_entries(const char* directory) {
  std::set<std::string> names;
  DIR* dir = ::opendir(directory);
  if (dir == nullptr) return names;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') names.insert(entry->d_name);
  }
  ::closedir(dir);
  return names;
}

std::size_t count_entries(const char* directory) { return list_entries(directory).size(); }

// Shared mappings of this process (MAP_SHARED: a plumb arena left mapped would show here).
std::size_t count_shared_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t count = 0;
  for (std::string line; std::getline(maps, line);) {
    const std::size_t space = line.find(' ');
    if (space != std::string::npos && space + 4 < line.size() && line[space + 4] == 's') ++count;
  }
  return count;
}

struct Resources {
  std::size_t fds = 0;
  std::size_t threads = 0;
  std::size_t shared_mappings = 0;
};

Resources snapshot() {
  // opendir holds one fd of its own while counting: the same in both snapshots.
  return Resources{count_entries("/proc/self/fd"), count_entries("/proc/self/task"), count_shared_mappings()};
}

// A joined thread can stay listed in /proc/self/task for a moment: pthread_join returns when the
// kernel clears the thread's tid, a little before it removes the task. So a different count is
// looked at again for up to 2 s (x4 under sanitizers) before it counts as a leak.
std::size_t settled_threads(std::size_t expected) {
  std::size_t threads = count_entries("/proc/self/task");
  for (int retry = 0; retry < 2000 * kSlowFactor && threads != expected; ++retry) {
    pause_us(1000);
    threads = count_entries("/proc/self/task");
  }
  return threads;
}

// After each run(): no thread, no worker process (live or zombie), no packet left behind.
void check_run_leaks(const Resources& before, const std::string& label, std::vector<std::string>& leaks) {
  if (const std::size_t threads = settled_threads(before.threads); threads != before.threads) {
    leaks.push_back(fmt::format("{}threads: {} before the run, {} after", label, before.threads, threads));
  }
  int status = 0;
  const pid_t child = ::waitpid(-1, &status, WNOHANG);
  if (child == 0) {
    leaks.push_back(label + "a worker process is still running after run() returned");
  } else if (child > 0) {
    leaks.push_back(fmt::format("{}a worker process (pid {}) was left a zombie after run() returned", label, child));
  }
  if (const long alive = Packet::alive.load(std::memory_order_relaxed); alive != 0) {
    leaks.push_back(fmt::format("{}{} packets still alive in the calling process after run()", label, alive));
  }
}

// After the Pipeline is destroyed (it keeps its shared mapping between runs): no fd, no mapping.
void check_final_leaks(const Resources& before, std::vector<std::string>& leaks) {
  const Resources after = snapshot();
  if (after.fds != before.fds) {
    leaks.push_back(fmt::format("open file descriptors: {} before the run, {} after", before.fds, after.fds));
  }
  if (after.shared_mappings != before.shared_mappings) {
    leaks.push_back(fmt::format("shared mappings: {} before the run, {} after the Pipeline was destroyed",
                                before.shared_mappings, after.shared_mappings));
  }
}

// --- The trial process -------------------------------------------------------------------------

template <class... Args>
void report(Ledger& ledger, std::size_t& used, fmt::format_string<Args...> format, Args&&... args) {
  const std::string text = fmt::format(format, std::forward<Args>(args)...);
  const std::size_t room = sizeof(ledger.report) - 1 - used;
  const std::size_t length = std::min(room, text.size());
  std::memcpy(ledger.report + used, text.data(), length);
  used += length;
  ledger.report[used] = '\0';
}

// The caller's watcher thread, for the faults that come from outside the stages: requests the
// stop a stage asked for; or waits the fault's delay, then requests stop or SIGKILLs one of the
// worker processes. Gives up when `done` (run() returned).
void watch(const Trial& trial, Ledger& ledger, std::stop_source& stop, const std::atomic<bool>& done,
           std::atomic<bool>& started) {
  // release: pairs with the acquire in trial_main, which starts run() (and plumb's forks) only
  // after this thread is up, so that no fork catches it inside its own start-up.
  started.store(true, std::memory_order_release);
  // relaxed: `done` only ends the polling; nothing is published through it.
  const auto finished = [&] { return done.load(std::memory_order_relaxed); };
  const Fault& fault = trial.fault;
  if (fault.kind == FaultKind::stop) {
    // acquire: pairs with the stage's [sync S1] release.
    while (ledger.stop_wanted.load(std::memory_order_acquire) == 0) {
      if (finished()) return;
      pause_us(200);
    }
    stop.request_stop();
    ledger.stop_done.store(1, std::memory_order_release);  // [sync S2]
    return;
  }
  if (fault.kind == FaultKind::caller_killed) return;  // the harness's to fire
  const std::int64_t due = monotonic_ns() + std::int64_t{fault.delay_us} * 1000;
  while (monotonic_ns() < due) {
    if (finished()) return;
    pause_us(100);
  }
  if (fault.kind == FaultKind::stop_external) {
    ledger.fired.store(1, std::memory_order_relaxed);  // relaxed: read after run() returned
    ledger.fire_ns.store(monotonic_ns(), std::memory_order_relaxed);
    stop.request_stop();
    return;
  }
  // kill_external: the workers are this process's children (plumb forks from run()'s thread).
  // Through a pidfd, checked to be a live child, so that a pid reaped and reused in between is
  // never signalled.
  pid_t workers[256];
  while (!finished()) {
    const std::size_t count = own_children(workers, std::size(workers));
    if (count != 0) {
      const pid_t victim = workers[fault.victim % count];
      const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, victim, 0));
      if (pidfd >= 0) {
        siginfo_t info{};
        const bool alive = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
                                    WEXITED | WNOHANG | WNOWAIT) == 0 &&
                           info.si_pid == 0;
        if (alive && ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0) {
          ledger.fired.store(1, std::memory_order_relaxed);  // relaxed: read after run() returned
          ledger.fire_ns.store(monotonic_ns(), std::memory_order_relaxed);
          ::close(pidfd);
          return;
        }
        ::close(pidfd);
      }
    }
    pause_us(100);
  }
}

// Between two runs of one Pipeline: forget what the sink saw (the fault stays fired).
void reset_counts(Ledger& ledger) {
  ledger.corrupt.store(0, std::memory_order_relaxed);  // relaxed: no worker is running
  ledger.unexpected.store(0, std::memory_order_relaxed);
  for (auto& count : ledger.received) count.store(0, std::memory_order_relaxed);
  for (auto& sum : ledger.received_sum) sum.store(0, std::memory_order_relaxed);
  for (auto& count : ledger.yielded) count.store(0, std::memory_order_relaxed);
  for (auto& count : ledger.seen) count.store(0, std::memory_order_relaxed);
}

// Runs `trial` in this (forked) process and leaves the verdict in the ledger.
void trial_main(const Trial& trial, Ledger& ledger) {
  ::setpgid(0, 0);  // the harness kills the whole group after a hang
  // ThreadSanitizer starts a background thread at the first thread creation: start it now, so
  // the baseline includes it.
  pid_t warm_up = 0;
  std::thread([&warm_up] { warm_up = ::gettid(); }).join();
  const std::string listed = fmt::format("/proc/self/task/{}", warm_up);
  for (int retry = 0; retry < 2000 * kSlowFactor && ::access(listed.c_str(), F_OK) == 0; ++retry) pause_us(1000);
  const Resources before = snapshot();
  Verdict verdict;
  const Env env{&trial, &ledger};
  with_trial_pipeline(env, [&](auto& pipeline) {
    for (int run = 0; run < trial.runs; ++run) {
      const std::string label = trial.runs == 1 ? "" : fmt::format("run {} of {}: ", run + 1, trial.runs);
      if (run > 0) reset_counts(ledger);
      ledger.run.store(static_cast<std::uint32_t>(run), std::memory_order_relaxed);  // relaxed: before the workers
      const bool fired_before = ledger.fired.load(std::memory_order_acquire) != 0;
      std::stop_source stop;
      RunOptions options;
      options.mode = trial.run_mode;
      options.grace_period = trial.grace;
      options.inactivity_timeout = inactivity_of(trial);
      options.stop_token = stop.get_token();
      std::atomic<bool> done{false};
      std::atomic<bool> started{false};
      std::thread watcher;
      if (run == 0 && (trial.fault.kind == FaultKind::stop || trial.fault.external())) {
        watcher = std::thread([&] { watch(trial, ledger, stop, done, started); });
        while (!started.load(std::memory_order_acquire)) pause_us(50);  // pairs with watch()'s release
      }
      const Outcome outcome = run_once(pipeline, options);
      done.store(true, std::memory_order_relaxed);  // relaxed: only ends the watcher's polling
      if (watcher.joinable()) watcher.join();
      const bool fired = !fired_before && ledger.fired.load(std::memory_order_acquire) != 0;
      verdict.fired = verdict.fired || fired;
      std::vector<std::string> failures;
      judge(trial, ledger, outcome, fired, run == 0, failures);
      if (!failures.empty() && outcome.error) failures.push_back(fmt::format("run() threw {}", describe_error(outcome.error)));
      for (const std::string& failure : failures) verdict.failures.push_back(label + failure);
      check_run_leaks(before, label, verdict.leaks);
    }
  });
  check_final_leaks(before, verdict.leaks);
  std::size_t used = 0;
  for (const std::string& failure : verdict.failures) report(ledger, used, "  failure: {}\n", failure);
  for (const std::string& leak : verdict.leaks) report(ledger, used, "  leak: {}\n", leak);
  ledger.fault_fired.store(verdict.fired ? 1 : 0, std::memory_order_relaxed);
  ledger.verdict.store(!verdict.failures.empty() ? Ledger::Verdict::failed
                       : !verdict.leaks.empty()  ? Ledger::Verdict::leaked
                                                 : Ledger::Verdict::passed,
                       std::memory_order_release);  // [sync V] read by the harness after waitpid
}

// --- The harness -------------------------------------------------------------------------------

struct Options {
  std::optional<std::uint64_t> runs;
  std::optional<double> minutes;
  std::optional<std::uint64_t> seed;
  bool faults = true;
  std::string modes = "sequential,thread,process";
  double trial_timeout_s = 60;
  bool verbose = false;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "plumb_stress: %s\n"
               "usage: plumb_stress [--runs N] [--minutes M] [--seed S] [--faults on|off]\n"
               "                    [--modes sequential,thread,process] [--trial-timeout SECONDS] [--verbose]\n"
               "  Without --runs or --minutes: 100 runs. Run i uses seed S + i; rerun a failure with\n"
               "  --seed <its seed> --runs 1 and the same --faults and --modes.\n",
               problem.c_str());
  std::exit(2);
}

template <class T>
T parse_number(std::string_view flag, std::string_view text) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    usage(fmt::format("{} needs a number, not '{}'", flag, text));
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage(fmt::format("{} needs a value", flag));
      return argv[++i];
    };
    if (flag == "--runs") {
      options.runs = parse_number<std::uint64_t>(flag, value());
    } else if (flag == "--minutes") {
      options.minutes = parse_number<double>(flag, value());
    } else if (flag == "--seed") {
      options.seed = parse_number<std::uint64_t>(flag, value());
    } else if (flag == "--faults") {
      const std::string_view text = value();
      if (text != "on" && text != "off") usage("--faults takes on or off");
      options.faults = text == "on";
    } else if (flag == "--modes") {
      options.modes = std::string(value());
    } else if (flag == "--trial-timeout") {
      options.trial_timeout_s = parse_number<double>(flag, value());
    } else if (flag == "--verbose") {
      options.verbose = true;
    } else {
      usage(fmt::format("unknown option '{}'", flag));
    }
  }
  if (!options.runs && !options.minutes) options.runs = 100;
  return options;
}

DrawOptions draw_options(const Options& options) {
  DrawOptions draw;
  draw.faults = options.faults;
  draw.allow_sequential = draw.allow_thread = draw.allow_process = false;
  std::string_view rest = options.modes;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view mode = rest.substr(0, comma);
    if (mode == "sequential") {
      draw.allow_sequential = true;
    } else if (mode == "thread") {
      draw.allow_thread = true;
    } else if (mode == "process") {
      draw.allow_process = true;
    } else {
      usage(fmt::format("--modes: unknown mode '{}'; use sequential, thread, process", mode));
    }
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  if (!draw.allow_sequential && !draw.allow_thread && !draw.allow_process) usage("--modes is empty");
  return draw;
}

struct Totals {
  std::uint64_t runs = 0;
  std::uint64_t faults = 0;
  std::uint64_t failures = 0;
  std::uint64_t hangs = 0;
  std::uint64_t leaks = 0;
  std::map<std::string, std::uint64_t> by_kind;  // faults that fired, by kind
  std::map<std::string, std::uint64_t> by_mode;  // runs by run mode
  std::int64_t worst_latency_ns = 0;             // fault fired -> run() threw, the slowest
};

void print_problem(const char* what, const Trial& trial, const Options& options, const std::string& details) {
  std::printf("%s seed=%llu\n%s%s  rerun: plumb_stress --seed %llu --runs 1 --faults %s --modes %s\n", what,
              static_cast<unsigned long long>(trial.seed), describe(trial).c_str(), details.c_str(),
              static_cast<unsigned long long>(trial.seed), options.faults ? "on" : "off", options.modes.c_str());
  std::fflush(stdout);
}

std::string progress_of(const Trial& trial, const Ledger& ledger) {
  std::string text = "  progress when stopped:";
  for (std::size_t stage = 0; stage < trial.stages.size(); ++stage) {
    text += fmt::format(" stage {} in {} out {};", stage, ledger.received[stage].load(std::memory_order_relaxed),
                        ledger.yielded[stage].load(std::memory_order_relaxed));
  }
  text += fmt::format(" fault fired {}\n", ledger.fired.load(std::memory_order_relaxed));
  return text;
}

// Kills and reaps whatever is left of a trial: its process group, and any process that was
// reparented to the harness (it is a child subreaper). Returns how many there were.
std::size_t reap_leftovers(pid_t group) {
  std::size_t found = 0;
  for (int round = 0; round < 1000; ++round) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      ++found;
      continue;
    }
    if (pid < 0) return found;  // ECHILD: none left
    // A live one: kill the trial's group and every child we can name, then reap it (counted
    // when reaped).
    ::kill(-group, SIGKILL);
    for (const pid_t child : own_children()) ::kill(child, SIGKILL);
    ::usleep(10'000);
  }
  std::printf("plumb_stress: processes left after a trial could not be reaped\n");
  return found;
}

// The processes of a hung trial: the trial process and its worker processes.
std::vector<pid_t> trial_processes(pid_t trial) {
  std::vector<pid_t> pids{trial};
  const std::string tasks = fmt::format("/proc/{}/task", trial);
  for (const std::string& task : list_entries(tasks.c_str())) {
    std::ifstream file(fmt::format("{}/{}/children", tasks, task));
    for (pid_t pid = 0; file >> pid;) pids.push_back(pid);
  }
  return pids;
}

// Prints every thread's stack of every process of a hung trial, if gdb is installed: what a
// hang report needs most, since the trial is killed next.
void print_stacks(pid_t trial) {
  if (::access("/usr/bin/gdb", X_OK) != 0) {
    std::printf("  (install gdb to get the stacks of a hung trial)\n");
    return;
  }
  for (const pid_t pid : trial_processes(trial)) {
    std::printf("  --- stacks of pid %d%s\n", static_cast<int>(pid), pid == trial ? " (the caller)" : "");
    std::fflush(stdout);
    const std::string command = fmt::format(
        "timeout 60 gdb -p {} -batch -nx -ex 'set pagination off' -ex 'thread apply all bt 30' 2>/dev/null "
        "| grep -E '^(Thread|#)' | cut -c1-220 | head -300",
        pid);
    if (std::system(command.c_str()) != 0) std::printf("  (gdb failed)\n");
    std::fflush(stdout);
  }
}

void run_one(const Trial& trial, Ledger& ledger, const Options& options, Totals& totals) {
  new (&ledger) Ledger{};
  const std::set<std::string> shm_before = list_entries("/dev/shm");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("plumb_stress: fork");
    std::exit(2);
  }
  if (pid == 0) {
    trial_main(trial, ledger);
    std::exit(0);  // a normal exit: LeakSanitizer checks the trial process's heap here
  }
  ::setpgid(pid, pid);  // also done by the child: whichever runs first
  ++totals.runs;
  ++totals.by_mode[name_of(trial.run_mode)];
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(options.trial_timeout_s * kSlowFactor);
  int status = 0;
  bool hung = false;
  const Fault& fault = trial.fault;
  const auto kill_at = std::chrono::steady_clock::now() + std::chrono::microseconds(fault.delay_us);
  bool signalled = false;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (fault.kind == FaultKind::caller_killed && !signalled && std::chrono::steady_clock::now() >= kill_at) {
      ::kill(pid, fault.signal);  // the caller only: its workers must follow it on their own
      signalled = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      hung = true;
      print_problem("HANG", trial, options,
                    fmt::format("  the trial did not end within {} s\n{}", options.trial_timeout_s * kSlowFactor,
                                progress_of(trial, ledger)));
      print_stacks(pid);
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    ::usleep(1000);
  }
  std::string leak;
  // The caller died by our signal: its worker processes must die with it (they come back to the
  // harness, a child subreaper, to be reaped), promptly and without being killed by us.
  // (A trial that wrote its verdict before the signal landed is judged as usual.)
  const bool caller_died = signalled && !hung && WIFSIGNALED(status) && WTERMSIG(status) == fault.signal &&
                           ledger.verdict.load(std::memory_order_acquire) == Ledger::Verdict::none;
  if (caller_died) {
    const auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(2 * kSlowFactor);
    pid_t reaped = 0;
    while ((reaped = ::waitpid(-1, nullptr, WNOHANG)) >= 0 && std::chrono::steady_clock::now() < bound) {
      if (reaped == 0) ::usleep(1000);
    }
    if (reaped >= 0) {
      leak += fmt::format("  leak: worker processes still alive {} s after their caller was killed\n",
                          2 * kSlowFactor);
    }
  }
  const std::size_t leftovers = reap_leftovers(pid);
  const auto verdict = ledger.verdict.load(std::memory_order_acquire);  // [sync V]
  totals.worst_latency_ns =
      std::max(totals.worst_latency_ns, ledger.worst_latency_ns.load(std::memory_order_relaxed));
  if (caller_died || ledger.fault_fired.load(std::memory_order_relaxed) != 0 ||
      (hung && ledger.fired.load(std::memory_order_relaxed) != 0)) {
    ++totals.faults;
    ++totals.by_kind[name_of(trial.fault.kind)];
  }
  // A trial that wrote its verdict had already checked that it had no child process left; a
  // process found after our signal killed it on its way out is a sanitizer's helper (LeakSanitizer
  // runs its check from a cloned tracer process at exit), not a worker of plumb's.
  const bool killed_after_verdict = signalled && WIFSIGNALED(status) && WTERMSIG(status) == fault.signal &&
                                    verdict != Ledger::Verdict::none;
  if (leftovers != 0 && !killed_after_verdict) {
    leak += fmt::format("  leak: {} processes outlived the trial\n", leftovers);
  }
  for (const std::string& name : list_entries("/dev/shm")) {
    if (!shm_before.contains(name)) leak += fmt::format("  leak: /dev/shm/{} appeared during the trial\n", name);
  }
  if (hung) {
    ++totals.hangs;
    return;
  }
  // Our own signal landing after the trial wrote its verdict (caller_killed) is no fault of it.
  const bool exited_cleanly = (WIFEXITED(status) && WEXITSTATUS(status) == 0) || killed_after_verdict;
  const std::string exit_text = WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                                                    : fmt::format("exited with status {}", WEXITSTATUS(status));
  if (caller_died) {
    if (!leak.empty()) {
      ++totals.leaks;
      print_problem("LEAK", trial, options, leak);
    }
    return;
  }
  if (verdict == Ledger::Verdict::failed || verdict == Ledger::Verdict::none) {
    ++totals.failures;
    std::string details = ledger.report;
    if (verdict == Ledger::Verdict::none) details += fmt::format("  failure: the trial process {}\n", exit_text);
    print_problem("FAIL", trial, options, details + leak);
  } else if (verdict == Ledger::Verdict::leaked || !leak.empty() || !exited_cleanly) {
    ++totals.leaks;
    std::string details = ledger.report + leak;
    // A clean verdict, then a non-zero exit: LeakSanitizer found leaked heap memory (exit 23).
    if (!exited_cleanly) details += fmt::format("  leak: the trial process {} after its checks passed\n", exit_text);
    print_problem("LEAK", trial, options, details);
  } else if (options.verbose) {
    std::printf("ok %s", describe(trial).c_str());
  }
}

int harness_main(int argc, char** argv) {
  if (!plumb::test::apply_lending_from_env()) return 2;
  const Options options = parse(argc, argv);
  const DrawOptions draw = draw_options(options);
  const std::uint64_t base_seed = options.seed.value_or(std::random_device{}() % 1'000'000'000);
  // Orphaned worker processes of a trial come back to us, so that we see and reap them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  void* memory = ::mmap(nullptr, sizeof(Ledger), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::perror("plumb_stress: mmap");
    return 2;
  }
  auto* ledger = static_cast<Ledger*>(memory);
  std::printf("plumb_stress: first seed %llu, %s%s, faults %s, modes %s\n",
              static_cast<unsigned long long>(base_seed),
              options.runs ? fmt::format("{} runs", *options.runs).c_str() : "",
              options.minutes ? fmt::format(" for at most {} minutes", *options.minutes).c_str() : "",
              options.faults ? "on" : "off", options.modes.c_str());
  Totals totals;
  const auto start = std::chrono::steady_clock::now();
  auto last_note = start;
  for (std::uint64_t index = 0;; ++index) {
    if (options.runs && index >= *options.runs) break;
    const auto now = std::chrono::steady_clock::now();
    if (options.minutes && now - start >= std::chrono::duration<double, std::ratio<60>>(*options.minutes)) break;
    if (now - last_note >= std::chrono::seconds(60)) {
      last_note = now;
      std::printf("  ... %llu runs in %.0f s: faults=%llu failures=%llu hangs=%llu leaks=%llu\n",
                  static_cast<unsigned long long>(totals.runs), std::chrono::duration<double>(now - start).count(),
                  static_cast<unsigned long long>(totals.faults), static_cast<unsigned long long>(totals.failures),
                  static_cast<unsigned long long>(totals.hangs), static_cast<unsigned long long>(totals.leaks));
      std::fflush(stdout);
    }
    const Trial trial = draw_trial(base_seed + index, draw);
    run_one(trial, *ledger, options, totals);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string kinds;
  for (const auto& [kind, count] : totals.by_kind) kinds += fmt::format(" {}={}", kind, count);
  std::string modes;
  for (const auto& [mode, count] : totals.by_mode) modes += fmt::format(" {}={}", mode, count);
  std::printf("plumb_stress: %.1f s; run modes:%s; faults by kind:%s; slowest error after its fault: %.0f ms\n",
              seconds, modes.c_str(), kinds.empty() ? " none" : kinds.c_str(),
              static_cast<double>(totals.worst_latency_ns) / 1e6);
  std::printf("runs=%llu faults=%llu failures=%llu hangs=%llu leaks=%llu\n",
              static_cast<unsigned long long>(totals.runs), static_cast<unsigned long long>(totals.faults),
              static_cast<unsigned long long>(totals.failures), static_cast<unsigned long long>(totals.hangs),
              static_cast<unsigned long long>(totals.leaks));
  return totals.failures == 0 && totals.hangs == 0 && totals.leaks == 0 ? 0 : 1;
}

}  // namespace
}  // namespace plumb::stress

int main(int argc, char** argv) { return plumb::stress::harness_main(argc, argv); }
