// API tokens: what a signed-in browser sends to create and revoke them. The name's characters, the
// scopes and the expiry are checked by src/auth/tokens.ts (parseTokenRequest), with messages per field.
import Type, { type Static } from 'typebox';
import { Text } from './common.ts';

export const NewTokenBody = Type.Object({
  name: Type.Optional(Text(200)),
  scopes: Type.Optional(Type.Array(Text(40), { maxItems: 16 })),
  expiresInDays: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
});
export type NewTokenBody = Static<typeof NewTokenBody>;

export const TokenParams = Type.Object({ id: Type.String() });
export type TokenParams = Static<typeof TokenParams>;
