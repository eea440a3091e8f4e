/*
 * Error strings, version and the thread setting.
 */
#include "dlrt.h"

#ifndef DLRT_NO_BLAS
#include <cblas.h>
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

static int nthreads = 1;

int dlrt_set_num_threads(int n)
{
    if (n < 1)
        return DLRT_EINVAL;
    nthreads = n;
#ifndef DLRT_NO_BLAS
    openblas_set_num_threads(n);
#endif
    return DLRT_OK;
}

int dlrt_num_threads(void) { return nthreads; }

size_t dlrt_dtype_size(dlrt_dtype t)
{
    switch (t) {
    case DLRT_F32: return 4;
    case DLRT_F64: return 8;
    case DLRT_I32: return 4;
    }
    return 0;
}
