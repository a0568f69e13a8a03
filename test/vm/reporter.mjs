// A node:test reporter for the kernel matrix: one JSON line per test that ran (or was
// skipped for a reason of its own), keyed by file and the names from its suite down.
// Tests left out by --test-name-pattern are not reported: they were not chosen.
import path from 'node:path';

const NOT_CHOSEN = 'test name does not match pattern';
const ROOT = path.resolve(new URL('../..', import.meta.url).pathname);

export default async function* matrixReporter(source) {
  const names = [];
  for await (const { type, data } of source) {
    if (type === 'test:start') names[data.nesting] = data.name;
    if (type !== 'test:pass' && type !== 'test:fail') continue;
    if (data.skip === NOT_CHOSEN) continue;
    const suite = data.details?.type === 'suite';
    // a suite is reported only when it skips its tests: when it fails (its tests failed, a
    // hook threw, its timeout came), each of its tests is reported failed or cancelled, and
    // whether its own timeout came first depends on the machine's speed
    if (suite && data.skip === undefined) continue;
    const line = {
      file: data.file ? path.relative(ROOT, data.file) : null,
      name: [...names.slice(0, data.nesting), data.name].join(' > '),
      test: data.name,
      status: data.skip !== undefined ? 'skip' : data.todo !== undefined ? 'todo' : type === 'test:pass' ? 'pass' : 'fail',
      ms: Math.round(data.details?.duration_ms ?? 0),
    };
    if (suite) line.suite = true;
    if (typeof data.skip === 'string') line.reason = data.skip;
    if (type === 'test:fail') line.error = errorText(data.details?.error);
    yield `${JSON.stringify(line)}\n`;
  }
}

function errorText(err) {
  const e = err?.cause ?? err;
  return String(e?.message ?? e ?? 'failed').split('\n').slice(0, 6).join('\n');
}
