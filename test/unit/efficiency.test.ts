// Job history with efficiency: the figures from a usage record, the form's right-size hint, the CSV's
// escaping, and the history's query filters.
import { describe, expect, it } from 'vitest';
import {
  accountingOf,
  csvCell,
  efficiencyOf,
  memoryWords,
  rightSizeHint,
  toCsv,
  usageGivenUp,
} from '../../src/core/efficiency.ts';
import { HistoryError, historyFilter } from '../../src/history/service.ts';

describe('efficiencyOf', () => {
  it('CPU is TotalCPU against cores x elapsed, memory MaxRSS against the request, time elapsed against the limit', () => {
    const e = efficiencyOf({
      cores: 2,
      elapsedSeconds: 100,
      totalCpuMs: 50_000,
      maxRssKb: 200 * 1024,
      reqMemMb: 1024,
      limitMinutes: 10,
    });
    expect(e.cpu).toEqual({ used: 50, requested: 200, fraction: 0.25 });
    expect(e.memory).toEqual({ used: 200, requested: 1024, fraction: 200 / 1024 });
    expect(e.time).toEqual({ used: 100, requested: 600, fraction: 100 / 600 });
  });

  it('falls back on what the gateway asked for, and is silent where accounting is', () => {
    const e = efficiencyOf(
      { elapsedSeconds: 60, totalCpuMs: 30_000 },
      { cores: 1, memoryMb: 2048, limitMinutes: 2 },
    );
    expect(e.cpu?.fraction).toBe(0.5);
    expect(e.memory).toBeNull();
    expect(e.time?.fraction).toBe(0.5);
    expect(efficiencyOf({})).toEqual({ cpu: null, memory: null, time: null });
    // A job that never ran: nothing was available, so no share.
    expect(efficiencyOf({ cores: 4, elapsedSeconds: 0, totalCpuMs: 0 }).cpu).toEqual({
      used: 0,
      requested: 0,
      fraction: null,
    });
  });
});

describe('whether figures are still to come', () => {
  const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);
  const H = 3600_000;
  it('pending only while the reader still looks: no row within the look-back, none after it', () => {
    expect(accountingOf('sacct', NOW - 30 * 24 * H, NOW)).toBe('sacct');
    expect(accountingOf('none', NOW - H, NOW)).toBe('none');
    expect(accountingOf(null, NOW - 60_000, NOW)).toBe('pending');
    expect(accountingOf(null, NOW - 6 * 24 * H, NOW)).toBe('pending');
    // Ended eight days ago and never read (the gateway was down): there will be no figures.
    expect(accountingOf(null, NOW - 8 * 24 * H, NOW)).toBe('none');
    expect(accountingOf(null, null, NOW)).toBe('none');
  });
  it('accounting’s silence is final an hour after the end, not after a number of polls', () => {
    expect(usageGivenUp(NOW - 59 * 60_000, NOW)).toBe(false);
    expect(usageGivenUp(NOW - 61 * 60_000, NOW)).toBe(true);
    expect(usageGivenUp(null, NOW)).toBe(true);
  });
});

describe('rightSizeHint', () => {
  const gb = (n: number) => n * 1024;
  it('names how many sessions, the most they used and what they asked', () => {
    const past = [3, 1, 2.2, 0.5, 1, 9].map((used) => ({ maxRssKb: gb(used) * 1024, requestedMb: gb(16) }));
    const h = rightSizeHint('Jupyter', past);
    expect(h?.message).toBe('Your last 5 Jupyter sessions used at most 3 GB of the 16 GB asked.');
    expect(h).toMatchObject({ sessions: 5, maxUsedMb: 3072, requestedMb: 16384 });
  });

  it('one session, small figures, unmeasured sessions skipped', () => {
    const h = rightSizeHint('VS Code', [
      { maxRssKb: null, requestedMb: 4096 },
      { maxRssKb: 300 * 1024, requestedMb: 4096 },
    ]);
    expect(h?.message).toBe('Your last VS Code session used at most 300 MB of the 4 GB asked.');
  });

  it('says nothing without figures, or when the sessions used more than half of what they asked', () => {
    expect(rightSizeHint('Jupyter', [])).toBeNull();
    expect(rightSizeHint('Jupyter', [{ maxRssKb: null, requestedMb: 1024 }])).toBeNull();
    expect(rightSizeHint('Jupyter', [{ maxRssKb: 600 * 1024, requestedMb: 1024 }])).toBeNull();
  });

  it('memory words', () => {
    expect(memoryWords(512)).toBe('512 MB');
    expect(memoryWords(1536)).toBe('1.5 GB');
    expect(memoryWords(gb(16))).toBe('16 GB');
  });
});

describe('CSV', () => {
  it('quotes commas, quotes and line breaks, and defuses spreadsheet formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvCell('@sum')).toBe("'@sum");
    expect(csvCell(-3)).toBe('-3');
    expect(csvCell(null)).toBe('');
    expect(csvCell(Number.NaN)).toBe('');
  });

  it('a header row and CRLF line ends', () => {
    expect(
      toCsv(
        ['a', 'b'],
        [
          [1, 'x,y'],
          [null, 'z'],
        ],
      ),
    ).toBe('a,b\r\n1,"x,y"\r\n,z\r\n');
  });
});

describe('history filters', () => {
  it('days are UTC and "to" covers the whole day', () => {
    const f = historyFilter({
      from: '2026-12-01',
      to: '2026-12-01',
      kind: 'job',
      state: 'completed',
      limit: '10',
    });
    expect(f).toEqual({
      from: Date.parse('2026-12-01T00:00:00Z'),
      to: Date.parse('2026-12-02T00:00:00Z') - 1,
      kind: 'job',
      state: 'completed',
      limit: 10,
    });
    expect(historyFilter({}).limit).toBe(500);
    expect(historyFilter({ limit: '99999' }).limit).toBe(5000);
  });

  it('refuses bad values naming the field', () => {
    for (const [q, field] of [
      [{ from: 'yesterday' }, 'from'],
      [{ to: '2026-13-45' }, 'to'],
      [{ kind: 'both' }, 'kind'],
      [{ state: "x' or 1=1" }, 'state'],
      [{ limit: '-1' }, 'limit'],
    ] as const) {
      let err: unknown;
      try {
        historyFilter(q);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HistoryError);
      expect((err as HistoryError).field).toBe(field);
    }
  });
});
