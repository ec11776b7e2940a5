/*
 * The `cpu` workload: a deterministic integer loop (xorshift64, multiply,
 * divide, a dependent add chain: the kinds of work the vCPU's translator
 * must do), run in fixed batches, each reporting iterations per second and
 * a checksum that depends only on the work done (so it is the same on every
 * run and every machine).  The loop is cpu-work.h's.
 */
#include "core.h"
#include "cpu-work.h"

#define BATCH CPU_WORK_BATCH

int cpu_workload(int seconds)
{
    if (seconds <= 0) seconds = 5;
    printk("cpu: %lu iterations a batch, for %d s\n", BATCH, seconds);
    uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000ULL;
    uint64_t x = CPU_WORK_SEED, total = 0;
    for (unsigned batch = 1; now_ns() < end; batch++) {
        uint64_t t0 = now_ns();
        uint64_t sum = cpu_work(x, BATCH);
        uint64_t dt = now_ns() - t0;
        total += BATCH;
        x = sum | 1;
        printk("cpu: batch %u: %lu iterations/s, checksum %016llx\n", batch, (unsigned long)(BATCH * 1000000000ULL / (dt ? dt : 1)), (unsigned long long)sum);
    }
    uint64_t dt = now_ns() - start;
    printk("cpu: done: %llu iterations in %llu ms, %llu iterations/s\n", (unsigned long long)total,
           (unsigned long long)(dt / 1000000), (unsigned long long)(total * 1000000000ULL / (dt ? dt : 1)));
    return 0;
}
