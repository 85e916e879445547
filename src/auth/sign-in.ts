// The sign-in seam: every way of signing in (local accounts, LDAP, OpenID Connect, or one registered in
// registry.ts) is a SignInMethod, and the gateway's sign-in routes know only this interface. A method
// verifies who someone is; what the gateway then does with that identity (the account rules of
// accounts.ts, the access rules of access.ts, the browser session) is the same for every method.
//
// What each method does, step by step:
//
// | step       | password form (local, LDAP)                  | redirect (OIDC)                                           |
// |------------|----------------------------------------------|-----------------------------------------------------------|
// | start      | the form to show (its label)                 | the provider's URL, and a secret for the browser's cookie |
// | finish     | user name and password -> identity, or null  | the callback's query -> identity and tokens, or a refusal |
// | groups     | local: stored and Unix groups; LDAP: search  | the groups claim (again at each refresh)                  |
// | refresh    | nothing to renew                             | a refresh token grant; access judged again                |
// | signOutUrl | none                                         | the provider's end-session URL                            |
//
// Groups travel in the identity that finish and refresh return: they are what the access rules judge.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Db } from '../db/index.ts';

/** Who signed in, as the method vouches for it. */
export interface VerifiedIdentity {
  username: string;
  unixUser: string;
  /** The groups the access rules (access.ts) judge. */
  groups: string[];
  displayName?: string | null;
  email?: string | null;
  /** The method's name, kept as the account's source ('local', 'ldap', 'oidc'). */
  source: string;
}

/** The method could not check the sign-in (directory down, misconfigured): not a wrong password. */
export class SignInUnavailable extends Error {
  constructor(
    readonly method: string,
    message: string,
  ) {
    super(message);
    this.name = 'SignInUnavailable';
  }
}

/**
 * A redirect sign-in refused at its callback. `code` is what the login page is told
 * (`/login?error=<code>`), `why` what the audit log keeps, `actor` the name it was for, when known.
 */
export class SignInRefused extends Error {
  constructor(
    readonly code: 'expired' | 'failed' | 'denied',
    readonly why: string,
    readonly actor?: string,
  ) {
    super(why);
    this.name = 'SignInRefused';
  }
}

/** What finish returns: the identity, and the state the method keeps with the browser session. */
export interface SignedIn<S> {
  identity: VerifiedIdentity;
  /** Kept in the browser session's server-side data under the method's name (never sent to the browser). */
  state?: S;
  /** Where the browser goes next (a path on this site), for redirect methods. */
  next?: string;
}

/** What refresh found for one browser session's state. */
export type Refreshed<S> =
  /** Nothing to renew (password methods, or a state without a refresh token). */
  | { outcome: 'unchanged' }
  /** The sign-in is over at its source: the gateway signs the browser out, with `why` in the audit log. */
  | { outcome: 'ended'; why: string }
  /** A passing failure (the provider is down): try again at `retryAt` (epoch ms) with the same state. */
  | { outcome: 'retry'; retryAt: number }
  /** A renewed state; `identity` when the source said again who the user is (its groups may have changed). */
  | { outcome: 'renewed'; state: S; identity: VerifiedIdentity | null };

interface SignInMethodBase<S> {
  /** The name the configuration and the account's source use ('local', 'ldap', 'oidc'). */
  readonly name: string;
  /**
   * Whether its sign-ins carry state that expires and must be refreshed (OIDC tokens). The gateway runs
   * its refresh loop only when a method says so.
   */
  readonly expires: boolean;
  /** Starts what the first sign-in would otherwise wait for (OIDC discovery). Never throws. */
  prepare(): void;
  /** Renews a browser session's state; see Refreshed. */
  refresh(state: S): Promise<Refreshed<S>>;
  /** When the state should next be refreshed (epoch ms), or null when never. */
  refreshAt(state: S): number | null;
  /**
   * Where to send the browser after signing out here, to end the sign-in at its source too (OIDC's
   * end-session URL), or null. `returnTo` is where the source sends the browser back.
   */
  signOutUrl(state: S | undefined, returnTo: string): string | null;
}

/** What the sign-in form posts (POST /api/login). */
export interface PasswordCredentials {
  username: string;
  password: string;
}

/** A user name and password, checked by the method. */
export interface PasswordSignIn extends SignInMethodBase<unknown> {
  readonly kind: 'password';
  /** The form to show; the sign-in page titles it with the first label a password method gives. */
  start(): { form: { label: string | null } };
  /**
   * The identity when the password is right, null when it is wrong or the user unknown.
   * Throws SignInUnavailable when it cannot tell.
   */
  finish(credentials: PasswordCredentials): Promise<SignedIn<never> | null>;
}

/** The browser is sent to an identity provider, which sends it back to the callback. */
export interface RedirectSignIn<S = unknown> extends SignInMethodBase<S> {
  readonly kind: 'redirect';
  /** The button's text on the sign-in page. */
  readonly label: string;
  /**
   * The provider's URL to send the browser to, and `binder`, a secret the browser keeps in a cookie
   * and brings back to the callback (a sign-in is finished only in the browser that started it).
   * `next` is where to go once signed in (anything but a path on this site becomes "/"). Throws
   * SignInUnavailable when the provider cannot be reached, TooManySignIns under a flood.
   */
  start(p: { next?: string }): Promise<{ url: string; binder: string }>;
  /**
   * Checks the provider's answer. `query` is the callback's query string as sent, `binder` the
   * browser's cookie. Throws SignInRefused.
   */
  finish(callback: { query: string; binder: string | undefined }): Promise<SignedIn<S>>;
}

export type SignInMethod = PasswordSignIn | RedirectSignIn;

/** Too many sign-ins are under way to start another (a bounded table under a flood). */
export class TooManySignIns extends Error {
  constructor() {
    super('too many sign-ins under way; try again soon');
    this.name = 'TooManySignIns';
  }
}

/** What password methods share: the form, and nothing to renew or end at a source. */
export abstract class PasswordMethod implements PasswordSignIn {
  readonly kind = 'password';
  readonly expires = false;
  abstract readonly name: string;
  /** The form's heading, or null for the sign-in page's default. */
  protected abstract readonly label: string | null;

  abstract finish(credentials: PasswordCredentials): Promise<SignedIn<never> | null>;

  start(): { form: { label: string | null } } {
    return { form: { label: this.label } };
  }

  prepare(): void {}

  async refresh(): Promise<Refreshed<never>> {
    return { outcome: 'unchanged' };
  }

  refreshAt(): null {
    return null;
  }

  signOutUrl(): null {
    return null;
  }
}

/** What a method is built from: the gateway's database, its log and its public URL. */
export interface SignInDeps {
  db: Db;
  log: Logger;
  /** The gateway's public base URL (no trailing slash): redirect methods' callbacks are under it. */
  publicUrl: () => string;
}

/** A sign-in method by name (registry.ts): builds it from the `auth:` settings, or null when it is off. */
export interface SignInMethodDefinition {
  create(auth: Config['auth'], deps: SignInDeps): SignInMethod | null;
}
