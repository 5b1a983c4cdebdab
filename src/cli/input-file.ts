/**
 * Files named by a flag (`--vector-file`, `--query-file`): read as the topology file is (a regular file, bounded,
 * nothing that could block or never end), refused with exit 6 and a message that names the flag and the path.
 */
import { readError } from '../config/messages.js';
import { readBoundedText, UnreadableFile } from '../config/read-file.js';
import { VecscaleError } from '../errors.js';

/** One query vector: 16,000 dimensions (pgvector's most) at 25 characters a number is 400 KB. */
export const MAX_VECTOR_FILE_BYTES = 4 * 1024 * 1024;

/** Query vectors for `recall`: 10,000 (the most --queries takes) of 768 dimensions at 16 characters a number. */
export const MAX_QUERY_FILE_BYTES = 128 * 1024 * 1024;

/** The file's text; `tooLargeHint` is given with the refusal of a file over `maxBytes`. */
export function readFlagFile(flag: string, path: string, maxBytes: number, tooLargeHint?: string): string {
  try {
    return readBoundedText(path, maxBytes);
  } catch (e) {
    const hint = e instanceof UnreadableFile && e.tooLarge ? tooLargeHint : undefined;
    throw new VecscaleError('config', `${flag} ${path}: cannot read it: ${readError(e)}`, hint === undefined ? {} : { hint });
  }
}
