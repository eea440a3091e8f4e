/* Part of libdlrt; include <dlrt.h> rather than this file. */
#ifndef DLRT_CHECKPOINT_H
#define DLRT_CHECKPOINT_H

#endif
