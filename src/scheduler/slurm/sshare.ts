// Usage, limits and fair share of every association, from one sshare call per cluster:
//   sshare -a -P -o Account,User,RawShares,FairShare,GrpTRESMins,GrpTRESRaw,TRESRunMins
// GrpTRESRaw is the decayed usage Slurm itself compares with GrpTRESMins (sreport would count undecayed
// usage from the database, rolled up hourly, and disagree with the limit Slurm enforces; sacctmgr knows
// the limit but not the usage). sshare lists the association tree in order, each level indented by one
// space, which is how an account's parent is found.
import type { AssociationUsage } from '../../core/usage.ts';
import { slurmBin } from './commands.ts';

export const SSHARE_FIELDS = [
  'Account',
  'User',
  'RawShares',
  'FairShare',
  'GrpTRESMins',
  'GrpTRESRaw',
  'TRESRunMins',
] as const;

export function sshareArgv(opts: { binDir?: string } = {}): string[] {
  return [slurmBin('sshare', opts.binDir), '-a', '-P', '-o', SSHARE_FIELDS.join(',')];
}

/** `cpu=12,mem=400,...` -> the cpu count; undefined when absent or not a number (`N`, empty). */
export function tresCpu(s: string | undefined): number | undefined {
  const m = /(?:^|,)cpu=(\d+(?:\.\d+)?)(?:,|$)/.exec(s ?? '');
  return m ? Number(m[1]) : undefined;
}

export class SshareParseError extends Error {}

/** sshare -P output (with its header line) -> one record per association, parents filled in. */
export function parseSshare(out: string): AssociationUsage[] {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  const header = lines
    .shift()
    ?.split('|')
    .map((h) => h.trim());
  const col = (name: string) => header?.indexOf(name) ?? -1;
  const iAccount = col('Account');
  const iUser = col('User');
  if (!header || iAccount < 0 || iUser < 0) throw new SshareParseError('sshare printed no header');
  const [iFs, iLimit, iRaw, iRun] = ['FairShare', 'GrpTRESMins', 'GrpTRESRaw', 'TRESRunMins'].map(col);
  const rows: AssociationUsage[] = [];
  // The accounts on the path from the root to the current line, by depth.
  const path: string[] = [];
  for (const line of lines) {
    const f = line.split('|');
    if (f.length !== header.length)
      throw new SshareParseError(`unreadable sshare line: ${line.slice(0, 200)}`);
    const raw = f[iAccount]!;
    const account = raw.trim();
    const user = f[iUser]!.trim();
    if (!account) throw new SshareParseError(`sshare line without an account: ${line.slice(0, 200)}`);
    const depth = raw.length - raw.trimStart().length;
    const rec: AssociationUsage = { account, user };
    if (user === '') {
      path.length = depth;
      const parent = depth > 0 ? path[depth - 1] : undefined;
      if (parent !== undefined && parent !== account) rec.parent = parent;
      path[depth] = account;
    }
    const num = (i: number | undefined) => {
      const v = i !== undefined && i >= 0 ? f[i]!.trim() : '';
      return v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined;
    };
    const tres = (i: number | undefined) => (i !== undefined && i >= 0 ? tresCpu(f[i]) : undefined);
    const fs = num(iFs);
    if (fs !== undefined && user !== '') rec.fairShare = fs;
    const limit = tres(iLimit);
    if (limit !== undefined) rec.cpuLimitMinutes = limit;
    const used = tres(iRaw);
    if (used !== undefined) rec.cpuUsedMinutes = used;
    const running = tres(iRun);
    if (running !== undefined) rec.cpuRunningMinutes = running;
    rows.push(rec);
  }
  return rows;
}
