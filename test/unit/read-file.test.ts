/**
 * readBoundedText: the buffer is sized by what the file says and grown while it holds more (a /proc file reports
 * size 0), up to the limit and one byte past it, so a file larger than it says is still refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readBoundedText, UnreadableFile } from '../../src/config/read-file.js';

test('a file reporting size 0 while holding more (/proc) is read whole, or refused past the limit', () => {
  const text = readBoundedText('/proc/self/status', 1024 * 1024);
  assert.match(text, /^Name:/, 'read whole although its size says 0');
  assert.ok(text.length > 100, 'more than the first buffer');
  assert.throws(() => readBoundedText('/proc/self/status', 64), (e: unknown) => e instanceof UnreadableFile && e.tooLarge, 'refused past 64 bytes');
});

test('exactly the limit is read; one byte more is refused as too large; a device is refused, not for its size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vecscale-read-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, 'x'.repeat(1000));
    assert.equal(readBoundedText(file, 1000).length, 1000);
    assert.throws(() => readBoundedText(file, 999), (e: unknown) => e instanceof UnreadableFile && e.tooLarge, 'one byte over');
    assert.throws(() => readBoundedText('/dev/zero', 1000), (e: unknown) => e instanceof UnreadableFile && !e.tooLarge && /character device/.test(e.message), 'a device');
    writeFileSync(file, '');
    assert.equal(readBoundedText(file, 10), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
