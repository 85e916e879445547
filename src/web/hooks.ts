import { useCallback, useEffect, useState } from 'react';
import { errorText, get } from './api.ts';

/** The current time, refreshed every `intervalMs` (for countdowns). */
export function useNow(intervalMs = 15_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs]);
  return now;
}

/**
 * Runs `load` at once and again whenever it changes (make it a useCallback of what it reads). Its failure
 * is kept in `error`, as a sentence, until it next succeeds; `reload` runs it again.
 */
export function useLoader(load: () => Promise<void>): {
  error: string | null;
  setError(error: string | null): void;
  reload(): Promise<void>;
} {
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      await load();
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  }, [load]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { error, setError, reload };
}

/** The answer of GET `path`, read at once and again when the path changes (null until it is there). */
export function useGet<T>(path: string): { data: T | null; error: string | null; reload(): Promise<void> } {
  const [data, setData] = useState<T | null>(null);
  const load = useCallback(async () => setData(await get<T>(path)), [path]);
  const { error, reload } = useLoader(load);
  return { data, error, reload };
}
