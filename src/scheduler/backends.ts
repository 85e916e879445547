// Registers the backends beyond `local` with the cluster registry (config → adapter).
import { registerBackend } from '../sessions/clusters.ts';
import { SlurmAdapter } from './slurm/adapter.ts';
import { sshAdapterFromConfig } from './ssh.ts';

registerBackend('slurm', (cfg) => {
  const s = cfg.slurm!;
  return new SlurmAdapter({
    name: cfg.name,
    slurmConf: s.conf,
    runAs: s.runAs,
    binDir: s.binDir,
    commandTimeoutMs: s.commandTimeoutSeconds * 1000,
    partition: s.partition,
    // Every session is a new id and tag, so no earlier job can carry it: skip the squeue before sbatch
    // (a failed or timed-out sbatch is still looked up, and the poll adopts interrupted submits).
    adoptBeforeSubmit: false,
  });
});
registerBackend('ssh', sshAdapterFromConfig);
