#!/usr/bin/env node
// xenbox-cpu: the standalone RISC-V vCPU runner (packages/hypervisor/src/arch/riscv/cli.ts).
import { main } from '../dist/arch/riscv/cli.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code; // let stdout drain before exiting
  },
  (e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
