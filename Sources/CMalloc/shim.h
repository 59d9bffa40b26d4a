// glibc's malloc tuning (mallopt), which Swift's Glibc module does not include.
#include <malloc.h>
// Swift does not import negative macros; name the ones mdevmon uses.
static const int mdevmon_M_MMAP_THRESHOLD = M_MMAP_THRESHOLD;
static const int mdevmon_M_TRIM_THRESHOLD = M_TRIM_THRESHOLD;
