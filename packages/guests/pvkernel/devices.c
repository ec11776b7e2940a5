/*
 * The drivers side's entry points from kernel.h: devices_init (probe
 * device/vbd and device/vif, set the IP address from ip= on the command
 * line), devices_list, workload_run (the first plain word of the command
 * line names the workload) and shell_command (dd, ping, udp, ifconfig/ip,
 * arp, devices).
 */
#include "kernel.h"
#include "klib.h"
#include "blkfront.h"
#include "net.h"
#include "netfront.h"
#include "pattern.h"
#include "workloads.h"

#define CMDLINE_MAX 512

/* ip=10.0.0.N (or ip=10.0.0.N/P) from the command line (the last one, as the core reads it); /24 by default. */
static void configure_ip(void)
{
    const char *v = cmdline_value("ip");
    if (!v) return;
    char addr[20];
    unsigned long long prefix = 24;
    size_t n = 0;
    while (v[n] && v[n] != '/' && n + 1 < sizeof(addr)) { addr[n] = v[n]; n++; }
    addr[n] = '\0';
    if (v[n] == '/' && (parse_u64(v + n + 1, &prefix) < 0 || prefix < 1 || prefix > 30)) prefix = 24;
    uint32_t ip;
    if (ip_parse(addr, &ip) < 0) { printk("net: ignoring ip=%s (not an IPv4 address)\n", v); return; }
    net_set_ip(ip, ~0u << (32 - prefix));
}

void devices_init(void)
{
    blkfront_probe();
    netfront_probe();
    configure_ip();
    if (netif0.up) {
        char ipb[16], macb[18];
        if (netif0.ip) printk("net: %s is %s/%u\n", mac_format(netif0.mac, macb), ip_format(netif0.ip, ipb),
                              (unsigned)__builtin_popcount(netif0.netmask));
        else printk("net: %s has no IP address (ip= on the command line sets one)\n", mac_format(netif0.mac, macb));
    }
}

/* kernel.h's devices_poll (requested of the core's shell): network rx, backend restarts. */
void devices_poll(void)
{
    net_poll();
    blkfront_hotplug_poll();
    for (int i = 0; i < blkfront_count(); i++) blk_poll(blkfront_get(i));
}

void devices_list(void)
{
    for (int i = 0; i < blkfront_count(); i++) {
        struct blkfront_info in;
        blkfront_get_info(blkfront_get(i), &in);
        char size[24];
        fmt_fixed(size, sizeof(size), in.sectors * 100 / 2048, 2);
        printk("vbd  %-6s devid %u, %s MiB, %s%s%s, backend %s (domain %u), %s, %u reconnect(s), "
               "%lu requests, %lu re-issued, %lu errors\n",
               in.name, (unsigned)in.devid, size, in.info & VDISK_READONLY ? "ro" : "rw",
               in.info & VDISK_CDROM ? " cdrom" : "", in.persistent ? " persistent-grants" : "",
               in.backend, (unsigned)in.backend_id, in.connected ? "connected" : "disconnected",
               (unsigned)in.reconnects, (unsigned long)in.requests, (unsigned long)in.reissued,
               (unsigned long)in.errors);
    }
    for (int i = 0; i < netfront_count(); i++) {
        struct netfront *d = netfront_get(i);
        uint8_t mac[6];
        char macb[18];
        struct netfront_stats st;
        netfront_mac(d, mac);
        netfront_get_stats(d, &st);
        printk("vif  %-6s mac %s, backend %s, %s, %u reconnect(s)\n", netfront_name(d), mac_format(mac, macb),
               netfront_backend(d), netfront_connected(d) ? "connected" : "disconnected", (unsigned)st.reconnects);
    }
    if (!blkfront_count() && !netfront_count()) printk("no devices\n");
}

void ifconfig_show(void)
{
    if (!netif0.up) { printk("no network interface\n"); return; }
    char ipb[16], maskb[16], macb[18];
    const struct net_stats *s = &netif0.stats;
    printk("eth0: mac %s inet %s netmask %s\n", mac_format(netif0.mac, macb), ip_format(netif0.ip, ipb),
           ip_format(netif0.netmask, maskb));
    printk("  RX packets %lu bytes %lu dropped %lu bad-checksum %lu\n", (unsigned long)s->rx_packets,
           (unsigned long)s->rx_bytes, (unsigned long)s->rx_dropped, (unsigned long)s->rx_bad_csum);
    printk("  TX packets %lu bytes %lu errors %lu\n", (unsigned long)s->tx_packets, (unsigned long)s->tx_bytes,
           (unsigned long)s->tx_errors);
    printk("  ARP requests in %lu replies in %lu, ICMP echo requests in %lu, UDP in %lu\n",
           (unsigned long)s->arp_requests_in, (unsigned long)s->arp_replies_in, (unsigned long)s->icmp_echo_in,
           (unsigned long)s->udp_in);
}

/*
 * dd if=DEV [count=N] [skip=S]           read N sectors, print their CRC-32 and the rate
 * dd of=DEV seed=N [count=N] [seek=S]    write the disktest pattern to N sectors, flush
 * (sectors are 512 bytes; count defaults to 2048 = 1 MiB)
 */
