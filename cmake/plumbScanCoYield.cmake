# SPDX-License-Identifier: MIT
# Finds the two `co_yield` forms that GCC 12 miscompiles (it destroys the yielded temporary
# twice: a double free, or silent corruption when the object owns no heap memory yet):
#
#   co_yield Scored{job.id};            a braced temporary (aggregate initialization)
#   co_yield ready ? a : make_b();      a conditional expression
#
# The safe form names the packet first: `Scored scored{job.id}; co_yield std::move(scored);`.
# A text scan, so it also flags braced temporaries that GCC 12 happens to handle (classes with
# constructors, such as std::pair); the safe form is right for those too. It cannot tell
# `co_yield Scored(job.id)` (parenthesized aggregate initialization, also miscompiled) from a
# function call, and does not try. See docs/guide.md, "GCC 12 and co_yield".
#
#   cmake -DPLUMB_SCAN_LIST=<file listing one path per line> [-DPLUMB_SCAN_MODE=ERROR]
#         [-DPLUMB_SCAN_STAMP=<file written when nothing was found>] -P plumbScanCoYield.cmake
#
# Each finding is one line on stderr, `<file>:<line>: warning: plumb: ...` (as a compiler's, so
# IDEs link it). A line containing `plumb-scan: ignore` is skipped (docs that show the bug), and
# so are `//` comments (not `///` documentation comments: their examples are code) and string
# literals of C++ files. With PLUMB_SCAN_MODE=ERROR a finding fails the script. Markdown files
# are scanned too (their code blocks and `code` spans).
cmake_minimum_required(VERSION 3.25)

if(NOT DEFINED PLUMB_SCAN_LIST)
  message(FATAL_ERROR "plumbScanCoYield.cmake: pass -DPLUMB_SCAN_LIST=<file of paths>")
endif()
file(STRINGS "${PLUMB_SCAN_LIST}" plumb_scan_files)

# Sets ${out} to the reason `co_yield <expression>` is unsafe with GCC 12, or to "". Measured
# with GCC 12.2 and AddressSanitizer: an aggregate built with braces anywhere in the expression
# (`Scored{id}`, `{id}`, `copy(Scored{id})`, `std::move(Scored{id})`) is destroyed twice, and so
# is the result of a conditional expression that makes a temporary (`ready ? a : make_b()`);
# a conditional inside a call's arguments (`std::move(ready ? a : b)`) is not.
function(plumb_scan_classify expression out)
  # String and character literals cannot hold the braces and operators looked for below.
  string(REGEX REPLACE "\"([^\"\\\\]|\\\\.)*\"" "\"\"" expression "${expression}")
  string(REGEX REPLACE "'([^'\\\\]|\\\\.)*'" "''" expression "${expression}")
  # A `{` not opening a lambda's body (after `]` or `)`) is a braced initializer.
  string(REGEX REPLACE "(\\]|\\))[ \t\n]*{" "\\1 #" braces "${expression}")
  if(braces MATCHES "{")
    set(${out} "co_yield of a braced temporary" PARENT_SCOPE)
    return()
  endif()
  # The expression's top level: drop a pair of parentheses around all of it, and the inside of
  # every other pair (call arguments).
  string(STRIP "${expression}" top)
  while(TRUE)
    set(collapsed "${top}")
    while(collapsed MATCHES "\\([^()]*\\)")
      string(REGEX REPLACE "\\([^()]*\\)" "@" collapsed "${collapsed}")
    endwhile()
    if(collapsed STREQUAL "@" AND top MATCHES "^\\(.*\\)$")
      string(REGEX REPLACE "^\\((.*)\\)$" "\\1" top "${top}")
      string(STRIP "${top}" top)
    else()
      break()
    endif()
  endwhile()
  if(collapsed MATCHES "\\?")
    set(${out} "co_yield of a conditional expression" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

set(plumb_found 0)
foreach(file IN LISTS plumb_scan_files)
  if(file STREQUAL "")
    continue()
  endif()
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "plumbScanCoYield.cmake: ${file} does not exist")
  endif()
  set(markdown FALSE)
  if(file MATCHES "\\.(md|markdown)$")
    set(markdown TRUE)
  endif()
  file(READ "${file}" rest)
  set(line 1)
  set(line_start "")  # the current line, from its start up to the scan position
  while(TRUE)
    string(FIND "${rest}" "co_yield" pos)
    if(pos EQUAL -1)
      break()
    endif()
    string(SUBSTRING "${rest}" 0 ${pos} before)
    math(EXPR after_pos "${pos} + 8")
    string(SUBSTRING "${rest}" ${after_pos} -1 rest)
    # Advance the line count and the current line's text.
    string(REGEX MATCHALL "\n" newlines "${before}")
    list(LENGTH newlines newline_count)
    if(newline_count GREATER 0)
      math(EXPR line "${line} + ${newline_count}")
      string(REGEX REPLACE ".*\n" "" line_start "${before}")
    else()
      string(APPEND line_start "${before}")
    endif()
    set(prefix "${line_start}")
    string(APPEND line_start "co_yield")

    # A word on its own: not part of a longer identifier.
    if(prefix MATCHES "[A-Za-z0-9_]$" OR NOT rest MATCHES "^[ \t\n{(]")
      continue()
    endif()
    string(FIND "${rest}" "\n" line_end)
    string(SUBSTRING "${rest}" 0 ${line_end} line_end)
    if("${prefix}${line_end}" MATCHES "plumb-scan: ignore")
      continue()
    endif()
    if(NOT markdown)
      # In a // comment (not a /// documentation comment, whose examples are code too), or inside a
      # string literal (an odd number of quotes before it).
      string(REGEX REPLACE "\\\\." "" unescaped "${prefix}")
      string(REGEX REPLACE "[^\"]" "" quotes "${unescaped}")
      string(LENGTH "${quotes}" quote_count)
      math(EXPR odd "${quote_count} % 2")
      string(REPLACE "///" "" undocumented "${prefix}")
      if(undocumented MATCHES "//" OR odd)
        continue()
      endif()
    endif()
    # The expression: up to `;` (or, in Markdown, the end of a `code` span or paragraph).
    string(SUBSTRING "${rest}" 0 400 expression)
    string(FIND "${expression}" ";" end_pos)
    string(SUBSTRING "${expression}" 0 ${end_pos} expression)
    if(markdown)
      foreach(end IN ITEMS "`" "\n\n")
        string(FIND "${expression}" "${end}" end_pos)
        string(SUBSTRING "${expression}" 0 ${end_pos} expression)
      endforeach()
    endif()
    plumb_scan_classify("${expression}" reason)
    if(reason)
      math(EXPR plumb_found "${plumb_found} + 1")
      message(NOTICE "${file}:${line}: warning: plumb: ${reason}: GCC 12 may destroy it twice "
                     "(heap corruption). Name it first: `T value{...}; co_yield std::move(value);` "
                     "(docs/guide.md, \"GCC 12 and co_yield\")")
    endif()
  endwhile()
endforeach()

if(plumb_found GREATER 0)
  if(PLUMB_SCAN_MODE STREQUAL "ERROR")
    message(FATAL_ERROR "plumb: ${plumb_found} co_yield form(s) that GCC 12 miscompiles (listed above)")
  endif()
elseif(DEFINED PLUMB_SCAN_STAMP)
  # Only a clean scan is remembered: until the code is fixed, every build warns again.
  file(TOUCH "${PLUMB_SCAN_STAMP}")
endif()
