#!/usr/bin/env node
// The `xenbox` command: the stack supervisor's CLI (compiled from src/cli/xenbox.ts).
import '../dist/cli/xenbox.js';
