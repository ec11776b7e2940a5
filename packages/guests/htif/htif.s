/* HTIF smoke test for `xenbox-cpu run --htif`: prints "hi\n" through the
   spike console (device 1, command 1), then exits with code 5: tohost = (5 << 1) | 1. */
    .section .text.start, "ax"
    .globl _start
_start:
    la    s0, msg
1:  lbu   a0, 0(s0)
    beqz  a0, 3f
    li    t0, 0x0101000000000000   /* device 1, command 1: putchar */
    or    t0, t0, a0
    la    t1, tohost
    sd    t0, 0(t1)
    la    t2, fromhost
2:  ld    t3, 0(t2)                /* wait for the host's acknowledgement */
    beqz  t3, 2b
    sd    zero, 0(t2)
    addi  s0, s0, 1
    j     1b
3:  li    t0, (5 << 1) | 1
    la    t1, tohost
    sd    t0, 0(t1)
4:  j     4b

    .section .rodata
msg: .asciz "hi\n"

    .section .tohost, "aw", @progbits
    .align 6
    .globl tohost
tohost: .dword 0
    .align 6
    .globl fromhost
fromhost: .dword 0
