#!/bin/sh
# mpirun.sh N PROGRAM ARGS...: Open MPI's mpirun with N ranks on this
# machine, set up for the ways it is run here: as root if need be (as in
# containers), more ranks than cores allowed, and no single-copy (CMA)
# transfers between the ranks, which containers' ptrace rules forbid; a
# rank waiting for a message yields its core rather than spin, since the
# rank it waits for may need that core (more ranks than free cores: on a
# busy 2-core machine the MLP's all-reduce alone took 5.9 ms spinning, 0.75
# ms yielding).
# For several hosts call mpirun itself (docs/DISTRIBUTED.md).
n=$1
shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_mpi_yield_when_idle=1
exec mpirun -np "$n" "$@"
