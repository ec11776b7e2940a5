/*
 * Host unit tests of the pvkernel core's pure parts (test/pvkernel-core-unit.test.ts
 * builds this with gcc -fsanitize=address,undefined together with format.c,
 * cmdline.c, fdt.c and mm.c, -DPVKERNEL_HOST_TEST):
 *
 *   core-test format            vsnprintk against the host's vsnprintf
 *   core-test cmdline           key=value and word parsing
 *   core-test fdt FILE          parse FILE, print what boot_info holds
 *   core-test fdt-fuzz FILE     every truncation and many byte flips of FILE: no crash, no read outside it
 *   core-test mm                the page allocator and kmalloc
 *
 * Each prints "<what>: N checks, 0 failures" and exits 0 when all hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core.h"

static int checks, failures;
static jmp_buf panic_jmp;
static int expect_panic;
static char panic_msg[256];

#define CHECK(cond, ...) do { checks++; if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

/* ---- what the core's other files would give ---- */
void panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(panic_msg, sizeof panic_msg, fmt, ap);
    va_end(ap);
    if (expect_panic) longjmp(panic_jmp, 1);
    printf("unexpected panic: %s\n", panic_msg);
    exit(2);
}
int printk(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

/* ---- format ---- */
static void same(const char *fmt, ...)
{
    char ours[128], theirs[128];
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintk(ours, sizeof ours, fmt, ap);
    int m = vsnprintf(theirs, sizeof theirs, fmt, aq);
    va_end(aq);
    va_end(ap);
    CHECK(n == m && !strcmp(ours, theirs), "format \"%s\": ours \"%s\" (%d), libc \"%s\" (%d)", fmt, ours, n, theirs, m);
}

static void test_format(void)
{
    same("%d %d %d", 0, -1, 2147483647);
    same("%d", (int)0x80000000);
    same("%u %x %X %o", 4294967295u, 0xdeadbeefu, 0xabcdefu, 0777u);
    same("%ld %lu %lx", -9223372036854775807L - 1, 18446744073709551615UL, 0x123456789abcdefUL);
    same("%lld %llu %llx", -42LL, 18446744073709551615ULL, 0xfedcba9876543210ULL);
    same("%zu %zx", (size_t)123456, (size_t)0xffff);
    same("[%5d] [%-5d] [%05d] [%5s] [%-5s] [%c] [%3c] [%-3c]", 42, 42, 42, "ab", "ab", 'x', 'y', 'z');
    same("[%02x] [%02x] [%08lx] [%016llx]", 5u, 0xabu, 0x1234UL, 0x1ULL);
    same("[%05d] [%-05d] [%5d]", -42, -42, -42);
    same("[%.3s] [%.*s] [%10.2s] [%-10.2s]", "abcdef", 2, "abcdef", "abcdef", "abcdef");
    same("[%*d] [%-*d] [%*d]", 6, 7, 6, 7, -6, 7);
    same("[%.5d] [%8.5d] [%.3x]", 42, 42, 0xau);
    same("100%% sure, %s", "yes");
    same("%hhu %hu", 300, 70000);
    same("%p", (void *)0x80001234);
    /* snprintf semantics: truncation keeps the length it would have had, and a NUL */
    char small[8];
    int n = snprintk(small, sizeof small, "%s", "0123456789");
    CHECK(n == 10 && !strcmp(small, "0123456"), "truncation: %d \"%s\"", n, small);
    n = snprintk(small, 1, "%d", 12345);
    CHECK(n == 5 && small[0] == '\0', "len 1: %d", n);
    n = snprintk(NULL, 0, "%d", 12345);
    CHECK(n == 5, "len 0: %d", n);
    char buf[16];
    const char *volatile nothing = NULL;
    snprintk(buf, sizeof buf, "%s", nothing);
    CHECK(!strcmp(buf, "(null)"), "NULL string: %s", buf);
    printf("format: %d checks, %d failures\n", checks, failures);
}

/* ---- cmdline ---- */
static void test_cmdline(void)
{
    const char *line = "ping 10.0.0.2 ip=10.0.0.1  count=3\tip=10.0.0.7 -v";
    cmdline_set(line, strlen(line) + 1);
    CHECK(!strcmp(kernel_cmdline(), line), "kernel_cmdline: %s", kernel_cmdline());
    CHECK(cmdline_value("ip") && !strcmp(cmdline_value("ip"), "10.0.0.7"), "the last ip= wins: %s", cmdline_value("ip"));
    CHECK(cmdline_value("count") && !strcmp(cmdline_value("count"), "3"), "count: %s", cmdline_value("count"));
    CHECK(cmdline_value("coun") == NULL && cmdline_value("nope") == NULL, "no partial key matches");
    CHECK(!strcmp(cmdline_word(0), "ping") && !strcmp(cmdline_word(1), "10.0.0.2") && !strcmp(cmdline_word(2), "-v") && !cmdline_word(3), "words");
    /* not NUL-terminated within len (a bootargs property of a hostile tree): cut at len */
    cmdline_set("cpu seconds=2XXXX", 13);
    CHECK(!strcmp(kernel_cmdline(), "cpu seconds=2"), "len-bounded: %s", kernel_cmdline());
    CHECK(!strcmp(cmdline_value("seconds"), "2"), "seconds");
    /* longer than the kernel keeps: truncated, still parsed */
    static char big[3000];
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "shell x=1 ", 10);
    cmdline_set(big, sizeof big);
    CHECK(strlen(kernel_cmdline()) == 1023 && !strcmp(cmdline_word(0), "shell") && !strcmp(cmdline_value("x"), "1"), "long: %zu", strlen(kernel_cmdline()));
    cmdline_set("", 1);
    CHECK(!cmdline_word(0) && !cmdline_value("x") && !strcmp(kernel_cmdline(), ""), "empty");
    printf("cmdline: %d checks, %d failures\n", checks, failures);
}

