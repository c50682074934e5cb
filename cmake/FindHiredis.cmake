# SPDX-License-Identifier: MIT
# FindHiredis: hiredis, the C client of Redis (Debian: libhiredis-dev), for plumb::redis.
# Debian's hiredis 0.14 ships no CMake package, so this module finds the header and the library
# and defines the imported target Hiredis::Hiredis. Sets Hiredis_FOUND and Hiredis_VERSION.
find_path(Hiredis_INCLUDE_DIR NAMES hiredis/hiredis.h)
find_library(Hiredis_LIBRARY NAMES hiredis)
if(Hiredis_INCLUDE_DIR AND EXISTS "${Hiredis_INCLUDE_DIR}/hiredis/hiredis.h")
  file(STRINGS "${Hiredis_INCLUDE_DIR}/hiredis/hiredis.h" hiredis_version_lines
       REGEX "^#define HIREDIS_(MAJOR|MINOR|PATCH) [0-9]+")
  foreach(part MAJOR MINOR PATCH)
    string(REGEX REPLACE ".*#define HIREDIS_${part} ([0-9]+).*" "\\1" hiredis_${part} "${hiredis_version_lines}")
  endforeach()
  set(Hiredis_VERSION "${hiredis_MAJOR}.${hiredis_MINOR}.${hiredis_PATCH}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Hiredis REQUIRED_VARS Hiredis_LIBRARY Hiredis_INCLUDE_DIR
                                  VERSION_VAR Hiredis_VERSION)
if(Hiredis_FOUND AND NOT TARGET Hiredis::Hiredis)
  add_library(Hiredis::Hiredis UNKNOWN IMPORTED)
  set_target_properties(Hiredis::Hiredis PROPERTIES IMPORTED_LOCATION "${Hiredis_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${Hiredis_INCLUDE_DIR}")
endif()
mark_as_advanced(Hiredis_INCLUDE_DIR Hiredis_LIBRARY)
