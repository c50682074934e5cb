# Compiles one compile-fail source and checks the outcome against its expectations:
#   // expect-error: <regex>   (one or more) the compile must fail and every regex must match
#   // expect-success          the compile must succeed (a control for the harness itself)
#   // several-errors: <why>   the compile may report more than one error (a third-party
#                              library's own check); otherwise it must report exactly one, so
#                              that a broken rule never brings a cascade of errors after it
# Usage: cmake -DCOMMANDS=<build>/compile_commands.json -DSOURCE=<source> -P check.cmake
# The compile command is the build's own (flags, warnings as errors, include paths), run
# directly: sources that must fail stop at -fsyntax-only, controls compile to their object.
file(STRINGS ${SOURCE} expect_errors REGEX "^// expect-error: ")
file(STRINGS ${SOURCE} expect_success REGEX "^// expect-success")
file(STRINGS ${SOURCE} several_errors REGEX "^// several-errors: ")
if(NOT expect_errors AND NOT expect_success)
  message(FATAL_ERROR "${SOURCE}: no // expect-error: or // expect-success line")
endif()

file(READ ${COMMANDS} commands)
string(JSON count LENGTH "${commands}")
math(EXPR last "${count} - 1")
foreach(index RANGE ${last})
  string(JSON file GET "${commands}" ${index} file)
  if(file STREQUAL SOURCE)
    string(JSON command GET "${commands}" ${index} command)
    string(JSON directory GET "${commands}" ${index} directory)
    break()
  endif()
endforeach()
if(NOT DEFINED command)
  message(FATAL_ERROR "${SOURCE} has no entry in ${COMMANDS}: reconfigure the build")
endif()
separate_arguments(command UNIX_COMMAND "${command}")
if(expect_errors)
  list(APPEND command -fsyntax-only)
endif()
execute_process(COMMAND ${command} WORKING_DIRECTORY ${directory}
                RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)

get_filename_component(name ${SOURCE} NAME_WE)
if(expect_success)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${name} was expected to compile but failed:\n${output}")
  endif()
  message(STATUS "${name}: compiled as expected")
  return()
endif()

if(result EQUAL 0)
  message(FATAL_ERROR "${name} was expected to fail to compile, but it compiled")
endif()
foreach(line ${expect_errors})
  string(REGEX REPLACE "^// expect-error: " "" pattern "${line}")
  if(NOT output MATCHES "${pattern}")
    message(FATAL_ERROR "${name} failed, but its output lacks /${pattern}/:\n${output}")
  endif()
endforeach()
if(NOT several_errors)
  string(REGEX MATCHALL ": error: " errors "${output}")
  list(LENGTH errors error_count)
  if(NOT error_count EQUAL 1)
    message(FATAL_ERROR "${name} failed with ${error_count} errors, one expected (a cascade after the rule's "
                        "own error):\n${output}")
  endif()
endif()
message(STATUS "${name}: failed as expected with every expected message, one error")
