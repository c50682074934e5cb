// SPDX-License-Identifier: MIT
// tests/package/redis_consumer.cpp: a program built against plumb::redis by a separate project
// (it links hiredis; it is built, not run: there is no server).

#include <plumb/plumb.hpp>
#include <plumb/redis.hpp>

#include <iostream>

int main(int argc, char**) {
  const plumb::redis::Queue queue{.stream = "jobs", .group = "workers"};
  plumb::Pipeline pipeline{plumb::stage(plumb::redis::read_jobs, queue).in_flight(1),
                           plumb::stage(plumb::redis::acknowledge<plumb::redis::Job>, queue)};
  if (argc > 1) pipeline.run();
  std::cout << "redis consumer built\n";
  return 0;
}
