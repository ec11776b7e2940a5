/*
 * The shell: a line editor on the console (the console ring's `in` once
 * connected, the SBI console before) and a few commands for learning and
 * testing; anything else goes to the drivers' shell_command().
 *
 * Editing: printable characters, Backspace/DEL, Ctrl-U (kill line), Ctrl-C
 * (cancel), Enter (CR, LF or CR LF); escape sequences (arrow keys) are
 * swallowed.
 */
#include <string.h>
#include "core.h"

#define LINE_MAX_ 256
#define MAX_ARGS 16
#define PROMPT "pvkernel> "

/* ---------------------------------------------------------------- input */

/*
 * Wait for a byte.  The console ring notifies on input; the SBI console does
 * not, so poll that.  Every wake-up also gives the drivers their
 * housekeeping (devices_poll: a guest at its prompt answers pings).
 */
static int getc_wait(void)
{
    for (;;) {
        devices_poll();
        balloon_poll();
        int c = console_getc();
        if (c >= 0) return c;
        kernel_wait(now_ns() + (console_ring_connected() ? 1000000000ULL : 20000000ULL));
    }
}

static int read_line(char *buf, size_t len)
{
    static int last_cr;
    size_t n = 0;
    for (;;) {
        int c = getc_wait();
        if (c == '\n' && last_cr) { last_cr = 0; continue; }   /* the LF of a CR LF */
        last_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            printk("\n");
            buf[n] = '\0';
            return (int)n;
        }
        if (c == 0x7f || c == '\b') {
            if (n) { n--; printk("\b \b"); }
        } else if (c == 0x15) {                      /* Ctrl-U */
            while (n) { n--; printk("\b \b"); }
        } else if (c == 0x03) {                      /* Ctrl-C */
            printk("^C\n");
            return -1;
        } else if (c == 0x1b) {                      /* ESC [ ... final byte */
            int d = getc_wait();
            if (d == '[' || d == 'O')
                do d = getc_wait(); while (!((d >= 'A' && d <= 'Z') || (d >= 'a' && d <= 'z') || d == '~'));
        } else if (c >= 0x20 && c < 0x7f && n + 1 < len) {
            buf[n++] = (char)c;
            printk("%c", c);
        }
    }
}

/* Split on spaces; "double quotes" keep spaces in one argument. */
static int split(char *s, char **argv, int max)
{
    int argc = 0;
    while (*s && argc < max) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) break;
        if (*s == '"') {
            argv[argc++] = ++s;
            while (*s && *s != '"') s++;
        } else {
            argv[argc++] = s;
            while (*s && *s != ' ' && *s != '\t') s++;
        }
        if (*s) *s++ = '\0';
    }
    return argc;
}

/* ---------------------------------------------------------------- commands */

static void cmd_help(void)
{
    printk("commands:\n"
           "  help                       this list\n"
           "  devices                    the PV devices and their state\n"
           "  free                       memory use\n"
           "  uptime                     time since boot\n"
           "  interrupts                 events per event-channel port\n"
           "  sleep MS                   sleep (set_timer_op and WFI)\n"
           "  cmdline                    the kernel command line\n"
           "  echo ARGS...               print ARGS\n"
           "  cpu [SECONDS]              the integer benchmark loop\n"
           "  xenstore-read PATH         read a node (relative paths are under /local/domain/<domid>)\n"
           "  xenstore-write PATH VALUE  write a node\n"
           "  xenstore-rm PATH           remove a node and its children\n"
           "  xenstore-ls [PATH]         list a subtree\n"
           "  xenstore-inc PATH [wait=MS] add one in a transaction (redone on EAGAIN)\n"
           "  xenstore-watch PATH COUNT  print PATH each time its watch fires\n"
           "  grant DOMID [ro]           grant DOMID a page (prints the gref)\n"
           "  ungrant GREF               end that grant (-16 while it is mapped)\n"
           "  poweroff | reboot | crash  end the domain (crash: a fatal fault, as sysrq-c)\n");
    char *argv[1] = { "help" };
    shell_command(1, argv);   /* the drivers list theirs */
}

static void cmd_free(void)
{
    size_t total = pages_total(), free = pages_free();
    printk("        total       used       free   (KiB)\n");
    printk("Mem: %10lu %10lu %10lu\n", (unsigned long)(total * 4), (unsigned long)((total - free) * 4), (unsigned long)(free * 4));
    printk("ballooned out: %lu KiB (xl mem-set)\n", (unsigned long)(balloon_pages() * 4));
    printk("grant refs in use: %lu\n", (unsigned long)gnttab_refs_in_use());
}

static void cmd_uptime(void)
{
    uint64_t ms = kernel_uptime_ns() / 1000000;
    printk("up %llu.%03llu s, %lu events, %lu wake-ups from WFI\n", (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000),
           events_generation, wfi_wakeups);
}

