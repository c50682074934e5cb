#pragma once
// SPDX-License-Identifier: MIT
// tests/redis/server.hpp: a real redis-server for one test, on a free loopback port, with no
// persistence; stopped (and waited for) when the test ends.

#include <plumb/redis.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace plumb::test {

// A port that nothing listened on a moment ago (the kernel's pick for port 0).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

class RedisServer {
 public:
  // Starts redis-server (from PATH; Debian: redis-server) and waits until it answers PING.
  // `password` non-empty: the server requires it.
  explicit RedisServer(std::string password = {}) : password_(std::move(password)) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      if (start()) return;
      stop();
    }
    throw std::runtime_error("redis-server did not start (Debian: apt-get install redis-server)");
  }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] plumb::redis::Server server() const {
    return {.host = "127.0.0.1", .port = port_, .password = password_, .timeout = std::chrono::milliseconds(5000)};
  }
  [[nodiscard]] plumb::redis::Connection connect() const { return plumb::redis::Connection(server()); }

 private:
  bool start() {
    std::vector<std::string> args{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel",
                                  "warning", "--logfile", "/dev/null", "--dir", "/tmp"};
    if (!password_.empty()) {
      args.emplace_back("--requirepass");
      args.push_back(password_);
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    // fork + exec rather than posix_spawn: the server must die with this process (a test killed
    // by its timeout must not leave it running), and must not hold this process's stdout.
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork() failed");
    if (pid_ == 0) {  // only async-signal-safe calls from here to exec
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execvp("redis-server", argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
          throw std::runtime_error("cannot run redis-server (Debian: apt-get install redis-server)");
        }
        return false;  // the port was taken meanwhile
      }
      try {
        plumb::redis::Connection connection(server());
        const plumb::redis::Reply reply = connection.raw({"PING"});
        if (reply->type == REDIS_REPLY_STATUS) return true;
      } catch (const plumb::redis::Error&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // not listening yet
      }
    }
    return false;
  }

  void stop() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace plumb::test
