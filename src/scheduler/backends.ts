// The built-in backends, by the name a cluster's `backend:` key uses (see registry.ts).
import path from 'node:path';
import { LocalAdapter } from './local.ts';
import { SlurmAdapter } from './slurm/adapter.ts';
import { sshAdapterFromConfig } from './ssh.ts';
import type { BackendDefinition } from './types.ts';

export const BUILTIN_BACKENDS: Record<string, BackendDefinition> = {
  local: {
    sameHost: true,
    create: (cfg, dataDir) =>
      new LocalAdapter({ cluster: cfg.name, stateDir: path.join(dataDir, 'local-jobs', cfg.name) }),
  },
  slurm: {
    sameHost: false,
    settingsKey: 'slurm',
    create: (cfg) => {
      const s = cfg.slurm!;
      return new SlurmAdapter({
        name: cfg.name,
        slurmConf: s.conf,
        runAs: s.runAs,
        binDir: s.binDir,
        commandTimeoutMs: s.commandTimeoutSeconds * 1000,
        partition: s.partition,
        loginEnvironment: s.loginEnvironment,
        // Every session is a new id and tag, so no earlier job can carry it: skip the squeue before sbatch
        // (a failed or timed-out sbatch is still looked up, and the poll adopts interrupted submits).
        adoptBeforeSubmit: false,
      });
    },
  },
  ssh: { sameHost: false, settingsKey: 'ssh', create: (cfg) => sshAdapterFromConfig(cfg) },
};