static int need_xenstore(void)
{
    if (xenbus_available()) return 1;
    printk("no xenstore\n");
    return 0;
}

/* xenstore-ls style: "name = \"value\"", children indented by one space a level. */
static void ls_tree(const char *path, int depth)
{
    char *list = page_alloc(), *value = kmalloc(1024);
    if (!list || !value) { printk("out of memory\n"); goto out; }
    int n = xenbus_ls(XBT_NIL, path, list, PAGE_SIZE);
    if (n < 0) { printk("xenstore-ls %s: error %d\n", path, n); goto out; }
    char child[512];
    for (char *name = list; n-- > 0; name += strlen(name) + 1) {
        int len = snprintk(child, sizeof child, "%s%s%s", path, strcmp(path, "/") && *path ? "/" : "", name);
        if ((size_t)len >= sizeof child) continue;
        int v = xenbus_read(XBT_NIL, child, value, 1024);
        printk("%*s%s = \"%s\"\n", depth, "", name, v >= 0 ? value : "");
        if (depth < 16) ls_tree(child, depth + 1);
    }
out:
    page_free(list);
    kfree(value);
}

/*
 * xenstore-inc PATH [wait=MS]: add one to a number in a transaction, waiting MS
 * between the read and the write (so another writer can make the commit fail
 * with EAGAIN); the transaction is redone until it commits.
 */
static void cmd_xenstore_inc(int argc, char **argv)
{
    const char *path = argv[1];
    uint64_t wait_ms = 0;
    if (argc > 2 && !strncmp(argv[2], "wait=", 5)) wait_ms = strtoul_(argv[2] + 5, NULL, 10);
    int retries = 0;
    for (;;) {
        xenbus_transaction_t t;
        int rc = xenbus_transaction_start(&t);
        if (rc) { printk("xenstore-inc: transaction_start: error %d\n", rc); return; }
        long v = 0;
        rc = xenbus_read_int(t, path, &v);
        if (rc && rc != -XEN_ENOENT) { printk("xenstore-inc %s: read: error %d\n", path, rc); xenbus_transaction_end(t, 1, &rc); return; }
        uint64_t until = now_ns() + wait_ms * 1000000ULL;
        while (now_ns() < until) kernel_wait(until);
        char value[24];
        snprintk(value, sizeof value, "%ld", v + 1);
        rc = xenbus_write(t, path, value);
        if (rc) { printk("xenstore-inc %s: write: error %d\n", path, rc); xenbus_transaction_end(t, 1, &rc); return; }
        int retry;
        rc = xenbus_transaction_end(t, 0, &retry);
        if (rc) { printk("xenstore-inc: transaction_end: error %d\n", rc); return; }
        if (!retry) { printk("xenstore-inc %s: %ld (%d retries)\n", path, v + 1, retries); return; }
        retries++;
    }
}

/* xenstore-watch PATH COUNT: print the node's value each time the watch fires, COUNT times (the first is at once), 30 s at most a time. */
static void cmd_xenstore_watch(const char *path, const char *count)
{
    static unsigned serial;
    char token[32], value[256];
    snprintk(token, sizeof token, "shell-%u", serial++);
    int rc = xenbus_watch(path, token);
    if (rc) { printk("xenstore-watch %s: error %d\n", path, rc); return; }
    for (unsigned long n = strtoul_(count, NULL, 10), i = 1; i <= n; i++) {
        uint64_t deadline = now_ns() + 30000000000ULL;
        while (!xenbus_watch_pending(token) && now_ns() < deadline) kernel_wait(deadline);
        if (now_ns() >= deadline) { printk("xenstore-watch %s: nothing for 30 s\n", path); break; }
        int len = xenbus_read(XBT_NIL, path, value, sizeof value);
        printk("watch %lu: %s = %s\n", i, path, len >= 0 ? value : "(none)");
    }
    xenbus_unwatch(path, token);
}

/* grant DOMID [ro]: a fresh page with a known text, granted to DOMID (for learning, and the tests). */
#define MAX_TEST_GRANTS 16
static struct { int ref; void *page; } test_grants[MAX_TEST_GRANTS];

static void cmd_grant(int argc, char **argv)
{
    int slot = -1;
    for (int i = 0; i < MAX_TEST_GRANTS && slot < 0; i++) if (!test_grants[i].page) slot = i;
    if (slot < 0) { printk("grant: all %d test grants in use\n", MAX_TEST_GRANTS); return; }
    char *page = page_alloc();
    if (!page) { printk("grant: out of memory\n"); return; }
    domid_t dom = (domid_t)strtoul_(argv[1], NULL, 0);
    int ro = argc > 2 && !strcmp(argv[2], "ro");
    int ref = gnttab_grant_access(dom, page, ro);
    if (ref < 0) { page_free(page); printk("grant: error %d\n", ref); return; }
    snprintk(page, PAGE_SIZE, "xenbox pvkernel: page granted to d%u as gref %d", dom, ref);
    test_grants[slot].ref = ref;
    test_grants[slot].page = page;
    printk("gref %d (page %p, %s)\n", ref, page, ro ? "read-only" : "writable");
}

