// Notifications: the user's inbox and which kinds they want, in the page, the browser or by e-mail.
import Type, { type Static } from 'typebox';
import { Model, Nullable, OptionalBody } from './common.ts';

/** Marks these notifications read; every one when `ids` is left out. */
export const MarkReadBody = OptionalBody(
  Type.Object({
    ids: Type.Optional(
      Type.Array(Type.Number(), {
        maxItems: 10_000,
        description: 'The notifications; all of them when left out.',
      }),
    ),
  }),
);
export type MarkReadBody = Static<typeof MarkReadBody>;

/** Changes some preferences; kinds not named keep theirs (unknown kinds are ignored). */
export const PrefsBody = Type.Object({
  kinds: Type.Optional(
    Type.Record(Type.String({ maxLength: 64 }), Type.Boolean(), {
      description: 'Kind → wanted (e.g. {"job.started": false}); kinds not named keep theirs.',
    }),
  ),
  browser: Type.Optional(Type.Boolean({ description: 'Browser (desktop) notifications.' })),
  email: Type.Optional(Type.Boolean({ description: "E-mail of job changes through Slurm's --mail-type." })),
});
export type PrefsBody = Static<typeof PrefsBody>;

// ---- replies ---------------------------------------------------------------------------------------

/** Which notifications the user wants, and how. */
export const NotificationPrefs = Model('NotificationPrefs', {
  kinds: Type.Record(Type.String(), Type.Boolean(), {
    description: 'Kinds the user wants ("session.ready", "job.failed", ...); all by default.',
  }),
  browser: Type.Boolean({
    description: 'Show browser (desktop) notifications; the browser asks the user too.',
  }),
  email: Type.Boolean({
    description: 'Ask Slurm to e-mail job state changes (needs an e-mail address and a site mailer).',
  }),
});
export type NotificationPrefs = Static<typeof NotificationPrefs>;

export const Notification = Model('Notification', {
  id: Type.Number(),
  at: Type.Number(),
  kind: Type.String({ description: '"session.ready", "job.completed", ...' }),
  title: Type.String(),
  body: Type.String(),
  link: Nullable(Type.String({ description: 'A page of the gateway the notification is about.' })),
  read: Type.Boolean(),
});
export type Notification = Static<typeof Notification>;

export const NotificationsReply = Type.Object({
  notifications: Type.Array(Notification),
  prefs: NotificationPrefs,
});
export type NotificationsReply = Static<typeof NotificationsReply>;
