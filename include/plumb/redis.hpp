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

/// A Redis failure: the server refused the connection or the password, the stream or the group
/// does not exist, a command failed or the server stopped answering. The message names the
/// server and says what to change: `"plumb::redis: cannot connect to 127.0.0.1:6390:
/// Connection refused; is redis-server running there, and is Server::host/port right?"`.
///
/// Thrown in a worker process, it reaches the caller as `plumb::StageError` with the same
/// message, as every `plumb::Error` does; `catch (const plumb::Error&)` catches it in every
/// mode.
class Error : public plumb::Error {
 public:
  using plumb::Error::Error;
};

/// Where the Redis server is and how to log in.
struct Server {
  /// Host name or IPv4/IPv6 address.
  std::string host = "127.0.0.1";
  /// TCP port.
  int port = 6379;
  /// ACL user name (Redis 6 and later); empty: the default user.
  std::string user{};
  /// Password; empty: no AUTH.
  std::string password{};
  /// Longest wait to connect, and for any reply beyond a blocking read's own wait.
  std::chrono::milliseconds timeout{5000};
};

/// One entry of the stream: its id and its field-value pairs. Serializable, so it crosses
/// process boundaries as it is.
struct Job {
  /// The entry id, such as `"1700000000000-0"`; `acknowledge()` needs it at the end.
  std::string id;
  /// The entry's fields, in order.
  std::vector<std::pair<std::string, std::string>> fields;
  /// True if the job was taken over from another consumer (XAUTOCLAIM) or from this consumer's
  /// own pending entries after a restart: it may have run, in part or in full, before.
  bool redelivered = false;

  /// The value of field `name`. Throws `plumb::redis::Error` if the job has no such field.
  [[nodiscard]] const std::string& field(std::string_view name) const {
    for (const auto& [key, value] : fields) {
      if (key == name) return value;
    }
    throw Error("plumb::redis::Job: job " + id + " has no field '" + std::string(name) + "'");
  }
};

/// A job that `read_jobs()` moved to the dead-letter stream instead of giving it to the
/// pipeline (see `Queue::max_deliveries` and `Queue::max_job_bytes`), as `dead_letters()` reads
/// it back and `Queue::on_dead_letter` is told of it.
///
/// In the stream, an entry holds the fields `plumb.reason`, `plumb.id`, `plumb.stream`,
/// `plumb.group`, `plumb.consumer` and `plumb.deliveries`, in this order, then the job's own
/// fields, in their order.
struct DeadLetter {
  /// The entry's id in the dead-letter stream (what `replay_dead_letter()` takes).
  std::string id;
  /// Why, such as `"delivered 6 times, over Queue::max_deliveries (5): ..."`.
  std::string reason;
  /// The job as it was read: its original id and fields.
  Job job;
  /// The stream it was read from.
  std::string stream;
  /// The consumer group it was read through.
  std::string group;
  /// The consumer that held it last.
  std::string consumer;
  /// How many times the group had delivered it, this last time included.
  std::uint64_t deliveries = 0;
};

