/*
 * xenbox CPU benchmark guest: three kernels that stress different parts of
 * an emulator (ALU + byte loads, multiply + strided loads, dependent loads),
 * each timed with mtime (10 MHz) and minstret, results printed on the
 * ns16550 UART; then poweroff through the SiFive test device.
 * Pure RV64IMAC: no FP, no A.  Sizes are tunable with -D.
 */
#include <stdint.h>

#ifndef CRC_BYTES
#define CRC_BYTES (1u << 20)
#endif
#ifndef CRC_REPS
#define CRC_REPS 16
#endif
#ifndef MM_N
#define MM_N 128
#endif
#ifndef MM_REPS
#define MM_REPS 4
#endif
#ifndef LIST_NODES
#define LIST_NODES 65536
#endif
#ifndef LIST_STEPS
#define LIST_STEPS (16u << 20)
#endif

#define UART ((volatile uint8_t *)0x10000000)
#define TEST ((volatile uint32_t *)0x100000)
#define MTIME ((volatile uint64_t *)0x0200bff8)

static void putc_(char c) {
  while ((UART[5] & 0x20) == 0) {}
  UART[0] = (uint8_t)c;
}
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void puthex(uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--) putc_("0123456789abcdef"[(v >> (4 * i)) & 15]);
}
static void putdec(uint64_t v) {
  char buf[24];
  int n = 0;
  do { buf[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) putc_(buf[--n]);
}
static inline uint64_t instret(void) { uint64_t v; __asm__ volatile("csrr %0, minstret" : "=r"(v)); return v; }

void finish(void) { *TEST = 0x5555; for (;;) {} }

void unexpected_trap(uint64_t cause, uint64_t epc, uint64_t tval) {
  puts_("unexpected trap: mcause=0x"); puthex(cause, 16);
  puts_(" mepc=0x"); puthex(epc, 16);
  puts_(" mtval=0x"); puthex(tval, 16); puts_("\n");
  *TEST = (1u << 16) | 0x3333;
  for (;;) {}
}

static uint8_t buf[CRC_BYTES];
static uint32_t crc_table[256];
static int32_t A[MM_N][MM_N], B[MM_N][MM_N], C[MM_N][MM_N];
struct node { struct node *next; uint64_t value; };
static struct node nodes[LIST_NODES];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) { /* xorshift64 */
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return rng;
}

static uint32_t init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
  uint32_t sum = 0;
  for (uint32_t i = 0; i < CRC_BYTES; i++) { buf[i] = (uint8_t)next_random(); sum += buf[i]; }
  for (int i = 0; i < MM_N; i++)
    for (int j = 0; j < MM_N; j++) { A[i][j] = (int32_t)(next_random() & 0xff) - 128; B[i][j] = (int32_t)(next_random() & 0xff) - 128; }
  /* Sattolo: one random cycle through all nodes, so the walk visits every node. */
  static uint32_t perm[LIST_NODES];
  for (uint32_t i = 0; i < LIST_NODES; i++) perm[i] = i;
  for (uint32_t i = LIST_NODES - 1; i > 0; i--) {
    uint32_t j = (uint32_t)(next_random() % i);
    uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
  }
  for (uint32_t i = 0; i < LIST_NODES; i++) { nodes[perm[i]].next = &nodes[perm[(i + 1) % LIST_NODES]]; nodes[i].value = i; }
  return sum;
}

static uint32_t crc32_kernel(void) {
  uint32_t crc = 0;
  for (int r = 0; r < CRC_REPS; r++) {
    buf[(uint32_t)r * 7919u % CRC_BYTES] ^= (uint8_t)r; /* perturb so no pass can be elided */
    uint32_t c = 0xffffffffu;
    for (uint32_t i = 0; i < CRC_BYTES; i++) c = crc_table[(c ^ buf[i]) & 0xff] ^ (c >> 8);
    crc ^= ~c;
  }
  return crc;
}

static uint32_t matmul_kernel(void) {
  uint32_t sum = 0;
  for (int r = 0; r < MM_REPS; r++) {
    for (int i = 0; i < MM_N; i++)
      for (int j = 0; j < MM_N; j++) {
        int32_t acc = 0;
        for (int k = 0; k < MM_N; k++) acc += A[i][k] * B[k][j];
        C[i][j] = acc;
      }
    A[r % MM_N][0] += 1;
    for (int i = 0; i < MM_N; i++) sum = sum * 31 + (uint32_t)C[i][(i * 7 + r) % MM_N];
  }
  return sum;
}

static uint64_t list_kernel(void) {
  struct node *p = &nodes[0];
  uint64_t sum = 0;
  for (uint32_t s = 0; s < LIST_STEPS; s++) { sum += p->value; p = p->next; }
  return sum;
}

static void report(const char *name, uint64_t result, uint64_t t0, uint64_t i0) {
  uint64_t ticks = *MTIME - t0, insns = instret() - i0;
  puts_(name); puts_(" 0x"); puthex(result, 8);
  puts_(" ticks "); putdec(ticks);
  puts_(" insns "); putdec(insns); puts_("\n");
}

int main(void) {
  puts_("xenbox cpu bench\n");
  uint64_t t0 = *MTIME, i0 = instret();
  report("init", init(), t0, i0);
  t0 = *MTIME; i0 = instret();
  report("crc32", crc32_kernel(), t0, i0);
  t0 = *MTIME; i0 = instret();
  report("matmul", matmul_kernel(), t0, i0);
  t0 = *MTIME; i0 = instret();
  report("list", list_kernel(), t0, i0);
  puts_("done\n");
  return 0;
}
