/*
 * blkfront: the PV kernel's block frontend (Xen io/blkif.h over xenbus).
 * Requests are submitted asynchronously (blk_submit), completed by
 * blk_poll(), waited for with blk_wait(); blk_read/blk_write/blk_flush
 * are the synchronous forms, which split a transfer into requests and keep
 * up to a ring's worth in flight.
 *
 * Every in-flight request is shadowed with its data (in the front's own
 * pages), so when the backend goes away (its state goes Closing/Closed or
 * vanishes, or our `backend` node names a new backend after a driver
 * domain restart) the front connects again and re-issues every request
 * that had no response: an acknowledged write is never lost, and callers
 * see nothing but a delay.
 */
#ifndef PVKERNEL_BLKFRONT_H
#define PVKERNEL_BLKFRONT_H

#include <stdint.h>
#include "blkif.h"

#define BLKFRONT_MAX_DEVS 4
#define BLKFRONT_MAX_SEGS 16   /* per request: 11 direct, 16 with indirect segments */

struct blk_io;
typedef void (*blk_done_fn)(struct blk_io *io);

struct blk_io {
    uint8_t op;            /* BLKIF_OP_READ, _WRITE, _FLUSH_DISKCACHE, _DISCARD */
    uint64_t sector;       /* in 512-byte units */
    uint32_t nsectors;
    void *buf;             /* read: filled on completion; write: copied at submit */
    volatile int done;
    int status;            /* 0, -XEN_EIO (BLKIF_RSP_ERROR) or -XEN_EOPNOTSUPP */
    blk_done_fn cb;        /* optional, called from blk_poll() on completion */
    void *arg;
};

struct blkfront;

struct blkfront_info {
    char name[16];         /* "xvda" */
    uint32_t devid;
    uint64_t sectors;      /* 512-byte units */
    uint32_t sector_size;
    uint32_t info;         /* VDISK_* */
    int feature_flush, feature_discard, persistent;
    uint32_t max_indirect_segments;
    uint32_t segs_per_request;   /* what we use */
    domid_t backend_id;
    const char *backend;
    int connected;
    uint32_t reconnects;   /* handshakes redone after the backend went away */
    uint64_t requests, reissued, errors;
};

int blkfront_probe(void);                    /* number of vbds connected */
int blkfront_count(void);
void blkfront_hotplug_poll(void);            /* connect disks attached while we run (xl block-attach) */
struct blkfront *blkfront_get(int index);
/* By name ("xvda"), devid ("51712") or index ("0"); NULL if none. */
struct blkfront *blkfront_find(const char *name);
void blkfront_get_info(struct blkfront *d, struct blkfront_info *info);

/* Most sectors one request may carry. */
uint32_t blk_max_sectors(struct blkfront *d);
/* Queue io (waits for a free slot if all are busy); 0 or -errno (-XEN_E2BIG, -XEN_EINVAL, -XEN_ENODEV). */
int blk_submit(struct blkfront *d, struct blk_io *io);
/* Take responses, complete requests, notice a lost backend and reconnect; 1 if anything completed. */
int blk_poll(struct blkfront *d);
/* Until io completes; its status. */
int blk_wait(struct blkfront *d, struct blk_io *io);
/* Until nothing is in flight. */
void blk_drain(struct blkfront *d);
int blk_inflight(struct blkfront *d);

int blk_read(struct blkfront *d, uint64_t sector, void *buf, uint32_t nsectors);
int blk_write(struct blkfront *d, uint64_t sector, const void *buf, uint32_t nsectors);
int blk_flush(struct blkfront *d);
int blk_discard(struct blkfront *d, uint64_t sector, uint64_t nsectors);

/* "xvda" for 51712 (docs/man/xen-vbd-interface.7), else the number. */
void blk_devid_name(uint32_t devid, char *buf, size_t len);

#endif
