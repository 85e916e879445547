// A route's options in one line: its OpenAPI summary, its request parts and the schema of its reply.
// The server validates with the same schemas, and the OpenAPI document is built from them.
import type { TSchema } from 'typebox';

export interface RequestParts {
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  /** Content types other than JSON that the route accepts (an upload's bytes). */
  consumes?: string[];
}

/** Options for `app.get/post/...`: `summary` for the API reference, `reply` under `status` (200 unless told). */
export function spec<
  R extends TSchema,
  P extends RequestParts = Record<never, never>,
  S extends number = 200,
>(
  summary: string,
  reply: R,
  parts?: P,
  status?: S,
): { schema: P & { summary: string; reply: { [K in S]: R } } } {
  const replies = { [status ?? 200]: reply } as { [K in S]: R };
  return { schema: { summary, ...(parts ?? ({} as P)), reply: replies } };
}
