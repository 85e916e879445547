// The header row of a data table: one <th scope="col"> a column, numbers right-aligned (.num), and a
// column without a visible title (the row's buttons) still named for screen readers.

export interface Column {
  label: string;
  /** A column of numbers: right-aligned. */
  num?: boolean;
  /** No visible title; screen readers still read the label. */
  hidden?: boolean;
}

/** The column of a row's buttons. */
export const ACTIONS: Column = { label: 'Actions', hidden: true };

/** A column of numbers. */
export const num = (label: string): Column => ({ label, num: true });

/** A column is its title, or a Column; false and undefined leave it out. */
export function TableHead({ columns }: { columns: (string | Column | false | undefined)[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => {
          if (!c) return null;
          const col = typeof c === 'string' ? { label: c } : c;
          return (
            <th key={col.label} scope="col" className={col.num ? 'num' : undefined}>
              {col.hidden ? <span className="visually-hidden">{col.label}</span> : col.label}
            </th>
          );
        })}
      </tr>
    </thead>
  );
}
