// glibc's malloc tuning (mallopt), which Swift's Glibc module does not include.
#include <malloc.h>
// Swift does not import negative macros; name the one mdevmon uses.
static const int mdevmon_M_MMAP_THRESHOLD = M_MMAP_THRESHOLD;
