// The Files page: list, download, upload, edit, create folders, rename, move and delete, as the user.
// Paths are absolute and must lie in one of the user's roots; src/files/paths.ts checks what they may
// hold (no "..", no NUL, no encoded traversal) with messages that name the field.
import Type, { type Static } from 'typebox';
import { Text } from './common.ts';

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
