// Client-side navigation on the history API: no router library. usePath() re-renders on changes;
// <Link> keeps ordinary links (middle click, open in new tab) working.
import { type AnchorHTMLAttributes, type MouseEvent, useSyncExternalStore } from 'react';

const CHANGE = 'atrium:navigate';

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  const cur = location.pathname + location.search;
  if (to === cur) return;
  if (opts.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(CHANGE));
}

function subscribe(f: () => void): () => void {
  window.addEventListener('popstate', f);
  window.addEventListener(CHANGE, f);
  return () => {
    window.removeEventListener('popstate', f);
    window.removeEventListener(CHANGE, f);
  };
}

const currentPath = () => location.pathname;
const currentSearch = () => location.search;

export function usePath(): string {
  return useSyncExternalStore(subscribe, currentPath);
}

export function useSearch(): URLSearchParams {
  return new URLSearchParams(useSyncExternalStore(subscribe, currentSearch));
}

export function Link({ href, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={click} {...rest} />;
}
