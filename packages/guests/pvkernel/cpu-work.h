/*
 * The `cpu` workload's loop, alone so that the benchmark
 * (bench/src/pvkernel.bench.ts) compiles the very same code for the host
 * as its native baseline: xorshift64, a multiply, a divide, a dependent add
 * chain.  Pure C, no kernel headers.
 */
#ifndef PVKERNEL_CPU_WORK_H
#define PVKERNEL_CPU_WORK_H

#include <stdint.h>

static inline uint64_t cpu_work(uint64_t x, unsigned long n)
{
    uint64_t acc = 0;
    for (unsigned long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc += (x * 2654435761UL) / ((x & 0xffff) | 1);
    }
    return acc ^ x;
}

#define CPU_WORK_BATCH 100000UL
#define CPU_WORK_SEED 0x9e3779b97f4a7c15ULL

#endif
