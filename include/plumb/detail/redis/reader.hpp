#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/redis/reader.hpp: how plumb::redis reads a stream: consumer names, checks of the
// queue, jobs from replies, dead letters (Lua scripts that move an entry atomically), and the
// Reader behind read_jobs() (reading, taking over idle jobs, acknowledging before the next read).

#include <plumb/redis/connection.hpp>
#include <plumb/codec.hpp>
#include <plumb/error.hpp>
#include <plumb/generator.hpp>
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

namespace detail {

// The consumer name of a source worker: Queue::consumer (suffixed with the worker index when
// the source has several workers), or one unique to this reader.
inline std::string consumer_name(const Queue& queue) {
  const WorkerInfo& me = this_worker();
  if (!queue.consumer.empty()) {
    return me.count > 1 ? queue.consumer + "-" + std::to_string(me.index) : queue.consumer;
  }
  // Relaxed: only uniqueness matters, not order.
  static std::atomic<std::uint64_t> readers{0};
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "host") + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(readers.fetch_add(1, std::memory_order_relaxed));
}

// Fails with a message that says which of the stream and the group is missing.
inline const Queue& valid(const Queue& queue) {
  if (queue.stream.empty() || queue.group.empty()) {
    throw Error("plumb::redis::Queue: stream and group must be set (stream '" + queue.stream + "', group '" +
                queue.group + "')");
  }
  return queue;
}

inline void check_queue(Connection& connection, const Queue& queue) {
  if (queue.create_group) {
    create_group(connection, queue);
    return;
  }
  const Reply reply = connection.raw({"XINFO", "GROUPS", queue.stream});
  if (reply->type == REDIS_REPLY_ERROR && !text(reply.get()).starts_with("ERR no such key")) {
    throw connection.error_for({"XINFO", "GROUPS", queue.stream}, text(reply.get()));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    throw Error("plumb::redis: stream '" + queue.stream + "' does not exist on " + connection.where() + " (" +
                std::string(text(reply.get())) + "); create it and its group (XGROUP CREATE " + queue.stream + " " +
                queue.group + " 0 MKSTREAM), or set Queue::create_group");
  }
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* group = reply->element[i];
    for (std::size_t field = 0; field + 1 < group->elements; field += 2) {
      if (text(group->element[field]) == "name" && text(group->element[field + 1]) == queue.group) return;
    }
  }
  throw Error("plumb::redis: stream '" + queue.stream + "' on " + connection.where() + " has no consumer group '" +
              queue.group + "'; create it (XGROUP CREATE " + queue.stream + " " + queue.group +
              " 0), or set Queue::create_group");
}

// An entry [id, [field, value, ...]] as a Job; nullopt for an entry deleted while pending
// (its fields are nil).
inline std::optional<Job> to_job(const redisReply* entry, bool redelivered) {
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) return std::nullopt;
  const redisReply* fields = entry->element[1];
  if (fields->type != REDIS_REPLY_ARRAY) return std::nullopt;
  Job job{std::string(text(entry->element[0])), {}, redelivered};
  job.fields.reserve(fields->elements / 2);
  for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
    job.fields.emplace_back(std::string(text(fields->element[i])), std::string(text(fields->element[i + 1])));
  }
  return job;
}

// The id of an entry that has nil fields (deleted from the stream while pending), or "".
inline std::string deleted_id(const redisReply* entry) {
  if (entry->type == REDIS_REPLY_ARRAY && entry->elements >= 1 &&
      (entry->elements < 2 || entry->element[1]->type != REDIS_REPLY_ARRAY)) {
    return std::string(text(entry->element[0]));
  }
  return {};
}

// The fields a dead-letter entry starts with, in this order; the job's own fields follow.
inline constexpr std::string_view kDeadLetterFields[] = {"plumb.reason",   "plumb.id",       "plumb.stream",
                                                         "plumb.group",    "plumb.consumer", "plumb.deliveries"};

// Moves a pending job to the dead-letter stream and acknowledges it, in one script, which Redis
// runs atomically: no other command runs between its steps, and a connection lost before
// EVAL reaches the server runs none of them. Only the consumer that holds the job moves it
// (the first check), so two consumers cannot dead-letter one job twice, and a job that another
// consumer has taken over or acknowledged meanwhile is left alone. XADD comes before XACK: a
// script is not rolled back, and an XADD that fails (the key holds something other than a
// stream) must leave the job pending rather than acknowledged and lost.
// KEYS: stream, dead-letter stream. ARGV: group, id, consumer, then the entry's field-value pairs.
inline constexpr std::string_view kDeadLetterScript = R"lua(
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #held == 0 or held[1][2] ~= ARGV[3] then return false end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
)lua";

