// The features the gateway loads, in order: each registers its routes and services (src/server/feature.ts).

import type { Feature } from '../feature.ts';
import { notificationsFeature } from '../routes/notifications.ts';
import { adminFeature } from './admin.ts';
import { appsFeature } from './apps.ts';
import { authFeature } from './auth.ts';
import { desktopLinksFeature } from './desktop-links.ts';
import { extensionFeature } from './extension.ts';
import { filesFeature } from './files.ts';
import { historyFeature } from './history.ts';
import { idleFeature } from './idle.ts';
import { jobsFeature } from './jobs.ts';
import { presetsFeature } from './presets.ts';
import { tunnelFeature } from './tunnel.ts';
import { usageFeature } from './usage.ts';

export const FEATURES: Feature[] = [
  authFeature,
  notificationsFeature,
  appsFeature,
  jobsFeature,
  adminFeature,
  filesFeature,
  idleFeature,
  presetsFeature,
  desktopLinksFeature,
  usageFeature,
  tunnelFeature,
  historyFeature,
  extensionFeature,
];
