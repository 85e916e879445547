// Sessions (interactive jobs): what a client sends to start, look at and stop them.
import Type, { type Static } from 'typebox';
import { FormNumber, OptionalText, Text } from './common.ts';

/** A new session, as the form or a script posts it. Field values are checked against the cluster's live
 * limits by src/core/request.ts, whose messages name each field. */
export const NewSessionBody = Type.Object({
  cluster: OptionalText(200),
  app: OptionalText(200),
  /** A list of app ids, or a comma-separated string from a plain form. */
  extraApps: Type.Optional(Type.Union([Type.Array(Text(200), { maxItems: 16 }), Text(1000), Type.Null()])),
  environment: OptionalText(200),
  cores: FormNumber,
  memoryGb: FormNumber,
  gpus: FormNumber,
  hours: FormNumber,
  partition: OptionalText(200),
  account: OptionalText(200),
  reservation: OptionalText(200),
  label: OptionalText(200),
});
export type NewSessionBody = Static<typeof NewSessionBody>;

/** /api/sessions/:id (ids are checked by the route: an id of the wrong form is "no such session"). */
export const SessionParams = Type.Object({ id: Type.String() });
export type SessionParams = Static<typeof SessionParams>;
