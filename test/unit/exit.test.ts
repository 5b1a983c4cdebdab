import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExitCode, exitCodeForError } from '../../src/cli/exit.js';

test('exit codes are the documented, stable table', () => {
  assert.deepEqual(ExitCode, {
    ok: 0, error: 1, changesPending: 2, blocked: 3, lock: 4, stalePlan: 5, config: 6, approval: 7, partialApply: 8,
  });
  assert.equal(exitCodeForError('config'), 6);
  assert.equal(exitCodeForError('connection'), 1);
  assert.equal(exitCodeForError('safety'), 3);
  assert.equal(exitCodeForError('partial_apply'), 8);
});
