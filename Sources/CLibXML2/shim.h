#ifndef MDEVMON_CLIBXML2_SHIM_H
#define MDEVMON_CLIBXML2_SHIM_H
/* Debian builds libxml2 with ICU, and its encoding.h then includes the system ICU headers, which
 * clash with Foundation's bundled ICU module. mdevmon never touches encoding handlers (whose layout
 * is the only thing this changes), so hide ICU from the headers. */
#include <libxml/xmlversion.h>
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

/* xmlFree is a global function pointer; Swift imports it awkwardly, so wrap it. */
static inline void mdevmon_xml_free(void *p) { xmlFree(p); }
#endif
