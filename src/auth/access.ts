// Who may sign in and who is an administrator, from groups. Pure, so every provider applies the same rules.
export interface AccessRules {
  /** Empty: everyone the providers accept. */
  allowGroups: string[];
  adminGroups: string[];
  adminUsers: string[];
}

export interface AccessDecision {
  allowed: boolean;
  isAdmin: boolean;
  /** Why not, in words for the sign-in page. */
  reason?: string;
}

export function decideAccess(
  username: string,
  groups: string[],
  rules: AccessRules,
  storedAdmin = false,
): AccessDecision {
  const isAdmin =
    storedAdmin || rules.adminUsers.includes(username) || rules.adminGroups.some((g) => groups.includes(g));
  if (isAdmin) return { allowed: true, isAdmin: true };
  if (rules.allowGroups.length > 0 && !rules.allowGroups.some((g) => groups.includes(g))) {
    return {
      allowed: false,
      isAdmin: false,
      reason: 'your account is not in a group that may use this gateway',
    };
  }
  return { allowed: true, isAdmin: false };
}
