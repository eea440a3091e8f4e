/*
 * Target queries: the LLVM version and the host triple, asked of LLVM
 * itself so that `dlc --version` proves the toolchain is linked; whether
 * a target machine knows its CPU; whether a target has an OS.
 */
#include "cg.h"

#include <errno.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdio.h>
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
