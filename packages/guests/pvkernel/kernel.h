/*
 * xenbox's RISC-V PV kernel: the interface between its core (boot, console,
 * memory, events, grants, xenbus, timers, command line) and its drivers and
 * workloads (blkfront, netfront, the IP stack, disktest/ping/udp-echo/cpu,
 * the shell).  Declarations only; the core implements them.
 *
 * Model: one vCPU, one thread of control.  Event-channel handlers run in
 * the upcall (interrupts off) and should only note work and return; the
 * main loop does the work and sleeps in kernel_wait() between events.
 * Physical addresses are virtual addresses (satp = Bare), so a pointer to a
 * page is its guest-physical address and gfn = addr >> 12.
 */
#ifndef PVKERNEL_KERNEL_H
#define PVKERNEL_KERNEL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/xen-public.h" /* domid_t, evtchn_port_t, grant_ref_t and the rest of Xen's interface */

#define PAGE_SIZE 4096UL
#define PAGE_SHIFT 12
#define virt_to_gfn(p) ((uint64_t)(uintptr_t)(p) >> PAGE_SHIFT)

/* ---- console: the Xen console ring once connected, SBI DBCN before ---- */
int printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsnprintk(char *buf, size_t len, const char *fmt, va_list ap);
int snprintk(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* A byte typed on the console (the console ring's `in`), or -1 if none waits. */
int console_getc(void);

/* ---- memory ---- */
void *page_alloc(void);          /* one zeroed 4 KiB page, or NULL when RAM is used up */
void page_free(void *page);
void *kmalloc(size_t n);         /* small allocations (<= 2048 bytes), zeroed; NULL on exhaustion */
void kfree(void *p);
size_t pages_free(void);         /* for the shell's `free` */
size_t pages_total(void);

/* ---- time ---- */
uint64_t now_ns(void);           /* guest system time (the 10 MHz time base, in ns) */
/* Sleep until an event arrives or `deadline_ns` (absolute, now_ns() scale; 0 = no deadline) passes. */
void kernel_wait(uint64_t deadline_ns);

/* ---- event channels (2-level ABI, upcall on SSIP) ---- */
typedef void (*evtchn_handler_t)(evtchn_port_t port, void *arg);
int evtchn_alloc_unbound(domid_t remote, evtchn_port_t *port);   /* 0 or -errno */
/* Handle `port` with `h(port, arg)` in the upcall, and unmask it. */
void evtchn_bind_handler(evtchn_port_t port, evtchn_handler_t h, void *arg);
void evtchn_unbind_handler(evtchn_port_t port);                    /* mask and forget the handler */
int evtchn_notify(evtchn_port_t port);                             /* EVTCHNOP_send */
int evtchn_close(evtchn_port_t port);

/* ---- grant table v1 (refs 0..7 are reserved: GNTTAB_NR_RESERVED_ENTRIES) ---- */
/* Grant `dom` access to the page at `page`; returns the ref, or a negative -errno. */
int gnttab_grant_access(domid_t dom, void *page, int readonly);
/* End access; 0, or -EBUSY if the grantee still has it mapped (then the ref is kept). */
int gnttab_end_access(grant_ref_t ref);

/* ---- xenbus: the xenstore ring (paths without a leading '/' are relative to /local/domain/<domid>) ---- */
#define XBT_NIL 0u
typedef uint32_t xenbus_transaction_t;
/* Read a node into buf (NUL-terminated); length or -errno (e.g. -ENOENT). */
int xenbus_read(xenbus_transaction_t t, const char *path, char *buf, size_t len);
int xenbus_write(xenbus_transaction_t t, const char *path, const char *value);
int xenbus_printf(xenbus_transaction_t t, const char *dir, const char *node, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int xenbus_read_int(xenbus_transaction_t t, const char *path, long *out);  /* 0 or -errno */
int xenbus_rm(xenbus_transaction_t t, const char *path);
/* Directory listing: the children's names, NUL-separated, into buf; count or -errno. */
int xenbus_ls(xenbus_transaction_t t, const char *path, char *buf, size_t len);
int xenbus_transaction_start(xenbus_transaction_t *t);
/* End a transaction; *retry is set when it failed with EAGAIN and must be redone. */
int xenbus_transaction_end(xenbus_transaction_t t, int abort, int *retry);
/* Watches: register, then xenbus_watch_pending() says whether any fired since it was last asked. */
int xenbus_watch(const char *path, const char *token);
int xenbus_unwatch(const char *path, const char *token);
int xenbus_watch_pending(const char *token);  /* 1 if an event for `token` arrived (and clears it), else 0 */
int xenbus_watch_fired(const char *token);    /* the same without clearing it: may a waiter sleep? */
/* Write <dir>/state. */
int xenbus_switch_state(const char *dir, int state);
/* Wait (watching <dir>/state) until the state is one of min..max or `timeout_ns` passes; the state or -ETIMEDOUT. */
int xenbus_wait_state(const char *dir, int min, int max, uint64_t timeout_ns);
domid_t xen_domid(void);   /* our domid (read from xenstore "domid" at boot) */
/* Run `fn` while a request waits for xenstored (the network's data path); fn must not call xenbus. */
void xenbus_set_idle(void (*fn)(void));
/* 1 while the idle hook runs inside a xenbus request: xenbus must not be called then. */
int xenbus_busy(void);

/* XenbusState (io/xenbus.h) */
enum xenbus_state {
    XenbusStateUnknown = 0, XenbusStateInitialising = 1, XenbusStateInitWait = 2,
    XenbusStateInitialised = 3, XenbusStateConnected = 4, XenbusStateClosing = 5,
    XenbusStateClosed = 6, XenbusStateReconfiguring = 7, XenbusStateReconfigured = 8,
};

/* ---- command line (/chosen/bootargs of the device tree; xl.cfg cmdline=/extra=) ---- */
const char *kernel_cmdline(void);
/* The value of a `key=value` token ("ip=10.0.0.1" -> cmdline_value("ip") = "10.0.0.1"), or NULL. */
const char *cmdline_value(const char *key);
/* The i-th word that is not key=value ("ping 10.0.0.2 count=3": 0 "ping", 1 "10.0.0.2"), or NULL. */
const char *cmdline_word(int i);

/* ---- power ---- */
void kernel_poweroff(void) __attribute__((noreturn));
void kernel_reboot(void) __attribute__((noreturn));
void kernel_crash(void) __attribute__((noreturn));

/* ---- small libc-ish helpers (picolibc is available too) ---- */
/* errno values are Xen's (xen/include/public/errno.h), as hypercalls return them. */
#define XEN_EPERM 1
#define XEN_ENOENT 2
#define XEN_EIO 5
#define XEN_E2BIG 7
#define XEN_EAGAIN 11
#define XEN_ENOMEM 12
#define XEN_EACCES 13
#define XEN_EFAULT 14
#define XEN_EBUSY 16
#define XEN_EEXIST 17
#define XEN_ENODEV 19
#define XEN_EISDIR 21
#define XEN_EINVAL 22
#define XEN_ENOSPC 28
#define XEN_EROFS 30
#define XEN_ENOSYS 38
#define XEN_ENOTEMPTY 39
#define XEN_EOPNOTSUPP 95
#define XEN_EISCONN 106
#define XEN_ETIMEDOUT 110

/*
 * Driver/workload entry points (implemented by the drivers side, called by
 * the core's main() according to the command line):
 *
 *   void devices_init(void);       probe device/vbd/<n> and device/vif/<n>, connect fronts
 *   void devices_list(void);       the shell's `devices`
 *   int  workload_run(const char *cmdline);   run the workload the command line names;
 *                                  returns 0 if it named none (core then starts the shell)
 *   int  shell_command(int argc, char **argv);  drivers' shell commands (dd, ping, ...);
 *                                  returns -XEN_ENOENT if the command is not theirs
 */
void devices_init(void);
void devices_list(void);
int workload_run(const char *cmdline);
int shell_command(int argc, char **argv);

/*
 *   void devices_poll(void);       the drivers' housekeeping: take netfront rx (answer
 *                                  ARP and ping), notice a restarted backend.  Quick;
 *                                  blocks only while reconnecting to a restarted
 *                                  backend.  The shell calls it each time its input
 *                                  wait wakes (shell.c getc_wait); weak no-op in defaults.c.
 */
void devices_poll(void);

#endif
