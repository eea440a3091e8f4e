/*
 * Code generation: graph IR -> LLVM IR -> object file. The only part of
 * dlc that includes LLVM headers.
 */
#ifndef DLC_CODEGEN_H
#define DLC_CODEGEN_H

/* "19.1.7": the LLVM this dlc was built with. */
const char *cg_llvm_version(void);

/* The host's target triple, e.g. "x86_64-pc-linux-gnu"; static storage. */
const char *cg_host_triple(void);

#endif
