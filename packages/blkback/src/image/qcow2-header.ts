/**
 * The qcow2 header, per QEMU's docs/interop/qcow2.txt.
 */
/** "QFI\xfb" */
export const QCOW2_MAGIC = 0x514649fb;
