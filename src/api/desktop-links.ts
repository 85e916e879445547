// One-time desktop links: what the owner of a running desktop session sends to create, list and revoke
// links that let one other browser see (or use) that desktop. The link itself is in the create reply
// only; the gateway keeps its hash.
import Type, { type Static } from 'typebox';
import { DESKTOP_LINK_STATES } from '../core/desktop-link.ts';
import { IdParams, Model, Nullable } from './common.ts';

export const NewDesktopLinkBody = Type.Object({
  minutes: Type.Number({
    description:
      "How long the link is valid, in minutes: above 0, at most the site's sessions.desktopLinkMaxMinutes.",
  }),
  viewOnly: Type.Optional(
    Type.Boolean({
      description: 'The guest sees the desktop but cannot type, point or paste (default false).',
    }),
  ),
});
export type NewDesktopLinkBody = Static<typeof NewDesktopLinkBody>;

/** /api/desktop-links/:id (ids are checked by the route: one of the wrong form is "no such link"). */
export const DesktopLinkParams = IdParams;
export type DesktopLinkParams = IdParams;

// ---- replies ---------------------------------------------------------------------------------------

export const DesktopLinkState = Type.Enum(DESKTOP_LINK_STATES, {
  title: 'DesktopLinkState',
  description:
    'unused → in use (opened once, by one browser); expired, revoked (by its owner) or ended (its session stopped) end it.',
});
export type DesktopLinkState = Static<typeof DesktopLinkState>;

/** A link as its owner sees it (never the link itself, which is shown once). Times are epoch ms. */
export const DesktopLinkView = Model('DesktopLinkView', {
  id: Type.Number(),
  sessionId: Type.String(),
  viewOnly: Type.Boolean(),
  state: DesktopLinkState,
  createdAt: Type.Number(),
  expiresAt: Type.Number(),
  usedAt: Nullable(Type.Number({ description: 'When a browser opened it.' })),
  endedAt: Nullable(Type.Number({ description: 'When it was revoked or its session stopped.' })),
});
export type DesktopLinkView = Static<typeof DesktopLinkView>;

export const DesktopLinksReply = Type.Object({
  maxMinutes: Type.Number({ description: "The site's longest lifetime of a link; 0: links are off." }),
  apps: Type.Array(Type.String(), {
    description: 'The apps (by id) whose sessions may be shared: the desktops.',
  }),
  links: Type.Array(DesktopLinkView, { description: 'Your links of the last day, newest first.' }),
});
export type DesktopLinksReply = Static<typeof DesktopLinksReply>;

/** The new link: `url` is shown this once. */
export const NewDesktopLinkReply = Type.Object({
  url: Type.String({ description: 'The one-time link, to give to the guest.' }),
  link: DesktopLinkView,
});
export type NewDesktopLinkReply = Static<typeof NewDesktopLinkReply>;
