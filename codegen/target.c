/*
 * Target queries: the LLVM version and the host triple, asked of LLVM
 * itself so that `dlc --version` proves the toolchain is linked; whether
 * a target machine knows its CPU; the x86-64 levels of a --mcpu list;
 * whether a target has an OS.
 */
#include "cg.h"

#include <errno.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *cg_llvm_version(void)
{
    static char buf[32];
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    snprintf(buf, sizeof buf, "%u.%u.%u", major, minor, patch);
    return buf;
}

const char *cg_host_triple(void)
{
    static char buf[128];
    char *t = LLVMGetDefaultTargetTriple();
    snprintf(buf, sizeof buf, "%s", t);
    LLVMDisposeMessage(t);
    return buf;
}

/* LLVM-C cannot list a target's CPUs, and an unknown --mcpu is only a
 * warning that LLVM prints on stderr ("'x' is not a recognized processor
 * for this target (ignoring processor)") when it builds the subtarget of a
 * function, after which it compiles for a generic CPU, or aborts (x86-64
 * with a CPU it takes for 32-bit). So a child process compiles an empty
 * function for cpu with its stderr in a temporary file, and the parent
 * looks at what it said and how it ended. */
bool cg_cpu_known(LLVMTargetRef t, const char *triple, const char *cpu)
{
    FILE *log = tmpfile();
    if (!log)
        return true; /* cannot tell: let LLVM warn */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fclose(log);
        return true;
    }
    if (pid == 0) {
        dup2(fileno(log), STDERR_FILENO);
        LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, cpu, "", LLVMCodeGenLevelNone,
                                                          LLVMRelocPIC, LLVMCodeModelDefault);
        LLVMContextRef ctx = LLVMContextCreate();
        LLVMModuleRef m = LLVMModuleCreateWithNameInContext("cpu_probe", ctx);
        LLVMSetTarget(m, triple);
        LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0);
        LLVMValueRef f = LLVMAddFunction(m, "probe", fty);
        LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, f, "entry"));
        LLVMBuildRetVoid(b);
        LLVMMemoryBufferRef buf;
        char *msg;
        _exit(!tm || LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fclose(log);
            return true;
        }
    char text[1024] = "";
    rewind(log);
    size_t n = fread(text, 1, sizeof text - 1, log);
    text[n] = 0;
    fclose(log);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
           strstr(text, "is not a recognized processor") == NULL;
}

/* The widest registers tm's backend puts a <16 x i32> addition in, from
 * the assembly it writes: 64 bytes in zmm, 32 in ymm, else 16. For a CPU
 * named with --mcpu, whose features LLVM-C does not tell. Integers, not
 * floats: AVX without AVX2 (Sandy Bridge, Bulldozer) adds floats in ymm
 * but has no fused multiply-add (or only FMA4) and no 256-bit integers,
 * and the host's own such CPU counts as 16 (no +avx2 among its
 * features). */
static int probe_vector_bytes(LLVMTargetMachineRef tm)
{
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("vector_probe", ctx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(m, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(m, td);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMTypeRef vt = LLVMVectorType(LLVMInt32TypeInContext(ctx), 16);
    LLVMValueRef f =
        LLVMAddFunction(m, "probe", LLVMFunctionType(LLVMVoidTypeInContext(ctx), &ptr, 1, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, f, "entry"));
    LLVMValueRef v = LLVMBuildLoad2(b, vt, LLVMGetParam(f, 0), "");
    LLVMBuildStore(b, LLVMBuildAdd(b, v, v, ""), LLVMGetParam(f, 0));
    LLVMBuildRetVoid(b);
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    int bytes = 16;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf)) {
        size_t n = LLVMGetBufferSize(buf);
        const char *text = LLVMGetBufferStart(buf);
        bool zmm = false, ymm = false;
        for (size_t i = 0; i + 3 <= n; i++) {
            zmm |= memcmp(text + i, "zmm", 3) == 0;
            ymm |= memcmp(text + i, "ymm", 3) == 0;
        }
        bytes = zmm ? 64 : ymm ? 32 : 16;
        LLVMDisposeMemoryBuffer(buf);
    }
    LLVMDisposeMessage(msg);
    LLVMDisposeBuilder(b);
    LLVMDisposeTargetData(td);
    LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
    return bytes;
}

