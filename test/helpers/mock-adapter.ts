// A scheduler backend the test drives by hand (as JupyterHub tests with its MockSpawner): jobs appear
// on submit, change state when the test says so, and every poll reports exactly what the test set.
// Registered under the backend name `mock` (src/scheduler/registry.ts), so a gateway built from an
// ordinary config runs its real services on it, in milliseconds, without Slurm.
import { registerBackend } from '../../src/scheduler/registry.ts';
import type {
  ClusterInfo,
  JobInfo,
  JobState,
  NodeInfo,
  PollSnapshot,
  SchedulerAdapter,
  SessionSubmission,
  SubmitResult,
  UnixIdentity,
} from '../../src/scheduler/types.ts';

export const MOCK_NODE: NodeInfo = {
  name: 'mock1',
  address: '127.0.0.1',
  state: 'idle',
  partitions: ['interactive'],
  cpus: 8,
  allocCpus: 0,
  memoryMb: 16_384,
  allocMemoryMb: 0,
  gpus: 0,
  allocGpus: 0,
};

export class MockAdapter implements SchedulerAdapter {
  readonly kind = 'mock';
  readonly submissions: SessionSubmission[] = [];
  readonly cancels: string[] = [];
  readonly jobs = new Map<string, JobInfo>();
  /** false: every poll and submit fails as if the controller were down. */
  reachable = true;
  /** Create the job, then fail the submit as a timed-out sbatch would (the poll then sees the job). */
  timeoutAfterCreate = false;
  node: NodeInfo = { ...MOCK_NODE };
  /** Polls so far. */
  polls = 0;
  private nextId = 1000;

  constructor(readonly cluster: string) {}

  async submitSession(sub: SessionSubmission): Promise<SubmitResult> {
    if (!this.reachable) throw new Error('Unable to contact the mock controller');
    this.submissions.push(sub);
    const jobId = String(this.nextId++);
    this.jobs.set(jobId, {
      jobId,
      name: sub.tag,
      comment: sub.tag,
      user: sub.identity.user,
      state: 'pending',
      rawState: 'PENDING',
      reason: 'Priority',
      partition: sub.partition ?? 'interactive',
      cpus: sub.cores,
      memoryMb: sub.memoryMb,
      timeLimitMinutes: sub.minutes,
      submitTime: Math.floor(Date.now() / 1000),
    });
    if (this.timeoutAfterCreate) throw new Error('sbatch: timed out after 30 s');
    return { jobId };
  }

  async cancel(_identity: UnixIdentity, jobId: string): Promise<void> {
    this.cancels.push(jobId);
    this.set(jobId, 'cancelled');
  }

  /** Moves a job to a state, as the scheduler would (running jobs get the node). */
  set(jobId: string, state: JobState): void {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no mock job ${jobId}`);
    const now = Math.floor(Date.now() / 1000);
    job.state = state;
    job.rawState = state.toUpperCase();
    if (state === 'running') {
      job.reason = undefined;
      job.nodes = this.node.name;
      job.nodeAddress = this.node.address;
      job.startTime = now;
    }
    if (state !== 'pending' && state !== 'running') job.endTime = now;
  }

  /** The job a session was submitted as. */
  jobOf(sessionId: string): JobInfo | undefined {
    return [...this.jobs.values()].find((j) => j.comment?.includes(sessionId));
  }

  /** Forget a job, as Slurm does after MinJobAge. */
  forget(jobId: string): void {
    this.jobs.delete(jobId);
  }

  async poll(): Promise<PollSnapshot> {
    this.polls++;
    const at = Date.now();
    if (!this.reachable)
      return { ok: false, error: 'Unable to contact the mock controller', at, jobs: [], nodes: [], calls: 1 };
    return {
      ok: true,
      at,
      jobs: [...this.jobs.values()].map((j) => ({ ...j })),
      nodes: [{ ...this.node }],
      calls: 1,
    };
  }

  async clusterInfo(): Promise<ClusterInfo> {
    return {
      name: this.cluster,
      partitions: [{ name: 'interactive', isDefault: true, nodes: [this.node.name], state: 'UP' }],
      reservations: [],
      hasAccounting: false,
    };
  }
}

/** The adapters the `mock` backend built, by cluster name. */
export const mockAdapters = new Map<string, MockAdapter>();

registerBackend('mock', {
  sameHost: false,
  // The scheduler outlives a gateway: a gateway started again on the same cluster finds the same jobs.
  create: (cfg) => {
    const a = mockAdapters.get(cfg.name) ?? new MockAdapter(cfg.name);
    mockAdapters.set(cfg.name, a);
    return a;
  },
});
