// The `atrium` command inside sessions where the gateway placed its files in runtimeDir
// (src/system/runtime-dir.ts): only what users run for themselves, bundled into one file
// (dist/agent/atrium-cli.mjs) that needs nothing of the checkout.
import { Command } from 'commander';
import { registerKernelCommands } from './kernel.ts';

const program = new Command();
program.name('atrium').description('Atrium commands for your sessions');
registerKernelCommands(program);
await program.parseAsync(process.argv);
