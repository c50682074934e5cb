# SPDX-License-Identifier: MIT
# Checks that plumb's internal layers include only downwards (a CTest driver):
#   -DROOT=<plumb's include/plumb directory>
# Each header of include/plumb/detail/<layer>/ may include the public headers and the headers
# of its own layer and of the layers below it, in the order of `layers` (lowest first).
cmake_minimum_required(VERSION 3.25)

set(layers core codec buffer sync stats link order run worker exec graph service redis)

file(GLOB detail_dirs LIST_DIRECTORIES true RELATIVE "${ROOT}/detail" "${ROOT}/detail/*")
foreach(dir IN LISTS detail_dirs)
  if(IS_DIRECTORY "${ROOT}/detail/${dir}" AND NOT dir IN_LIST layers)
    message(SEND_ERROR "include/plumb/detail/${dir}/ is not a known layer; add it to `layers` "
                       "in ${CMAKE_CURRENT_LIST_FILE}, in its place")
  endif()
endforeach()
file(GLOB loose "${ROOT}/detail/*.hpp")
if(loose)
  message(SEND_ERROR "headers outside any layer: ${loose}; move each into its layer's folder")
endif()

set(checked 0)
foreach(layer IN LISTS layers)
  list(FIND layers ${layer} rank)
  file(GLOB headers "${ROOT}/detail/${layer}/*.hpp")
  foreach(header IN LISTS headers)
    math(EXPR checked "${checked} + 1")
    file(STRINGS "${header}" includes REGEX "^#include <plumb/detail/")
    foreach(line IN LISTS includes)
      string(REGEX MATCH "<plumb/detail/([a-z_]+)/" _ "${line}")
      set(target ${CMAKE_MATCH_1})
      list(FIND layers "${target}" target_rank)
      if(target_rank GREATER rank OR target_rank EQUAL -1)
        file(RELATIVE_PATH name "${ROOT}/.." "${header}")
        message(SEND_ERROR "${name} (layer ${layer}) includes ${line}: an include that points up "
                           "(or out of every layer); move the shared part down")
      endif()
    endforeach()
  endforeach()
endforeach()
if(checked LESS 20)
  message(FATAL_ERROR "only ${checked} headers found under ${ROOT}/detail: wrong ROOT?")
endif()
message(STATUS "${checked} headers in ${ROOT}/detail include only downwards")
