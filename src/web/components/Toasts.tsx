// Transient messages in the corner: time warnings, notifications, "session requested"...
// Anything can raise one with useToasts().notify(...); live events become toasts through LIVE_TOASTS.
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';

export type ToastTone = 'info' | 'ok' | 'warn' | 'bad';

export interface ToastInput {
  tone?: ToastTone;
  title: string;
  message?: string;
  /** Optional link shown under the message. */
  action?: { label: string; href: string };
  /** Milliseconds before it goes by itself; 0 keeps it until dismissed. Default 8 s (warnings: kept). */
  timeoutMs?: number;
  /** A toast with the same key replaces the earlier one instead of stacking. */
  key?: string;
}

interface Toast extends ToastInput {
  id: number;
  tone: ToastTone;
}

interface ToastApi {
  notify(t: ToastInput): void;
  dismiss(id: number): void;
}

const ToastContext = createContext<ToastApi>({ notify: () => {}, dismiss: () => {} });

export function useToasts(): ToastApi {
  return useContext(ToastContext);
}

const MAX_TOASTS = 5;

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);
  const timers = useRef(new Map<number, ReturnType<typeof setTimeout>>());

  const dismiss = useCallback((id: number) => {
    const t = timers.current.get(id);
    if (t) clearTimeout(t);
    timers.current.delete(id);
    setToasts((list) => list.filter((x) => x.id !== id));
  }, []);

  const notify = useCallback(
    (input: ToastInput) => {
      const id = nextId.current++;
      const tone = input.tone ?? 'info';
      const toast: Toast = { ...input, id, tone };
      setToasts((list) => {
        const rest = input.key ? list.filter((x) => x.key !== input.key) : list;
        return [...rest, toast].slice(-MAX_TOASTS);
      });
      const timeout = input.timeoutMs ?? (tone === 'warn' || tone === 'bad' ? 0 : 8_000);
      if (timeout > 0)
        timers.current.set(
          id,
          setTimeout(() => dismiss(id), timeout),
        );
    },
    [dismiss],
  );

  useEffect(() => {
    const all = timers.current;
    return () => {
      for (const t of all.values()) clearTimeout(t);
    };
  }, []);

  const api = useMemo(() => ({ notify, dismiss }), [notify, dismiss]);
  return (
    <ToastContext.Provider value={api}>
      {children}
      <section className="toasts" aria-label="Notifications" aria-live="polite">
        {toasts.map((t) => (
          <div
            key={t.id}
            className={`toast toast-${t.tone}`}
            role={t.tone === 'bad' || t.tone === 'warn' ? 'alert' : 'status'}
          >
            <div className="toast-body">
              <strong className="toast-title">{t.title}</strong>
              {t.message && <p>{t.message}</p>}
              {t.action && (
                <a className="toast-action" href={t.action.href}>
                  {t.action.label}
                </a>
              )}
            </div>
            <button type="button" className="toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </section>
    </ToastContext.Provider>
  );
}