// Moves a dead letter back to the job stream, with the job's own fields: XADD there, then XDEL
// here, atomically as above; a dead letter already replayed (gone) is not added twice.
// KEYS: dead-letter stream, job stream. ARGV: dead letter id, then the job's field-value pairs.
inline constexpr std::string_view kReplayScript = R"lua(
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
)lua";

// EVAL of `script` on two keys; the new entry's id, or "" if the script did nothing (nil).
inline std::string move_entry(Connection& connection, std::string_view script, std::string_view from,
                              std::string_view to, const std::vector<std::string_view>& args) {
  std::vector<std::string_view> command{"EVAL", script, "2", from, to};
  command.insert(command.end(), args.begin(), args.end());
  const Reply reply = connection.command(command);
  return reply->type == REDIS_REPLY_STRING ? std::string(text(reply.get())) : std::string();
}

// Dead-letters `job`, held by `letter.consumer`; fills in letter.id. False if the job was no
// longer held by that consumer (nothing done).
inline bool dead_letter(Connection& connection, const Queue& queue, DeadLetter& letter) {
  const std::string deliveries = std::to_string(letter.deliveries);
  const std::string_view meta[] = {letter.reason, letter.job.id,    letter.stream,
                                   letter.group,  letter.consumer, deliveries};
  std::vector<std::string_view> args{queue.group, letter.job.id, letter.consumer};
  for (std::size_t i = 0; i < std::size(kDeadLetterFields); ++i) {
    args.push_back(kDeadLetterFields[i]);
    args.push_back(meta[i]);
  }
  for (const auto& [key, value] : letter.job.fields) {
    args.push_back(key);
    args.push_back(value);
  }
  letter.id = move_entry(connection, kDeadLetterScript, queue.stream, queue.dead_letter_key(), args);
  return !letter.id.empty();
}

// A dead-letter entry [id, [field, value, ...]] as a DeadLetter: the leading plumb.* fields
// (as far as they are there, in order), then the job's fields.
inline DeadLetter to_dead_letter(const redisReply* entry) {
  DeadLetter letter;
  letter.id = std::string(text(entry->element[0]));
  const redisReply* fields = entry->elements >= 2 ? entry->element[1] : nullptr;
  const std::size_t count = fields != nullptr && fields->type == REDIS_REPLY_ARRAY ? fields->elements / 2 : 0;
  std::string* const meta[] = {&letter.reason, &letter.job.id, &letter.stream, &letter.group, &letter.consumer};
  std::string deliveries;
  std::size_t i = 0;
  for (; i < count && i < std::size(kDeadLetterFields); ++i) {
    if (text(fields->element[2 * i]) != kDeadLetterFields[i]) break;
    const std::string_view value = text(fields->element[2 * i + 1]);
    if (i < std::size(meta)) {
      *meta[i] = std::string(value);
    } else {
      deliveries = std::string(value);
    }
  }
  std::from_chars(deliveries.data(), deliveries.data() + deliveries.size(), letter.deliveries);  // 0 if not a number
  letter.job.redelivered = letter.deliveries > 1;  // as it was when read
  for (; i < count; ++i) {
    letter.job.fields.emplace_back(std::string(text(fields->element[2 * i])),
                                   std::string(text(fields->element[2 * i + 1])));
  }
  return letter;
}

// One consumer's reads, one entry at a time: first its own pending entries (a restart under a
// fixed name), then new ones, taking over idle entries of other consumers now and then.
class Reader {
 public:
  explicit Reader(const Queue& queue)
      : queue_(valid(queue)),
        connection_(queue.server),
        consumer_(consumer_name(queue)),
        block_(std::to_string(std::max<std::int64_t>(queue.block.count(), 1))),
        claim_idle_(std::to_string(queue.claim_idle.count())),
        claim_every_(std::clamp(queue.claim_idle / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(5000))) {
    check_queue(connection_, queue_);
    connection_.set_read_timeout(queue_.block);
  }

