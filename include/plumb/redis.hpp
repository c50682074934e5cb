#pragma once
// SPDX-License-Identifier: MIT
// plumb/redis.hpp: many pipelines, on many machines, sharing one work queue: a Redis Stream read
// through a consumer group. Optional: link the CMake target plumb::redis (needs hiredis, Debian's
// libhiredis-dev); the rest of plumb does not depend on it.

/// @file
/// Work from a Redis Stream, at least once.
///
/// - `read_jobs()` is a source: it reads a stream through a consumer group (XREADGROUP), one
///   job per resume, so a pipeline never holds more jobs than its links' `in_flight` lets it
///   start. It also takes over jobs that a dead consumer left pending (XAUTOCLAIM, after
///   `Queue::claim_idle`).
/// - `acknowledge()` (a sink) and `acknowledge_each()` (a stage that passes its packets on)
///   XACK each job once the stage before them has finished it. A pipeline that dies before that
///   leaves the job pending, and another consumer takes it over: redelivery, never loss.
/// - A job that cannot run (delivered more than `Queue::max_deliveries` times: it crashed every
///   instance that ran it; or larger than `Queue::max_job_bytes`) is moved to a dead-letter
///   stream with the reason, where `dead_letters()` reads it and `replay_dead_letters()` puts
///   it back, instead of stopping every instance.
///
/// ```cpp
/// plumb::redis::Queue queue{.server = {.host = "10.0.0.5"}, .stream = "jobs", .group = "workers"};
/// plumb::Pipeline pipeline{
///     plumb::stage(plumb::redis::read_jobs, queue).in_flight(1),
///     plumb::stage(classify).workers(4).mode(plumb::Mode::process).in_flight(4),
///     plumb::stage(plumb::redis::acknowledge<Scored>, queue)};  // Scored has a member `id`
/// pipeline.run();
/// ```

