// One-time desktop links: what state a link is in, what its guest is told when it is refused, and the
// checks of a new link's lifetime. Pure: the routes and the proxy (src/server/features/desktop-links.ts)
// read the database and the clock and ask here.

export const DESKTOP_LINK_STATES = ['unused', 'in use', 'expired', 'revoked', 'ended'] as const;
export type DesktopLinkState = (typeof DESKTOP_LINK_STATES)[number];

/** Who ended a link before its time: its owner (revoke) or its session's end. */
export type DesktopLinkEnd = 'owner' | 'session';

export interface DesktopLinkFacts {
  expiresAt: number;
  usedAt: number | null;
  endedAt: number | null;
  endedBy: DesktopLinkEnd | null;
}

/**
 * A link is `unused` until it is opened once, then `in use` by the browser that opened it; both end at
 * its expiry, on revoke or with its session, whichever comes first.
 */
export function desktopLinkState(l: DesktopLinkFacts, now: number): DesktopLinkState {
  if (l.endedAt !== null) return l.endedBy === 'session' ? 'ended' : 'revoked';
  if (now >= l.expiresAt) return 'expired';
  return l.usedAt === null ? 'unused' : 'in use';
}

/** Why a link cannot be opened (any state but `unused`), as its refusal page says it; unknown: null. */
export function desktopLinkRefusal(state: DesktopLinkState | null): { title: string; message: string } {
  switch (state) {
    case 'in use':
      return {
        title: 'This link has already been used',
        message: 'A desktop link opens once, in one browser. Ask the owner of the desktop for a new link.',
      };
    case 'expired':
      return {
        title: 'This link has expired',
        message: 'The time the owner gave this link is over. Ask the owner of the desktop for a new link.',
      };
    case 'revoked':
      return { title: 'This link was revoked', message: 'The owner of the desktop withdrew this link.' };
    case 'ended':
      return {
        title: 'The shared desktop has ended',
        message: 'The session this link was for has stopped, and the link with it.',
      };
    default:
      return {
        title: 'This link is not valid',
        message: 'No desktop link has this address. Check that it was copied whole.',
      };
  }
}

/** A new link's lifetime: a positive number of minutes, at most the site's maximum (0: links are off). */
export function checkLinkMinutes(minutes: number, maxMinutes: number): string | null {
  if (maxMinutes <= 0) return 'desktop links are turned off on this site';
  if (!Number.isFinite(minutes) || minutes <= 0) return 'minutes: give a number of minutes above 0';
  if (minutes > maxMinutes) return `minutes: at most ${maxMinutes} on this site`;
  return null;
}
