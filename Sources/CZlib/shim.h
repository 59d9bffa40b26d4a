#ifndef MDEVMON_CZLIB_SHIM_H
#define MDEVMON_CZLIB_SHIM_H
#include <zlib.h>

// deflateInit2 is a macro (it passes ZLIB_VERSION and the stream's size); Swift cannot import it.
static inline int mdevmon_deflateInit2(z_streamp stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}
#endif