int cg_vector_bytes(LLVMTargetMachineRef tm)
{
    char *cpu = LLVMGetTargetMachineCPU(tm), *features = LLVMGetTargetMachineFeatureString(tm);
    /* the host's CPU comes with its feature list; a level is its name; a
     * named CPU is asked of the backend */
    bool named = !*features && strcmp(cpu, "generic") != 0 && strncmp(cpu, "x86-64", 6) != 0;
    int bytes = strstr(features, "+avx512f") || strcmp(cpu, "x86-64-v4") == 0 ? 64
                : strstr(features, "+avx2") || strcmp(cpu, "x86-64-v3") == 0  ? 32
                : named ? probe_vector_bytes(tm)
                        : 16;
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return bytes;
}

bool cg_native(const CgOptions *o)
{
    return o->cpu && strcmp(o->cpu, "native") == 0;
}

int64_t cg_l2_bytes(const CgOptions *o, int vector_bytes)
{
    /* the host's own when the object is for it; else the least of the
     * CPUs with those vectors: AVX-512 came with 1 MiB (Skylake-SP, Zen
     * 4), AVX2 with 256 KiB (Haswell to Skylake's desktop cores) */
#ifdef _SC_LEVEL2_CACHE_SIZE
    if (cg_native(o)) {
        long n = sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (n >= 64 << 10)
            return n;
    }
#endif
    return vector_bytes >= 64 ? 1 << 20 : 256 << 10;
}

bool cg_freestanding(const CgOptions *o)
{
    for (const char *p = o->triple; p && *p;) {
        size_t n = strcspn(p, "-");
        if (n == 4 && strncmp(p, "none", 4) == 0)
            return true;
        p += n + (p[n] == '-');
    }
    return false;
}

static const char *const level_cpu[] = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};

const char *cg_level_cpu(int level)
{
    check(level >= 1 && level <= 4);
    return level_cpu[level - 1];
}

static char *list_error(const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    check(s);
    snprintf(s, n, fmt, a, b);
    return s;
}

/* Only the x86-64 levels: each is a superset of the one below, and
 * libdlrt's dlrt_cpu_level() tells which of them a CPU runs. */
bool cg_cpu_list(LLVMTargetRef t, const char *triple, const char *cpu, int *levels, int *n,
                 char **err)
{
    *n = 0;
    char *norm = LLVMNormalizeTargetTriple(triple);
    bool x86_64 = strncmp(norm, "x86_64-", 7) == 0;
    LLVMDisposeMessage(norm);
    if (!x86_64) {
        *err = list_error("--mcpu=%s: a list of CPUs needs an x86-64 target, not '%s' "
                          "(docs/TARGETS.md)",
                          cpu, triple);
        return false;
    }
    bool seen[4] = {false};
    for (const char *p = cpu;; p++) {
        size_t len = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
        int level = 0;
        for (int l = 1; l <= 4; l++)
            if (strcmp(name, level_cpu[l - 1]) == 0)
                level = l;
        if (!len)
            *err = list_error("--mcpu=%s: an empty CPU name in the list%s", cpu, "");
        else if (level && seen[level - 1])
            *err = list_error("--mcpu=%s: '%s' is listed twice", cpu, name);
        else if (!level && (strcmp(name, "native") == 0 || strcmp(name, "generic") == 0 ||
                            cg_cpu_known(t, triple, name)))
            *err = list_error("--mcpu: '%s' in a list: a list takes the x86-64 levels "
                              "x86-64, x86-64-v2, x86-64-v3 and x86-64-v4%s",
                              name, "");
        else if (!level)
            *err = list_error("unknown CPU '%s' for target '%s' (--mcpu)", name, triple);
        if (!len || (level && seen[level - 1]) || !level)
            return false;
        seen[level - 1] = true;
        p += len;
        if (!*p)
            break;
    }
    for (int l = 1; l <= 4; l++)
        if (seen[l - 1])
            levels[(*n)++] = l;
    return true;
}
