#ifndef MDEVMON_CLIBVIRT_SHIM_H
#define MDEVMON_CLIBVIRT_SHIM_H
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif
