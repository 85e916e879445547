// The Files page: list, download, upload, edit, create folders, rename, move and delete, as the user.
// Paths are absolute and must lie in one of the user's roots; src/files/paths.ts checks what they may
// hold (no "..", no NUL, no encoded traversal) with messages that name the field.
import Type, { type Static } from 'typebox';
import { Model, Nullable, Text } from './common.ts';

const PathText = Text(8192);
const NameText = Text(1024);

/** GET /api/files/list, /download, /text and DELETE /api/files: one path. */
export const FilesPathQuery = Type.Object({ path: PathText });
export type FilesPathQuery = Static<typeof FilesPathQuery>;

/** PUT /api/files/upload: the file's bytes are the body (Content-Length required), into folder `path`. */
export const FilesUploadQuery = Type.Object({
  path: PathText,
  name: NameText,
  /** "1" replaces an existing file of that name. */
  overwrite: Type.Optional(Text(5)),
});
export type FilesUploadQuery = Static<typeof FilesUploadQuery>;

/** PUT /api/files/text: the editor's text is the body; `etag` as loaded (absent: a new file). */
export const FilesSaveQuery = Type.Object({ path: PathText, etag: Type.Optional(Text(200)) });
export type FilesSaveQuery = Static<typeof FilesSaveQuery>;

/** POST /api/files/mkdir: a new folder `name` in `path`. */
export const FilesMkdirBody = Type.Object({ path: PathText, name: NameText });
export type FilesMkdirBody = Static<typeof FilesMkdirBody>;

/** POST /api/files/move: `path` into the folder `to` (its own folder: a rename), as `name` (default: its name). */
export const FilesMoveBody = Type.Object({
  path: PathText,
  to: Type.Optional(PathText),
  name: Type.Optional(NameText),
});
export type FilesMoveBody = Static<typeof FilesMoveBody>;

// ---- replies ---------------------------------------------------------------------------------------

/** One entry of a folder, as the user's own `lstat` sees it (links are shown, never followed). */
export const FileEntry = Model('FileEntry', {
  name: Type.String(),
  type: Type.Enum(['file', 'dir', 'link', 'other'] as const),
  size: Type.Number({ description: 'Bytes.' }),
  mtime: Type.Number({ description: 'Last change (epoch ms).' }),
  mode: Type.Number({ description: 'Permission bits.' }),
  etag: Type.String({ description: 'Changes when the file does: send it back when saving (`etag`).' }),
  target: Type.Optional(Type.String({ description: 'Where a symbolic link points.' })),
});
export type FileEntry = Static<typeof FileEntry>;

/** A folder the user may browse from (home, project space, ...). */
export const FileRoot = Model('FileRoot', {
  id: Type.String({ description: 'Stable id ("home", "project", ...).' }),
  name: Type.String({ description: 'What the page shows ("Home", "Project").' }),
  path: Type.String({ description: 'Absolute, without a trailing slash ("/home/alice").' }),
});
export type FileRoot = Static<typeof FileRoot>;

/** The user's roots and whether each can be read now; `available: false` (with `why`) when the page is off. */
export const FilesRootsReply = Type.Object({
  available: Type.Boolean(),
  why: Type.Optional(Nullable(Type.String())),
  home: Type.Optional(Type.String()),
  roots: Type.Array(
    Type.Object({ ...FileRoot.properties, ok: Type.Boolean(), error: Type.Optional(Type.String()) }),
  ),
  clusters: Type.Array(
    Type.Object({
      name: Type.String(),
      title: Type.String(),
      filesHere: Type.Boolean({ description: "The cluster's nodes see the same files as the gateway." }),
    }),
  ),
  limits: Nullable(Type.Object({ maxUploadBytes: Type.Number(), maxEditBytes: Type.Number() })),
});
export type FilesRootsReply = Static<typeof FilesRootsReply>;

/** A folder's entries (at most a few thousand: `truncated` says when there were more). */
export const FilesListReply = Type.Object({
  path: Type.String(),
  root: FileRoot,
  entries: Type.Array(FileEntry),
  truncated: Type.Boolean(),
});
export type FilesListReply = Static<typeof FilesListReply>;

export const FilesStatReply = Type.Object({ path: Type.String(), root: FileRoot, entry: FileEntry });
export type FilesStatReply = Static<typeof FilesStatReply>;

/** A text file for the editor, with its entry (whose `etag` a save sends back). */
export const FilesTextReply = Type.Object({ path: Type.String(), content: Type.String(), entry: FileEntry });
export type FilesTextReply = Static<typeof FilesTextReply>;

/** The entry made or changed. */
export const FilesEntryReply = Type.Object({ entry: FileEntry });
export type FilesEntryReply = Static<typeof FilesEntryReply>;

/** The entry where it is now, and its new path. */
export const FilesMoveReply = Type.Object({ entry: FileEntry, path: Type.String() });
export type FilesMoveReply = Static<typeof FilesMoveReply>;
