// expect-error: plumb::stage: a constant does not convert to its parameter's type
// expect-error: constant_converts_to_parameter<plumb::detail::at_stage<0>, plumb::detail::constant<0>, std::(__cxx11::)?basic_string<char(, std::char_traits<char>, std::allocator<char>)?>, int>
// A source lambda given a constant of the wrong type: the error names the stage (0), the
// constant (0, a std::string) and the parameter type (int).
#include <plumb/plumb.hpp>

#include <string>

long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  auto numbers = [](int count) -> plumb::Generator<int> {
    for (int i = 0; i < count; ++i) co_yield i;
  };
  plumb::Pipeline pipeline{plumb::stage(numbers, std::string("three")), plumb::stage(total)};
  (void)pipeline;
}
