// Saved settings of the new-session form: a user's named presets (save, rename, delete, make default),
// the site's presets that administrators define for every user of a cluster (a course's reservation
// and account), and the last-used values per cluster and app, read from the user's newest sessions
// (their rows keep what was asked for). A preset is checked against the cluster's limits for its user
// when it is saved; the form checks it again when it is applied, so one that no longer fits is shown
// with the field named, never sent as it is.

import type { FieldProblem } from '../api/common.ts';
import type { LastUsed, NewPresetBody, PresetPatchBody, PresetValues, PresetView } from '../api/presets.ts';
import type { AppDefinition } from '../apps/types.ts';
import type { EnvironmentConfig } from '../config/schema.ts';
import { checkPresetName, cleanValues, lastUsedOf, MAX_PRESETS, presetProblems } from '../core/presets.ts';
import type { AuditLog } from '../db/audit.ts';
import type { Db } from '../db/index.ts';
import {
  countPresets,
  deletePreset,
  getPreset,
  insertPreset,
  type PresetRow,
  presetsOf,
  presetsVisibleTo,
  recentSessions,
  updatePreset,
} from '../db/presets.ts';
import type { User } from '../db/users.ts';
import type { Cluster } from '../sessions/clusters.ts';

/** A refusal with the field it is about; `status` is the HTTP status the route answers. */
export class PresetError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly errors: FieldProblem[] = [],
  ) {
    super(message);
  }
}

export interface PresetDeps {
  db: Db;
  clusters: Map<string, Cluster>;
  catalogue: AppDefinition[];
  environments: EnvironmentConfig[];
  audit: AuditLog;
}

/** Whose presets a call is about: the caller's own, or (administrators) the site's. */
export type PresetScope = 'own' | 'site';

const NOT_FOUND = 'no such preset';

export function presetView(r: PresetRow): PresetView {
  return {
    id: r.id,
    name: r.name,
    cluster: r.cluster,
    values: JSON.parse(r.form_values) as PresetValues,
    isDefault: r.is_default === 1,
    site: r.user_id === null,
    updatedAt: r.updated_at,
  };
}

export class PresetService {
  constructor(private readonly d: PresetDeps) {}

  /** The caller's presets and the site's on the clusters they may use, and their last-used values. */
  async list(user: User): Promise<{ presets: PresetView[]; lastUsed: LastUsed[] }> {
    const usable = new Set<string>();
    for (const c of this.d.clusters.values()) if (await c.mayUse(user)) usable.add(c.name);
    // Administrators see every site preset, so that they can manage those of clusters they do not use.
    const shown = (r: PresetRow) => usable.has(r.cluster) || (r.user_id === null && user.isAdmin);
    const rows = (await presetsVisibleTo(this.d.db, user.id)).filter(shown);
    const own = rows.filter((r) => r.user_id !== null);
    const site = rows.filter((r) => r.user_id === null);
    const lastUsed = lastUsedOf(await recentSessions(this.d.db, user.id)).filter((l) =>
      usable.has(l.cluster),
    );
    return { presets: [...own, ...site].map(presetView), lastUsed };
  }

  async create(user: User, scope: PresetScope, body: NewPresetBody, ip?: string): Promise<PresetView> {
    const cluster = await this.clusterFor(user, body.cluster, scope);
    const named = this.name(body.name);
    if (scope === 'site' && body.isDefault)
      throw new PresetError(
        400,
        'isDefault: a site preset is no default; each user chooses their own',
        'isDefault',
      );
    const values = await this.checked(user, cluster, body.values, scope);
    const owner = scope === 'own' ? user.id : null;
    if (owner !== null && (await countPresets(this.d.db, owner)) >= MAX_PRESETS)
      throw new PresetError(409, `name: you have ${MAX_PRESETS} presets already; delete one first`, 'name');
    await this.nameFree(owner, cluster.name, named);
    const row = await insertPreset(this.d.db, {
      userId: owner,
      cluster: cluster.name,
      name: named,
      values,
      isDefault: body.isDefault === true,
    });
    if (scope === 'site') await this.audit(user, 'admin.preset.create', row, ip);
    return presetView(row);
  }

