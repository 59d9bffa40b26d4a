/*
 * libvirt's floor for mdevmon-bench, compiled by the bench at run time:
 *     cc floor.c -lvirt -O2 -o floor
 *
 *   floor list URI MODE REPS
 *     Lists every mdev (CAP_MDEV | ACTIVE | INACTIVE) and fetches what MODE says, REPS times on one
 *     connection. Prints one line per repetition: "rep <devices> <nanoseconds> <xml bytes>".
 *       xml       the floor: one virNodeDeviceGetXMLDesc per listed device (1 RPC per device)
 *       state     xml plus IsActive, IsPersistent, GetAutostart on the listed object
 *       fullsync  what mdevmon's FullSync did per device before issue 15: LookupByName, GetXMLDesc, IsActive,
 *                 IsPersistent, GetAutostart
 *     On a read-only connection libvirt 9.0 refuses GetAutostart in the client, without an RPC, so
 *     state costs 3 RPCs per device and fullsync 4.
 *
 *   floor define URI
 *     Reads commands on stdin, one per line, and answers each on stdout as soon as libvirt returns:
 *       define <parent node device> <uuid> <mdev type>  ->  ok <ns before> <ns after> <device name>
 *       undefine <device name>                          ->  ok <ns before> <ns after> <device name>
 *     or "err <message>". Times are CLOCK_MONOTONIC nanoseconds, comparable across processes.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static const char *last_error(void) {
    virErrorPtr err = virGetLastError();
    return err && err->message ? err->message : "unknown libvirt error";
}

static void quiet(void *data, virErrorPtr err) { (void)data; (void)err; }

static int list(const char *uri, const char *mode, int reps) {
    virConnectPtr conn = virConnectOpenReadOnly(uri);
    if (!conn) { fprintf(stderr, "floor: connect %s: %s\n", uri, last_error()); return 1; }
    int state = strcmp(mode, "state") == 0, fullsync = strcmp(mode, "fullsync") == 0;
    if (!state && !fullsync && strcmp(mode, "xml") != 0) { fprintf(stderr, "floor: unknown mode %s\n", mode); return 2; }
    unsigned int flags = VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV | VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE |
                         VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE;
    for (int rep = 0; rep < reps; rep++) {
        unsigned long long start = now_ns(), bytes = 0;
        virNodeDevicePtr *devices = NULL;
        int n = virConnectListAllNodeDevices(conn, &devices, flags);
        if (n < 0) { fprintf(stderr, "floor: list: %s\n", last_error()); return 1; }
        for (int i = 0; i < n; i++) {
            virNodeDevicePtr dev = devices[i];
            if (fullsync) {
                /* FullSync keeps names, not objects, and looks each one up again. */
                dev = virNodeDeviceLookupByName(conn, virNodeDeviceGetName(devices[i]));
                if (!dev) continue;
            }
            char *xml = virNodeDeviceGetXMLDesc(dev, 0);
            if (xml) { bytes += strlen(xml); free(xml); }
            if (state || fullsync) {
                int autostart = 0;
                (void)virNodeDeviceIsActive(dev);
                (void)virNodeDeviceIsPersistent(dev);
                (void)virNodeDeviceGetAutostart(dev, &autostart);
            }
            if (fullsync) virNodeDeviceFree(dev);
            virNodeDeviceFree(devices[i]);
        }
        free(devices);
        printf("rep %d %llu %llu\n", n, now_ns() - start, bytes);
        fflush(stdout);
    }
    virConnectClose(conn);
    return 0;
}

static int define(const char *uri) {
    virConnectPtr conn = virConnectOpen(uri);
    if (!conn) { fprintf(stderr, "floor: connect %s: %s\n", uri, last_error()); return 1; }
    char line[1024], a[256], b[256], c[256];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "define %255s %255s %255s", a, b, c) == 3) {
            char xml[1024];
            snprintf(xml, sizeof xml,
                     "<device><parent>%s</parent><capability type='mdev'><type id='%s'/>"
                     "<uuid>%s</uuid></capability></device>", a, c, b);
            unsigned long long before = now_ns();
            virNodeDevicePtr dev = virNodeDeviceDefineXML(conn, xml, 0);
            unsigned long long after = now_ns();
            if (!dev) { printf("err define %s: %s\n", b, last_error()); continue; }
            printf("ok %llu %llu %s\n", before, after, virNodeDeviceGetName(dev));
            virNodeDeviceFree(dev);
        } else if (sscanf(line, "undefine %255s", a) == 1) {
            unsigned long long before = now_ns();
            virNodeDevicePtr dev = virNodeDeviceLookupByName(conn, a);
            int rc = dev ? virNodeDeviceUndefine(dev, 0) : -1;
            unsigned long long after = now_ns();
            if (rc < 0) printf("err undefine %s: %s\n", a, last_error());
            else printf("ok %llu %llu %s\n", before, after, a);
            if (dev) virNodeDeviceFree(dev);
        } else {
            printf("err unknown command\n");
        }
    }
    virConnectClose(conn);
    return 0;
}

int main(int argc, char **argv) {
    virSetErrorFunc(NULL, quiet);
    if (argc == 5 && strcmp(argv[1], "list") == 0) return list(argv[2], argv[3], atoi(argv[4]));
    if (argc == 3 && strcmp(argv[1], "define") == 0) return define(argv[2]);
    fprintf(stderr, "usage: floor list URI xml|state|fullsync REPS | floor define URI\n");
    return 2;
}
