/**
 * Reading the files a topology names (the topology itself, `file:` secrets) without trusting them: a path may name
 * /dev/zero (endless), a FIFO (blocks until someone writes), a terminal, a socket or a directory. Only regular files
 * of bounded size are read, and nothing that could block is done before that is known:
 *
 * - open with O_NONBLOCK (a FIFO's open returns at once instead of waiting for a writer) and O_NOCTTY;
 * - fstat the open descriptor (not the path: no race with a rename) and refuse anything but a regular file;
 * - read at most `maxBytes + 1` bytes, so a file that is larger than it says (/proc) is still refused.
 *
 * NOTE: that is the whole time bound. Node cannot abandon a system call that blocks in the kernel (a hung network
 * filesystem): a worker thread or libuv's thread pool stuck in one keeps even process.exit() from returning (tried:
 * a FIFO opened without O_NONBLOCK in a worker, or through fs.promises, hangs the process at exit). So nothing that
 * can block is ever started; reading a regular file does not wait on anyone.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** The file is not one vecscale reads; the message says why, in words ("it is a named pipe (FIFO), …"). */
export class UnreadableFile extends Error {
  override readonly name = 'UnreadableFile';
  /** Refused for its size alone: a regular file, larger than the limit. */
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge = false) {
    super(message);
    this.tooLarge = tooLarge;
  }
}

/** `4 MiB`, `64 KiB`, `512 bytes`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

// Absent on Windows, where opening a FIFO does not block the same way.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/**
 * A regular file's text (UTF-8, a leading BOM dropped), at most `maxBytes` long. Throws UnreadableFile for anything
 * else, and the fs error (ENOENT, EACCES, …) when the file cannot be opened.
 */
export function readBoundedText(path: string, maxBytes: number): string {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnreadableFile(`it is ${kindOf(st)}, not a regular file`);
    const tooBig = (): UnreadableFile => new UnreadableFile(`it is larger than ${formatBytes(maxBytes)}, the most vecscale reads`, true);
    if (st.size > maxBytes) throw tooBig();
    // Sized by what the file says it holds (plus one byte, to see that it ends), grown up to maxBytes + 1 when it
    // holds more (/proc reports 0): a large limit costs nothing for a small file.
    let buf = Buffer.alloc(Math.min(maxBytes, st.size) + 1);
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (buf.length > maxBytes) break;
        const grown = Buffer.alloc(Math.min(maxBytes + 1, buf.length * 2));
        buf.copy(grown, 0, 0, length);
        buf = grown;
      }
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) throw tooBig();
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, length));
    } catch {
      throw new UnreadableFile('it is not UTF-8 text');
    }
  } finally {
    closeSync(fd);
  }
}
