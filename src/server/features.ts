// Feature modules register their routes and services here, so the gateway core stays small.
import type { FastifyInstance } from 'fastify';
import { adminFeature } from '../admin/feature.ts';
import { appsFeature } from '../apps/feature.ts';
import { filesFeature } from '../files/feature.ts';
import { jobsFeature } from '../jobs/feature.ts';
import { idleFeature } from '../sessions/idle-feature.ts';
import { authFeature } from './auth-feature.ts';
import type { AppContext } from './context.ts';
import { notificationsFeature } from './routes/notifications.ts';

export type Feature = {
  name: string;
  /** Called before the server listens. */
  register(app: FastifyInstance, ctx: AppContext): void | Promise<void>;
  /** Called after the server listens (start background work). */
  start?(ctx: AppContext): void | Promise<void>;
  stop?(ctx: AppContext): void | Promise<void>;
};

export const FEATURES: Feature[] = [
  authFeature,
  notificationsFeature,
  appsFeature,
  jobsFeature,
  adminFeature,
  filesFeature,
  idleFeature,
];
