/*
 * The drivers side's workloads and shell commands (kernel.h: workload_run,
 * shell_command): disktest, ping, udp-echo, dd, ifconfig, devices.
 * Arguments are words; options are key=value words anywhere after the
 * command.
 */
#ifndef PVKERNEL_WORKLOADS_H
#define PVKERNEL_WORKLOADS_H

#include <stdint.h>

#define WL_MAX_ARGS 16

/* The value of `key=` among argv[1..], or NULL. */
const char *opt_get(int argc, char **argv, const char *key);
/* Numeric option with a default; -1 (and a message) if present but not a number. */
int opt_u64(int argc, char **argv, const char *key, uint64_t dflt, uint64_t *out);
/* Split `s` into words in `buf` (modified copy); the count. */
int split_words(const char *s, char *buf, size_t len, char **argv, int max);

int disktest_run(int argc, char **argv);     /* disktest [seed=N] [mb=M] [dev=NAME] */
int ping_run(int argc, char **argv);         /* ping IP [count=N] [interval=MS] [size=BYTES] [wait=S] [linger=S] */
int udp_echo_run(int argc, char **argv);     /* udp-echo [port=7]: never returns */
int dd_run(int argc, char **argv);           /* dd if=DEV|of=DEV ... */
int udp_send_run(int argc, char **argv);     /* udp IP PORT TEXT [sport=N]: send, print the reply */
void ifconfig_show(void);

/* Sleep until a device event or deadline, having polled the network. */
void net_idle(uint64_t deadline_ns);

/* CRC-32 (IEEE 802.3, zlib's crc32) of len bytes, continuing from crc. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

/* "12.34" style: v / 10^decimals, printed into buf. */
void fmt_fixed(char *buf, size_t len, uint64_t v, unsigned decimals);

#endif
