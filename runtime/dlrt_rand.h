/* Part of libdlrt; include <dlrt.h> rather than this file. */
#ifndef DLRT_RAND_H
#define DLRT_RAND_H

#endif
