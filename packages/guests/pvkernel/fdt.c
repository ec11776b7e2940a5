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

int fdt_parse(const void *dtb)
{
    const uint8_t *base = dtb;
    if (!dtb || be32(base) != FDT_MAGIC) return -XEN_EINVAL;
    uint32_t total = be32(base + 4);
    const uint8_t *p = base + be32(base + 8);
    const uint8_t *end = base + total;
    const char *strings = (const char *)base + be32(base + 12);
    boot_info.dtb_base = (uintptr_t)dtb;
    boot_info.dtb_size = total;
    uint32_t addr_cells = 2, size_cells = 1;   /* the spec's defaults at the root */
    const char *path[MAX_DEPTH];
    int depth = 0;
    while (p + 4 <= end) {
        uint32_t tok = be32(p);
        p += 4;
        if (tok == FDT_END) break;
        if (tok == FDT_NOP) continue;
        if (tok == FDT_BEGIN_NODE) {
            const char *name = (const char *)p;
            if (depth < MAX_DEPTH) path[depth] = name;
            depth++;
            p += (strlen(name) + 1 + 3) & ~3UL;
            continue;
        }
        if (tok == FDT_END_NODE) {
            if (--depth < 0) return -XEN_EINVAL;
            continue;
        }
        if (tok != FDT_PROP) return -XEN_EINVAL;
        uint32_t len = be32(p), nameoff = be32(p + 4);
        const uint8_t *val = p + 8;
        p = val + ((len + 3) & ~3U);
        const char *prop = strings + nameoff;
        if (depth == 1) {
            if (!strcmp(prop, "#address-cells")) addr_cells = be32(val);
            else if (!strcmp(prop, "#size-cells")) size_cells = be32(val);
        } else if (depth == 2 && is_node(path[1], "memory") && !strcmp(prop, "reg") && len >= 4 * (addr_cells + size_cells)) {
            if (!boot_info.ram_size) {   /* the first bank: xenbox guests have one */
                boot_info.ram_base = cells(val, addr_cells);
                boot_info.ram_size = cells(val + 4 * addr_cells, size_cells);
            }
        } else if (depth == 2 && is_node(path[1], "chosen") && !strcmp(prop, "bootargs")) {
            cmdline_set((const char *)val, len);
        } else if (depth == 2 && is_node(path[1], "cpus") && !strcmp(prop, "timebase-frequency")) {
            boot_info.timebase_hz = be32(val);
        }
    }
    return boot_info.ram_size ? 0 : -XEN_EINVAL;
}
