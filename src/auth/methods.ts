// The built-in sign-in methods, by name (see registry.ts). Their order is the order password methods
// are tried in: local accounts first, so a local name is never looked up in the directory first.
import { LdapSignIn } from './ldap.ts';
import { LocalSignIn } from './local.ts';
import { OidcSignIn } from './oidc-sign-in.ts';
import type { SignInMethodDefinition } from './sign-in.ts';

export const BUILTIN_SIGN_IN_METHODS: Record<string, SignInMethodDefinition> = {
  local: { create: (auth, { db }) => (auth.local.enabled ? new LocalSignIn(db) : null) },
  ldap: {
    create: (auth, { log }) => (auth.ldap ? new LdapSignIn(auth.ldap, log.child({ part: 'ldap' })) : null),
  },
  oidc: {
    create: (auth, { db, log, publicUrl }) =>
      auth.oidc ? new OidcSignIn(auth.oidc, db, publicUrl, log.child({ part: 'oidc' })) : null,
  },
};
