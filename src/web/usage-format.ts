// Words and figures of the usage panel (pure: no React, no DOM).
import type { AccountUsageView, StorageQuotaView, UsageLevel } from '../api/usage.ts';

/** CPU time: minutes up to 10 hours, then whole hours. */
export function formatCpuTime(minutes: number): string {
  if (minutes < 600) return `${Math.round(minutes * 10) / 10} CPU min`;
  return `${Math.round(minutes / 60).toLocaleString('en')} CPU h`;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** Bytes in binary units with one decimal below 10 ("1.5 GB", "120 GB"). */
export function formatBytes(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? Math.round(v * 10) / 10 : Math.round(v)} ${UNITS[i]}`;
}

/** "12 of 100 CPU h (12 %)", or the usage alone without a limit. */
export function accountLine(a: AccountUsageView): string {
  const used = formatCpuTime(a.usedCpuMinutes ?? 0);
  if (a.limitCpuMinutes === null) return `${used} used, no limit`;
  const whose =
    a.limitOf === 'you'
      ? ' (your own limit)'
      : a.limitOf && a.limitOf !== a.account
        ? ` (limit of ${a.limitOf})`
        : '';
  return `${used} of ${formatCpuTime(a.limitCpuMinutes)}${whose}: ${a.percent ?? 0} %`;
}

export function storageLine(q: StorageQuotaView): string {
  const lim = q.softBytes ?? q.hardBytes;
  const space =
    lim === null
      ? `${formatBytes(q.usedBytes)} used, no limit`
      : `${formatBytes(q.usedBytes)} of ${formatBytes(lim)}`;
  const fl = q.filesSoft ?? q.filesHard;
  const files =
    q.files === null
      ? ''
      : fl === null
        ? `, ${q.files.toLocaleString('en')} files`
        : `, ${q.files.toLocaleString('en')} of ${fl.toLocaleString('en')} files`;
  const grace = q.grace ? ` (grace: ${q.grace})` : '';
  return `${space}${files}${q.percent === null ? '' : `: ${q.percent} %`}${grace}`;
}

export const levelClass = (level: UsageLevel): string => `usage-${level}`;
