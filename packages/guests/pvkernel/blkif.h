/*
 * The block interface between blkfront and blkback: Xen's public
 * xen/include/public/io/blkif.h (see xen-protocols.md §3), with the
 * layouts a 64-bit guest uses (x86_64/Arm/RISC-V: a 4-byte hole before
 * `id`).  Sizes and offsets are checked at compile time.
 */
#ifndef PVKERNEL_BLKIF_H
#define PVKERNEL_BLKIF_H

#include <stddef.h>
#include <stdint.h>
#include "ring.h"

typedef uint32_t blkif_grant_ref_t;
typedef uint16_t blkif_vdev_t;
typedef uint64_t blkif_sector_t;

#define BLKIF_OP_READ             0
#define BLKIF_OP_WRITE            1
#define BLKIF_OP_WRITE_BARRIER    2
#define BLKIF_OP_FLUSH_DISKCACHE  3
#define BLKIF_OP_RESERVED_1       4
#define BLKIF_OP_DISCARD          5
#define BLKIF_OP_INDIRECT         6

/* Segments in a direct request; an indirect request's segments live in granted pages. */
#define BLKIF_MAX_SEGMENTS_PER_REQUEST 11
#define BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST 8

/* The ring's sector unit is always 512 bytes, whatever `sector-size` says. */
#define BLKIF_SECTOR_SHIFT 9
#define BLKIF_SECTOR_SIZE 512u
#define BLKIF_SECTORS_PER_PAGE (4096u / BLKIF_SECTOR_SIZE)

#define BLKIF_RSP_EOPNOTSUPP  (-2)
#define BLKIF_RSP_ERROR       (-1)
#define BLKIF_RSP_OKAY        0

#define BLKIF_DISCARD_SECURE  (1 << 0)

/* Bits of the backend's `info` node. */
#define VDISK_CDROM      0x1
#define VDISK_REMOVABLE  0x2
#define VDISK_READONLY   0x4

/* first_sect/last_sect: inclusive 512-byte sectors within the granted page. */
struct blkif_request_segment {
    blkif_grant_ref_t gref;
    uint8_t first_sect, last_sect;
};

struct blkif_request {
    uint8_t operation;
    uint8_t nr_segments;
    blkif_vdev_t handle;
    uint64_t id;                 /* echoed in the response; 64-bit aligned, so a hole at 4 */
    blkif_sector_t sector_number;
    struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};

struct blkif_request_discard {
    uint8_t operation;           /* BLKIF_OP_DISCARD */
    uint8_t flag;                /* BLKIF_DISCARD_SECURE */
    blkif_vdev_t handle;
    uint64_t id;
    blkif_sector_t sector_number;
    uint64_t nr_sectors;
};

/* Each indirect page holds 4096 / 8 = 512 segment descriptors. */
#define BLKIF_SEGS_PER_INDIRECT_FRAME (4096u / sizeof(struct blkif_request_segment))

struct blkif_request_indirect {
    uint8_t operation;           /* BLKIF_OP_INDIRECT */
    uint8_t indirect_op;         /* READ or WRITE */
    uint16_t nr_segments;
    uint64_t id;
    blkif_sector_t sector_number;
    blkif_vdev_t handle;
    blkif_grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
};

struct blkif_response {
    uint64_t id;
    uint8_t operation;
    int16_t status;              /* BLKIF_RSP_* */
};

DEFINE_RING_TYPES(blkif, struct blkif_request, struct blkif_response);

#define BLK_RING_SIZE __CONST_RING_SIZE(blkif, 4096)

_Static_assert(sizeof(struct blkif_request_segment) == 8, "segment is 8 bytes");
_Static_assert(sizeof(struct blkif_request) == 112, "blkif_request is 112 bytes");
_Static_assert(offsetof(struct blkif_request, handle) == 2, "handle @2");
_Static_assert(offsetof(struct blkif_request, id) == 8, "id @8 (after the hole)");
_Static_assert(offsetof(struct blkif_request, sector_number) == 16, "sector_number @16");
_Static_assert(offsetof(struct blkif_request, seg) == 24, "seg @24");
_Static_assert(sizeof(struct blkif_request_discard) == 32, "discard is 32 bytes");
_Static_assert(offsetof(struct blkif_request_discard, nr_sectors) == 24, "nr_sectors @24");
_Static_assert(sizeof(struct blkif_request_indirect) == 64, "indirect is 64 bytes");
_Static_assert(offsetof(struct blkif_request_indirect, nr_segments) == 2, "indirect nr_segments @2");
_Static_assert(offsetof(struct blkif_request_indirect, id) == 8, "indirect id @8");
_Static_assert(offsetof(struct blkif_request_indirect, handle) == 24, "indirect handle @24");
_Static_assert(offsetof(struct blkif_request_indirect, indirect_grefs) == 28, "indirect_grefs @28");
_Static_assert(sizeof(struct blkif_response) == 16, "blkif_response is 16 bytes");
_Static_assert(offsetof(struct blkif_response, operation) == 8, "operation @8");
_Static_assert(offsetof(struct blkif_response, status) == 10, "status @10");
_Static_assert(offsetof(struct blkif_sring, ring) == 64, "entries at 64");
_Static_assert(BLK_RING_SIZE == 32, "a one-page blkif ring has 32 entries");

#endif
