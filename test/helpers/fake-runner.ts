// A CommandRunner for unit tests of the Slurm adapter and batch jobs: records every call and answers
// from a table (by the call's label, one answer or a queue of them) or from one function for all calls.
import path from 'node:path';
import type { CommandRunner, RunOptions, RunResult } from '../../src/scheduler/slurm/runner.ts';

export type Answer = Partial<RunResult> | ((argv: readonly string[], opts: RunOptions) => Partial<RunResult>);

export class FakeRunner implements CommandRunner {
  calls = 0;
  readonly log: Array<{ argv: readonly string[]; opts: RunOptions }> = [];
  private readonly per = new Map<string, number>();
  constructor(
    private readonly answers:
      | Record<string, Answer[] | Answer>
      | ((argv: readonly string[], opts: RunOptions) => Partial<RunResult>),
  ) {}
  callsOf(label: string): number {
    return this.per.get(label) ?? 0;
  }
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const label = opts.label ?? path.basename(argv[0] ?? '');
    this.calls++;
    this.per.set(label, (this.per.get(label) ?? 0) + 1);
    this.log.push({ argv, opts });
    let a: Answer | undefined;
    if (typeof this.answers === 'function') a = this.answers;
    else {
      const spec = this.answers[label];
      a = Array.isArray(spec) ? spec.shift() : spec;
    }
    const ans = typeof a === 'function' ? a(argv, opts) : (a ?? {});
    return {
      argv,
      label,
      code: 0,
      signal: null,
      stdout: '',
      stderr: '',
      timedOut: false,
      durationMs: 1,
      ...ans,
    };
  }
}
