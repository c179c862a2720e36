#!/usr/bin/env node
// Entry point of the `tally` binary. Node.js 24 runs the TypeScript sources directly.
import { main } from '../cli/main.ts';

process.exitCode = await main(process.argv.slice(2));
