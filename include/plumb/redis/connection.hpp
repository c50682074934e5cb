#pragma once
// SPDX-License-Identifier: MIT
// plumb/redis/connection.hpp: plumb::redis's vocabulary (the queue, a job, a dead letter, the
// acknowledgement report, its error) and one connection to a Redis server.

/// @file
/// plumb::redis's types and `Connection` (included by `<plumb/redis.hpp>`; link plumb::redis).

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

}  // namespace plumb::redis