/// The work queue: a stream, the consumer group that shares it, and how a consumer reads it.
/// An aggregate, so designated initializers work. Stages take it as a constant; each worker
/// opens its own connection when it starts, after the fork in process mode.
struct Queue {
  /// The server.
  Server server{};
  /// The stream's key.
  std::string stream{};
  /// The consumer group. Every pipeline instance that shares the work uses the same group.
  std::string group{};
  /// This consumer's name within the group. Empty: `<host name>-<pid>-<n>`, unique per source
  /// worker of every run. A fixed name lets a restarted pipeline first finish the jobs it had
  /// been given before it died (its own pending entries); with several source workers each
  /// gets `<name>-<worker index>`. A name must be in use by one running source at a time.
  std::string consumer{};
  /// How long one XREADGROUP waits for a new job. It bounds how long a source takes to notice
  /// that the pipeline is stopping.
  std::chrono::milliseconds block{500};
  /// Take over jobs that another consumer was given and has not acknowledged for this long
  /// (XAUTOCLAIM): that consumer is taken as dead. It must exceed the longest time a job can
  /// spend in the pipeline, or a slow consumer's job runs twice. Zero: never take over.
  std::chrono::milliseconds claim_idle{std::chrono::minutes(1)};
  /// Stop (end the source) once no job, new or taken over, has come for this long. Zero: run
  /// until the pipeline stops. A run meant to drain the stream, including jobs of dead
  /// consumers, needs it longer than `claim_idle`.
  std::chrono::milliseconds stop_when_idle{0};
  /// Stop after this many jobs from this source worker. Zero: no limit.
  std::uint64_t max_jobs = 0;
  /// Create the group (and the stream) if missing, reading from the stream's start, instead
  /// of failing.
  bool create_group = false;
  /// Dead-letter a job that the group has delivered more than this many times (its delivery
  /// count, which every takeover and every re-read of a consumer's own pending entries raises):
  /// it crashed or stalled every instance that ran it. Such a job runs at most this many
  /// times. A job delivered again runs alone in its instance (the source reads nothing else
  /// until it is acknowledged), so that a crash counts against it and not against the jobs
  /// beside it. Zero: no cap, and no running alone.
  std::uint64_t max_deliveries = 5;
  /// Dead-letter a job whose encoded size (`plumb::serialized_size(job)`: id, fields and their
  /// length prefixes) is over this many bytes, instead of giving it to the pipeline. The
  /// default is the default `max_message_size` of a link between processes, so that a job
  /// that could not cross the source's output link cannot stop the run; raise both together
  /// (`.max_message_size(n)` on the `read_jobs` stage). Zero: no limit.
  std::size_t max_job_bytes = kDefaultMaxMessageSize;
  /// The stream that dead letters go to. Empty: `"<stream>:dead"`.
  std::string dead_letter_stream{};
  /// Called by `read_jobs()` in the source worker (a worker process in process mode: the
  /// callback's captures are that process's copies) after it dead-lettered a job. Empty:
  /// nothing is called.
  std::function<void(const DeadLetter&)> on_dead_letter{};
  /// Called by `acknowledge()` and `acknowledge_each()` in their worker after each XACK, with
  /// the job's id and whether it was still pending (false: another copy of the job, taken over
  /// after `claim_idle`, had been acknowledged first; it ran twice). In a worker process, as
  /// above; with several workers, from each of them at once. Empty: nothing is called.
  std::function<void(std::string_view id, bool was_pending)> on_acknowledge{};

  /// `dead_letter_stream`, or `"<stream>:dead"` when it is empty.
  [[nodiscard]] std::string dead_letter_key() const {
    return dead_letter_stream.empty() ? stream + ":dead" : dead_letter_stream;
  }
};

/// What an `acknowledge()` sink did.
struct AckReport {
  /// Jobs acknowledged (removed from the group's pending entries).
  std::uint64_t acknowledged = 0;
  /// Jobs that were no longer pending when acknowledged: another consumer had taken them over
  /// after `claim_idle` and acknowledged them first, so they ran twice. Non-zero means
  /// `claim_idle` is shorter than some job's time in the pipeline.
  std::uint64_t not_pending = 0;
};

namespace detail {

struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
struct ContextDeleter {
  void operator()(redisContext* context) const noexcept { redisFree(context); }
};

inline timeval to_timeval(std::chrono::milliseconds duration) {
  const auto ms = std::max<std::int64_t>(duration.count(), 1);
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

inline std::string_view text(const redisReply* reply) {
  return reply->str != nullptr ? std::string_view(reply->str, reply->len) : std::string_view();
}

}  // namespace detail

/// A reply from the server (hiredis' `redisReply`), freed when the last owner goes.
using Reply = std::unique_ptr<redisReply, detail::ReplyDeleter>;

/// One connection to a Redis server (hiredis, blocking). Not thread-safe: one per thread, and
/// never carried across a fork. `read_jobs()` and `acknowledge()` open their own; use one
/// directly to add jobs or to look at the stream.
class Connection {
 public:
  /// Connects and logs in. Throws `Error` if the server cannot be reached in `server.timeout`
  /// or refuses the password.
  explicit Connection(Server server) : server_(std::move(server)) {
    context_.reset(redisConnectWithTimeout(server_.host.c_str(), server_.port, detail::to_timeval(server_.timeout)));
    if (!context_) throw Error("plumb::redis: cannot allocate a connection to " + where());
    if (context_->err != 0) {
      throw Error("plumb::redis: cannot connect to " + where() + ": " + context_->errstr +
                  "; is redis-server running there, and is Server::host/port right?");
    }
    set_read_timeout(std::chrono::milliseconds(0));
    if (!server_.password.empty()) {
      const Reply reply = server_.user.empty() ? raw({"AUTH", server_.password})
                                               : raw({"AUTH", server_.user, server_.password});
      if (reply->type == REDIS_REPLY_ERROR) {
        throw Error("plumb::redis: " + where() + " refused the login" +
                    (server_.user.empty() ? std::string() : " of user '" + server_.user + "'") + ": " +
                    std::string(detail::text(reply.get())) + "; check Server::user and Server::password");
      }
    }
  }

  /// "host:port", for messages.
  [[nodiscard]] std::string where() const { return server_.host + ":" + std::to_string(server_.port); }

