// Shared by the WebSocket load generators (ws-load.ts, lean-ws-load.ts): their command-line options
// and their latency samples.

/** Reads `--name value` from argv (the default when absent; throws when required and absent). */
export function optionReader(argv: string[]): (name: string, dflt?: string) => string {
  return (name, dflt) => {
    const i = argv.indexOf(`--${name}`);
    const v = i === -1 ? dflt : argv[i + 1];
    if (v === undefined) throw new Error(`--${name} is required`);
    return v;
  };
}

/** Every `--header 'Name: value'` of argv, as given. */
export function headerArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--header') out.push(argv[++i] ?? '');
  return out;
}

/** Round-trip times in ms, kept in a growing typed array (no allocation per sample). */
export class LatencyLog {
  private lat = new Float64Array(1 << 20);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.lat.length) {
      const bigger = new Float64Array(this.lat.length * 2);
      bigger.set(this.lat);
      this.lat = bigger;
    }
    this.lat[this.n++] = ms;
  }

  /** The p-th percentile of the samples so far (NaN when there are none). */
  percentiles(...ps: number[]): number[] {
    const sorted = this.lat.subarray(0, this.n).sort();
    return ps.map((p) =>
      this.n === 0 ? Number.NaN : sorted[Math.min(this.n - 1, Math.floor((p / 100) * this.n))]!,
    );
  }
}

/** The result line of an echo run, with its rate and latency percentiles. */
export function echoResult(
  r: { connections: number; opened: number; errors: number; seconds: number; messages: number },
  lat: LatencyLog,
) {
  const [p50Ms, p99Ms] = lat.percentiles(50, 99);
  return { mode: 'echo', ...r, rate: r.messages / r.seconds, p50Ms, p99Ms };
}
