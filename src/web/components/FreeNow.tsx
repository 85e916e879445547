// What is free on a cluster right now, grouped by free GPUs per node (the scheduler's latest poll).
import { formatClock, formatGb } from '../format.ts';
import type { FreeTable } from '../types.ts';
import { Card } from './Card.tsx';
import { DataTable } from './DataTable.tsx';
import { num } from './TableHead.tsx';

interface Props {
  title: string;
  table: FreeTable | undefined;
}

export function FreeNow({ title, table }: Props) {
  const rows = table?.rows ?? [];
  return (
    <Card
      titleId="free-title"
      title="Free now"
      aside={<span className="muted">{title}</span>}
      className="free"
    >
      {table && !table.fresh && table.at > 0 && (
        <p className="alert alert-warn stale">scheduler unreachable, figures from {formatClock(table.at)}</p>
      )}
      {(!table || table.at === 0) && (
        <p className="muted">Waiting for the first report from the scheduler…</p>
      )}
      {table && table.at > 0 && rows.length === 0 && <p className="muted">No usable nodes are reported.</p>}
      {rows.length > 0 && (
        <DataTable
          className="table-compact"
          caption={`Free resources on ${title}`}
          columns={['GPUs', num('Nodes'), num('Free cores'), num('Free memory (GB)')]}
        >
          {rows.map((r) => (
            <tr key={r.freeGpus}>
              <th scope="row">{r.label}</th>
              <td className="num">{r.nodes}</td>
              <td className="num">{r.freeCores}</td>
              <td className="num">{formatGb(r.freeMemoryMb)}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {table && table.fresh && table.at > 0 && (
        <p className="muted small">Updated {formatClock(table.at)}, live.</p>
      )}
    </Card>
  );
}
