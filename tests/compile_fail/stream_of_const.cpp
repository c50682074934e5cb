// expect-error: plumb::Stream<T>: T must be a non-const, non-array object type
// A Stream of const elements: the stage could not move from them.
#include <plumb/plumb.hpp>

long total(plumb::Stream<const int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() { (void)&total; }