/* ---- fdt ---- */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    static unsigned char data[1 << 20];
    *len = fread(data, 1, sizeof data, f);
    fclose(f);
    return data;
}

static void test_fdt(const char *path)
{
    size_t len;
    unsigned char *data = read_file(path, &len);
    memset(&boot_info, 0, sizeof boot_info);
    int rc = fdt_parse(data);
    printf("rc=%d ram=%llx+%llx timebase=%llu dtb_size=%llu cmdline='%s'\n", rc, (unsigned long long)boot_info.ram_base,
           (unsigned long long)boot_info.ram_size, (unsigned long long)boot_info.timebase_hz, (unsigned long long)boot_info.dtb_size, kernel_cmdline());
}

/* Every truncation (a copy of exactly that many bytes on the heap, so ASan sees a read past it) and random byte changes. */
static void test_fdt_fuzz(const char *path)
{
    size_t len;
    unsigned char *data = read_file(path, &len);
    int ok = 0, refused = 0;
    uint32_t off_struct = (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 | (uint32_t)data[10] << 8 | data[11];
    uint32_t off_strings = (uint32_t)data[12] << 24 | (uint32_t)data[13] << 16 | (uint32_t)data[14] << 8 | data[15];
    uint32_t size_strings = (uint32_t)data[32] << 24 | (uint32_t)data[33] << 16 | (uint32_t)data[34] << 8 | data[35];
    uint32_t size_struct = (uint32_t)data[36] << 24 | (uint32_t)data[37] << 16 | (uint32_t)data[38] << 8 | data[39];
    size_t needed = off_struct + size_struct > off_strings + size_strings ? off_struct + size_struct : off_strings + size_strings;
    for (size_t n = 0; n <= len; n++) {
        unsigned char *copy = malloc(n ? n : 1);
        memcpy(copy, data, n);
        /* a header that still claims the whole size: the parser must not trust it past the buffer... it cannot know
           the buffer's size, so only truncations the header admits (totalsize = n) are fair */
        if (n >= 8) { copy[4] = (unsigned char)(n >> 24); copy[5] = (unsigned char)(n >> 16); copy[6] = (unsigned char)(n >> 8); copy[7] = (unsigned char)n; }
        memset(&boot_info, 0, sizeof boot_info);
        int rc = n >= 40 ? fdt_parse(copy) : -XEN_EINVAL;
        CHECK((rc == 0) == (n >= needed), "a tree cut to %zu of %zu bytes (blocks end at %zu): rc %d", n, len, needed, rc);
        free(copy);
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 20000; i++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, data, len);
        for (int k = 0; k < 1 + i % 4; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t at = (size_t)(x % len);
            copy[at] = (unsigned char)(x >> 32);
        }
        /* keep totalsize honest (<= the buffer) so the test is about the inside of the tree */
        uint32_t total = (uint32_t)copy[4] << 24 | (uint32_t)copy[5] << 16 | (uint32_t)copy[6] << 8 | copy[7];
        if (total > len) { copy[4] = (unsigned char)(len >> 24); copy[5] = (unsigned char)(len >> 16); copy[6] = (unsigned char)(len >> 8); copy[7] = (unsigned char)len; }
        memset(&boot_info, 0, sizeof boot_info);
        if (fdt_parse(copy) == 0) ok++; else refused++;
        free(copy);
    }
    CHECK(refused > 0, "some mutations refused");
    printf("fdt-fuzz: %d parsed, %d refused, no crash\n", ok, refused);
    printf("fdt-fuzz: %d checks, %d failures\n", checks, failures);
}

/* ---- mm ---- */
#define HEAP_PAGES 256
char __image_end[HEAP_PAGES * 4096] __attribute__((aligned(4096)));

