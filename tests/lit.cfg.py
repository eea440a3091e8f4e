# lit configuration for dlc's tests that carry their own RUN lines: golden
# IR and diagnostics (FileCheck), and the models that are compiled, linked
# with a C driver and run (exec, gradcheck, train, stochastic). CMake passes
# the tools and libraries as --param (tests/CMakeLists.txt); the
# substitutions below keep the RUN lines short:
#
#   %dlc %not FileCheck %src   the compiler, LLVM's not and FileCheck, the source tree
#   %cc                        the C compiler with the test programs' flags
#                              (warnings are errors; the sanitizers in that build)
#                              and runtime/ to include from (dlrt.h)
#   %dlrt                      libdlrt and what it needs, for the end of a link line
#
# Each suite's lit.local.cfg adds its harness (%exec-harness, ...).
import os
import lit.formats

config.name = "dlc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".dl", ".ir", ".test"]
config.test_source_root = os.path.dirname(__file__)
# the tests' Output/ folders go to the build that runs them (--param exec_root)
if "exec_root" in lit_config.params:
    config.test_exec_root = lit_config.params["exec_root"]
# unit: Check executables; fuzz: libFuzzer corpora; pending: models that
# wait for the compiler (each suite's pending/README.md). tests/codegen and
# tests/install mark themselves unsupported (their run.sh drive them);
# mpi: CTest drives tests/mpi (its .dl is a model, not a test).
config.excludes = ["unit", "fuzz", "inputs", "corpus", "pending", "common", "demo", "torch", "mpi"]

params = lit_config.params
src = params.get("source_dir", os.path.dirname(os.path.dirname(__file__)))
# -O0: the drivers and harnesses run for milliseconds (the models are dlc's
# objects, the references libraries built by CMake); at -O1 compiling them
# took three times the CPU (tests/exec/harness.c: 0.64 s against 0.19 s)
cc = " ".join([params.get("cc", "cc"),
               "-std=c11 -D_GNU_SOURCE -g -O0", f"-I{src}/runtime",
               "-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror",
               params.get("cflags", "")]).strip()
# UNSUPPORTED: asan, for tests that limit the address space (ulimit -v)
if "-fsanitize=address" in params.get("cflags", ""):
    config.available_features.add("asan")
config.substitutions.append(("%dlc", params.get("dlc", "dlc")))
config.substitutions.append(("FileCheck", params.get("filecheck", "FileCheck")))
config.substitutions.append(("%not", params.get("not", "not")))
config.substitutions.append(("%src", src))
config.substitutions.append(("%cc", cc))
config.substitutions.append(("%dlrt", params.get("dlrt", "-ldlrt -lopenblas -lpthread -lm")))
# for the suites' lit.local.cfg
config.dlc_src = src
config.dlc_params = params

config.environment["LC_ALL"] = "C"
# OpenBLAS settings of the caller (OPENBLAS_CORETYPE, ...) and
# GRADCHECK_SEED (tests/gradcheck/README.md) reach the tests;
# one OpenBLAS thread per test unless asked otherwise, since lit runs tests
# side by side and OpenBLAS threads that outnumber the cores spin against
# each other.
for var, value in os.environ.items():
    if var.startswith("OPENBLAS_") or var == "GRADCHECK_SEED":
        config.environment[var] = value
config.environment.setdefault("OPENBLAS_NUM_THREADS", "1")
