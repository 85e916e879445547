// Browser (desktop) notifications for the gateway's `notification` events, when the user allows them
// (their preference, sent with each event, and the browser's permission). Mounted once per signed-in tab.
// The in-page toast for the same event comes from LIVE_TOASTS.
import { useLiveEvent } from '../live.ts';
import { navigate } from '../router.tsx';

export type BrowserPermission = NotificationPermission | 'unsupported';

export function browserPermission(): BrowserPermission {
  return typeof window !== 'undefined' && 'Notification' in window ? Notification.permission : 'unsupported';
}

export async function requestBrowserPermission(): Promise<BrowserPermission> {
  if (browserPermission() === 'unsupported') return 'unsupported';
  try {
    return await Notification.requestPermission();
  } catch {
    return browserPermission();
  }
}

interface NotificationEvent {
  id?: number;
  title?: string;
  body?: string;
  link?: string | null;
  /** The user's preference for browser notifications. */
  browser?: boolean;
}

/** Same-origin paths only, as for in-page links. */
function safeLink(link: string | null | undefined): string | undefined {
  return link && link.startsWith('/') && !link.startsWith('//') && !/[\s\\]/.test(link) ? link : undefined;
}

export function BrowserNotifications() {
  useLiveEvent<NotificationEvent>('notification', (d) => {
    if (!d || typeof d.title !== 'string' || d.browser === false) return;
    if (browserPermission() !== 'granted') return;
    try {
      const n = new Notification(d.title, {
        body: typeof d.body === 'string' ? d.body : '',
        // One per notification, even with several tabs open.
        tag: d.id !== undefined ? `atrium-${d.id}` : undefined,
        icon: '/favicon.svg',
      });
      const link = safeLink(d.link);
      n.onclick = () => {
        window.focus();
        if (link) {
          // Pages of this app are routed here; session addresses are loaded as pages of their own.
          if (link.startsWith('/user/')) location.assign(link);
          else navigate(link);
        }
        n.close();
      };
    } catch {
      // Some browsers only allow notifications from a service worker: the toast still shows.
    }
  });
  return null;
}
