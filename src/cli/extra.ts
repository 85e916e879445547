// Commands of feature modules (admin tools, kernels...) are added here, one line each.
import type { Command } from 'commander';
import { registerAdminCommands } from './admin.ts';
import { registerDbCommands } from './db.ts';
import { registerKernelCommands } from './kernel.ts';

export function registerExtraCommands(program: Command): void {
  registerKernelCommands(program);
  registerAdminCommands(program);
  registerDbCommands(program);
}
