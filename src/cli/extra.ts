// Commands of feature modules (admin tools, kernels...) are added here, one line each.
import type { Command } from 'commander';

export function registerExtraCommands(_program: Command): void {}
