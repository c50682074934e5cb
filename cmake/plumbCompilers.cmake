# SPDX-License-Identifier: MIT
# What a consumer of plumb needs to know about its compiler. Included by plumbConfig.cmake
# (find_package) and by plumb's CMakeLists.txt when it is added with add_subdirectory.
#
# GCC 12 (Debian 12's compiler) destroys the object of `co_yield Scored{job.id};` twice when
# Scored is an aggregate holding a std::string, std::vector or any other owner of memory:
# `free(): invalid pointer` far from the cause, or silent corruption. The safe form names the
# packet first. Clang 14 does not have the bug. docs/guide.md, "GCC 12 and co_yield", has the
# details; this file
#   - warns once per configure when the C++ compiler is GCC older than 13
#     (-DPLUMB_GCC12_WARNING=OFF silences it once read), and
#   - defines plumb_check_co_yield(<target> [ERROR] [FILES <file>...]), an opt-in scan of a
#     target's sources for the forms GCC 12 miscompiles, run at build time.
include_guard(GLOBAL)

set_property(GLOBAL PROPERTY PLUMB_SCAN_CO_YIELD_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/plumbScanCoYield.cmake")

# The configure-time warning: once per configure, however many times plumb is found.
function(plumb_warn_about_compiler)
  get_property(warned GLOBAL PROPERTY PLUMB_GCC12_WARNED)
  if(warned OR NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU"
     OR NOT CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    return()
  endif()
  set_property(GLOBAL PROPERTY PLUMB_GCC12_WARNED TRUE)
  option(PLUMB_GCC12_WARNING "Warn that GCC 12 miscompiles co_yield of a braced temporary" ON)
  if(NOT PLUMB_GCC12_WARNING)
    return()
  endif()
  message(WARNING
    "plumb: GCC ${CMAKE_CXX_COMPILER_VERSION} miscompiles `co_yield Scored{job.id};`: when the "
    "braces build an aggregate holding a std::string, std::vector or other owner of memory "
    "(and for `co_yield ready ? a : make_b();`), it destroys the yielded object twice: a crash in "
    "free() far from the cause, or silent corruption. Name the packet first:\n"
    "  Scored scored{job.id};\n"
    "  co_yield std::move(scored);\n"
    "plumb_check_co_yield(<target>) finds the unsafe forms in a target's sources. Clang 14 "
    "(Debian: clang-14) does not have the bug. Details: plumb's docs/guide.md, section "
    "\"GCC 12 and co_yield\". Silence this once read: -DPLUMB_GCC12_WARNING=OFF.")
endfunction()

# plumb_check_co_yield(<target> [ERROR] [FILES <file>...])
# Before <target> builds, scans its C++ sources (and FILES, such as headers with stages in them)
# for `co_yield` of a braced temporary or of a conditional expression. Each finding is printed
# as `<file>:<line>: warning: plumb: ...`; with ERROR the build fails on one. Rescanned whenever
# a scanned file changes, and on every build while something is found.
function(plumb_check_co_yield target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "ERROR" "" "FILES")
  if(NOT TARGET ${target})
    message(FATAL_ERROR "plumb_check_co_yield: ${target} is not a target")
  endif()
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(files "")
  foreach(source IN LISTS sources arg_FILES)
    if(source MATCHES "^\\$<" OR NOT source MATCHES "\\.(c|cc|cpp|cxx|c\\+\\+|h|hh|hpp|hxx|ipp|tpp)$")
      continue()  # generator expressions and non-C++ sources
    endif()
    cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY "${source_dir}" NORMALIZE OUTPUT_VARIABLE path)
    list(APPEND files "${path}")
  endforeach()
  get_property(script GLOBAL PROPERTY PLUMB_SCAN_CO_YIELD_SCRIPT)
  set(base "${CMAKE_CURRENT_BINARY_DIR}/plumb_co_yield/${target}")
  list(JOIN files "\n" listing)
  file(CONFIGURE OUTPUT "${base}.files" CONTENT "${listing}\n")
  set(mode WARNING)
  if(arg_ERROR)
    set(mode ERROR)
  endif()
  add_custom_command(
    OUTPUT "${base}.stamp"
    COMMAND "${CMAKE_COMMAND}" "-DPLUMB_SCAN_LIST=${base}.files" "-DPLUMB_SCAN_MODE=${mode}"
            "-DPLUMB_SCAN_STAMP=${base}.stamp" -P "${script}"
    DEPENDS ${files} "${base}.files" "${script}"
    COMMENT "plumb: checking ${target} for co_yield forms that GCC 12 miscompiles"
    VERBATIM)
  add_custom_target(${target}_plumb_co_yield DEPENDS "${base}.stamp")
  add_dependencies(${target} ${target}_plumb_co_yield)
endfunction()