  async update(user: User, scope: PresetScope, id: string, patch: PresetPatchBody, ip?: string) {
    const row = await this.owned(user, scope, id);
    if (scope === 'site' && patch.isDefault)
      throw new PresetError(
        400,
        'isDefault: a site preset is no default; each user chooses their own',
        'isDefault',
      );
    const name = patch.name === undefined ? undefined : this.name(patch.name);
    let values: PresetValues | undefined;
    if (patch.values !== undefined) {
      const cluster = await this.clusterFor(user, row.cluster, scope);
      values = await this.checked(user, cluster, patch.values, scope);
    }
    if (name !== undefined && name !== row.name) await this.nameFree(row.user_id, row.cluster, name);
    const updated = await updatePreset(this.d.db, row, { name, values, isDefault: patch.isDefault });
    if (scope === 'site') await this.audit(user, 'admin.preset.update', updated, ip);
    return presetView(updated);
  }

  async remove(user: User, scope: PresetScope, id: string, ip?: string): Promise<void> {
    const row = await this.owned(user, scope, id);
    await deletePreset(this.d.db, row.id);
    if (scope === 'site') await this.audit(user, 'admin.preset.delete', row, ip);
  }

  /**
   * The preset by id, if it is the caller's own (or, for scope `site`, a site preset): anything else,
   * another user's included, is "no such preset", so ids tell nobody what others keep.
   */
  private async owned(user: User, scope: PresetScope, id: string): Promise<PresetRow> {
    const n = /^[1-9]\d{0,9}$/.test(id) ? Number(id) : Number.NaN;
    const row = Number.isSafeInteger(n) ? await getPreset(this.d.db, n) : undefined;
    const mine = scope === 'own' ? row?.user_id === user.id : row?.user_id === null;
    if (!row || !mine) throw new PresetError(404, NOT_FOUND);
    return row;
  }

  private async clusterFor(user: User, name: string, scope: PresetScope): Promise<Cluster> {
    const c = this.d.clusters.get(name);
    // Administrators define presets for clusters they may not use themselves.
    if (!c || (scope === 'own' && !(await c.mayUse(user))))
      throw new PresetError(400, `Cluster: "${name.slice(0, 40)}" is not a cluster you may use`, 'cluster');
    return c;
  }

  private name(raw: string): string {
    const r = checkPresetName(raw);
    if ('error' in r) throw new PresetError(400, r.error.message, 'name', [r.error]);
    return r.name;
  }

  private async nameFree(owner: number | null, cluster: string, name: string): Promise<void> {
    const taken = (await presetsOf(this.d.db, owner, cluster)).some(
      (p) => p.name.toLowerCase() === name.toLowerCase(),
    );
    if (taken)
      throw new PresetError(409, `Name: there is a preset "${name}" on this cluster already`, 'name');
  }

  /** The values cleaned and checked with the form's rules; the first problem names its field. */
  private async checked(
    user: User,
    c: Cluster,
    raw: PresetValues,
    scope: PresetScope,
  ): Promise<PresetValues> {
    const values = cleanValues(raw);
    const limits = await c.limitsFor(user, this.d.catalogue, this.d.environments);
    const problems = presetProblems(c.name, values, limits, { site: scope === 'site' }).map((p) => ({
      field: `values.${p.field}`,
      message: p.message,
    }));
    if (problems.length > 0) throw new PresetError(400, problems[0]!.message, problems[0]!.field, problems);
    return values;
  }

  private async audit(user: User, action: string, row: PresetRow, ip?: string): Promise<void> {
    await this.d.audit.record({
      actorUserId: user.id,
      actor: user.username,
      action,
      target: String(row.id),
      ip: ip ?? null,
      ok: true,
      details: { cluster: row.cluster, name: row.name },
    });
  }
}
