// Walltime extension: what "add time" on a running session or batch job sends. The reply is the session
// or job as shown (its new time limit and end); a refusal says why (the site's policy, a reservation
// ahead, a job that is not running) with the field it is about.
import Type, { type Static } from 'typebox';

export const ExtendBody = Type.Object(
  {
    minutes: Type.Number({
      description:
        "Minutes to add: a whole number from 1, at most the site's `extension.maxPerRequestMinutes`, and the new total at most `extension.maxTotalMinutes`.",
    }),
  },
  { additionalProperties: false },
);
export type ExtendBody = Static<typeof ExtendBody>;
