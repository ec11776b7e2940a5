/*
 * Entry of xenbox's small PVH guests: S-mode at the ELF entry, a0 = hartid,
 * a1 = device tree (DESIGN §7).  The hypervisor plays the SBI firmware.
 * Hart 0 runs main(); secondaries would arrive through SBI HSM hart_start.
 */
    .section .text.start, "ax"
    .globl _start
_start:
    la    sp, __stack_top
    la    t0, trap_entry
    csrw  stvec, t0
    la    t0, __bss_start
    la    t1, __bss_end
1:  bgeu  t0, t1, 2f
    sd    zero, 0(t0)
    addi  t0, t0, 8
    j     1b
2:  call  main
    /* main returned: power off, as a kernel's init exiting would. */
    call  guest_poweroff
3:  wfi
    j     3b

    .align 2
trap_entry:
    la    sp, __stack_top
    csrr  a0, scause
    csrr  a1, sepc
    csrr  a2, stval
    call  guest_trap
4:  j     4b
