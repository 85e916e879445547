// The signed-in pages, one nav tab each. To add a page: write it under pages/, then add an entry
// here (path, tab label, component; `admin: true` shows it to administrators only). The header
// tabs and the routing both come from this list.
import type { ComponentType } from 'react';
import { AdminPage } from './pages/AdminPage.tsx';
import { FilesPage } from './pages/FilesPage.tsx';
import { HistoryPage } from './pages/HistoryPage.tsx';
import { JobsPage } from './pages/JobsPage.tsx';
import { QueuePage } from './pages/QueuePage.tsx';
import { SessionsPage } from './pages/SessionsPage.tsx';
import { SettingsPage } from './pages/SettingsPage.tsx';
import type { Me, PageProps } from './types.ts';

export type { PageProps };

export interface PageDef {
  /** Path of the tab; sub-paths (path + '/...') belong to the same page. */
  path: string;
  label: string;
  component: ComponentType<PageProps>;
  admin?: boolean;
}

export const PAGES: PageDef[] = [
  { path: '/', label: 'Sessions', component: SessionsPage },
  { path: '/jobs', label: 'Jobs', component: JobsPage },
  { path: '/history', label: 'History', component: HistoryPage },
  { path: '/files', label: 'Files', component: FilesPage },
  { path: '/queue', label: 'Queue', component: QueuePage },
  { path: '/admin', label: 'Admin', component: AdminPage, admin: true },
  { path: '/settings', label: 'Settings', component: SettingsPage },
];

export function pagesFor(me: Me): PageDef[] {
  return PAGES.filter((p) => !p.admin || me.isAdmin);
}

/** The page for a path: exact match, else the longest tab path that prefixes it. */
export function pageFor(path: string, pages: PageDef[]): PageDef | undefined {
  const exact = pages.find((p) => p.path === path);
  if (exact) return exact;
  return pages
    .filter((p) => p.path !== '/' && path.startsWith(`${p.path}/`))
    .sort((a, b) => b.path.length - a.path.length)[0];
}
