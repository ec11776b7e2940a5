/*
 * Grant table v1 for a xenbox RISC-V PV guest, the auto-translated way
 * (Linux drivers/xen/grant-table.c gnttab_setup_auto_xlat_frames /
 * arch_gnttab_map_shared): GNTTABOP_query_size, then
 * XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx 0) places frame 0 in
 * our RAM, where we write grant_entry_v1s and the hypervisor reads them.
 */
#include "../pvh/guest.h"
#include "grant.h"

#define NR_ENTRIES (PAGE_SIZE / sizeof(struct grant_entry_v1))

static struct grant_entry_v1 grant_frame[NR_ENTRIES] __attribute__((aligned(PAGE_SIZE)));
static grant_ref_t next_ref = GNTTAB_NR_RESERVED_ENTRIES;

long grant_init(void)
{
    struct gnttab_query_size q = { .dom = DOMID_SELF };
    long rc = xen_hypercall(__HYPERVISOR_grant_table_op, GNTTABOP_query_size, (ulong)&q, 1);
    if (rc) return rc;
    if (q.status != 0 || q.max_nr_frames < 1) return -22;
    struct xen_add_to_physmap xatp = {
        .domid = DOMID_SELF,
        .space = XENMAPSPACE_grant_table,
        .idx = 0,
        .gpfn = (ulong)grant_frame >> PAGE_SHIFT,
    };
    return xen_hypercall(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, (ulong)&xatp, 0);
}

/* gnttab_grant_foreign_access_ref(): domid and frame first, then (after a fence) the flags. */
long grant_access(domid_t domid, const void *addr, int readonly)
{
    if (next_ref >= NR_ENTRIES) return -1;
    grant_ref_t ref = next_ref++;
    grant_frame[ref].domid = domid;
    grant_frame[ref].frame = (uint32_t)((ulong)addr >> PAGE_SHIFT);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&grant_frame[ref].flags, GTF_permit_access | (readonly ? GTF_readonly : 0), __ATOMIC_SEQ_CST);
    return ref;
}
