// Notifications: the user's inbox and which kinds they want, in the page, the browser or by e-mail.
import Type, { type Static } from 'typebox';
import { OptionalBody } from './common.ts';

/** Marks these notifications read; every one when `ids` is left out. */
export const MarkReadBody = OptionalBody(
  Type.Object({ ids: Type.Optional(Type.Array(Type.Number(), { maxItems: 10_000 })) }),
);
export type MarkReadBody = Static<typeof MarkReadBody>;

/** Changes some preferences; kinds not named keep theirs (unknown kinds are ignored). */
export const PrefsBody = Type.Object({
  kinds: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Boolean())),
  browser: Type.Optional(Type.Boolean()),
  email: Type.Optional(Type.Boolean()),
});
export type PrefsBody = Static<typeof PrefsBody>;