static void test_mm(void)
{
    memset(&boot_info, 0, sizeof boot_info);
    boot_info.ram_base = (uintptr_t)__image_end;
    boot_info.ram_size = sizeof __image_end;
    boot_info.dtb_base = (uintptr_t)__image_end + 10 * 4096 + 100;   /* a tree across pages 10 and 11 */
    boot_info.dtb_size = 4096;
    mm_init();
    size_t total = pages_total(), free0 = pages_free();
    CHECK(total == HEAP_PAGES, "pages_total %zu", total);
    CHECK(free0 == HEAP_PAGES - 1 - 2, "bitmap page and the tree's two pages reserved: %zu free", free0);
    void *pages[HEAP_PAGES];
    size_t got = 0;
    while ((pages[got] = page_alloc()) != NULL) {
        uintptr_t a = (uintptr_t)pages[got];
        CHECK(a % 4096 == 0 && a >= (uintptr_t)__image_end && a < (uintptr_t)__image_end + sizeof __image_end, "page %p in the heap", pages[got]);
        CHECK(a != (uintptr_t)__image_end + 10 * 4096 && a != (uintptr_t)__image_end + 11 * 4096, "the tree's pages are not handed out");
        CHECK(((unsigned char *)pages[got])[123] == 0, "zeroed");
        memset(pages[got], 0xa5, 4096);
        got++;
    }
    CHECK(got == free0 && pages_free() == 0, "every free page once: %zu", got);
    page_free(pages[5]);
    void *again = page_alloc();
    CHECK(again == pages[5] && ((unsigned char *)again)[0] == 0, "a freed page comes back zeroed");
    expect_panic = 1;
    if (!setjmp(panic_jmp)) { page_free(pages[7]); page_free(pages[7]); CHECK(0, "double free not caught"); }
    CHECK(strstr(panic_msg, "double free") != NULL, "double free panics: %s", panic_msg);
    if (!setjmp(panic_jmp)) { page_free((char *)pages[8] + 8); CHECK(0, "unaligned free not caught"); }
    CHECK(strstr(panic_msg, "not a page") != NULL, "a pointer into a page panics: %s", panic_msg);
    expect_panic = 0;
    for (size_t i = 0; i < got; i++) if (i != 7) page_free(pages[i]);
    CHECK(pages_free() == free0, "all back: %zu", pages_free());

    /* kmalloc: zeroed, aligned to its class, distinct, reused after kfree */
    void *objs[200];
    for (int i = 0; i < 200; i++) {
        size_t n = 1 + (size_t)(i * 37) % 2048;
        objs[i] = kmalloc(n);
        CHECK(objs[i] != NULL, "kmalloc(%zu)", n);
        size_t cls = 16;
        while (cls < n) cls *= 2;
        CHECK((uintptr_t)objs[i] % cls == 0, "kmalloc(%zu) = %p aligned to %zu", n, objs[i], cls);
        unsigned char *b = objs[i];
        int zero = 1;
        for (size_t k = 0; k < n; k++) zero &= b[k] == 0;
        CHECK(zero, "kmalloc(%zu) zeroed", n);
        memset(b, 0x5a, n);
    }
    for (int i = 0; i < 200; i++) for (int j = i + 1; j < 200; j++) CHECK(objs[i] != objs[j], "distinct %d %d", i, j);
    void *p = objs[3];
    kfree(p);
    void *q = kmalloc(1 + (3 * 37) % 2048);
    CHECK(q == p, "kfree'd object reused");
    void *whole = kmalloc(3000);
    CHECK(whole && (uintptr_t)whole % 4096 == 0, "2049..4096 bytes: a whole page");
    kfree(whole);
    CHECK(kmalloc(4097) == NULL, "over a page: NULL");
    expect_panic = 1;
    if (!setjmp(panic_jmp)) { kfree((char *)objs[10] + 1); CHECK(0, "misaligned kfree not caught"); }
    CHECK(strstr(panic_msg, "kmalloc") != NULL, "kfree of a pointer inside an object panics: %s", panic_msg);
    if (!setjmp(panic_jmp)) { kfree(&checks); CHECK(0, "foreign kfree not caught"); }
    CHECK(strstr(panic_msg, "not a page") != NULL, "kfree outside the heap panics: %s", panic_msg);
    expect_panic = 0;
    /* exhaustion: NULL, not a crash */
    size_t n = 0;
    while (kmalloc(2048)) n++;
    CHECK(kmalloc(16) == NULL || pages_free() == 0, "exhausted");
    CHECK(page_alloc() == NULL, "no page left");
    printf("mm: %zu more 2 KiB objects until full\n", n);
    printf("mm: %d checks, %d failures\n", checks, failures);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "format")) test_format();
    else if (argc >= 2 && !strcmp(argv[1], "cmdline")) test_cmdline();
    else if (argc >= 3 && !strcmp(argv[1], "fdt")) test_fdt(argv[2]);
    else if (argc >= 3 && !strcmp(argv[1], "fdt-fuzz")) test_fdt_fuzz(argv[2]);
    else if (argc >= 2 && !strcmp(argv[1], "mm")) test_mm();
    else { fprintf(stderr, "usage: core-test format|cmdline|fdt FILE|fdt-fuzz FILE|mm\n"); return 2; }
    return failures ? 1 : 0;
}
