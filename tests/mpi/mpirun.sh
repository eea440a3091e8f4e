#!/bin/sh
# mpirun.sh NP PROGRAM ARGS...: Open MPI as the tests and benchmarks run it
# on one machine: as root if need be, more ranks than cores allowed, only
# shared memory between ranks (btl self,vader) and the launcher on the
# loopback interface; no single-copy (CMA) transfers, which containers'
# ptrace rules forbid. Fails after DLC_MPI_TIMEOUT seconds (default 120)
# rather than hang.
np=$1
shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
# Under AddressSanitizer: Open MPI's own allocations at MPI_Init, never
# freed, are suppressed (lsan.supp); that needs their stacks, which only
# the slow unwinder finds through its libraries (built without frame
# pointers), and its components kept loaded at exit.
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_MCA_mca_base_component_disable_dlclose=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$here/lsan.supp"
exec timeout -k 5 "${DLC_MPI_TIMEOUT:-120}" mpirun -np "$np" "$@"
