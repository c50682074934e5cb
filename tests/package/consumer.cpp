// SPDX-License-Identifier: MIT
// tests/package/consumer.cpp: a program built against plumb by a separate project.

#include <plumb/plumb.hpp>

#include <iostream>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i <= count; ++i) co_yield i;
}

long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 100), plumb::stage(total)};
  const long sum = pipeline.run(plumb::Mode::sequential);
  std::cout << "consumer: sum " << sum << '\n';
  return sum == 5050 ? 0 : 1;
}
