# SPDX-License-Identifier: MIT
# Runs cmake/plumbScanCoYield.cmake on files and checks what it reports (a CTest driver):
#   -DSCAN=<plumbScanCoYield.cmake> -DWORK=<scratch dir> and one of
#   -DFIXTURE=<file>   every line marked `// finds: <reason>` must be reported with that reason,
#                      and no other line; ERROR mode must fail on it. A file without marks
#                      must give no finding, and its clean scan must leave the stamp.
#   -DROOT=<plumb's source dir>   plumb's own headers, examples, tests, benchmarks and docs
#                      (but tests/compilers/unsafe.cpp) must give no finding.
cmake_minimum_required(VERSION 3.25)

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
if(DEFINED FIXTURE)
  set(files "${FIXTURE}")
else()
  file(GLOB_RECURSE files
       "${ROOT}/include/*.hpp" "${ROOT}/examples/*.cpp" "${ROOT}/examples/*.hpp"
       "${ROOT}/tests/*.cpp" "${ROOT}/tests/*.hpp" "${ROOT}/benchmarks/*.cpp"
       "${ROOT}/benchmarks/*.hpp" "${ROOT}/docs/*.md" "${ROOT}/README.md")
  list(FILTER files EXCLUDE REGEX "/tests/compilers/unsafe\\.cpp$")
  list(LENGTH files count)
  if(count LESS 50)
    message(FATAL_ERROR "only ${count} files found under ${ROOT}: wrong ROOT?")
  endif()
endif()
list(JOIN files "\n" listing)
file(WRITE "${WORK}/files" "${listing}\n")

function(scan mode out_output out_status)
  execute_process(COMMAND "${CMAKE_COMMAND}" "-DPLUMB_SCAN_LIST=${WORK}/files"
                          "-DPLUMB_SCAN_MODE=${mode}" "-DPLUMB_SCAN_STAMP=${WORK}/stamp" -P "${SCAN}"
                  OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE status)
  set(${out_output} "${output}" PARENT_SCOPE)
  set(${out_status} "${status}" PARENT_SCOPE)
endfunction()

scan(WARNING output status)
message("${output}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "the scan failed in WARNING mode (${status})")
endif()

# What must be found: `<file>:<line>: <reason>` for every marked line.
set(expected "")
foreach(file IN LISTS files)
  file(READ "${file}" rest)
  set(number 1)
  while(TRUE)
    string(FIND "${rest}" "// finds: " pos)
    if(pos EQUAL -1)
      break()
    endif()
    string(SUBSTRING "${rest}" 0 ${pos} before)
    string(REGEX MATCHALL "\n" newlines "${before}")
    list(LENGTH newlines newline_count)
    math(EXPR number "${number} + ${newline_count}")
    math(EXPR pos "${pos} + 10")
    string(SUBSTRING "${rest}" ${pos} -1 rest)
    string(REGEX MATCH "^[a-z ]+" reason "${rest}")
    string(STRIP "${reason}" reason)
    list(APPEND expected "${file}:${number}: ${reason}")
  endwhile()
endforeach()
string(REGEX MATCHALL "[^\n]*:[0-9]+: warning: plumb: co_yield of a [a-z ]+:" found_lines "${output}")
set(found "")
foreach(line IN LISTS found_lines)
  string(REGEX REPLACE "^(.*:[0-9]+): warning: plumb: co_yield of a ([a-z ]+):$" "\\1: \\2" line "${line}")
  list(APPEND found "${line}")
endforeach()
list(SORT expected)
list(SORT found)
if(NOT found STREQUAL expected)
  string(REPLACE ";" "\n  " expected_text "${expected}")
  string(REPLACE ";" "\n  " found_text "${found}")
  message(FATAL_ERROR "expected findings:\n  ${expected_text}\nfound:\n  ${found_text}")
endif()
list(LENGTH found count)

if(count GREATER 0)
  if(EXISTS "${WORK}/stamp")
    message(FATAL_ERROR "a scan with findings left its stamp: the next build would not warn again")
  endif()
  scan(ERROR output status)
  if(status EQUAL 0 OR NOT output MATCHES "plumb: ${count} co_yield form")
    message(FATAL_ERROR "ERROR mode did not fail on ${count} findings:\n${output}")
  endif()
elseif(NOT EXISTS "${WORK}/stamp")
  message(FATAL_ERROR "a clean scan did not leave its stamp")
endif()
message("plumb co_yield scan: ${count} finding(s), as expected")
