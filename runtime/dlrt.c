/*
 * Error strings, version, and the CPU's x86-64 level (cpuid and xgetbv:
 * each level's instructions, and the OS saving their registers), which
 * picks the variant of an object built for a --mcpu list (the thread
 * setting is the pool's, pool.c).
 */
#include "dlrt.h"

#include <stdbool.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#endif

static const char *const messages[DLRT_ECOUNT] = {
#define DLRT_ERROR(name, value, text) [-(value)] = text,
#include "dlrt_abi.def"
};

const char *dlrt_strerror(int code)
{
    if (code > 0 || code <= -DLRT_ECOUNT)
        return "unknown error";
    return messages[-code];
}

const char *dlrt_version(void) { return DLC_VERSION; }

size_t dlrt_dtype_size(dlrt_dtype t)
{
    switch (t) {
    case DLRT_F32: return 4;
    case DLRT_F64: return 8;
    case DLRT_I32: return 4;
    case DLRT_F16:
    case DLRT_BF16: return 2;
    }
    return 0;
}

/* ---- the CPU's x86-64 level ---------------------------------------------- */

static const char *const level_names[] = {"", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};

const char *dlrt_cpu_level_name(int level)
{
    return level >= 1 && level <= 4 ? level_names[level] : "";
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

/* bit b of register r (0 eax .. 3 edx) of cpuid leaf, subleaf 0 */
typedef struct {
    unsigned leaf, reg, bit;
} Feature;

/* What each level adds to the one below (the psABI's table, which is
 * LLVM's definition of the CPUs x86-64-v2 ... x86-64-v4). */
static const Feature v2[] = {
    {1, 2, 0},           /* SSE3 */
    {1, 2, 9},           /* SSSE3 */
    {1, 2, 13},          /* CMPXCHG16B */
    {1, 2, 19},          /* SSE4.1 */
    {1, 2, 20},          /* SSE4.2 */
    {1, 2, 23},          /* POPCNT */
    {0x80000001, 2, 0},  /* LAHF/SAHF */
};
static const Feature v3[] = {
    {1, 2, 12},          /* FMA */
    {1, 2, 22},          /* MOVBE */
    {1, 2, 27},          /* OSXSAVE: xgetbv works */
    {1, 2, 28},          /* AVX */
    {1, 2, 29},          /* F16C */
    {7, 1, 3},           /* BMI1 */
    {7, 1, 5},           /* AVX2 */
    {7, 1, 8},           /* BMI2 */
    {0x80000001, 2, 5},  /* LZCNT */
};
static const Feature v4[] = {
    {7, 1, 16},          /* AVX512F */
    {7, 1, 17},          /* AVX512DQ */
    {7, 1, 28},          /* AVX512CD */
    {7, 1, 30},          /* AVX512BW */
    {7, 1, 31},          /* AVX512VL */
};

static bool has_all(const Feature *f, size_t n)
{
    unsigned max = __get_cpuid_max(0, NULL), max_ext = __get_cpuid_max(0x80000000u, NULL);
    for (size_t i = 0; i < n; i++) {
        unsigned r[4] = {0, 0, 0, 0};
        if (f[i].leaf >= 0x80000000u ? f[i].leaf > max_ext : f[i].leaf > max)
            return false;
        __cpuid_count(f[i].leaf, 0, r[0], r[1], r[2], r[3]);
        if (!(r[f[i].reg] >> f[i].bit & 1))
            return false;
    }
    return true;
}

/* The register state the OS saves on a context switch (XCR0): the
 * instructions are usable only if it saves their registers. */
static unsigned long long xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

#define HAS(f) has_all(f, sizeof f / sizeof *f)

static int detected_level(void)
{
    if (!HAS(v2))
        return 1;
    if (!HAS(v3) || (xcr0() & 0x6) != 0x6) /* XMM and YMM state */
        return 2;
    if (!HAS(v4) || (xcr0() & 0xe6) != 0xe6) /* and opmask, ZMM */
        return 3;
    return 4;
}

int dlrt_cpu_level(void)
{
    int level = detected_level();
    const char *forced = getenv("DLRT_CPU");
    for (int l = 1; forced && l < level; l++)
        if (strcmp(forced, level_names[l]) == 0)
            return l;
    return level;
}
#else
int dlrt_cpu_level(void) { return 0; }
#endif
