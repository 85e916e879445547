// A feature: a group of routes with the services behind them, registered by the gateway in the order
// of src/server/features/index.ts, so the gateway core stays small.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from './context.ts';

export type Feature = {
  name: string;
  /** Called before the server listens. */
  register(app: FastifyInstance, ctx: AppContext): void | Promise<void>;
  /** Called after the server listens (start background work). */
  start?(ctx: AppContext): void | Promise<void>;
  stop?(ctx: AppContext): void | Promise<void>;
};
