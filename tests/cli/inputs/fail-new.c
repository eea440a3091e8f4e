/* Preloaded into dlc by tests/cli/llvm-abort.test: C++'s operator new,
 * which only LLVM calls in dlc, aborts at its Nth call (N from
 * DLC_TEST_NEW_FAILS_AT), as an allocation failure inside LLVM ends: LLVM
 * is built without exceptions, so std::bad_alloc or LLVM's own
 * report_bad_alloc_error ends in abort(). Deterministic, unlike running
 * out of address space, where dlc's own allocations may fail first. */
#include <stdlib.h>

void *_Znwm(size_t n);
void *_Znam(size_t n);

static long left = -1;

static void *counted(size_t n)
{
    if (left < 0) {
        const char *s = getenv("DLC_TEST_NEW_FAILS_AT");
        left = s ? atol(s) : -2;
    }
    if (left > 0 && --left == 0)
        abort();
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

void *_Znwm(size_t n) { return counted(n); }
void *_Znam(size_t n) { return counted(n); }
