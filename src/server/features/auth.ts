// Sign-in and web security as one feature module: the OpenID Connect routes and the refresh of
// sign-ins that expire, API tokens, the admin audit log, the API rate limit and the extra security
// headers. The sign-in methods themselves are built by the gateway (src/auth/registry.ts).
import type { AppContext } from '../context.ts';
import type { Feature } from '../feature.ts';
import { registerHardening } from '../hardening.ts';
import { registerAuditRoutes } from '../routes/audit.ts';
import { registerOidc } from '../routes/oidc.ts';
import { registerTokenRoutes } from '../routes/tokens.ts';
import { type SignInRefresher, signInRefresher } from '../sign-in-refresh.ts';

const refresherOf = (ctx: AppContext) => ctx.services.get('signIn.refresher') as SignInRefresher | undefined;

export const authFeature: Feature = {
  name: 'auth',
  register(app, ctx) {
    registerHardening(app, ctx);
    registerTokenRoutes(app, ctx);
    registerAuditRoutes(app, ctx);
    const refresher = signInRefresher(ctx);
    if (refresher) ctx.services.set('signIn.refresher', refresher);
    registerOidc(app, ctx, refresher);
  },
  start(ctx) {
    for (const m of ctx.signInMethods) m.prepare();
    refresherOf(ctx)?.start();
  },
  stop(ctx) {
    refresherOf(ctx)?.stop();
  },
};