  // The next job, or nullopt once the source should end (idle, max_jobs reached, or stopping).
  std::optional<Job> next() {
    if (queue_.max_jobs != 0 && given_ >= queue_.max_jobs) return std::nullopt;
    if (!alone_.empty()) {  // the job given last was delivered again: it runs alone
      if (!wait_alone({})) return std::nullopt;
      alone_.clear();
    }
    auto idle_since = std::chrono::steady_clock::now();
    for (;;) {
      std::optional<Job> job = own_pending_ ? read_own_pending() : std::nullopt;
      if (!job && claim_due()) job = claim();
      if (!job) job = read_new();
      if (job && !admit(*job)) {
        idle_since = std::chrono::steady_clock::now();  // dead-lettered: look for the next at once
        continue;
      }
      if (job) {
        if (job->redelivered && queue_.max_deliveries != 0) {
          if (!wait_alone(job->id)) return std::nullopt;  // stopping: the job stays pending
          alone_ = job->id;
        }
        ++given_;
        return job;
      }
      // Between waits: plumb cannot interrupt a blocked XREADGROUP, so the source looks itself
      // (after at most Queue::block) and ends if the run is stopping.
      if (stop_requested()) return std::nullopt;
      if (queue_.stop_when_idle.count() > 0 &&
          std::chrono::steady_clock::now() - idle_since >= queue_.stop_when_idle) {
        return std::nullopt;
      }
    }
  }

 private:
  // Entries this consumer was given earlier and never acknowledged (XREADGROUP from an id).
  std::optional<Job> read_own_pending() {
    for (;;) {
      const Reply reply = connection_.command(
          {"XREADGROUP", "GROUP", queue_.group, consumer_, "COUNT", "1", "STREAMS", queue_.stream, own_cursor_});
      const redisReply* entries = first_stream_entries(reply.get());
      if (entries == nullptr || entries->elements == 0) {
        own_pending_ = false;
        return std::nullopt;
      }
      const redisReply* entry = entries->element[0];
      own_cursor_ = std::string(text(entry->element[0]));
      if (std::optional<Job> job = to_job(entry, true)) return job;
      forget(own_cursor_);  // deleted from the stream while pending
    }
  }

  std::optional<Job> read_new() {
    const Reply reply = connection_.command({"XREADGROUP", "GROUP", queue_.group, consumer_, "COUNT", "1", "BLOCK",
                                             block_, "STREAMS", queue_.stream, ">"});
    const redisReply* entries = first_stream_entries(reply.get());
    if (entries == nullptr || entries->elements == 0) {
      next_claim_ = {};  // idle: a good moment to look for abandoned jobs
      return std::nullopt;
    }
    return to_job(entries->element[0], false);
  }

  bool claim_due() const {
    return queue_.claim_idle.count() > 0 && std::chrono::steady_clock::now() >= next_claim_;
  }

