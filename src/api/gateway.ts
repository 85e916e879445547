// The gateway itself: whether it can serve, and the description of this API.
import Type, { type Static } from 'typebox';

/** 200 with `ok: true` when this gateway can serve; else 503 with why, in one line. */
export const HealthReply = Type.Union(
  [Type.Object({ ok: Type.Literal(true) }), Type.Object({ ok: Type.Literal(false), error: Type.String() })],
  { title: 'HealthReply' },
);
export type HealthReply = Static<typeof HealthReply>;

/** The OpenAPI 3.1 document of this API, built from the schemas of the routes this gateway serves. */
export const OpenApiReply = Type.Object(
  {
    openapi: Type.String(),
    info: Type.Object({ title: Type.String(), version: Type.String() }, { additionalProperties: true }),
    paths: Type.Record(Type.String(), Type.Unknown()),
  },
  {
    additionalProperties: true,
    description: 'An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0).',
  },
);
