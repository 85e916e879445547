// A card of the page: a <section> named by its <h2>, with a line beside the title (a count, the cluster).
import type { ReactNode } from 'react';

interface Props {
  /** The id of the title, which names the section. */
  titleId: string;
  title: ReactNode;
  /** Shown beside the title. */
  aside?: ReactNode;
  /** Classes after `card`. */
  className?: string;
  children: ReactNode;
}

export function Card({ titleId, title, aside, className, children }: Props) {
  return (
    <section className={className ? `card ${className}` : 'card'} aria-labelledby={titleId}>
      <div className="card-head">
        <h2 id={titleId}>{title}</h2>
        {aside}
      </div>
      {children}
    </section>
  );
}
