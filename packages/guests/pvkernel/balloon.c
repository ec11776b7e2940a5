/*
 * The balloon (Linux drivers/xen/balloon.c, mini-os balloon.c): the
 * toolstack sets memory/target (KiB) in our xenstore home (`xl mem-set`);
 * we give pages back with XENMEM_decrease_reservation or take them again
 * with XENMEM_populate_physmap until the hypervisor's count of our pages
 * (XENMEM_current_reservation, what `xl list` shows) matches.
 *
 * Pages handed back come from the page allocator, so nothing in use is
 * ever given away; a target below what the kernel needs stops where the
 * allocator runs dry (and says so).  Checked from the idle loop
 * (balloon_poll), since a target changes rarely.
 */
#include "kernel.h"
#include "core.h"
#include "hypercall.h"

#define BALLOON_TOKEN "balloon"
#define BATCH 64

/* gfns we gave back, newest last: refilled in reverse. */
static uint64_t ballooned[1 << 14];
static size_t nr_ballooned;
static int watching;

static long reservation(unsigned cmd, uint64_t *gfns, size_t n)
{
    struct xen_memory_reservation r = {
        .extent_start = (uint64_t)(uintptr_t)gfns, .nr_extents = n, .extent_order = 0, .mem_flags = 0, .domid = DOMID_SELF,
    };
    return HYPERVISOR_memory_op(cmd, &r);
}

/* The hypervisor's count of our pages, in KiB; negative -errno on failure. */
static long current_kib(void)
{
    domid_t self = DOMID_SELF;
    long pages = HYPERVISOR_memory_op(XENMEM_current_reservation, &self);
    return pages < 0 ? pages : pages * (long)(PAGE_SIZE / 1024);
}

static void give_back(size_t pages)
{
    uint64_t batch[BATCH];
    while (pages > 0 && nr_ballooned < sizeof ballooned / sizeof ballooned[0]) {
        size_t n = 0;
        while (n < BATCH && n < pages && nr_ballooned + n < sizeof ballooned / sizeof ballooned[0]) {
            void *p = page_alloc();
            if (!p) break;
            batch[n++] = virt_to_gfn(p);
        }
        if (n == 0) {
            printk("balloon: no more free pages to give back (%lu KiB short of the target)\n", (unsigned long)(pages * 4));
            return;
        }
        long done = reservation(XENMEM_decrease_reservation, batch, n);
        if (done < 0) done = 0;
        for (size_t i = 0; i < (size_t)done; i++) ballooned[nr_ballooned++] = batch[i];
        for (size_t i = (size_t)done; i < n; i++) page_free((void *)(uintptr_t)(batch[i] << PAGE_SHIFT));
        if ((size_t)done < n) {
            printk("balloon: decrease_reservation gave back %ld of %lu pages\n", done, (unsigned long)n);
            return;
        }
        pages -= n;
    }
}

static void take_back(size_t pages)
{
    while (pages > 0 && nr_ballooned > 0) {
        size_t n = pages < BATCH ? pages : BATCH;
        if (n > nr_ballooned) n = nr_ballooned;
        uint64_t *gfns = &ballooned[nr_ballooned - n];
        long done = reservation(XENMEM_populate_physmap, gfns, n);
        if (done <= 0) {
            printk("balloon: populate_physmap refused (%ld): the hypervisor's max_mem is lower than the target\n", done);
            return;
        }
        /* The first `done` of the batch are ours again. */
        for (long i = 0; i < done; i++) page_free((void *)(uintptr_t)(gfns[i] << PAGE_SHIFT));
        for (size_t i = (size_t)done; i < n; i++) gfns[i - (size_t)done] = gfns[i];
        nr_ballooned -= (size_t)done;
        pages -= (size_t)done;
    }
}

/* Move towards memory/target; returns the size now (KiB). */
static long balloon_adjust(void)
{
    long target;
    if (xenbus_read_int(XBT_NIL, "memory/target", &target) != 0 || target <= 0) return -XEN_ENOENT;
    long now = current_kib();
    if (now < 0) return now;
    if (target < now) give_back((size_t)(now - target) / (PAGE_SIZE / 1024));
    else if (target > now) take_back((size_t)(target - now) / (PAGE_SIZE / 1024));
    long after = current_kib();
    if (after != now) printk("balloon: %ld KiB -> %ld KiB (target %ld KiB)\n", now, after, target);
    return after;
}

void balloon_poll(void)
{
    if (!xenbus_available()) return;
    if (!watching) {
        if (xenbus_watch("memory/target", BALLOON_TOKEN) != 0) return;
        watching = 1;
        (void)xenbus_watch_pending(BALLOON_TOKEN); /* the registration's own event */
        balloon_adjust();
        return;
    }
    if (xenbus_watch_pending(BALLOON_TOKEN)) balloon_adjust();
}

size_t balloon_pages(void) { return nr_ballooned; }
