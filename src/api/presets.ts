// Saved settings of the new-session form: a user's named presets, the site's (defined by the
// administrators, read-only for users), and the values of the user's newest session per cluster and app.
import Type, { type Static } from 'typebox';
import { IdParams, Model, Text } from './common.ts';

/**
 * What a preset fills in on the form: any of a session request's fields but the cluster (a preset
 * belongs to one). Fields left out keep the form's defaults. Unknown fields are refused; what a value
 * may be is checked against the cluster's limits for this user, with the form's own messages.
 */
export const PresetValues = Type.Object(
  {
    app: Type.Optional(Text(200, 'The main app (user interface), by id.')),
    extraApps: Type.Optional(Type.Array(Text(200), { maxItems: 16 })),
    environment: Type.Optional(Text(200)),
    cores: Type.Optional(Type.Number()),
    memoryGb: Type.Optional(Type.Number({ description: 'Memory in GB.' })),
    gpus: Type.Optional(Type.Number()),
    hours: Type.Optional(Type.Number({ description: 'Time limit in hours.' })),
    partition: Type.Optional(Text(200)),
    account: Type.Optional(Text(200)),
    reservation: Type.Optional(Text(200)),
    label: Type.Optional(Text(200, "The sessions' own name.")),
  },
  { title: 'PresetValues', additionalProperties: false },
);
export type PresetValues = Static<typeof PresetValues>;

/** A new preset (yours, or with the admin route one every user of the cluster sees). */
export const NewPresetBody = Type.Object(
  {
    name: Text(
      200,
      'Your name for it: 1 to 64 letters, digits, spaces and . , : ( ) + - _ (unique per cluster).',
    ),
    cluster: Text(200, 'The cluster it is for.'),
    values: PresetValues,
    isDefault: Type.Optional(
      Type.Boolean({ description: 'The form opens with it on this cluster (your presets only).' }),
    ),
  },
  { additionalProperties: false },
);
export type NewPresetBody = Static<typeof NewPresetBody>;

/** A change: rename, new values (they replace the old ones), made or unmade the default. */
export const PresetPatchBody = Type.Object(
  {
    name: Type.Optional(Text(200)),
    values: Type.Optional(PresetValues),
    isDefault: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type PresetPatchBody = Static<typeof PresetPatchBody>;

/** /api/presets/:id (an id of the wrong form, or of a preset that is not yours, is "no such preset"). */
export const PresetParams = IdParams;
export type PresetParams = IdParams;

// ---- replies ---------------------------------------------------------------------------------------

export const PresetView = Type.Object(
  {
    id: Type.Number(),
    name: Type.String(),
    cluster: Type.String(),
    values: PresetValues,
    isDefault: Type.Boolean({ description: 'The form opens with it on its cluster.' }),
    site: Type.Boolean({
      description: 'Defined by the administrators for every user of the cluster; read-only for users.',
    }),
    updatedAt: Type.Number(),
  },
  { title: 'PresetView' },
);
export type PresetView = Static<typeof PresetView>;

/** What the user's newest session of an app on a cluster asked for (its name left out). */
export const LastUsed = Model('LastUsed', {
  cluster: Type.String(),
  app: Type.String(),
  values: PresetValues,
  sessionId: Type.String(),
  at: Type.Number({ description: 'When that session was created.' }),
});
export type LastUsed = Static<typeof LastUsed>;

export const PresetsReply = Type.Object({
  presets: Type.Array(PresetView, { description: 'Yours first, then the site presets, by name.' }),
  lastUsed: Type.Array(LastUsed, { description: 'Newest first, one per cluster and app.' }),
});
export type PresetsReply = Static<typeof PresetsReply>;

export const PresetReply = Type.Object({ preset: PresetView });
export type PresetReply = Static<typeof PresetReply>;
