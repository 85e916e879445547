// Sign-in methods, found by name (the seam is sign-in.ts). Adding one is one registerSignInMethod()
// call (or an entry in methods.ts for the built-in ones); the sign-in routes need no edit.
import type { Config } from '../config/schema.ts';
import { BUILTIN_SIGN_IN_METHODS } from './methods.ts';
import type { SignInDeps, SignInMethod, SignInMethodDefinition } from './sign-in.ts';

export type { SignInMethodDefinition };

const registry = new Map<string, SignInMethodDefinition>(Object.entries(BUILTIN_SIGN_IN_METHODS));

/** Adds (or replaces) a method; call before the gateway starts. Methods added later are tried later. */
export function registerSignInMethod(name: string, def: SignInMethodDefinition): void {
  registry.set(name, def);
}

export function signInMethodNames(): string[] {
  return [...registry.keys()];
}

/** The methods that `auth:` turns on, in the registry's order (the order password methods are tried in). */
export function createSignInMethods(auth: Config['auth'], deps: SignInDeps): SignInMethod[] {
  const methods: SignInMethod[] = [];
  for (const def of registry.values()) {
    const m = def.create(auth, deps);
    if (m) methods.push(m);
  }
  return methods;
}
