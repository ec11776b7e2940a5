/*
 * Reading the flattened device tree the toolstack hands us in a1
 * (Devicetree spec v0.4 ch. 5; xenbox's writer: packages/hypervisor/src/arch/riscv/fdt.ts):
 * /memory reg (the RAM we may use: the toolstack keeps its magic pages —
 * xenstore and console rings — above it, outside /memory), /chosen bootargs,
 * /cpus timebase-frequency.  Big-endian, 4-byte aligned tokens.
 */
#include <string.h>
#include "core.h"

#define FDT_MAGIC 0xd00dfeedU
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9
#define MAX_DEPTH 16
#define FDT_HEADER_SIZE 40
#define FDT_MAX_SIZE (1U << 20)

struct boot_info boot_info;

static uint32_t be32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* A #address-cells/#size-cells sized number (1 or 2 cells). */
static uint64_t cells(const uint8_t *p, uint32_t n)
{
    return n == 2 ? (uint64_t)be32(p) << 32 | be32(p + 4) : be32(p);
}

/* "memory" or "memory@80000000" */
static int is_node(const char *name, const char *want)
{
    size_t n = strlen(want);
    return strncmp(name, want, n) == 0 && (name[n] == '\0' || name[n] == '@');
}

/* A NUL-terminated string that starts at p and ends before `end`, else NULL. */
static const char *string_in(const uint8_t *p, const uint8_t *end)
{
    if (p >= end) return NULL;
    size_t n = strnlen((const char *)p, (size_t)(end - p));
    return n < (size_t)(end - p) ? (const char *)p : NULL;
}

/*
 * Every offset and length is checked against the blob's own header before
 * use: a malformed tree is -XEN_EINVAL, never a read outside it.
 */
int fdt_parse(const void *dtb)
{
    const uint8_t *base = dtb;
    if (!dtb || be32(base) != FDT_MAGIC) return -XEN_EINVAL;
    uint32_t total = be32(base + 4), off_struct = be32(base + 8), off_strings = be32(base + 12);
    uint32_t version = be32(base + 20), size_strings = be32(base + 32), size_struct = be32(base + 36);
    if (total < FDT_HEADER_SIZE || total > FDT_MAX_SIZE || version < 17) return -XEN_EINVAL;
    if (off_struct > total || size_struct > total - off_struct || off_strings > total || size_strings > total - off_strings)
        return -XEN_EINVAL;
    const uint8_t *p = base + off_struct;
    const uint8_t *end = p + size_struct;
    const uint8_t *strings = base + off_strings, *strings_end = strings + size_strings;
    boot_info.dtb_base = (uintptr_t)dtb;
    boot_info.dtb_size = total;
    uint32_t addr_cells = 2, size_cells = 1;   /* the spec's defaults at the root */
    const char *path[MAX_DEPTH];
    int depth = 0;
    for (;;) {
        if (end - p < 4) return -XEN_EINVAL;   /* no FDT_END */
        uint32_t tok = be32(p);
        p += 4;
        if (tok == FDT_END) break;
        if (tok == FDT_NOP) continue;
        if (tok == FDT_BEGIN_NODE) {
            const char *name = string_in(p, end);
            if (!name) return -XEN_EINVAL;
            if (depth < MAX_DEPTH) path[depth] = name;
            depth++;
            size_t adv = (strlen(name) + 1 + 3) & ~3UL;
            if (adv > (size_t)(end - p)) return -XEN_EINVAL;
            p += adv;
            continue;
        }
        if (tok == FDT_END_NODE) {
            if (--depth < 0) return -XEN_EINVAL;
            continue;
        }
        if (tok != FDT_PROP || end - p < 8 || depth < 1) return -XEN_EINVAL;
        uint32_t len = be32(p), nameoff = be32(p + 4);
        const uint8_t *val = p + 8;
        if (len > (size_t)(end - val) || nameoff >= size_strings) return -XEN_EINVAL;
        const char *prop = string_in(strings + nameoff, strings_end);
        if (!prop) return -XEN_EINVAL;
        p = val + len;
        p += (4 - ((uintptr_t)(p - base) & 3)) & 3;
        if (p > end) return -XEN_EINVAL;
        if (depth == 1) {
            if (!strcmp(prop, "#address-cells") && len == 4) addr_cells = be32(val);
            else if (!strcmp(prop, "#size-cells") && len == 4) size_cells = be32(val);
        } else if (depth == 2 && is_node(path[1], "memory") && !strcmp(prop, "reg")) {
            if ((addr_cells != 1 && addr_cells != 2) || (size_cells != 1 && size_cells != 2)) return -XEN_EINVAL;
            if (len >= 4 * (addr_cells + size_cells) && !boot_info.ram_size) {   /* the first bank: xenbox guests have one */
                boot_info.ram_base = cells(val, addr_cells);
                boot_info.ram_size = cells(val + 4 * addr_cells, size_cells);
            }
        } else if (depth == 2 && is_node(path[1], "chosen") && !strcmp(prop, "bootargs")) {
            cmdline_set((const char *)val, len);
        } else if (depth == 2 && is_node(path[1], "cpus") && !strcmp(prop, "timebase-frequency") && len == 4) {
            boot_info.timebase_hz = be32(val);
        }
    }
    return boot_info.ram_size ? 0 : -XEN_EINVAL;
}