#include <plumb/codec.hpp>
#include <plumb/detail/redis/reader.hpp>
#include <plumb/error.hpp>
#include <plumb/generator.hpp>
#include <plumb/redis/connection.hpp>
#include <plumb/stage.hpp>
#include <plumb/stream.hpp>
#include <plumb/worker.hpp>

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace plumb::redis {


/// Acknowledges job `id` (XACK) on `connection`; returns false if it was no longer pending.
/// For a stage that drops a job on purpose: a dropped job is otherwise never acknowledged, and
/// is taken over again after `Queue::claim_idle`, again and again (and dead-lettered after
/// `Queue::max_deliveries`). Does not call `Queue::on_acknowledge`.
inline bool ack(Connection& connection, const Queue& queue, std::string_view id) {
  const Reply reply = connection.command({"XACK", queue.stream, queue.group, id});
  return reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
}

namespace detail {

// ack() for the acknowledging stages: counts into `report` and tells Queue::on_acknowledge.
inline void acknowledge_one(Connection& connection, const Queue& queue, std::string_view id, AckReport& report) {
  const bool was_pending = ack(connection, queue, id);
  ++(was_pending ? report.acknowledged : report.not_pending);
  if (queue.on_acknowledge) queue.on_acknowledge(id, was_pending);
}

}  // namespace detail

/// Reads up to `count` dead letters of `queue` (from `Queue::dead_letter_key()`), oldest first,
/// starting after dead-letter id `after` (`"-"`: from the start).
inline std::vector<DeadLetter> dead_letters(Connection& connection, const Queue& queue, std::size_t count = 100,
                                            std::string_view after = "-") {
  const std::string start = after == "-" ? std::string("-") : "(" + std::string(after);
  const std::string limit = std::to_string(std::max<std::size_t>(count, 1));
  const Reply reply = connection.command({"XRANGE", queue.dead_letter_key(), start, "+", "COUNT", limit});
  std::vector<DeadLetter> letters;
  for (std::size_t i = 0; i < reply->elements; ++i) letters.push_back(detail::to_dead_letter(reply->element[i]));
  return letters;
}

/// Puts dead letter `letter` back into `queue.stream` as a new job (new id, the job's own
/// fields, delivered afresh) and deletes it from the dead-letter stream, atomically (one
/// script). Returns the new job's id, or "" if the dead letter was gone (replayed already).
/// Fix what made it fail first (a raised `Queue::max_job_bytes`, a fixed stage), or it comes
/// back.
inline std::string replay_dead_letter(Connection& connection, const Queue& queue, const DeadLetter& letter) {
  std::vector<std::string_view> args{letter.id};
  for (const auto& [key, value] : letter.job.fields) {
    args.push_back(key);
    args.push_back(value);
  }
  return detail::move_entry(connection, detail::kReplayScript, queue.dead_letter_key(), queue.stream, args);
}

/// Replays every dead letter of `queue` for which `which` returns true (all of them by
/// default), oldest first, as `replay_dead_letter()`; returns how many it put back.
inline std::uint64_t replay_dead_letters(Connection& connection, const Queue& queue,
                                         const std::function<bool(const DeadLetter&)>& which = {}) {
  std::uint64_t replayed = 0;
  std::string after = "-";
  for (;;) {
    const std::vector<DeadLetter> letters = dead_letters(connection, queue, 100, after);
    if (letters.empty()) return replayed;
    for (const DeadLetter& letter : letters) {
      if ((!which || which(letter)) && !replay_dead_letter(connection, queue, letter).empty()) ++replayed;
    }
    after = letters.back().id;
  }
}

/// Source stage: yields the jobs of `queue.stream` given to this consumer of `queue.group`.
///
/// One job per resume (XREADGROUP COUNT 1), and plumb resumes a source only when its output
/// link has a free slot, so an instance holds at most the jobs its `in_flight` settings let it
/// start; with `in_flight(1)` everywhere it holds one per link. Order of reads: this
/// consumer's own pending entries (after a restart under a fixed `Queue::consumer`), jobs idle
/// for `Queue::claim_idle` under any consumer, this one included (XAUTOCLAIM, checked every
/// `claim_idle / 4`, clamped to 10 ms - 5 s, and after every wait that found no new job),
/// then new jobs (waiting `Queue::block` at a time).
///
/// Dead letters: a job delivered more than `Queue::max_deliveries` times, or larger than
/// `Queue::max_job_bytes`, is moved to the dead-letter stream with the reason and acknowledged
/// (one atomic script), and the source reads the next one; see `DeadLetter`. A job delivered
/// again (taken over, or re-read after a restart) runs alone: the source waits until the
/// jobs before it are acknowledged before giving it, and until it is acknowledged before
/// reading the next, so that a job that crashes its instance is the only one counted.
///
/// Ends when idle for `Queue::stop_when_idle` or after `Queue::max_jobs`; otherwise runs until
/// the pipeline stops. With several workers, each is its own consumer. Throws `Error` for an
/// unreachable server, a refused password, or a missing stream or group.
#ifdef PLUMB_DETAIL_STATIC_COROUTINES
[[maybe_unused]] static
#else
inline
#endif
Generator<Job> read_jobs(Queue queue) {
  detail::Reader reader(queue);
  for (;;) {
    std::optional<Job> job = reader.next();
    if (!job) break;
    co_yield std::move(*job);
  }
}

/// Sink stage: acknowledges (XACK) each packet's job once it arrives here, that is once every
/// stage before has finished it. `T` is `Job`, `std::string` (the id) or any type with a
/// member `id`. Use one worker; the return value counts what happened.
///
/// Exactly one packet per job must arrive here. A stage that drops a job must acknowledge it
/// itself (`ack()`); a stage that splits a job into parts must send one packet per job on (a
/// batch of the parts, say), or the first part would acknowledge the job while the others
/// are still on their way.
template <class T>
AckReport acknowledge(Stream<T> done, Queue queue) {
  Connection connection(queue.server);
  detail::check_queue(connection, detail::valid(queue));  // XACK on a missing group fails silently
  AckReport report;
  for (const T& packet : done) detail::acknowledge_one(connection, queue, detail::job_id(packet), report);
  return report;
}

/// Stage: acknowledges each packet's job, as `acknowledge()`, then passes the packet on (to a
/// sink that keeps results, say). A job is acknowledged before the stages after this one see
/// it: put it last among the stages that must finish a job.
///
/// It reports what each XACK answered through `Queue::on_acknowledge` (called in this stage's
/// worker, a worker process in process mode), as it cannot return an `AckReport`.
template <class T>
PLUMB_DETAIL_HEADER_COROUTINE Generator<T> acknowledge_each(Stream<T> done, Queue queue) {
  Connection connection(queue.server);
  detail::check_queue(connection, detail::valid(queue));  // XACK on a missing group fails silently
  AckReport report;  // unused: on_acknowledge is the report
  for (T& packet : done) {
    detail::acknowledge_one(connection, queue, detail::job_id(packet), report);
    co_yield std::move(packet);
  }
}

}  // namespace plumb::redis
