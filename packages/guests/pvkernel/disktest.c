/*
 * disktest [seed=N] [mb=M] [dev=NAME]: write the seeded pattern of
 * pattern.h over the first M MiB of a disk (xvda, or the first vbd), flush,
 * read it back and verify every sector, and report the rates:
 *
 *   disktest: wrote 4 MiB at 3.21 MB/s, read at 5.43 MB/s, verify OK
 *
 * The host regenerates the same bytes and compares them with the image
 * file.  Requests are pipelined through blkfront's async API (a ring's
 * worth in flight); if the backend restarts meanwhile, blkfront
 * reconnects and re-issues what was in flight, and the test just takes
 * longer.  Rates are wall time over the whole phase (pattern generation
 * and checking included, overlapped with the I/O), in 10^6 bytes/s.
 */
#include "kernel.h"
#include "klib.h"
#include "blkfront.h"
#include "pattern.h"
#include "workloads.h"

#define READ_WINDOW 16
#define MAX_REQ_SECTORS (BLKFRONT_MAX_SEGS * BLKIF_SECTORS_PER_PAGE)

static uint8_t staging[MAX_REQ_SECTORS * BLKIF_SECTOR_SIZE] __attribute__((aligned(4096)));
static uint8_t readbufs[READ_WINDOW][MAX_REQ_SECTORS * BLKIF_SECTOR_SIZE] __attribute__((aligned(4096)));
static struct blk_io ios[BLK_RING_SIZE];

static void rate(char *buf, size_t len, uint64_t bytes, uint64_t ns)
{
    if (!ns) ns = 1;
    fmt_fixed(buf, len, bytes * 100000ull / ns, 2);   /* bytes/ns * 1000 = MB/s, two decimals */
}

static struct blkfront *pick_disk(int argc, char **argv)
{
    const char *name = opt_get(argc, argv, "dev");
    if (name) return blkfront_find(name);
    struct blkfront *d = blkfront_find("xvda");
    return d ? d : blkfront_get(0);
}

static int write_phase(struct blkfront *d, uint64_t seed, uint64_t total, uint32_t per)
{
    unsigned k = 0;
    for (uint64_t sector = 0; sector < total; sector += per, k = (k + 1) % BLK_RING_SIZE) {
        uint32_t n = total - sector < per ? (uint32_t)(total - sector) : per;
        struct blk_io *io = &ios[k];
        if (io->buf) {
            int rc = blk_wait(d, io);
            if (rc) { printk("disktest: write at sector %lu failed (%d)\n", (unsigned long)io->sector, rc); return rc; }
        }
        pattern_fill(seed, sector, staging, n);
        *io = (struct blk_io){ .op = BLKIF_OP_WRITE, .sector = sector, .nsectors = n, .buf = staging };
        int rc = blk_submit(d, io);   /* copies staging into the request's own pages */
        if (rc) { printk("disktest: cannot submit a write at sector %lu (%d)\n", (unsigned long)sector, rc); return rc; }
    }
    int first_err = 0;
    for (unsigned i = 0; i < BLK_RING_SIZE; i++)
        if (ios[i].buf) {
            int rc = blk_wait(d, &ios[i]);
            if (rc && !first_err) {
                printk("disktest: write at sector %lu failed (%d)\n", (unsigned long)ios[i].sector, rc);
                first_err = rc;
            }
        }
    return first_err;
}

/* Check a completed read; 0, or -XEN_EIO having printed the first bad sector. */
static int check_read(uint64_t seed, struct blk_io *io)
{
    if (io->status) {
        printk("disktest: read at sector %lu failed (%d)\n", (unsigned long)io->sector, io->status);
        return io->status;
    }
    long bad = pattern_check(seed, io->sector, io->buf, io->nsectors);
    if (bad >= 0) {
        printk("disktest: verify FAILED at sector %lu\n", (unsigned long)(io->sector + (uint64_t)bad));
        return -XEN_EIO;
    }
    return 0;
}

