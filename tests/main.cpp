// SPDX-License-Identifier: MIT
// tests/main.cpp: the Catch2 v2 runner of plumb's tests. PLUMB_TEST_LENDING (adaptive, always,
// never) forces how workers are lent in every run (tests/support/lending.hpp).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/lending.hpp"

int main(int argc, char* argv[]) {
  if (!plumb::test::apply_lending_from_env()) return 2;
  return Catch::Session().run(argc, argv);
}
