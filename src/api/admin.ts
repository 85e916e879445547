// Administration: every session and job, stopping sessions, draining clusters, announcements, the audit
// log. Every route under /api/admin/ is for administrators with a browser session.
import Type, { type Static } from 'typebox';
import { FormNumber, OptionalText, Text } from './common.ts';

/** `state=active` lists only sessions that are not over; `limit` caps the list (1 to 5000). */
export const AdminSessionsQuery = Type.Object({
  state: Type.Optional(Text(20)),
  limit: Type.Optional(Type.Integer({ minimum: 1 })),
});
export type AdminSessionsQuery = Static<typeof AdminSessionsQuery>;

/** A dashboard announcement; it ends at `expiresAt` (ms or an ISO date) or after `hours`, else when expired. */
export const NewAnnouncementBody = Type.Object({
  message: OptionalText(2000),
  level: OptionalText(20),
  expiresAt: FormNumber,
  hours: FormNumber,
});
export type NewAnnouncementBody = Static<typeof NewAnnouncementBody>;

export const AnnouncementParams = Type.Object({ id: Type.String() });
export type AnnouncementParams = Static<typeof AnnouncementParams>;

/** Filters of the audit log; numbers are checked by the route, with messages per parameter. */
export const AuditQuery = Type.Object({
  action: Type.Optional(Type.String()),
  actor: Type.Optional(Type.String()),
  target: Type.Optional(Type.String()),
  ok: Type.Optional(Type.String()),
  since: Type.Optional(Type.String()),
  until: Type.Optional(Type.String()),
  before: Type.Optional(Type.String()),
  limit: Type.Optional(Type.String()),
});
export type AuditQuery = Static<typeof AuditQuery>;
