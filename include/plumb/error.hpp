#pragma once
// SPDX-License-Identifier: MIT
// plumb/error.hpp: the one hierarchy of errors that plumb itself raises.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace plumb {

/// The base class of every error plumb itself raises.
///
/// Messages start with a stable tag such as `plumb.config_error:` so that logs can be searched.
/// A user's own exception thrown by a stage is never wrapped in sequential and thread mode:
/// `Pipeline::run()` rethrows the original object (see `Pipeline::last_failure()` for the stage
/// and worker that raised it).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The pipeline was assembled wrongly; detected by `run()` before any stage starts.
///
/// Example: `workers(0)`, `in_flight(2)` below `workers(4)`, a non-void sink with several workers.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// An error attributed to one worker of one stage, raised by plumb (not by the user's code).
///
/// Example: a processor that returned while its input still had packets.
class StageError : public Error {
 public:
  /// Makes an error with the message `what`, raised by worker `worker_index` of the stage at
  /// `stage_index`, named `stage_name`.
  StageError(const std::string& what, std::size_t stage_index, std::string stage_name,
             std::size_t worker_index)
      : Error(what),
        stage_index_(stage_index),
        stage_name_(std::move(stage_name)),
        worker_index_(worker_index) {}

  /// 0-based position of the stage in the pipeline.
  [[nodiscard]] std::size_t stage_index() const noexcept { return stage_index_; }
  /// The name given with `.name()`, or "stage N" when none was given.
  [[nodiscard]] std::string_view stage_name() const noexcept { return stage_name_; }
  /// 0-based index of the worker within its stage.
  [[nodiscard]] std::size_t worker_index() const noexcept { return worker_index_; }

 private:
  std::size_t stage_index_;
  std::string stage_name_;
  std::size_t worker_index_;
};

/// A worker process threw an exception of a type that cannot be rebuilt in the caller.
///
/// Types outside the std::logic_error and std::runtime_error families and std::bad_alloc arrive
/// as this error, carrying the original type's name and message.
class RemoteError : public StageError {
 public:
  /// Makes a StageError (see there) for an exception of the type named `type_name`.
  RemoteError(const std::string& what, std::size_t stage_index, std::string stage_name,
              std::size_t worker_index, std::string type_name)
      : StageError(what, stage_index, std::move(stage_name), worker_index),
        type_name_(std::move(type_name)) {}
  /// The name of the exception's type, as the worker process saw it (demangled).
  [[nodiscard]] std::string_view type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

/// A worker process died: killed by a signal, exited with a non-zero status, or exited with
/// status 0 before finishing its stream.
class WorkerDiedError : public StageError {
 public:
  /// Makes a StageError (see there) for the worker process `pid`.
  WorkerDiedError(const std::string& what, std::size_t stage_index, std::string stage_name,
                  std::size_t worker_index, long pid)
      : StageError(what, stage_index, std::move(stage_name), worker_index), pid_(pid) {}
  /// The process id of the worker that died.
  [[nodiscard]] long pid() const noexcept { return pid_; }

 private:
  long pid_;
};

/// No packet moved on any link for `RunOptions::inactivity_timeout`.
class InactivityError : public Error {
 public:
  using Error::Error;
};

/// The run was cancelled through `RunOptions::stop_token`.
class CancelledError : public Error {
 public:
  using Error::Error;
};

/// An operating-system facility failed: shared memory, fork, waitpid.
class IpcError : public Error {
 public:
  /// Makes an error with the message `what` and the operating system's error `code`.
  IpcError(const std::string& what, std::error_code code) : Error(what), code_(code) {}
  /// The error reported by the operating system.
  [[nodiscard]] std::error_code code() const noexcept { return code_; }

 private:
  std::error_code code_;
};

}  // namespace plumb

namespace plumb {

/// Who raised the error that stopped a run: see `Pipeline::last_failure()`.
struct Failure {
  /// 0-based position of the failing stage.
  std::size_t stage_index = 0;
  /// The stage's name, or "stage N" when none was given.
  std::string stage_name;
  /// 0-based index of the failing worker within its stage.
  std::size_t worker_index = 0;
  /// The error's `what()`, or a description when it was not a std::exception.
  std::string what;
  /// The worker's process id when it ran in a worker process; 0 when it ran in the caller's.
  long pid = 0;
};

}  // namespace plumb
