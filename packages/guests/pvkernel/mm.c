/*
 * Memory: a page allocator over the RAM /memory gives us after the kernel
 * image (less the device tree), and kmalloc on top of it.
 *
 * Pages: one bit each in a bitmap kept in the first free pages (1 = in
 * use).  kmalloc: power-of-two size classes from 16 to 2048 bytes, each
 * class carving whole pages into objects on a free list; a byte per page
 * (page_class[]) remembers which class a page serves, so kfree needs no
 * header.  Everything runs with interrupts off, so an upcall handler may
 * allocate too.  Physical = virtual (satp Bare).
 */
#include <string.h>
#include "core.h"

extern char __image_end[];   /* link.ld: end of the image (bss and stack included) */

#define MIN_SHIFT 4                  /* 16 bytes */
#define MAX_SHIFT 11                 /* 2048 bytes */
#define NR_CLASSES (MAX_SHIFT - MIN_SHIFT + 1)
#define CLASS_NONE 0                 /* page_class[]: not a kmalloc page */
#define CLASS_PAGE 0xff              /* page_class[]: a whole-page kmalloc */

struct free_obj { struct free_obj *next; };

static uint64_t ram_base;            /* first page the bitmap covers */
static size_t nr_pages, nr_free;
static uint64_t *bitmap;
static uint8_t *page_class;
static size_t hint;                  /* where the next search starts */
static struct free_obj *free_list[NR_CLASSES];

static int test_bit(size_t i) { return (bitmap[i / 64] >> (i % 64)) & 1; }
static void set_bit(size_t i) { bitmap[i / 64] |= 1UL << (i % 64); }
static void clear_bit(size_t i) { bitmap[i / 64] &= ~(1UL << (i % 64)); }

static uint64_t page_up(uint64_t a) { return (a + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1); }

static void reserve(uint64_t start, uint64_t end)
{
    for (uint64_t a = start & ~(PAGE_SIZE - 1); a < end; a += PAGE_SIZE) {
        if (a < ram_base) continue;
        size_t i = (a - ram_base) >> PAGE_SHIFT;
        if (i < nr_pages && !test_bit(i)) { set_bit(i); nr_free--; }
    }
}

void mm_init(void)
{
    uint64_t ram_end = boot_info.ram_base + boot_info.ram_size;
    uint64_t first = page_up((uintptr_t)__image_end > boot_info.ram_base ? (uintptr_t)__image_end : boot_info.ram_base);
    if (first >= ram_end) panic("mm: no RAM after the kernel (image ends at %p, RAM at %lx+%lx)", __image_end, (unsigned long)boot_info.ram_base, (unsigned long)boot_info.ram_size);
    ram_base = first;
    nr_pages = (ram_end - first) >> PAGE_SHIFT;
    nr_free = nr_pages;
    /* The bitmap and the class bytes live in the first free pages. */
    size_t bitmap_bytes = (nr_pages + 63) / 64 * 8;
    bitmap = (uint64_t *)(uintptr_t)first;
    page_class = (uint8_t *)bitmap + bitmap_bytes;
    uint64_t meta_end = page_up((uintptr_t)(page_class + nr_pages));
    memset(bitmap, 0, meta_end - first);
    reserve(first, meta_end);
    reserve(boot_info.dtb_base, boot_info.dtb_base + boot_info.dtb_size);
}

static void *alloc_page_locked(void)
{
    for (size_t n = 0; n < nr_pages; n++) {
        size_t i = (hint + n) % nr_pages;
        if (bitmap[i / 64] == ~0UL) { n += 63 - i % 64; continue; }   /* skip a full word */
        if (test_bit(i)) continue;
        set_bit(i);
        nr_free--;
        hint = i + 1;
        void *p = (void *)(uintptr_t)(ram_base + ((uint64_t)i << PAGE_SHIFT));
        memset(p, 0, PAGE_SIZE);
        return p;
    }
    return NULL;
}

static size_t index_of(void *page)
{
    uint64_t a = (uintptr_t)page;
    size_t i = (a - ram_base) >> PAGE_SHIFT;
    if (a < ram_base || (a & (PAGE_SIZE - 1)) || i >= nr_pages) panic("mm: %p is not a page of the heap", page);
    return i;
}

static void free_page_locked(void *page)
{
    size_t i = index_of(page);
    if (!test_bit(i)) panic("mm: double free of page %p", page);
    clear_bit(i);
    page_class[i] = CLASS_NONE;
    nr_free++;
}

void *page_alloc(void)
{
    unsigned long irq = irq_save();
    void *p = alloc_page_locked();
    irq_restore(irq);
    return p;
}

void page_free(void *page)
{
    if (!page) return;
    unsigned long irq = irq_save();
    free_page_locked(page);
    irq_restore(irq);
}

size_t pages_free(void) { return nr_free; }
size_t pages_total(void) { return nr_pages; }

static int class_of(size_t n)
{
    int c = 0;
    while ((1UL << (c + MIN_SHIFT)) < n) c++;
    return c;
}

/* A fresh page cut into objects of class c, onto its free list. */
static int refill(int c)
{
    uint8_t *page = alloc_page_locked();
    if (!page) return -XEN_ENOMEM;
    page_class[index_of(page)] = (uint8_t)(c + 1);
    size_t size = 1UL << (c + MIN_SHIFT);
    for (size_t off = PAGE_SIZE; off >= size; off -= size) {
        struct free_obj *o = (struct free_obj *)(page + off - size);
        o->next = free_list[c];
        free_list[c] = o;
    }
    return 0;
}

void *kmalloc(size_t n)
{
    if (n == 0) n = 1;
    if (n > PAGE_SIZE) return NULL;
    unsigned long irq = irq_save();
    void *p = NULL;
    if (n > (1UL << MAX_SHIFT)) {
        p = alloc_page_locked();
        if (p) page_class[index_of(p)] = CLASS_PAGE;
    } else {
        int c = class_of(n);
        if (free_list[c] || refill(c) == 0) {
            struct free_obj *o = free_list[c];
            free_list[c] = o->next;
            memset(o, 0, 1UL << (c + MIN_SHIFT));
            p = o;
        }
    }
    irq_restore(irq);
    return p;
}

void kfree(void *p)
{
    if (!p) return;
    unsigned long irq = irq_save();
    size_t i = index_of((void *)((uintptr_t)p & ~(PAGE_SIZE - 1)));
    uint8_t c = page_class[i];
    if (c == CLASS_PAGE && ((uintptr_t)p & (PAGE_SIZE - 1)) == 0) {
        free_page_locked(p);
    } else if (c != CLASS_NONE && c != CLASS_PAGE && ((uintptr_t)p & ((1UL << (c - 1 + MIN_SHIFT)) - 1)) == 0) {
        struct free_obj *o = p;
        o->next = free_list[c - 1];
        free_list[c - 1] = o;
    } else {
        panic("kfree: %p was not kmalloc'ed", p);
    }
    irq_restore(irq);
}
