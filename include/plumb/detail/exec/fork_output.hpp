#pragma once
// SPDX-License-Identifier: MIT
// plumb/detail/exec/fork_output.hpp: buffered standard output across the forks of a run: the
// caller's flushed before, the copies a worker process inherits dropped, its own flushed at
// its end.

#include <cstdio>
#include <iostream>

#if __has_include(<stdio_ext.h>)
#include <stdio_ext.h>  // __fpurge (glibc, musl)
#define PLUMB_HAS_FPURGE 1
#endif

#if defined(__GLIBCXX__) && (defined(__GXX_RTTI) || defined(__cpp_rtti))
#include <ext/stdio_filebuf.h>

#include <typeinfo>
#define PLUMB_RENEW_STDIO_FILEBUFS 1
#endif

namespace plumb::detail {

// Why: a fork copies every buffer of the caller, and a worker that flushed its copies would
// write the caller's pending output once more. So the caller flushes before
// the forks (its output then comes out once, and before the workers'), and a worker drops the
// copies of the standard streams' buffers before anything of its own runs: what another thread
// of the caller buffered between that flush and the fork is written by the caller alone.
//
// Limit: other FILE*s and streams of the user (an std::ofstream, a FILE* from fopen, a
// std::cout redirected by the user to a buffer of theirs) are flushed before the forks too,
// but their copies cannot be told from a worker's own output: what another thread writes to
// them between the flush and a fork reaches them again when the worker flushes at its end.

// std::cout, std::cerr and std::clog, and their wide twins (any exception set in their
// exceptions() mask is swallowed: output must not fail a run).
inline void flush_standard_streams() noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
    std::wcout.flush();
    std::wcerr.flush();
    std::wclog.flush();
  } catch (...) {
  }
}

// In the caller, just before the forks.
inline void flush_before_fork() noexcept {
  flush_standard_streams();  // first: with sync_with_stdio(true) they write into stdout's FILE
  std::fflush(nullptr);
}

#if defined(PLUMB_RENEW_STDIO_FILEBUFS)
// With sync_with_stdio(false) libstdc++ gives std::cout a __gnu_cxx::stdio_filebuf on stdout
// with a buffer of its own (std::cerr and std::clog share one on stderr). A worker drops its
// copy by taking a fresh buffer of the same kind on the same FILE; the old one is left as it
// is, never flushed (the library never destroys its standard buffers). Only that exact type on
// that FILE: a buffer the user installed (rdbuf) stays theirs.
template <class Char>
void renew_stdio_filebuf(std::basic_ios<Char>& out, FILE* file) noexcept {
  using Buffer = __gnu_cxx::stdio_filebuf<Char>;
  std::basic_streambuf<Char>* const old = out.rdbuf();
  if (old == nullptr || typeid(*old) != typeid(Buffer) || static_cast<Buffer*>(old)->file() != file) {
    return;
  }
  try {
    auto* fresh = new Buffer(file, std::ios_base::out);  // leaked on purpose: lives until _exit
    // The old buffer's locale, not the global one: a wide stream converts through its buffer's
    // codecvt, which the user chose with imbue (rdbuf leaves the stream's own locale alone).
    fresh->pubimbue(old->getloc());
    out.rdbuf(fresh);
  } catch (...) {
    // out of memory: keep the copy (it may be written twice) rather than fail the worker
  }
}

// Two streams that may share one buffer (std::cerr and std::clog do): they keep sharing.
template <class Char>
void renew_stdio_filebufs(std::basic_ios<Char>& first, std::basic_ios<Char>& second, FILE* file) noexcept {
  std::basic_streambuf<Char>* const old = first.rdbuf();
  const bool shared = second.rdbuf() == old;
  renew_stdio_filebuf(first, file);
  if (!shared) return renew_stdio_filebuf(second, file);
  try {
    if (first.rdbuf() != old) second.rdbuf(first.rdbuf());
  } catch (...) {
  }
}
#endif

// In a new worker process, before anything else writes: drop the inherited copies.
inline void drop_inherited_output() noexcept {
#if defined(PLUMB_HAS_FPURGE)
  // Before the iostreams' buffers are renewed: a stdio_filebuf's constructor flushes its FILE.
  // (glibc >= 2.36 resets the FILE locks in the child, so this cannot block on a lock that
  // another thread of the caller held at the fork.)
  ::__fpurge(stdout);
  ::__fpurge(stderr);
#endif
#if defined(PLUMB_RENEW_STDIO_FILEBUFS)
  renew_stdio_filebuf(std::cout, stdout);
  renew_stdio_filebufs(std::cerr, std::clog, stderr);
  renew_stdio_filebuf(std::wcout, stdout);
  renew_stdio_filebufs(std::wcerr, std::wclog, stderr);
#endif
}

// In a worker process, before _exit (which skips the flushing that exit does): its own output.
inline void flush_own_output() noexcept {
  flush_standard_streams();
  std::fflush(nullptr);
}

}  // namespace plumb::detail
