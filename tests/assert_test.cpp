// SPDX-License-Identifier: MIT
// tests/assert_test.cpp: contract violations abort with a message (fork + waitpid death tests).

#include <plumb/plumb.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

namespace {

struct Death {
  bool aborted = false;
  std::string stderr_text;
};

// Runs `body` in a forked child and reports whether it died by SIGABRT and what it printed.
template <class Body>
Death run_in_child(Body body) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Catch2 installs its own SIGABRT handler; the child must die the default way.
    std::signal(SIGABRT, SIG_DFL);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    body();
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  Death death;
  char buffer[512];
  ssize_t n = 0;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) death.stderr_text.append(buffer, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  death.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  return death;
}

}  // namespace

TEST_CASE("calling begin twice on a Stream aborts with a message", "[assert]") {
  const Death death = run_in_child([] {
    plumb::Stream<int> in{1, 2};
    (void)in.begin();
    (void)in.begin();
  });
  CHECK(death.aborted);
  CHECK_THAT(death.stderr_text, Catch::Matchers::Contains("plumb::Stream: begin() called twice"));
}

TEST_CASE("a single begin on a Stream does not abort (control)", "[assert]") {
  const Death death = run_in_child([] {
    plumb::Stream<int> in{1, 2};
    (void)in.begin();
  });
  CHECK_FALSE(death.aborted);
  CHECK(death.stderr_text.empty());
}
