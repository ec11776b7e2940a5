/* Entry for bare-metal xenbox/QEMU virt guests: M-mode at 0x80000000, a0 = hartid, a1 = DTB. */
    .section .text.start, "ax"
    .globl _start
_start:
    csrr  t0, mhartid
    bnez  t0, park            /* one hart runs the benchmark; others wait */
    la    sp, __stack_top
    la    t0, trap
    csrw  mtvec, t0
    /* zero .bss */
    la    t0, __bss_start
    la    t1, __bss_end
1:  bgeu  t0, t1, 2f
    sd    zero, 0(t0)
    addi  t0, t0, 8
    j     1b
2:  call  main
    call  finish
park:
    wfi
    j     park

    .align 2
trap:
    la    sp, __stack_top
    csrr  a0, mcause
    csrr  a1, mepc
    csrr  a2, mtval
    call  unexpected_trap
3:  j     3b
