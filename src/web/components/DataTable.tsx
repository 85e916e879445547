// A data table in its scrolling wrapper (.table-wrap), so that every list of rows in the UI has the same
// frame: the header row, the rows as children, and a name for screen readers (a heading or a caption).
import type { ReactNode } from 'react';
import { type Column, TableHead } from './TableHead.tsx';

interface Props {
  /** Classes after `table`, e.g. "table-compact stack". */
  className?: string;
  /** The header row from its columns, or `head` for a header of its own (e.g. sortable columns). */
  columns?: (string | Column | false | undefined)[];
  head?: ReactNode;
  /** The id of the heading that names the table, or else a visually hidden caption. */
  labelledBy?: string;
  caption?: string;
  children: ReactNode;
}

export function DataTable({ className, columns, head, labelledBy, caption, children }: Props) {
  return (
    <div className="table-wrap">
      <table className={className ? `table ${className}` : 'table'} aria-labelledby={labelledBy}>
        {caption && <caption className="visually-hidden">{caption}</caption>}
        {columns ? <TableHead columns={columns} /> : head}
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