int dd_run(int argc, char **argv)
{
    static uint8_t buf[64 * 1024] __attribute__((aligned(4096)));
    const uint32_t chunk = sizeof(buf) / BLKIF_SECTOR_SIZE;
    const char *in = opt_get(argc, argv, "if"), *out = opt_get(argc, argv, "of");
    uint64_t count, skip, seed;
    if ((!in) == (!out)) { printk("usage: dd if=DEV [count=N] [skip=S] | dd of=DEV seed=N [count=N] [seek=S]\n"); return -XEN_EINVAL; }
    if (opt_u64(argc, argv, "count", 2048, &count) < 0 || opt_u64(argc, argv, in ? "skip" : "seek", 0, &skip) < 0 ||
        opt_u64(argc, argv, "seed", 1, &seed) < 0)
        return -XEN_EINVAL;
    struct blkfront *d = blkfront_find(in ? in : out);
    if (!d) { printk("dd: %s: no such disk\n", in ? in : out); return -XEN_ENODEV; }
    uint32_t crc = 0;
    uint64_t t0 = now_ns();
    int rc = 0;
    for (uint64_t done = 0; done < count && !rc; done += chunk) {
        uint32_t n = count - done < chunk ? (uint32_t)(count - done) : chunk;
        if (in) {
            if (!(rc = blk_read(d, skip + done, buf, n))) crc = crc32_update(crc, buf, (size_t)n * BLKIF_SECTOR_SIZE);
        } else {
            pattern_fill(seed, skip + done, buf, n);
            rc = blk_write(d, skip + done, buf, n);
        }
    }
    if (!rc && out) rc = blk_flush(d);
    uint64_t ns = now_ns() - t0;
    if (rc) {
        printk("dd: %s %s failed: %s (%d)\n", in ? "reading" : "writing", in ? in : out,
               rc == -XEN_EOPNOTSUPP ? "operation not supported" : rc == -XEN_EIO ? "I/O error (BLKIF_RSP_ERROR)" : "error", rc);
        return rc;
    }
    char r[24];
    fmt_fixed(r, sizeof(r), count * BLKIF_SECTOR_SIZE * 100000ull / (ns ? ns : 1), 2);
    if (in) printk("dd: read %lu sectors from %s, crc32 %08x, %s MB/s\n", (unsigned long)count, in, (unsigned)crc, r);
    else printk("dd: wrote %lu sectors to %s (seed %lu), %s MB/s\n", (unsigned long)count, out, (unsigned long)seed, r);
    return 0;
}

int shell_command(int argc, char **argv)
{
    if (argc < 1) return -XEN_ENOENT;
    const char *c = argv[0];
    if (!strcmp(c, "help")) {
        printk("  dd if=DEV [count=N] [skip=S]  read N 512-byte sectors, print their CRC-32\n"
               "  dd of=DEV seed=N [count=N] [seek=S]  write the disktest pattern, flush\n"
               "  disktest [seed=N] [mb=M] [dev=DEV]   write, flush, read back and verify\n"
               "  ping IP [count=N] [interval=MS] [size=B] [linger=S]\n"
               "  udp IP PORT TEXT [sport=N]     send a datagram, print the reply\n"
               "  ifconfig | ip                  address, MAC, counters\n"
               "  arp                            the ARP cache\n");
        return 0;
    }
    if (!strcmp(c, "devices")) { devices_list(); return 0; }
    if (!strcmp(c, "dd")) return dd_run(argc, argv);
    if (!strcmp(c, "ping")) return ping_run(argc, argv);
    if (!strcmp(c, "udp")) return udp_send_run(argc, argv);
    if (!strcmp(c, "ifconfig") || !strcmp(c, "ip")) { ifconfig_show(); return 0; }
    if (!strcmp(c, "arp")) { arp_show(); return 0; }
    if (!strcmp(c, "disktest")) return disktest_run(argc, argv);
    return -XEN_ENOENT;
}

static int has_eq(const char *w)
{
    for (; *w; w++)
        if (*w == '=') return 1;
    return 0;
}

/*
 * The first word without '=' names the workload; key=value words are
 * options (ip= is the kernel's).  The workload sees its word, the words
 * after it, then any key=value words that came before it.
 */
int workload_run(const char *cmdline)
{
    static char buf[CMDLINE_MAX];
    char *words[WL_MAX_ARGS * 2], *argv[WL_MAX_ARGS * 2];
    int n = split_words(cmdline, buf, sizeof(buf), words, WL_MAX_ARGS * 2), argc = 0, cmd = -1;
    for (int i = 0; i < n && cmd < 0; i++)
        if (!has_eq(words[i])) cmd = i;
    if (cmd < 0) return 0;
    for (int i = cmd; i < n; i++) argv[argc++] = words[i];
    for (int i = 0; i < cmd; i++) argv[argc++] = words[i];
    const char *w = argv[0];
    int rc;
    if (!strcmp(w, "disktest")) rc = disktest_run(argc, argv);
    else if (!strcmp(w, "ping")) rc = ping_run(argc, argv);
    else if (!strcmp(w, "udp-echo")) rc = udp_echo_run(argc, argv);
    else if (!strcmp(w, "udp")) rc = udp_send_run(argc, argv);
    else return 0;   /* "shell", or a word that is not ours (the core's, e.g. "cpu") */
    /* then=poweroff|reboot|shell is the core's to act on; without it a finished test powers off. */
    if (cmdline_value("then")) return 1;
    printk("%s: done (%d); powering off\n", w, rc);
    kernel_poweroff();
}
