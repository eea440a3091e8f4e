#!/bin/sh
# mpirun.sh N PROGRAM ARGS...: scripts/mpirun.sh as the tests and
# benchmarks run it: only shared memory between the ranks (btl self,vader)
# and the launcher on the loopback interface, and a failure after
# DLC_MPI_TIMEOUT seconds (default 120) rather than a hang.
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_MCA_btl=self,vader
export OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
# Under AddressSanitizer: Open MPI's own allocations at MPI_Init, never
# freed, are suppressed (lsan.supp); that needs their stacks, which only
# the slow unwinder finds through its libraries (built without frame
# pointers), and its components kept loaded at exit.
export OMPI_MCA_mca_base_component_disable_dlclose=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$here/lsan.supp"
exec timeout -k 5 "${DLC_MPI_TIMEOUT:-120}" sh "$here/../../scripts/mpirun.sh" "$@"