  // XAUTOCLAIM of one entry idle for claim_idle, scanning the pending entries from claim_cursor_.
  std::optional<Job> claim() {
    for (;;) {
      const Reply reply = connection_.command({"XAUTOCLAIM", queue_.stream, queue_.group, consumer_, claim_idle_,
                                               claim_cursor_, "COUNT", "1"});
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        throw Error("plumb::redis: unexpected XAUTOCLAIM reply from " + connection_.where() +
                    "; plumb::redis needs Redis 6.2 or later");
      }
      claim_cursor_ = std::string(text(reply->element[0]));
      const redisReply* entries = reply->element[1];
      for (std::size_t i = 0; i < entries->elements; ++i) {
        if (std::optional<Job> job = to_job(entries->element[i], true)) return job;  // found: look again soon
        // Deleted from the stream while pending: Redis 7 drops it from the pending list itself
        // (and lists it in reply element 2); an [id, nil] entry is acknowledged here.
        if (const std::string id = deleted_id(entries->element[i]); !id.empty()) forget(id);
      }
      if (claim_cursor_ == "0-0") {  // scanned every pending entry
        next_claim_ = std::chrono::steady_clock::now() + claim_every_;
        return std::nullopt;
      }
    }
  }

  // False if `job` is not to enter the pipeline: it was delivered too often or is too large,
  // and is dead-lettered now, or it is no longer this consumer's.
  bool admit(const Job& job) {
    std::uint64_t deliveries = 1;  // a new job's; a job delivered again is looked up
    if (job.redelivered && queue_.max_deliveries != 0) {
      deliveries = delivery_count(job.id);
      if (deliveries == 0) return false;  // acknowledged or taken over by another consumer meanwhile
      if (deliveries > queue_.max_deliveries) {
        dead_letter(job, deliveries,
                    "delivered " + std::to_string(deliveries) + " times, over Queue::max_deliveries (" +
                        std::to_string(queue_.max_deliveries) +
                        "): it crashed or stalled every instance that ran it, or outlasted Queue::claim_idle");
        return false;
      }
    }
    if (queue_.max_job_bytes == 0) return true;
    const std::size_t size = serialized_size(job);
    if (size <= queue_.max_job_bytes) return true;
    if (job.redelivered && queue_.max_deliveries == 0) deliveries = std::max<std::uint64_t>(delivery_count(job.id), 1);
    dead_letter(job, deliveries,
                "a job of " + std::to_string(size) + " bytes, over Queue::max_job_bytes (" +
                    std::to_string(queue_.max_job_bytes) +
                    "); raise it together with .max_message_size() on the read_jobs stage");
    return false;
  }

  // How many times the group has delivered entry `id`; 0 if it is no longer pending.
  std::uint64_t delivery_count(const std::string& id) {
    const Reply reply = connection_.command({"XPENDING", queue_.stream, queue_.group, id, id, "1"});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return 0;
    const redisReply* entry = reply->element[0];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 4 || entry->element[3]->type != REDIS_REPLY_INTEGER) {
      return 1;
    }
    return static_cast<std::uint64_t>(entry->element[3]->integer);
  }

  // Dead-letters `job` (held by this consumer) with `reason`, and tells Queue::on_dead_letter.
  void dead_letter(const Job& job, std::uint64_t deliveries, std::string reason) {
    DeadLetter letter{{}, std::move(reason), job, queue_.stream, queue_.group, consumer_, deliveries};
    if (detail::dead_letter(connection_, queue_, letter) && queue_.on_dead_letter) queue_.on_dead_letter(letter);
  }

  // Waits until this consumer holds no job read in this run other than `keep` (acknowledged
  // by the stages after the source), so that a job delivered again runs alone: if it crashes
  // the instance, no other job is delivered again with it. Redis cannot notify an XACK, so
  // this asks XPENDING, at growing intervals (2 ms to 50 ms). A job held longer than
  // Queue::claim_idle (a stage dropped it without acknowledging it) counts as abandoned, as
  // takeover takes it. False if the run is stopping.
  bool wait_alone(std::string_view keep) {
    using Clock = std::chrono::steady_clock;
    // A held job that long is taken as abandoned (dropped without XACK); without takeover, 1 min.
    const std::chrono::milliseconds longest =
        queue_.claim_idle.count() > 0 ? queue_.claim_idle : std::chrono::milliseconds(std::chrono::minutes(1));
    const auto give_up = Clock::now() + longest;
    // Entries after own_cursor_ are a previous run's, not read yet in this one.
    const std::string_view last = own_pending_ ? std::string_view(own_cursor_) : std::string_view("+");
    std::chrono::milliseconds pause{2};
    for (;;) {
      const Reply reply = connection_.command({"XPENDING", queue_.stream, queue_.group, "-", last, "2", consumer_});
      bool alone = true;
      for (std::size_t i = 0; i < reply->elements; ++i) {
        const redisReply* entry = reply->element[i];
        if (entry->type == REDIS_REPLY_ARRAY && entry->elements >= 1 && text(entry->element[0]) != keep) alone = false;
      }
      if (alone || Clock::now() >= give_up) return true;
      if (stop_requested()) return false;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }

  // Acknowledges an entry that no longer exists, so that it leaves the pending list.
  void forget(const std::string& id) { connection_.command({"XACK", queue_.stream, queue_.group, id}); }

  // [[stream, [entry, ...]]] -> [entry, ...]; nullptr for a nil reply (the wait timed out).
  static const redisReply* first_stream_entries(const redisReply* reply) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return nullptr;
    const redisReply* stream = reply->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) return nullptr;
    return stream->element[1];
  }

  const Queue& queue_;
  Connection connection_;
  std::string consumer_;
  std::string block_;
  std::string claim_idle_;
  std::chrono::milliseconds claim_every_;
  std::chrono::steady_clock::time_point next_claim_{};
  bool own_pending_ = true;
  std::string own_cursor_ = "0";
  std::string claim_cursor_ = "0-0";
  std::string alone_;  // the job given last, when it was delivered again and runs alone
  std::uint64_t given_ = 0;
};

template <class T>
concept IdString = std::convertible_to<const T&, std::string_view>;
template <class T>
concept HasIdMember = requires(const T& value) {
  { value.id } -> std::convertible_to<std::string_view>;
};

template <class T>
std::string_view job_id(const T& value) {
  static_assert(IdString<T> || HasIdMember<T>,
                "plumb::redis::acknowledge: the packets must carry the job's id: use plumb::redis::Job, "
                "std::string (the id), or a struct with a member `id` (copy Job::id into it)");
  if constexpr (IdString<T>) {
    return value;
  } else {
    return value.id;
  }
}

}  // namespace detail

}  // namespace plumb::redis
