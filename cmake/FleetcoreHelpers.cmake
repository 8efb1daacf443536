# The two helpers every CMakeLists.txt in the tree uses.
#
#   fleetcore_library(NAME fleetcore_x SRCS a.cc b.cc [HDRS ...] DEPS ... [PUBLIC_DEPS ...])
#   fleetcore_test(NAME x_test SRCS x_test.cc DEPS ... LABELS unit|pg|e2e [PG])
#   fleetcore_test_objects(NAME x_suite SRCS x_conformance_test.cc DEPS ...)
#
# Libraries are static, compiled with warnings as errors, and linked PRIVATE unless a
# public header needs the dependency. Tests are GoogleTest binaries registered with
# CTest under a label so `ctest -L unit` gives the fast loop.

# Designated initializers that leave members at their defaults are idiomatic C++20.
set(FLEETCORE_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter -Wno-missing-field-initializers)
# GCC 12 at -O3 reports -Wrestrict inside std::string's own code (GCC bug 105651).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND FLEETCORE_WARNINGS -Wno-restrict)
endif()
if(FLEETCORE_WERROR)
  list(APPEND FLEETCORE_WARNINGS -Werror)
endif()

# Precompiled headers, in the GCC build only: the standard library, Abseil, nlohmann-json,
# gRPC and Protobuf (and GoogleTest for tests) that most files include, parsed once per build
# instead of once per file. A test file compiles about 30% faster with them, a library file
# about 12% (they are heavier in code generation). Two are made, the libraries' (the build
# type's flags) and the tests' (-O0), and every target reuses one of them: a header GCC
# precompiled is only used with the flags it was made with, so every target gets -pthread
# (_REENTRANT must match), and a mismatch is an error (-Winvalid-pch under -Werror), not a
# silent slowdown. The clang trees (fuzz, sanitize) go without, and so still catch a file
# that forgot an #include the header gives it.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT FLEETCORE_FUZZ AND NOT FLEETCORE_SANITIZE)
  set(FLEETCORE_PCH ON)
  # From a precompiled header, GCC 12 no longer takes the standard library's inlined code for
  # a system header's in its -O3 warnings, and reports std::string's false positives of the
  # kind above (bounds of a literal pushed into a vector<string>, of a string's copy; the
  # same files compile clean with the headers included as text).
  if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    list(APPEND FLEETCORE_WARNINGS -Wno-array-bounds -Wno-stringop-overflow
         -Wno-stringop-overread)
  endif()
  # Boost 1.74's asio/awaitable.hpp lacks #include <utility> under GCC 12 in C++20: the
  # header comes first in the precompiled one (as -include utility does without it).
  set(FLEETCORE_PCH_HEADERS
      <utility> <algorithm> <functional> <map> <memory> <mutex> <optional> <string> <vector>
      <absl/status/statusor.h> <absl/strings/str_cat.h> <absl/time/time.h>
      <google/protobuf/message.h> <grpcpp/grpcpp.h> <nlohmann/json.hpp>)
  file(CONFIGURE OUTPUT "${PROJECT_BINARY_DIR}/pch/anchor.cc" CONTENT "// precompiled headers\n")
  foreach(kind lib test)
    add_library(fleetcore_pch_${kind} OBJECT "${PROJECT_BINARY_DIR}/pch/anchor.cc")
    target_compile_options(fleetcore_pch_${kind} PRIVATE ${FLEETCORE_WARNINGS} -pthread)
    target_link_libraries(fleetcore_pch_${kind} PRIVATE absl::status absl::statusor absl::strings
                          absl::time gRPC::grpc++ protobuf::libprotobuf nlohmann_json::nlohmann_json)
  endforeach()
  target_precompile_headers(fleetcore_pch_lib PRIVATE ${FLEETCORE_PCH_HEADERS})
  target_compile_options(fleetcore_pch_test PRIVATE -O0)
  target_link_libraries(fleetcore_pch_test PRIVATE GTest::gtest GTest::gmock)
  target_precompile_headers(fleetcore_pch_test PRIVATE ${FLEETCORE_PCH_HEADERS}
                            <gmock/gmock.h> <gtest/gtest.h>)
endif()

# Unity batches, in the same GCC tree: a library's (or a program's) sources are compiled six
# at a time as one file, so the inline and template code they share (nlohmann-json, Protobuf
# accessors, StatusOr, gRPC's handlers) is optimized once per batch instead of once per file:
# the gateway's service library, 10 files, 129 s one by one and 63 s as one; a clean build
# 1,273 s instead of 1,434 (four jobs, 2 cores). Files of a library must then not define the
# same name in their anonymous namespaces. A batch is rebuilt whole when one of its files
# changes; a file slow on its own (Beast's WebSocket) is left out of the batches
# (SKIP_UNITY_BUILD_INCLUSION). -DFLEETCORE_UNITY=OFF compiles file by file. GCC's
# -Wsubobject-linkage (a class with a member of an anonymous namespace's type) is meant for
# headers, and a batch includes its .cc files as headers: off in the batches.
if(FLEETCORE_PCH)
  option(FLEETCORE_UNITY "Compile each library's sources in batches (unity build)" ON)
endif()

