# SPDX-License-Identifier: MIT
# Configures tests/compilers/consumer with a given compiler and checks the GCC 12 warning (a CTest
# driver; cmake/plumbCompilers.cmake):
#   -DCOMPILER=<name> -DGENERATOR=<CMake generator> -DWORK=<scratch dir> -DWARNINGS=<0|1>
#   -DPLUMB=<plumb's build tree, for find_package> or -DSUBDIRECTORY=<plumb's source dir>
#   [-DSILENCE=ON]   configure with -DPLUMB_GCC12_WARNING=OFF
#   [-DFINDINGS=<n>] then build the scan target app_plumb_co_yield: n findings, and with
#                    ERROR (-DCONSUMER_SCAN_ERROR=ON) a failed build
# The configure output must hold the warning exactly WARNINGS times. Without COMPILER on the
# machine it prints "plumb-test-skipped" (the test's SKIP_REGULAR_EXPRESSION).
cmake_minimum_required(VERSION 3.25)

find_program(compiler_path "${COMPILER}")
if(NOT compiler_path)
  message("plumb-test-skipped: ${COMPILER} is not installed")
  return()
endif()

set(args -G "${GENERATOR}" -DCMAKE_CXX_COMPILER=${compiler_path})
if(DEFINED PLUMB)
  list(APPEND args "-Dplumb_DIR=${PLUMB}")
else()
  list(APPEND args "-DPLUMB_CONSUMER_SUBDIRECTORY=${SUBDIRECTORY}")
endif()
if(SILENCE)
  list(APPEND args -DPLUMB_GCC12_WARNING=OFF)
endif()

function(configure build extra)
  file(REMOVE_RECURSE "${build}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}/consumer" -B "${build}"
                          ${args} ${extra}
                  OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE status)
  message("${output}")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "configuring the consumer with ${COMPILER} failed")
  endif()
  set(output "${output}" PARENT_SCOPE)
endfunction()

configure("${WORK}/warn" "")
string(REGEX MATCHALL "plumb: GCC [0-9.]+ miscompiles" warnings "${output}")
list(LENGTH warnings count)
if(NOT count EQUAL WARNINGS)
  message(FATAL_ERROR "${COMPILER}: the GCC 12 warning came ${count} times, expected ${WARNINGS}")
endif()
if(count GREATER 0)
  foreach(part "Scored scored{job.id};" "co_yield std::move(scored);" "GCC 12 and co_yield"
               "-DPLUMB_GCC12_WARNING=OFF" "plumb_check_co_yield")
    string(FIND "${output}" "${part}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "the warning does not say '${part}'")
    endif()
  endforeach()
endif()

if(DEFINED FINDINGS)
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK}/warn" --target app_plumb_co_yield
                  OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE status)
  message("${output}")
  string(REGEX MATCHALL "unsafe\\.cpp:[0-9]+: warning: plumb: co_yield" found "${output}")
  list(LENGTH found count)
  if(NOT status EQUAL 0 OR NOT count EQUAL FINDINGS)
    message(FATAL_ERROR "the scan target: status ${status}, ${count} findings, expected 0 and ${FINDINGS}")
  endif()
  configure("${WORK}/error" -DCONSUMER_SCAN_ERROR=ON)
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK}/error" --target app_plumb_co_yield
                  OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE status)
  message("${output}")
  if(status EQUAL 0)
    message(FATAL_ERROR "plumb_check_co_yield(app ERROR) did not fail the build")
  endif()
endif()
message("plumb consumer with ${COMPILER}: ${WARNINGS} warning(s), as expected")
