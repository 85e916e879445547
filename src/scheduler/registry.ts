// Scheduler backends, found by name. A cluster's `backend:` key names one; adding a backend is one
// registerBackend() call (or an entry in backends.ts for the built-in ones), with no union type to edit.
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/schema.ts';
import { BUILTIN_BACKENDS } from './backends.ts';
import type { BackendDefinition, SchedulerAdapter } from './types.ts';

export type { BackendDefinition };

const registry = new Map<string, BackendDefinition>(Object.entries(BUILTIN_BACKENDS));

/** Adds (or replaces) a backend; call before the gateway reads its configuration. */
export function registerBackend(name: string, def: BackendDefinition): void {
  registry.set(name, def);
}

export function backendNames(): string[] {
  return [...registry.keys()];
}

export function backendOf(name: string): BackendDefinition | undefined {
  return registry.get(name);
}

export function createAdapter(cfg: ClusterConfig, dataDir: string, log: Logger): SchedulerAdapter {
  const def = registry.get(cfg.backend);
  if (!def) {
    throw new Error(
      `clusters: backend "${cfg.backend}" is not available (known: ${backendNames().join(', ')})`,
    );
  }
  return def.create(cfg, dataDir, log);
}
