// Sign-in and web security as one feature module: directory (LDAP) accounts, OpenID Connect, API
// tokens, the admin audit log, the API rate limit and the extra security headers.
import { LdapPasswordProvider } from '../../auth/ldap.ts';
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { registerHardening } from '../hardening.ts';
import { registerAuditRoutes } from '../routes/audit.ts';
import { type OidcRuntime, registerOidc } from '../routes/oidc.ts';
import { registerTokenRoutes } from '../routes/tokens.ts';

const oidcOf = (ctx: AppContext) => ctx.services.get('oidc.runtime') as OidcRuntime | undefined;

export const authFeature: Feature = {
  name: 'auth',
  register(app, ctx) {
    if (ctx.cfg.auth.ldap) {
      // After local accounts: a local name is never looked up in the directory first.
      ctx.passwordProviders.push(
        new LdapPasswordProvider(ctx.cfg.auth.ldap, ctx.log.child({ part: 'ldap' })),
      );
    }
    registerHardening(app, ctx);
    registerTokenRoutes(app, ctx);
    registerAuditRoutes(app, ctx);
    const oidc = registerOidc(app, ctx);
    if (oidc) ctx.services.set('oidc.runtime', oidc);
  },
  start(ctx) {
    oidcOf(ctx)?.start();
  },
  stop(ctx) {
    oidcOf(ctx)?.stop();
  },
};
