/* Part of libdlrt; include <dlrt.h> rather than this file. */
#ifndef DLRT_DATA_H
#define DLRT_DATA_H

#endif
