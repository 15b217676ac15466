# cairn_subsystem(NAME DEPS <targets...>)
#
# One folder = one library target `cairn_<NAME>`. Files are found by suffix:
#   *.cc                     library sources
#   *_test.cc                unit tests -> one executable `cairn_<NAME>_test`, each test registered with ctest
#   *_bench.cc               Google Benchmark micro benchmarks -> `cairn_<NAME>_bench`
#   *_fuzz.cc                libFuzzer targets -> `fuzz_<file>` (only with CAIRN_FUZZ)
set(CAIRN_FUZZ_SECONDS 8 CACHE STRING "Seconds each fuzz target runs under ctest")
set(CAIRN_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
# Test sources: the code under test is built with the preset's flags, the test bodies
# themselves at -O1 in optimized builds (they are most of the build time at -O3, and gain nothing)
# and at -O0 under the sanitizers (GCC's UBSan instrumentation roughly doubles the optimizer's
# work on gtest's macro-heavy bodies; the instrumented checks are the same at -O0).
if(CAIRN_SANITIZE)
  set(CAIRN_TEST_OPTIONS ${CAIRN_WARNINGS} -O0)
else()
  set(CAIRN_TEST_OPTIONS ${CAIRN_WARNINGS} $<$<CONFIG:Release,RelWithDebInfo>:-O1>)
endif()

function(cairn_subsystem NAME)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  set(dir ${CMAKE_CURRENT_SOURCE_DIR})
  file(GLOB all_cc CONFIGURE_DEPENDS ${dir}/*.cc ${dir}/internal/*.cc)
  set(lib_cc "")
  set(test_cc "")
  set(bench_cc "")
  set(fuzz_cc "")
  foreach(f ${all_cc})
    if(f MATCHES "_test\\.cc$")
      list(APPEND test_cc ${f})
    elseif(f MATCHES "_bench\\.cc$")
      list(APPEND bench_cc ${f})
    elseif(f MATCHES "_fuzz\\.cc$")
      list(APPEND fuzz_cc ${f})
    else()
      list(APPEND lib_cc ${f})
    endif()
  endforeach()

  set(lib cairn_${NAME})
  if(lib_cc)
    add_library(${lib} STATIC ${lib_cc})
    target_include_directories(${lib} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${lib} PUBLIC ${ARG_DEPS})
    target_compile_options(${lib} PRIVATE ${CAIRN_WARNINGS})
  else()  # a header-only subsystem
    add_library(${lib} INTERFACE)
    target_include_directories(${lib} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${lib} INTERFACE ${ARG_DEPS})
  endif()

  if(test_cc AND NOT CAIRN_FUZZ)
    add_executable(${lib}_test ${test_cc})
    target_link_libraries(${lib}_test PRIVATE ${lib} GTest::gtest GTest::gmock GTest::gtest_main)
    target_compile_options(${lib}_test PRIVATE ${CAIRN_TEST_OPTIONS})
    gtest_discover_tests(${lib}_test DISCOVERY_TIMEOUT 60)
    # Labels `unit` and the subsystem's name on every discovered test (`ctest -L
    # stream`). gtest_discover_tests' PROPERTIES would split the list, so a small
    # include file, run after the discovered tests are added, sets them.
    set(labels_file ${CMAKE_CURRENT_BINARY_DIR}/${lib}_test_labels.cmake)
    file(WRITE ${labels_file}
         "foreach(test IN LISTS ${lib}_test_TESTS)\n"
         "  set_tests_properties(\"\${test}\" PROPERTIES LABELS \"unit;${NAME}\")\n"
         "endforeach()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${labels_file})
  endif()

  if(bench_cc AND CAIRN_BENCHMARKS AND NOT CAIRN_FUZZ AND NOT CAIRN_SANITIZE)
    add_executable(${lib}_bench ${bench_cc})
    target_link_libraries(${lib}_bench PRIVATE ${lib} benchmark::benchmark benchmark::benchmark_main)
    target_compile_options(${lib}_bench PRIVATE ${CAIRN_WARNINGS})
    # Smoke-run every micro benchmark on a tiny budget so none can rot.
    add_test(NAME ${lib}_bench_smoke COMMAND ${lib}_bench --benchmark_min_time=0.001)
    set_tests_properties(${lib}_bench_smoke PROPERTIES LABELS "bench_smoke")
  endif()

  if(fuzz_cc AND CAIRN_FUZZ)
    foreach(f ${fuzz_cc})
      get_filename_component(base ${f} NAME_WE)
      add_executable(fuzz_${base} ${f})
      target_link_libraries(fuzz_${base} PRIVATE ${lib})
      target_link_options(fuzz_${base} PRIVATE -fsanitize=fuzzer)
      target_compile_options(fuzz_${base} PRIVATE ${CAIRN_WARNINGS})
      # A short run of each target in CI; crashes leave their input in fuzz-artifacts/.
      file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz-artifacts ${CMAKE_BINARY_DIR}/fuzz-corpus/${base})
      add_test(NAME fuzz_${base}
               COMMAND fuzz_${base} -max_total_time=${CAIRN_FUZZ_SECONDS} -timeout=10
                       -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz-artifacts/
                       ${CMAKE_BINARY_DIR}/fuzz-corpus/${base})
      set_tests_properties(fuzz_${base} PROPERTIES LABELS "fuzz")
    endforeach()
  endif()
endfunction()
