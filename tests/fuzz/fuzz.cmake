# The front-end fuzzer: libFuzzer needs clang, so this target is compiled
# with clang-19 directly, from the same sources as dlccore, with ASan and
# UBSan. Included from the top-level CMakeLists.txt (it needs the
# generated parser sources of that directory).
find_program(CLANG19 NAMES clang-19 HINTS /usr/lib/llvm-19/bin)
if(NOT CLANG19)
  message(FATAL_ERROR "clang-19 is needed for the fuzz targets (or configure with -DDLC_FUZZ=OFF)")
endif()
set(FUZZ_BIN ${CMAKE_BINARY_DIR}/fuzz_frontend)
set(FUZZ_SRC ${DLC_CORE_SRC} ${BISON_dl_parser_OUTPUTS} ${FLEX_dl_lexer_OUTPUTS}
             ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_frontend.c)
add_custom_command(OUTPUT ${FUZZ_BIN}
  COMMAND ${CLANG19} -std=c11 -D_GNU_SOURCE "-DDLC_VERSION=\"${PROJECT_VERSION}\""
          -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
          -I${CMAKE_SOURCE_DIR} -I${GEN} ${FUZZ_SRC} -lm -o ${FUZZ_BIN}
  DEPENDS ${FUZZ_SRC}
  COMMENT "Building the front-end fuzzer with clang-19"
  VERBATIM)
add_custom_target(fuzz_frontend ALL DEPENDS ${FUZZ_BIN})
add_dependencies(fuzz_frontend dlccore)

# A short, bounded run over the checked-in corpus; any crash, leak, hang
# (over 10 s for one input) or sanitizer report fails the test. New inputs
# go to a scratch directory so the repository is not modified.
add_test(NAME fuzz_frontend
  COMMAND sh -c "rm -rf fuzz-work && mkdir fuzz-work && exec ${FUZZ_BIN} -max_total_time=30 -timeout=10 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 fuzz-work ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus"
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
set_tests_properties(fuzz_frontend PROPERTIES TIMEOUT 300)

# The safetensors loader's fuzzer: the runtime's sources alone (it depends on
# nothing else in the tree), with the same sanitizers and a bounded run.
set(FUZZ_CKPT_BIN ${CMAKE_BINARY_DIR}/fuzz_checkpoint)
set(FUZZ_CKPT_SRC ${DLRT_SRC} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_checkpoint.c)
add_custom_command(OUTPUT ${FUZZ_CKPT_BIN}
  COMMAND ${CLANG19} -std=c11 -D_GNU_SOURCE "-DDLC_VERSION=\"${PROJECT_VERSION}\""
          -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
          -I${CMAKE_SOURCE_DIR} -I${CMAKE_SOURCE_DIR}/runtime -I${CBLAS_INCLUDE}
          ${FUZZ_CKPT_SRC} ${OPENBLAS_LIB} -lpthread -lm -o ${FUZZ_CKPT_BIN}
  DEPENDS ${FUZZ_CKPT_SRC}
  COMMENT "Building the checkpoint fuzzer with clang-19"
  VERBATIM)
add_custom_target(fuzz_checkpoint ALL DEPENDS ${FUZZ_CKPT_BIN})

add_test(NAME fuzz_checkpoint
  COMMAND sh -c "rm -rf fuzz-ckpt-work && mkdir fuzz-ckpt-work && exec ${FUZZ_CKPT_BIN} -max_total_time=20 -timeout=10 -rss_limit_mb=4096 -max_len=8192 -print_final_stats=1 fuzz-ckpt-work ${CMAKE_SOURCE_DIR}/tests/fuzz/checkpoint-corpus"
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
set_tests_properties(fuzz_checkpoint PROPERTIES TIMEOUT 300)
