// SPDX-License-Identifier: MIT
// tests/error_test.cpp: the plumb::Error hierarchy.

#include <plumb/error.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <system_error>
#include <type_traits>

TEST_CASE("every plumb error derives from plumb::Error, a std::runtime_error", "[error]") {
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, plumb::Error>);
  STATIC_REQUIRE(std::is_base_of_v<plumb::Error, plumb::ConfigError>);
  STATIC_REQUIRE(std::is_base_of_v<plumb::Error, plumb::StageError>);
  STATIC_REQUIRE(std::is_base_of_v<plumb::Error, plumb::InactivityError>);
  STATIC_REQUIRE(std::is_base_of_v<plumb::Error, plumb::CancelledError>);
  STATIC_REQUIRE(std::is_base_of_v<plumb::Error, plumb::IpcError>);
}

TEST_CASE("StageError carries the stage and worker it names", "[error]") {
  const plumb::StageError error("plumb.stage_error: boom", 2, "parse", 3);
  CHECK(std::string(error.what()) == "plumb.stage_error: boom");
  CHECK(error.stage_index() == 2);
  CHECK(error.stage_name() == "parse");
  CHECK(error.worker_index() == 3);
}

TEST_CASE("IpcError carries the operating system's error code", "[error]") {
  const plumb::IpcError error("plumb.ipc_error: mmap failed",
                              std::make_error_code(std::errc::not_enough_memory));
  CHECK(error.code() == std::errc::not_enough_memory);
}
