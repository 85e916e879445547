// What the session services refuse with: the routes turn these into replies.
import type { FieldError } from '../core/request.ts';

/** A request that cannot be served as asked, with every field at fault (also used for batch jobs). */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly errors: FieldError[],
  ) {
    super(errors.map((e) => e.message).join('; '));
    this.name = 'RequestError';
  }
}

/** An agent callback refused (unknown session, wrong secret, an address that is not the job's). */
export class AgentRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AgentRefused';
  }
}
