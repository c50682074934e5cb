# SPDX-License-Identifier: MIT
# Checks that every C++ code block of a markdown document compiles as pasted (a CTest driver):
#
#   cmake -DDOC=<file.md> -DROOT=<source dir> -DCOMPILER=<c++> -DWORK=<dir> -P check_snippets.cmake
#
# Each ```cpp block is one of:
#   - complete: compiled on its own (-std=c++20 -fsyntax-only, warnings as errors) with plumb's
#     include directory; it must include what it uses;
#   - a fragment of a named file, marked (visibly, for the reader too) by the last line before
#     the block ending in "(fragment of [PATH](LINK)):" with PATH from the repository's root:
#       The stage (fragment of [examples/tutorial.cpp](../examples/tutorial.cpp)):
#     its text (whitespace aside) must appear in that file, which is compiled elsewhere (an
#     example, a test).
# Fails naming every block (document, line) that does not.

cmake_minimum_required(VERSION 3.25)

foreach(var DOC ROOT COMPILER WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_snippets.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ "${DOC}" text)
file(MAKE_DIRECTORY "${WORK}")
get_filename_component(doc_name "${DOC}" NAME_WE)

# Whitespace runs as one space: a fragment may be indented or wrapped differently.
function(normalize out value)
  string(REGEX REPLACE "[ \t\r\n]+" " " value "${value}")
  string(STRIP "${value}" value)
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

set(fence "```cpp\n")
set(failures 0)
set(checked 0)
set(offset 0)
string(LENGTH "${text}" length)
while(TRUE)
  string(SUBSTRING "${text}" ${offset} -1 rest)
  string(FIND "${rest}" "${fence}" found)
  if(found EQUAL -1)
    break()
  endif()
  math(EXPR start "${offset} + ${found}")
  math(EXPR body_start "${start} + 7")
  string(SUBSTRING "${text}" ${body_start} -1 after)
  # The closing fence: ``` at the start of a line, after the block's indentation (a block inside
  # a list item is indented).
  string(REGEX MATCH "(^|\n)[ ]*```" closing "${after}")
  if(closing STREQUAL "")
    message(SEND_ERROR "${DOC}: a ```cpp block is never closed")
    break()
  endif()
  string(FIND "${after}" "${closing}" end)
  string(SUBSTRING "${after}" 0 ${end} body)
  string(LENGTH "${closing}" closing_length)
  math(EXPR offset "${body_start} + ${end} + ${closing_length}")

  # Where the block is, for the messages: its line number.
  string(SUBSTRING "${text}" 0 ${start} before)
  string(REGEX MATCHALL "\n" newlines "${before}")
  list(LENGTH newlines line)
  math(EXPR line "${line} + 1")
  math(EXPR checked "${checked} + 1")

  # The marker, if any: the last non-blank line before the fence.
  string(REGEX REPLACE "[ \t\r\n]+$" "" before "${before}")
  string(FIND "${before}" "\n" last_newline REVERSE)
  math(EXPR last_line_start "${last_newline} + 1")
  string(SUBSTRING "${before}" ${last_line_start} -1 previous)
  if(previous MATCHES "\\(fragment of \\[([^]]+)\\]\\([^)]*\\)\\):$")
    set(source "${ROOT}/${CMAKE_MATCH_1}")
    if(NOT EXISTS "${source}")
      message("${DOC}:${line}: the block is marked as a fragment of ${CMAKE_MATCH_1}, which does not exist")
      math(EXPR failures "${failures} + 1")
      continue()
    endif()
    file(READ "${source}" whole)
    normalize(whole "${whole}")
    normalize(part "${body}")
    string(FIND "${whole}" "${part}" inside)
    if(inside EQUAL -1)
      message("${DOC}:${line}: the block is marked as a fragment of ${CMAKE_MATCH_1}, but that file "
              "does not contain it (whitespace aside); copy the code from the file again")
      math(EXPR failures "${failures} + 1")
    endif()
    continue()
  endif()

  set(file "${WORK}/${doc_name}_line${line}.cpp")
  file(WRITE "${file}" "${body}")
  execute_process(
    COMMAND "${COMPILER}" -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I "${ROOT}/include" "${file}"
    RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT status EQUAL 0)
    message("${DOC}:${line}: the block does not compile as pasted (${file}); make it complete, or "
            "end the line before it with (fragment of [PATH](LINK)): and keep it in that file:\n${output}")
    math(EXPR failures "${failures} + 1")
  endif()
endwhile()

if(failures GREATER 0)
  message(FATAL_ERROR "${DOC}: ${failures} of ${checked} C++ blocks fail (above)")
endif()
message(STATUS "${DOC}: ${checked} C++ blocks compile as pasted or are fragments of a checked file")
