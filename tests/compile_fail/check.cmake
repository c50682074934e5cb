# Builds one compile-fail target and checks the outcome against its source's expectations:
#   // expect-error: <regex>   (one or more) the build must fail and every regex must match
#   // expect-success          the build must succeed (a control for the harness itself)
# Usage: cmake -DBUILD_DIR=... -DTARGET=... -DSOURCE=... -P check.cmake
file(STRINGS ${SOURCE} expect_errors REGEX "^// expect-error: ")
file(STRINGS ${SOURCE} expect_success REGEX "^// expect-success")
if(NOT expect_errors AND NOT expect_success)
  message(FATAL_ERROR "${SOURCE}: no // expect-error: or // expect-success line")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)

if(expect_success)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${TARGET} was expected to build but failed:\n${output}")
  endif()
  message(STATUS "${TARGET}: built as expected")
  return()
endif()

if(result EQUAL 0)
  message(FATAL_ERROR "${TARGET} was expected to fail to compile, but it built")
endif()
foreach(line ${expect_errors})
  string(REGEX REPLACE "^// expect-error: " "" pattern "${line}")
  if(NOT output MATCHES "${pattern}")
    message(FATAL_ERROR "${TARGET} failed, but its output lacks /${pattern}/:\n${output}")
  endif()
endforeach()
message(STATUS "${TARGET}: failed as expected with every expected message")
