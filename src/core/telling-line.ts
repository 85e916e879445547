// Which line of a session's log says why it failed: the one a user should see on the session's card
// and in the notification, e.g. "Error: Cannot find module '/root/atrium/dist/agent/atrium-agent.mjs'"
// or the environment's setup line that failed and what it printed. Pure: the agent (on the app's log)
// and the gateway (on the job's output, read as the user) both use it.

/** The first words of the line a job writes when one of its environment's setup lines fails. */
export const SETUP_FAILED = 'atrium: the environment setup failed';

const MAX = 240;
const ERROR_RE =
  /\b(?:error|errno|cannot|can't|could not|couldn't|unable|denied|not found|no such|failed|fatal|not permitted|killed|exception|traceback|refused|invalid|missing)\b|error:/i;
/** Lines that never tell: stack frames, our own progress lines, Node's version footer. */
const NOISE_RE =
  /^(?:\s+at\s|\s*\^+\s*$|\s*throw\s|node:internal\/|Node\.js v\d|atrium: (?:job|session) \S+ (?:on|started))/;
/** The agent's time stamp and name on its own lines. */
const AGENT_PREFIX_RE = /^\S+ atrium-agent: /;
/** bash's prefix on the errors of a script's lines ("/path/slurm_script: line 9: "). */
const BASH_PREFIX_RE = /^(?:\S*\/)?[\w.-]+: line \d+: /;

const clip = (s: string) => (s.length > MAX ? `${s.slice(0, MAX - 1)}…` : s);

/**
 * The line of `log` that tells why the job failed, or undefined. A failed setup line (our marker) wins,
 * with what the failing command printed just before it; else the last line that reads like an error.
 */
export function tellingLine(log: string): string | undefined {
  const lines = log
    .split(/\r?\n/)
    .map((l) => l.trimEnd().replace(AGENT_PREFIX_RE, ''))
    .filter((l) => l.length > 0);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith(SETUP_FAILED)) continue;
    const said =
      i > 0 && !lines[i - 1]!.startsWith('atrium: ') ? lines[i - 1]!.replace(BASH_PREFIX_RE, '') : '';
    return clip(`${line.slice('atrium: '.length)}${said ? ` — ${said}` : ''}`);
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (NOISE_RE.test(line)) continue;
    if (ERROR_RE.test(line)) return clip(line.trim().replace(BASH_PREFIX_RE, ''));
  }
  return undefined;
}
