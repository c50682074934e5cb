// expect-error: plumb::Generator<T>: T must be a non-const, non-array object type
// A generator of references: the consumer could not own what it receives.
#include <plumb/plumb.hpp>

plumb::Generator<int&> numbers();

int main() {}
plumb::Generator<int&> numbers() {
  static int value = 1;
  co_yield value;
}
