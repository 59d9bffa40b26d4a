#ifndef MDEVMON_CSYSTEMD_SHIM_H
#define MDEVMON_CSYSTEMD_SHIM_H
#include <sys/uio.h>
/* sd_journal_send is variadic; Swift calls sd_journal_sendv with an iovec array instead. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>
#include <systemd/sd-daemon.h>
#endif
