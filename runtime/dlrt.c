/*
 * Error strings and version (the thread setting is the pool's, pool.c).
 */
#include "dlrt.h"

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
