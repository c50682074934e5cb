// SPDX-License-Identifier: MIT
// tests/main.cpp: the Catch2 v2 runner of plumb's tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
