/*
 * Grant table v1, the auto-translated way (Linux drivers/xen/grant-table.c
 * gnttab_setup_auto_xlat_frames, docs/pv-guest-abi.md §4): GNTTABOP_query_size
 * says how many frames we may have; each frame we use is a page of our RAM
 * placed with XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx).  What the
 * toolstack seeded there before (ref 0 = console ring, 1 = xenstore ring:
 * xc_dom_gnttab_seed) is carried into our page.
 *
 * Refs 0..7 are reserved (GNTTAB_NR_RESERVED_ENTRIES); the others live on a
 * free list threaded through a side array (gnttab_list[] in Linux).  When it
 * runs dry another frame is placed, up to the maximum.
 *
 * Granting follows gnttab_grant_foreign_access_ref(): domid and frame, a
 * fence, then flags.  Ending follows gnttab_end_foreign_access_ref_v1(): a
 * compare-and-swap of flags to 0 that fails while the grantee has the page
 * mapped (GTF_reading/GTF_writing set by the hypervisor).
 */
#include "core.h"
#include "hypercall.h"

#define ENTRIES_PER_FRAME (PAGE_SIZE / sizeof(struct grant_entry_v1))
#define MAX_FRAMES 16                 /* 8192 refs are plenty; xenbox allows 64 */
#define END_OF_LIST 0xffffffffU

static struct grant_entry_v1 *frames[MAX_FRAMES];
static unsigned nr_frames, max_frames;
static grant_ref_t *next_free;        /* per ref: the next free ref; one page per frame's refs */
static grant_ref_t free_head = END_OF_LIST;
static size_t in_use;

static struct grant_entry_v1 *entry(grant_ref_t ref) { return &frames[ref / ENTRIES_PER_FRAME][ref % ENTRIES_PER_FRAME]; }

/* Place frame `nr_frames` at a fresh page and put its refs on the free list. */
static int add_frame(void)
{
    if (nr_frames >= max_frames) return -XEN_ENOSPC;
    struct grant_entry_v1 *page = page_alloc();
    if (!page) return -XEN_ENOMEM;
    struct xen_add_to_physmap xatp = {
        .domid = DOMID_SELF, .space = XENMAPSPACE_grant_table, .idx = nr_frames, .gpfn = virt_to_gfn(page),
    };
    long rc = HYPERVISOR_memory_op(XENMEM_add_to_physmap, &xatp);
    if (rc) { page_free(page); return (int)rc; }
    frames[nr_frames] = page;
    grant_ref_t first = nr_frames * ENTRIES_PER_FRAME;
    nr_frames++;
    grant_ref_t last = nr_frames * ENTRIES_PER_FRAME;
    if (first < GNTTAB_NR_RESERVED_ENTRIES) first = GNTTAB_NR_RESERVED_ENTRIES;
    for (grant_ref_t r = last; r-- > first;) {
        next_free[r] = free_head;
        free_head = r;
    }
    return 0;
}

int gnttab_init(void)
{
    struct gnttab_query_size q = { .dom = DOMID_SELF };
    long rc = HYPERVISOR_grant_table_op(GNTTABOP_query_size, &q, 1);
    if (rc) return (int)rc;
    if (q.status != 0 || q.max_nr_frames < 1) return -XEN_EINVAL;
    max_frames = q.max_nr_frames < MAX_FRAMES ? q.max_nr_frames : MAX_FRAMES;
    /* The free-list array for every ref we could ever have: 4 bytes a ref. */
    size_t pages = (max_frames * ENTRIES_PER_FRAME * sizeof(grant_ref_t) + PAGE_SIZE - 1) / PAGE_SIZE;
    for (size_t i = 0; i < pages; i++) {
        void *p = page_alloc();
        if (!p) return -XEN_ENOMEM;
        if (i == 0) next_free = p;
        else if ((uintptr_t)p != (uintptr_t)next_free + i * PAGE_SIZE) {
            /* not contiguous: fewer frames then */
            max_frames = (unsigned)(i * PAGE_SIZE / sizeof(grant_ref_t) / ENTRIES_PER_FRAME);
            page_free(p);
            break;
        }
    }
    return add_frame();
}

int gnttab_grant_access(domid_t dom, void *page, int readonly)
{
    unsigned long irq = irq_save();
    if (free_head == END_OF_LIST) {
        int rc = add_frame();
        if (rc) { irq_restore(irq); return rc; }
    }
    grant_ref_t ref = free_head;
    free_head = next_free[ref];
    in_use++;
    irq_restore(irq);
    struct grant_entry_v1 *e = entry(ref);
    e->domid = dom;
    e->frame = (uint32_t)virt_to_gfn(page);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);   /* wmb(): the grantee must see frame before flags */
    __atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)), __ATOMIC_SEQ_CST);
    return (int)ref;
}

int gnttab_end_access(grant_ref_t ref)
{
    if (ref < GNTTAB_NR_RESERVED_ENTRIES || ref >= nr_frames * ENTRIES_PER_FRAME) return -XEN_EINVAL;
    /* flags and domid share the entry's first 32-bit word (flags in the low half: little-endian);
       RV64A has no 16-bit compare-and-swap, so swap the word (domid is ours and does not change). */
    uint32_t *word = (uint32_t *)entry(ref);
    uint32_t old = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    do {
        if (old & (GTF_reading | GTF_writing)) return -XEN_EBUSY;
        if (!(old & GTF_permit_access)) return -XEN_EINVAL;   /* not granted: a double end */
    } while (!__atomic_compare_exchange_n(word, &old, old & 0xffff0000U, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    unsigned long irq = irq_save();
    next_free[ref] = free_head;
    free_head = ref;
    in_use--;
    irq_restore(irq);
    return 0;
}

size_t gnttab_refs_in_use(void) { return in_use; }
