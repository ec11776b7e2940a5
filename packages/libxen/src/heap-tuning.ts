/**
 * V8 heap settings for the hypervisor process: small semi-spaces for its
 * main thread (where ZeroMQ and every hypercall run), V8's defaults for its
 * vCPU worker threads.
 *
 * Why: every grant copy read allocates its reply's buffer (256 KiB for a
 * 64-page batch), and V8 counts ArrayBuffer memory as external memory, which
 * is only given back when a GC finds the buffer dead.  With the semi-spaces
 * V8 grows to under load (16 MB), a scavenge came every ~60 batches, the
 * dead buffers piled up past V8's external-memory limit, and it ran a full
 * mark-compact every 40-60 ms: ~40 % of the hypervisor's CPU in the
 * gnttab benchmark.  With 1 MB semi-spaces the scavenges free the buffers
 * first (no mark-compact in 2000 batches) and a batch took ~25 % less time
 * (bench/RESULTS.md "## gnttab").  The vCPU workers allocate differently
 * (the interpreter's code cache; ~25 % fewer MIPS with 1 MB semi-spaces), so
 * they get V8's default back before they start: V8 reads the flag when an
 * isolate is created.
 */
import v8 from 'node:v8';

/** Node options for the hypervisor's main thread. */
export const HYPERVISOR_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=1'];

/** V8's default maximum semi-space on 64-bit hosts (Heap::ConfigureHeap: 8 MB × pointer size / 4). */
const V8_DEFAULT_MAX_SEMI_SPACE_MB = 16;

/** Before starting worker threads: give isolates created from now on V8's default semi-spaces. */
export function restoreDefaultSemiSpaceForWorkers(): void {
  v8.setFlagsFromString(`--max-semi-space-size=${V8_DEFAULT_MAX_SEMI_SPACE_MB}`);
}
