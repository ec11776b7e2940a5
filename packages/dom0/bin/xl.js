#!/usr/bin/env node
// The `xl` command: the dom0 toolstack (compiled from src/cli/xl.ts).
import '../dist/cli/xl.js';