function(fleetcore_apply_unity target)
  if(FLEETCORE_PCH AND FLEETCORE_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 6)
    target_compile_options(${target} PRIVATE -Wno-subobject-linkage)
  endif()
endfunction()

# KIND: lib (the build type's optimization) or test (-O0, see below).
function(fleetcore_apply_options target)
  set(kind lib)
  if(ARGC GREATER 1)
    set(kind ${ARGV1})
  endif()
  target_compile_options(${target} PRIVATE ${FLEETCORE_WARNINGS})
  if(kind STREQUAL "test" AND NOT FLEETCORE_FUZZ)
    target_compile_options(${target} PRIVATE -O0)
  endif()
  if(FLEETCORE_PCH)
    target_compile_options(${target} PRIVATE -pthread)
    target_precompile_headers(${target} REUSE_FROM fleetcore_pch_${kind})
  else()
    # Boost 1.74's asio/awaitable.hpp lacks #include <utility> under GCC 12 in C++20.
    target_compile_options(${target} PRIVATE "SHELL:-include utility")
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

function(fleetcore_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;HDRS;DEPS;PUBLIC_DEPS" ${ARGN})
  if(ARG_SRCS)
    add_library(${ARG_NAME} STATIC ${ARG_SRCS} ${ARG_HDRS})
    fleetcore_apply_options(${ARG_NAME})
    fleetcore_apply_unity(${ARG_NAME})
    target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} PUBLIC ${ARG_PUBLIC_DEPS})
  else()
    add_library(${ARG_NAME} INTERFACE ${ARG_HDRS})
    target_include_directories(${ARG_NAME} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${ARG_NAME} INTERFACE ${ARG_DEPS} ${ARG_PUBLIC_DEPS})
  endif()
endfunction()

# A shipped program: installed to bin/ and part of the `fleetcore-binaries` target that the
# container image builds.
function(fleetcore_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  fleetcore_apply_options(${ARG_NAME})
  fleetcore_apply_unity(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  install(TARGETS ${ARG_NAME} RUNTIME DESTINATION bin)
  set_property(GLOBAL APPEND PROPERTY FLEETCORE_BINARIES ${ARG_NAME})
endfunction()

# A test's own code is compiled without optimization: GoogleTest's and gMock's templates cost
# twice the compile time at -O3 and gain nothing, while the libraries under test (and the
# benchmarks and fuzz targets) keep the build type's flags. Tests were 40% of the build.
function(fleetcore_apply_test_options target)
  fleetcore_apply_options(${target} test)
endfunction()

# Test sources that more than one test binary runs (a conformance suite run against the fake
# store and against Postgres), compiled once. Linking the object library adds its objects, so
# every TEST in it registers in each binary.
function(fleetcore_test_objects)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${ARG_NAME} OBJECT ${ARG_SRCS})
  fleetcore_apply_test_options(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS} GTest::gtest GTest::gmock)
endfunction()

# LABELS: unit (in-process, fakes only), pg (needs the test Postgres), e2e (real binaries).
# Tests labelled pg or e2e require the CTest fixture that starts a throwaway Postgres
# (tests/harness), so `ctest -L pg` starts it by itself.
function(fleetcore_test)
  cmake_parse_arguments(ARG "" "NAME;LABEL;TIMEOUT" "SRCS;DEPS;ENV" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  fleetcore_apply_test_options(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set(env
      "FLEETCORE_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
      "FLEETCORE_BINARY_DIR=${PROJECT_BINARY_DIR}"
      ${ARG_ENV})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT})
  if(ARG_LABEL STREQUAL "pg" OR ARG_LABEL STREQUAL "e2e")
    list(APPEND env "FLEETCORE_TEST_PG_ENV=${FLEETCORE_TEST_PG_ENV}")
    set_tests_properties(${ARG_NAME} PROPERTIES FIXTURES_REQUIRED postgres)
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES ENVIRONMENT "${env}")
endfunction()

# A libFuzzer target: SRCS define LLVMFuzzerTestOneInput.
#  - In every build: NAME_regression replays each file of CORPUS (a folder of seeds kept in
#    the repository) through the target, as a unit test, so it cannot rot.
#  - With -DFLEETCORE_FUZZ=ON and clang (./fleetcore fuzz NAME): NAME is a real libFuzzer
#    binary with AddressSanitizer and UBSan.
function(fleetcore_fuzzer)
  cmake_parse_arguments(ARG "" "NAME;CORPUS" "SRCS;DEPS" ${ARGN})
  if(FLEETCORE_FUZZ)
    add_executable(${ARG_NAME} ${ARG_SRCS})
    fleetcore_apply_options(${ARG_NAME})
    target_compile_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
    target_link_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${ARG_NAME}_regression ${ARG_SRCS} ${PROJECT_SOURCE_DIR}/common/testing/fuzz_replay_main.cc)
    fleetcore_apply_options(${ARG_NAME}_regression)
    target_link_libraries(${ARG_NAME}_regression PRIVATE ${ARG_DEPS})
    add_test(NAME ${ARG_NAME}_regression COMMAND ${ARG_NAME}_regression ${ARG_CORPUS})
    set_tests_properties(${ARG_NAME}_regression PROPERTIES LABELS unit TIMEOUT 120)
  endif()
endfunction()
