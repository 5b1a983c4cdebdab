/**
 * `COPY … FROM STDIN` over node-pg, without pg-copy-streams: a minimal Submittable (the interface pg-cursor and
 * pg-copy-streams use) that sends one batch's bytes as CopyData messages, written straight to the connection's
 * socket with its back-pressure honoured, then CopyDone. PostgreSQL's protocol (§55.2.6): after CopyInResponse the
 * client streams CopyData; the server answers CommandComplete (`COPY n`) and ReadyForQuery — or, on a bad row,
 * ErrorResponse and ReadyForQuery at once, dropping whatever CopyData still arrives.
 *
 * The session's bound on every answer applies (node-pg's query_timeout, set by src/db/connect.ts): a batch not
 * answered in time fails with pg's "Query read timeout", and the socket is destroyed (its protocol state is lost).
 */
import type pg from 'pg';
import type { Db } from '../db/connect.js';
import type { Row } from './input.js';

/** The largest CopyData message sent: PostgreSQL takes any size; 256 kB keeps each write modest. */
const FRAME_BYTES = 256 * 1024;

// COPY's text format: backslash, tab, newline and carriage return are written as escapes (\\, \t, \n, \r).
const SPECIAL = /[\\\t\n\r]/;
const SPECIAL_ALL = /[\\\t\n\r]/g;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
export const copyField = (s: string): string => (SPECIAL.test(s) ? s.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : s);

/** One row as a line of COPY text: id, vec, metadata (a Row's embedding holds nothing to escape: numbers, commas, spaces). */
export const copyLine = (r: Row): string => `${copyField(r.id)}\t${r.embedding}\t${copyField(r.metadata)}\n`;

type Connection = {
  stream: NodeJS.WritableStream & { writable: boolean; destroyed?: boolean; cork(): void; uncork(): void; destroy(): void };
  query(text: string): void;
  endCopyFrom(): void;
};

/** pg's own error for an answer that did not come within query_timeout. */
const NO_ANSWER = 'Query read timeout';

class CopyIn {
  /** Set by pg (wrapped by its read timeout): called once, with the error or the row count. */
  callback: (err: Error | null, rows?: number) => void;
  private rows = 0;
  private done = false;

  constructor(
    readonly text: string,
    private readonly data: Buffer,
    callback: (err: Error | null, rows?: number) => void,
  ) {
    this.callback = callback;
  }

  private finish(err: Error | null, rows?: number): void {
    if (this.done) return;
    this.done = true;
    this.callback(err, rows);
  }

  submit(connection: Connection): null {
    connection.query(this.text);
    return null;
  }

  handleCopyInResponse(connection: Connection): void {
    void this.send(connection);
  }

  private async send(connection: Connection): Promise<void> {
    const stream = connection.stream;
    for (let off = 0; off < this.data.length && !this.done; off += FRAME_BYTES) {
      const part = this.data.subarray(off, off + FRAME_BYTES);
      const header = Buffer.allocUnsafe(5);
      header[0] = 0x64; // 'd' CopyData
      header.writeInt32BE(part.length + 4, 1);
      if (!stream.writable) return;
      stream.cork();
      stream.write(header);
      const room = stream.write(part);
      stream.uncork();
      if (!room) {
        // Wait for the socket to drain — or to close (a lost connection ends the query through handleError).
        await new Promise<void>((resolve) => {
          const go = () => {
            stream.removeListener('drain', go);
            stream.removeListener('close', go);
            resolve();
          };
          stream.once('drain', go);
          stream.once('close', go);
        });
      }
    }
    if (!this.done && stream.writable) connection.endCopyFrom();
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /^COPY (\d+)/.exec(msg.text ?? '');
    if (m) this.rows = Number(m[1]);
  }

  handleReadyForQuery(): void {
    this.finish(null, this.rows);
  }

  handleError(err: Error): void {
    this.finish(err);
  }

  // Nothing else comes for a COPY FROM STDIN.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleEmptyQuery(): void {}
  handleCopyData(): void {}
}

/**
 * Runs `sql` (a `COPY … FROM STDIN`, text format) with `data` as its input; resolves to the rows the server copied.
 * Rejects with the server's error (a `DatabaseError`, whose `where` names the COPY line), or a connection's.
 */
export function copyFrom(db: Db, sql: string, data: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const q = new CopyIn(sql, data, (err, rows) => {
      if (err) {
        // The COPY may still be half-sent: nothing more can be said on this connection.
        if (err.message === NO_ANSWER) (db as unknown as { connection: Connection }).connection.stream.destroy();
        reject(err);
      } else resolve(rows ?? 0);
    });
    db.query(q as unknown as pg.Submittable);
  });
}

/** The 1-based line of a COPY that a server error names (`COPY docs, line 17, column vec: …`), or undefined. */
export function copyErrorLine(err: unknown): number | undefined {
  const where = (err as { where?: unknown })?.where;
  const m = typeof where === 'string' ? /\bCOPY [^\n]*?, line (\d+)/.exec(where) : null;
  return m ? Number(m[1]) : undefined;
}
