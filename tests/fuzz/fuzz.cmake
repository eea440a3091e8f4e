# libFuzzer targets. libFuzzer needs clang, so they are compiled with
# clang-19 directly (outside this project's compiler settings), with ASan
# and UBSan. Included from the top-level CMakeLists.txt, since the front
# end's fuzzer needs the generated parser sources of that directory.
#
# Each target gets a short, bounded run over its checked-in corpus as a
# test; any crash, leak, hang (over 10 s for one input) or sanitizer report
# fails it. New inputs go to a scratch directory in the build tree so the
# repository is not modified.
find_program(CLANG19 NAMES clang-19 HINTS /usr/lib/llvm-19/bin)
if(NOT CLANG19)
  message(FATAL_ERROR "clang-19 is needed for the fuzz targets (or configure with -DDLC_FUZZ=OFF)")
endif()
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)

# dlc_fuzzer(NAME SECONDS MAX_LEN CORPUS SOURCES... [FLAGS ...])
function(dlc_fuzzer name seconds max_len corpus)
  cmake_parse_arguments(F "" "" "SOURCES;FLAGS" ${ARGN})
  set(bin ${CMAKE_BINARY_DIR}/fuzz/${name})
  list(FILTER F_SOURCES INCLUDE REGEX "\\.c$")  # generated headers are not compiled
  add_custom_command(OUTPUT ${bin}
    COMMAND ${CLANG19} -std=c11 -D_GNU_SOURCE "-DDLC_VERSION=\"${PROJECT_VERSION}\""
            -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
            ${F_SOURCES} ${F_FLAGS} -o ${bin}
    DEPENDS ${F_SOURCES}
    COMMENT "Building the fuzzer ${name} with clang-19"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${bin})
  add_test(NAME ${name}
    COMMAND sh -c "rm -rf ${name}-work && mkdir ${name}-work && exec ${bin} -max_total_time=${seconds} -timeout=10 -rss_limit_mb=4096 -max_len=${max_len} -print_final_stats=1 ${name}-work ${corpus}"
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endfunction()

# The front end, the shape pass and the IR reader/printer round trip.
dlc_fuzzer(fuzz_frontend 30 4096 ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus
  SOURCES ${DLC_CORE_SRC} ${BISON_dl_parser_OUTPUTS} ${FLEX_dl_lexer_OUTPUTS}
          ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_frontend.c
  FLAGS -I${CMAKE_SOURCE_DIR} -I${GEN} -lm)
add_dependencies(fuzz_frontend dlccore)

# The safetensors loader: the runtime's sources alone.
dlc_fuzzer(fuzz_checkpoint 20 8192 ${CMAKE_SOURCE_DIR}/tests/fuzz/checkpoint-corpus
  SOURCES ${DLRT_SRC} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_checkpoint.c
  FLAGS -I${CMAKE_SOURCE_DIR} -I${CMAKE_SOURCE_DIR}/runtime -I${CBLAS_INCLUDE}
        ${OPENBLAS_LIB} -lpthread -lm)