/* ungrant REF: end access; -16 (EBUSY) while the grantee has it mapped. */
static void cmd_ungrant(const char *arg)
{
    int ref = (int)strtoul_(arg, NULL, 0);
    int rc = gnttab_end_access((grant_ref_t)ref);
    printk("ungrant %d: %d\n", ref, rc);
    if (rc) return;
    for (int i = 0; i < MAX_TEST_GRANTS; i++) {
        if (test_grants[i].page && test_grants[i].ref == ref) {
            page_free(test_grants[i].page);
            test_grants[i].page = NULL;
        }
    }
}

static void cmd_crash(void)
{
    printk("sysrq: Trigger a crash\n");
    volatile int *nowhere = (volatile int *)8;   /* no RAM there: a store access fault, then panic */
    asm("" : "+r"(nowhere));                     /* (hidden from -Warray-bounds) */
    *nowhere = 1;
    panic("crash: the faulting store did not fault");
}

static void run(int argc, char **argv)
{
    const char *c = argv[0];
    char buf[1024];
    int rc;
    if (!strcmp(c, "help")) cmd_help();
    else if (!strcmp(c, "devices")) devices_list();
    else if (!strcmp(c, "free")) cmd_free();
    else if (!strcmp(c, "uptime")) cmd_uptime();
    else if (!strcmp(c, "interrupts")) evtchn_show();
    else if (!strcmp(c, "sleep") && argc == 2) {
        uint64_t until = now_ns() + strtoul_(argv[1], NULL, 10) * 1000000ULL;
        while (now_ns() < until) kernel_wait(until);
    }
    else if (!strcmp(c, "cmdline")) printk("%s\n", kernel_cmdline());
    else if (!strcmp(c, "poweroff")) kernel_poweroff();
    else if (!strcmp(c, "reboot")) kernel_reboot();
    else if (!strcmp(c, "crash")) cmd_crash();
    else if (!strcmp(c, "grant") && argc >= 2) cmd_grant(argc, argv);
    else if (!strcmp(c, "ungrant") && argc == 2) cmd_ungrant(argv[1]);
    else if (!strcmp(c, "cpu")) cpu_workload(argc > 1 ? (int)strtoul_(argv[1], NULL, 10) : 5);
    else if (!strcmp(c, "echo")) {
        for (int i = 1; i < argc; i++) printk("%s%s", i > 1 ? " " : "", argv[i]);
        printk("\n");
    } else if (!strcmp(c, "xenstore-read") && argc == 2) {
        if (!need_xenstore()) return;
        rc = xenbus_read(XBT_NIL, argv[1], buf, sizeof buf);
        if (rc < 0) printk("xenstore-read %s: error %d\n", argv[1], rc);
        else printk("%s\n", buf);
    } else if (!strcmp(c, "xenstore-write") && argc == 3) {
        if (!need_xenstore()) return;
        rc = xenbus_write(XBT_NIL, argv[1], argv[2]);
        if (rc < 0) printk("xenstore-write %s: error %d\n", argv[1], rc);
    } else if (!strcmp(c, "xenstore-rm") && argc == 2) {
        if (!need_xenstore()) return;
        rc = xenbus_rm(XBT_NIL, argv[1]);
        if (rc < 0) printk("xenstore-rm %s: error %d\n", argv[1], rc);
    } else if (!strcmp(c, "xenstore-inc") && argc >= 2) {
        if (need_xenstore()) cmd_xenstore_inc(argc, argv);
    } else if (!strcmp(c, "xenstore-watch") && argc == 3) {
        if (need_xenstore()) cmd_xenstore_watch(argv[1], argv[2]);
    } else if (!strcmp(c, "xenstore-ls") && argc <= 2) {
        if (!need_xenstore()) return;
        snprintk(buf, sizeof buf, "/local/domain/%u", xen_domid());
        ls_tree(argc == 2 ? argv[1] : buf, 0);
    } else if (shell_command(argc, argv) == -XEN_ENOENT) {
        printk("%s: unknown command (try help)\n", c);
    }
}

void shell_run(void)
{
    char line[LINE_MAX_];
    char *argv[MAX_ARGS];
    printk("type 'help' for the commands\n");
    for (;;) {
        printk(PROMPT);
        if (read_line(line, sizeof line) < 0) continue;
        int argc = split(line, argv, MAX_ARGS);
        if (argc) run(argc, argv);
    }
}