  /// Runs one command; each argument is one protocol argument (binary-safe). Returns the reply,
  /// which may be an error reply (`type == REDIS_REPLY_ERROR`). Throws `Error` if the
  /// connection fails.
  Reply raw(std::initializer_list<std::string_view> args) {
    return raw(std::vector<std::string_view>(args));
  }

  /// As above, with the arguments in a vector.
  Reply raw(const std::vector<std::string_view>& args) {
    std::vector<const char*> pointers;
    std::vector<std::size_t> lengths;
    pointers.reserve(args.size());
    lengths.reserve(args.size());
    for (const std::string_view arg : args) {
      pointers.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_.get(), static_cast<int>(args.size()), pointers.data(), lengths.data()));
    if (reply == nullptr) {
      const std::string_view reason = context_->errstr;
      const std::string what = reason.find("temporarily unavailable") != std::string_view::npos ||
                                       reason.find("timed out") != std::string_view::npos
                                   ? "no reply within Server::timeout (" + std::to_string(server_.timeout.count()) +
                                         " ms" + (extra_.count() > 0 ? " beyond a blocking read's " +
                                                                            std::to_string(extra_.count()) + " ms"
                                                                      : std::string()) +
                                         ")"
                                   : std::string(reason);
      throw Error("plumb::redis: connection to " + where() + " failed during " +
                  std::string(args.empty() ? std::string_view() : args[0]) + ": " + what +
                  "; check the server (jobs this consumer held stay pending, and another consumer takes them over "
                  "after Queue::claim_idle)");
    }
    return Reply(reply);
  }

  /// Runs one command and throws `Error` on an error reply, naming the command and what to
  /// change for the common ones (NOAUTH, a missing stream or group).
  Reply command(std::initializer_list<std::string_view> args) {
    return command(std::vector<std::string_view>(args));
  }

  /// As above, with the arguments in a vector.
  Reply command(const std::vector<std::string_view>& args) {
    Reply reply = raw(args);
    if (reply->type == REDIS_REPLY_ERROR) throw error_for(args, detail::text(reply.get()));
    return reply;
  }

  /// Appends a job to `stream` (XADD with an automatic id) and returns its id.
  std::string add(std::string_view stream, const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<std::string_view> args{"XADD", stream, "*"};
    for (const auto& [key, value] : fields) {
      args.push_back(key);
      args.push_back(value);
    }
    const Reply reply = command(args);
    return std::string(detail::text(reply.get()));
  }

  /// Sets how long a reply may take beyond `server.timeout` (blocking reads wait longer).
  void set_read_timeout(std::chrono::milliseconds extra) {
    extra_ = extra;
    if (redisSetTimeout(context_.get(), detail::to_timeval(server_.timeout + extra)) != REDIS_OK) {
      throw Error("plumb::redis: cannot set the socket timeout of the connection to " + where());
    }
  }

 /// The error for the error reply `message` to the command `args`: names the command and the
  /// server, and says what to change for the common replies (NOAUTH, WRONGPASS, NOGROUP).
  [[nodiscard]] Error error_for(const std::vector<std::string_view>& args, std::string_view message) const {
    const std::string name(args.empty() ? std::string_view() : args[0]);
    std::string hint;
    if (message.starts_with("NOAUTH")) {
      hint = "; the server needs a password: set Server::password";
    } else if (message.starts_with("WRONGPASS")) {
      hint = "; check Server::user and Server::password";
    } else if (name == "XAUTOCLAIM" && message.find("unknown command") != std::string_view::npos) {
      hint = "; taking over jobs needs Redis 6.2 or later: upgrade the server, or set Queue::claim_idle to 0";
    } else if (message.starts_with("NOGROUP") || message.find("no such key") != std::string_view::npos) {
      hint = "; create the stream and group first (XGROUP CREATE <stream> <group> 0 MKSTREAM), or set "
             "Queue::create_group";
    }
    return Error("plumb::redis: " + name + " on " + where() + " failed: " + std::string(message) + hint);
  }

 private:
  Server server_;
  std::chrono::milliseconds extra_{0};
  std::unique_ptr<redisContext, detail::ContextDeleter> context_;
};

/// Creates `queue.group` on `queue.stream` (and the stream if missing), delivering entries
/// from the stream's start (`start_id` "0") or only those added later (`"$"`). Returns false
/// if the group already existed.
inline bool create_group(Connection& connection, const Queue& queue, std::string_view start_id = "0") {
  const std::vector<std::string_view> command{"XGROUP", "CREATE", queue.stream, queue.group, start_id, "MKSTREAM"};
  const Reply reply = connection.raw(command);
  if (reply->type != REDIS_REPLY_ERROR) return true;
  if (detail::text(reply.get()).starts_with("BUSYGROUP")) return false;
  throw connection.error_for(command, detail::text(reply.get()));
}

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
