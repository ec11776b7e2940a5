/*
 * pvkernel entry: S-mode at the ELF entry with a0 = hartid, a1 = the device
 * tree (DESIGN §7; the hypervisor plays the SBI firmware).  Sets up the
 * stack, tp (picolibc's thread-local storage: the image's own .tdata/.tbss),
 * the trap vector, clears .bss and calls kmain(hartid, dtb).
 */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la    gp, __global_pointer$
    .option pop
    la    sp, __stack_top
    la    tp, __tls_base
    la    t0, trap_entry
    csrw  stvec, t0
    csrw  sie, zero
    la    t0, __bss_start
    la    t1, __bss_end
1:  bgeu  t0, t1, 2f
    sd    zero, 0(t0)
    addi  t0, t0, 8
    j     1b
2:  call  kmain
3:  wfi
    j     3b

/*
 * The trap vector: save every register in a struct trap_frame on the stack
 * (x1..x31 at 8*i, sepc at 256, sstatus 264, scause 272, stval 280), call
 * trap_handler(frame), restore, sret.  Interrupts (the event upcall) return;
 * exceptions panic inside trap_handler.
 */
    .align 2
    .globl trap_entry
trap_entry:
    addi  sp, sp, -288
    sd    x1, 8(sp)
    sd    x3, 24(sp)
    sd    x4, 32(sp)
    sd    x5, 40(sp)
    sd    x6, 48(sp)
    sd    x7, 56(sp)
    sd    x8, 64(sp)
    sd    x9, 72(sp)
    sd    x10, 80(sp)
    sd    x11, 88(sp)
    sd    x12, 96(sp)
    sd    x13, 104(sp)
    sd    x14, 112(sp)
    sd    x15, 120(sp)
    sd    x16, 128(sp)
    sd    x17, 136(sp)
    sd    x18, 144(sp)
    sd    x19, 152(sp)
    sd    x20, 160(sp)
    sd    x21, 168(sp)
    sd    x22, 176(sp)
    sd    x23, 184(sp)
    sd    x24, 192(sp)
    sd    x25, 200(sp)
    sd    x26, 208(sp)
    sd    x27, 216(sp)
    sd    x28, 224(sp)
    sd    x29, 232(sp)
    sd    x30, 240(sp)
    sd    x31, 248(sp)
    addi  t0, sp, 288
    sd    t0, 16(sp)          /* the interrupted sp */
    csrr  t0, sepc
    sd    t0, 256(sp)
    csrr  t0, sstatus
    sd    t0, 264(sp)
    csrr  t0, scause
    sd    t0, 272(sp)
    csrr  t0, stval
    sd    t0, 280(sp)
    mv    a0, sp
    call  trap_handler
    ld    t0, 256(sp)
    csrw  sepc, t0
    ld    t0, 264(sp)
    csrw  sstatus, t0
    ld    x1, 8(sp)
    ld    x3, 24(sp)
    ld    x4, 32(sp)
    ld    x5, 40(sp)
    ld    x6, 48(sp)
    ld    x7, 56(sp)
    ld    x8, 64(sp)
    ld    x9, 72(sp)
    ld    x10, 80(sp)
    ld    x11, 88(sp)
    ld    x12, 96(sp)
    ld    x13, 104(sp)
    ld    x14, 112(sp)
    ld    x15, 120(sp)
    ld    x16, 128(sp)
    ld    x17, 136(sp)
    ld    x18, 144(sp)
    ld    x19, 152(sp)
    ld    x20, 160(sp)
    ld    x21, 168(sp)
    ld    x22, 176(sp)
    ld    x23, 184(sp)
    ld    x24, 192(sp)
    ld    x25, 200(sp)
    ld    x26, 208(sp)
    ld    x27, 216(sp)
    ld    x28, 224(sp)
    ld    x29, 232(sp)
    ld    x30, 240(sp)
    ld    x31, 248(sp)
    addi  sp, sp, 288
    sret
