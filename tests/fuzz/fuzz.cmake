# libFuzzer targets. libFuzzer needs clang, so they are compiled with
# clang-19 directly (outside this project's compiler settings), with ASan
# and UBSan. Included from the top-level CMakeLists.txt, since the front
# end's fuzzer needs the generated parser sources of that directory.
#
# Each target gets a short, bounded run over its checked-in corpus as a
# test; any crash, leak, hang (over 10 s for one input, by default) or sanitizer report
# fails it. New inputs go to a scratch directory in the build tree so the
# repository is not modified.
# CLANG19 is found by the top-level CMakeLists.txt.
set(FUZZ_DIR ${PROJECT_BINARY_DIR}/fuzz)
file(MAKE_DIRECTORY ${FUZZ_DIR})

# dlc_fuzzer(NAME SECONDS MAX_LEN CORPUS SOURCES... [FLAGS ...] [UNIT_TIMEOUT S])
# UNIT_TIMEOUT: seconds one input may take (default 10).
function(dlc_fuzzer name seconds max_len corpus)
  cmake_parse_arguments(F "" "UNIT_TIMEOUT" "SOURCES;FLAGS" ${ARGN})
  if(NOT F_UNIT_TIMEOUT)
    set(F_UNIT_TIMEOUT 10)
  endif()
  set(bin ${FUZZ_DIR}/${name})
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
    COMMAND sh -c "rm -rf ${name}-work && mkdir ${name}-work && exec ${bin} -max_total_time=${seconds} -timeout=${F_UNIT_TIMEOUT} -rss_limit_mb=4096 -max_len=${max_len} -print_final_stats=1 ${name}-work ${corpus}"
    WORKING_DIRECTORY ${FUZZ_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endfunction()

# The front end, the shape pass and the IR reader/printer round trip: the
# stages' sources, with the parser and scanner that frontend/ generates.
set(src ${PROJECT_SOURCE_DIR})
set(gen ${PROJECT_BINARY_DIR}/frontend)
# codegen/scratch.c (the kernels' scratch sizes for the memory plans) needs
# no LLVM; the rest of codegen is not fuzzed here.
file(GLOB FUZZ_CORE_SRC CONFIGURE_DEPENDS ${src}/ir/*.c ${src}/frontend/*.c ${src}/passes/*.c)
list(APPEND FUZZ_CORE_SRC ${src}/codegen/scratch.c)
dlc_fuzzer(fuzz_frontend 30 4096 ${src}/tests/fuzz/corpus
  SOURCES ${FUZZ_CORE_SRC} ${gen}/parser.c ${gen}/lexer.c ${src}/tests/fuzz/fuzz_frontend.c
  FLAGS -I${src}/ir -I${src}/frontend -I${src}/passes -I${src}/codegen -I${gen} -lm)
add_dependencies(fuzz_frontend dlc_frontend dlc_passes)

# The textual IR reader alone: ir/ and its read/print round trip. Seeds:
# the .ir models of tests/ and IR that dlc printed for some .dl tests.
file(GLOB FUZZ_IR_SRC CONFIGURE_DEPENDS ${src}/ir/*.c)
dlc_fuzzer(fuzz_ir 20 16384 ${src}/tests/fuzz/ir-corpus
  SOURCES ${FUZZ_IR_SRC} ${src}/tests/fuzz/fuzz_ir.c
  FLAGS -I${src}/ir -lm)

# The whole compiler at -O0, .dl in, object made in memory: every stage,
# codegen with LLVM (not instrumented: a shared library), and the driver's
# plans (tools/plans.c). Seeds: the front end's corpus and small models of
# tests/ (compile-corpus). Slower per input (LLVM), so fewer executions;
# the corpus's GPT and ResNet took up to 14 s each on the loaded machine
# under ASan, hence the unit timeout.
file(GLOB FUZZ_CG_SRC CONFIGURE_DEPENDS ${src}/codegen/*.c)
list(REMOVE_ITEM FUZZ_CG_SRC ${src}/codegen/scratch.c)  # in FUZZ_CORE_SRC already
separate_arguments(FUZZ_LLVM_DEFS UNIX_COMMAND "${LLVM_DEFINITIONS}")
dlc_fuzzer(fuzz_compile 30 4096 "${src}/tests/fuzz/compile-corpus ${src}/tests/fuzz/corpus"
  SOURCES ${FUZZ_CORE_SRC} ${FUZZ_CG_SRC} ${gen}/parser.c ${gen}/lexer.c ${src}/tools/plans.c
          ${src}/tests/fuzz/fuzz_compile.c
  FLAGS -I${src}/ir -I${src}/frontend -I${src}/passes -I${src}/codegen -I${src}/runtime
        -I${src}/tools -I${gen} -I${LLVM_INCLUDE_DIRS} ${FUZZ_LLVM_DEFS}
        -L${LLVM_LIBRARY_DIRS} -lLLVM-19 -Wl,-rpath,${LLVM_LIBRARY_DIRS} -lm
  UNIT_TIMEOUT 60)
add_dependencies(fuzz_compile dlc_frontend dlc_passes)

# The safetensors loader: the runtime's sources alone.
file(GLOB FUZZ_RT_SRC CONFIGURE_DEPENDS ${src}/runtime/*.c)
if(DLC_BLAS)
  set(FUZZ_RT_BLAS -I${CBLAS_INCLUDE} ${OPENBLAS_LIB})
else()
  set(FUZZ_RT_BLAS -DDLRT_NO_BLAS)
endif()
dlc_fuzzer(fuzz_checkpoint 20 8192 ${src}/tests/fuzz/checkpoint-corpus
  SOURCES ${FUZZ_RT_SRC} ${src}/tests/fuzz/fuzz_checkpoint.c
  FLAGS -I${src}/runtime ${FUZZ_RT_BLAS} -lpthread -lm)
