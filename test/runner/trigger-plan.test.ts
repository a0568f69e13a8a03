/** Trigger keys checked at load (no root): where each problem is, what it says; cycles found as a reference finds them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';
import { gadgets } from '../../src/steps/index.ts';
import { fakeStream } from './evaluate-helpers.ts';

function problemsOf(yaml: string): string[] {
  try {
    parseRecipe(yaml, 'r.yaml');
  } catch (err) {
    if (err instanceof RecipeError) return err.message.split('\n');
    throw err;
  }
  return [];
}

test('unknown step and unknown fields name file:line:col, the JSON path and the closest name', () => {
  const problems = problemsOf(`name: t
duration: 1s
steps:
  - id: trig
    gadget: trace/oomkill
  - id: a
    gadget: traceloop
    start_on: {step: trgi}
  - id: b
    gadget: trace/open
    start_on: {step: trig, filter: 'tcomm~^java,tpdi>1'}
    for_each: cgroupid
    scope: {pdi: tpid}
`);
  assert.deepEqual(problems, [
    'r.yaml:8:22 steps[1].start_on.step: unknown step "trgi" (did you mean trig? steps: trig, a, b)',
    'r.yaml:11:49 steps[2].start_on.filter: unknown field "tpdi" (did you mean tpid? known: timestamp, kpid, kcomm, tpid, ttid, tcomm, total_vm, anon_rss, file_rss, shmem_rss, uid, oom_score_adj, mntns_id, cgroup_id) — the filter reads trig\'s events (trace/oomkill)',
    'r.yaml:12:15 steps[2].for_each: unknown field "cgroupid" of the trigger step trig\'s gadget trace/oomkill (did you mean cgroup_id? known: timestamp, kpid, kcomm, tpid, ttid, tcomm, total_vm, anon_rss, file_rss, shmem_rss, uid, oom_score_adj, mntns_id, cgroup_id; container fields: container_id, container_name, container_image, runti…',
    'r.yaml:13:18 steps[2].scope.pdi: unknown field "pdi" of b\'s gadget trace/open (did you mean pid? known: timestamp, pid, tid, uid, gid, comm, path, flags, flag_names, mode, ret, fd, err, err_name, mntns_id, cgroup_id, or cgroup for the trigger\'s cgroup and below)',
  ]);
});

test('cycles, self-triggers, steps that emit no events, keys without start_on, preload with a cgroup scope', () => {
  const problems = problemsOf(`name: t
duration: 1s
steps:
  - {id: a, gadget: trace/exec, start_on: {step: b}}
  - {id: b, gadget: trace/exec, start_on: {step: c}}
  - {id: c, gadget: trace/exec, start_on: {step: a}}
  - {id: d, gadget: trace/exec, stop_on: {step: d}}
  - {id: top, gadget: profile/cpu}
  - {id: e, gadget: trace/exec, start_on: {step: top}}
  - {id: f, gadget: trace/exec, for_each: pid}
  - {id: g, gadget: trace/exec, start_on: {step: d}, scope: trigger, attach: preload}
`);
  assert.deepEqual(problems, [
    'r.yaml:7:49 steps[3].stop_on.step: a step cannot stop on its own events: name another step',
    'r.yaml:9:50 steps[5].start_on.step: step top emits no events while it runs, so it cannot trigger: profile/cpu is a profile gadget: only the events of stream, packet and interval gadgets come as they happen',
    'r.yaml:10:43 steps[6].for_each: for_each is about a triggered step: give the step start_on: {step: …, filter: …}',
    'r.yaml:11:78 steps[7].attach: a preloaded step is scoped in user space, by its events\' fields; the cgroup scope (a subtree) is the kernel\'s: use attach: lazy, or scope by a field (e.g. {cgroup_id: cgroup_id}, that cgroup only)',
    'r.yaml:4:50 steps[0].start_on.step: steps a → b → c → a start on each other\'s events: none of them would ever start',
  ]);
});

test('a valid trigger plans its filter, for_each, scope and the fields an instance records', () => {
  const loaded = parseRecipe(`name: t
duration: 1s
steps:
  - {id: oom, gadget: trace/oomkill}
  - {id: loop, gadget: traceloop, start_on: {step: oom, filter: 'tcomm~^java'}, for_each: cgroup_id, max_instances: 2, scope: trigger, duration: 30s}
`, 'r.yaml');
  const plan = loaded.steps[1].trigger!;
  assert.deepEqual(plan.start, { step: 'oom', filter: [{ field: 'tcomm', op: '~', value: '^java', column: 0 }] });
  assert.equal(plan.forEach, 'cgroup_id');
  assert.equal(plan.maxInstances, 2);
  assert.deepEqual(plan.scope, [['cgroup', 'cgroup_id']]);
  assert.deepEqual(plan.uses, ['tcomm', 'cgroup_id']);
  assert.equal(plan.ifNotTriggered, 'fail');
  assert.equal(plan.preload, false, 'traceloop is not a live gadget: it opens at its trigger');
  assert.equal(loaded.steps[1].durationMs, 30_000);
});

test('for_each on a container field: planned where the trigger has cgroup_id, refused where its events cannot carry it', () => {
  const loaded = parseRecipe(`name: t
duration: 1s
steps:
  - {id: oom, gadget: trace/oomkill}
  - {id: loop, gadget: traceloop, start_on: {step: oom}, for_each: pod, scope: trigger}
`, 'r.yaml');
  const plan = loaded.steps[1].trigger!;
  assert.equal(plan.forEach, 'pod');
  assert.equal(plan.forEachContainer, true);
  assert.deepEqual(plan.uses, ['cgroup_id'], 'an instance records the cgroup its key was looked up by');
  // every live gadget of the catalogue has cgroup_id: a gadget without one is the test's own
  const registry = { ...gadgets, 'test/stream': fakeStream };
  const problems = (yaml: string) => {
    try {
      parseRecipe(yaml, 'r.yaml', registry);
      return [];
    } catch (err) {
      if (err instanceof RecipeError) return err.message.split('\n');
      throw err;
    }
  };
  assert.deepEqual(problems(`name: t
duration: 1s
steps:
  - {id: src, gadget: test/stream}
  - id: each
    gadget: trace/exec
    start_on: {step: src}
    for_each: pod
  - {id: typo, gadget: trace/exec, start_on: {step: oom}, for_each: pods}
  - {id: oom, gadget: trace/oomkill}
`), [
    "r.yaml:8:15 steps[1].for_each: pod is a container field: an event carries it only through its cgroup_id (joined with the node's containers), and the trigger step src's gadget test/stream has no cgroup_id, so its events cannot carry pod (key on one of its fields: pid, comm, args)",
    'r.yaml:9:69 steps[2].for_each: unknown field "pods" of the trigger step oom\'s gadget trace/oomkill (did you mean pod? known: timestamp, kpid, kcomm, tpid, ttid, tcomm, total_vm, anon_rss, file_rss, shmem_rss, uid, oom_score_adj, mntns_id, cgroup_id; container fields: container_id, container_name, container_image, runtime, node, n…',
  ]);
});

test('property: a recipe is refused for a start_on cycle exactly when following start_on from some step comes back to it', () => {
  fc.assert(
    fc.property(fc.array(fc.option(fc.nat(5), { nil: undefined }), { minLength: 1, maxLength: 6 }), (edges) => {
      const n = edges.length;
      // each step starts on at most one other step (never itself: that is its own problem)
      const target = edges.map((e, i) => (e === undefined || e % n === i ? undefined : e % n));
      const steps = target.map((t, i) => `  - {id: s${i}, gadget: trace/exec${t === undefined ? '' : `, start_on: {step: s${t}}`}}`);
      const problems = problemsOf(`name: t\nduration: 1s\nsteps:\n${steps.join('\n')}\n`);
      const inCycle = (i: number) => {
        let at = target[i];
        for (let k = 0; k < n && at !== undefined; k++, at = target[at]) if (at === i) return true;
        return false;
      };
      const expected = target.some((_, i) => inCycle(i));
      assert.equal(problems.some((p) => p.includes('start on each other')), expected, JSON.stringify(target));
      // one problem per cycle, naming each of its steps once
      for (const p of problems) {
        const names = /steps (.*) start on/.exec(p)![1].split(' → ');
        assert.equal(names[0], names.at(-1));
        assert.equal(new Set(names).size, names.length - 1);
        for (const s of names) assert.ok(inCycle(Number(s.slice(1))), `${s} is in a cycle`);
      }
    }),
  );
});
