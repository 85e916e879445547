// The API contract spells "not known" as null (JSON has no undefined); the domain's types leave such
// fields out. One conversion for every view that copies optional fields into a reply.

/** `keys` of `o`, each left-out value made null. */
export function orNull<T extends object, K extends keyof T>(
  o: T,
  keys: readonly K[],
): { [P in K]-?: Exclude<T[P], undefined> | null } {
  const out = {} as { [P in K]-?: Exclude<T[P], undefined> | null };
  for (const k of keys) out[k] = (o[k] ?? null) as Exclude<T[K], undefined> | null;
  return out;
}
