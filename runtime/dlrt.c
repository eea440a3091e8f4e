/*
 * Error strings, version and the thread setting.
 */
#include "dlrt.h"

#include <cblas.h>

static const char *const messages[DLRT_ECOUNT] = {
    [0] = "success",
    [-DLRT_EINVAL] = "invalid argument",
    [-DLRT_ENOMEM] = "out of memory",
    [-DLRT_EIO] = "input/output error",
    [-DLRT_EFORMAT] = "malformed file",
    [-DLRT_EMISMATCH] = "file does not match the model",
    [-DLRT_ERANGE] = "value out of range",
    [-DLRT_ESTATE] = "operation not allowed in the current state",
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
    openblas_set_num_threads(n);
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