static int read_phase(struct blkfront *d, uint64_t seed, uint64_t total, uint32_t per)
{
    unsigned k = 0;
    int rc = 0;
    for (uint64_t sector = 0; sector < total && !rc; sector += per, k = (k + 1) % READ_WINDOW) {
        uint32_t n = total - sector < per ? (uint32_t)(total - sector) : per;
        struct blk_io *io = &ios[k];
        if (io->buf) {
            blk_wait(d, io);
            if ((rc = check_read(seed, io))) break;
        }
        *io = (struct blk_io){ .op = BLKIF_OP_READ, .sector = sector, .nsectors = n, .buf = readbufs[k] };
        if ((rc = blk_submit(d, io))) printk("disktest: cannot submit a read at sector %lu (%d)\n", (unsigned long)sector, rc);
    }
    for (unsigned i = 0; i < READ_WINDOW; i++)
        if (ios[i].buf) {
            blk_wait(d, &ios[i]);
            if (!rc) rc = check_read(seed, &ios[i]);
        }
    return rc;
}

int disktest_run(int argc, char **argv)
{
    uint64_t seed, mb;
    if (opt_u64(argc, argv, "seed", 1, &seed) < 0 || opt_u64(argc, argv, "mb", 4, &mb) < 0) return -XEN_EINVAL;
    struct blkfront *d = pick_disk(argc, argv);
    if (!d) {
        printk("disktest: no disk (is there a disk= in the guest's config?)\n");
        return -XEN_ENODEV;
    }
    struct blkfront_info info;
    blkfront_get_info(d, &info);
    uint64_t total = mb * 2048;   /* 512-byte sectors */
    if (total > info.sectors) {
        printk("disktest: %s has only %lu sectors; testing all of it\n", info.name, (unsigned long)info.sectors);
        total = info.sectors;
    }
    if (!total) { printk("disktest: %s is empty\n", info.name); return -XEN_EINVAL; }
    uint32_t per = blk_max_sectors(d);
    if (per > MAX_REQ_SECTORS) per = MAX_REQ_SECTORS;
    printk("disktest: %s, seed %lu, %lu sectors (%lu KiB), %u KiB requests%s\n", info.name, (unsigned long)seed,
           (unsigned long)total, (unsigned long)(total / 2), (unsigned)(per / 2),
           info.info & VDISK_READONLY ? ", read-only disk" : "");
    memset(ios, 0, sizeof(ios));
    uint64_t t0 = now_ns();
    int rc = write_phase(d, seed, total, per);
    if (!rc) {
        rc = blk_flush(d);
        if (rc) printk("disktest: flush failed (%d)\n", rc);
    }
    uint64_t t1 = now_ns();
    if (rc) {
        printk("disktest: FAILED writing %s (%d)\n", info.name, rc);
        return rc;
    }
    memset(ios, 0, sizeof(ios));
    rc = read_phase(d, seed, total, per);
    uint64_t t2 = now_ns();
    blkfront_get_info(d, &info);
    if (info.reconnects)
        printk("disktest: the backend went away %u time(s); %lu request(s) were issued again\n",
               (unsigned)info.reconnects, (unsigned long)info.reissued);
    char w[24], r[24], size[24];
    uint64_t bytes = total * BLKIF_SECTOR_SIZE;
    rate(w, sizeof(w), bytes, t1 - t0);
    rate(r, sizeof(r), bytes, t2 - t1);
    if (total % 2048) fmt_fixed(size, sizeof(size), total * 100 / 2048, 2);
    else snprintk(size, sizeof(size), "%lu", (unsigned long)(total / 2048));
    if (rc) {
        printk("disktest: wrote %s MiB at %s MB/s, read at %s MB/s, verify FAILED\n", size, w, r);
        return rc;
    }
    printk("disktest: wrote %s MiB at %s MB/s, read at %s MB/s, verify OK\n", size, w, r);
    return 0;
}
