/**
 * Objects describe themselves (STYLE.md): a gadget's `requires` must name
 * exactly the hooks its object's programs attach to, so the probes that
 * decide `unsupported` check what will really be attached. The container
 * tracking programs every object carries (bpf/include/containers.h) are
 * loaded only with a container scope and are not the gadget's own hooks.
 * A gadget with hook variants is checked per variant: the programs it loads
 * attach to exactly the gadget's requires plus the variant's.
 * No root needed: objects are opened, not loaded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONTAINER_PROGRAMS } from '../../src/containers/selection.ts';
import { BpfObject } from '../../src/ebpf/object.ts';
import { gadgets } from '../../src/steps/index.ts';
import { requirementName, variantsOf } from '../../src/steps/hooks.ts';
import type { GadgetDefinition, GadgetVariant, Requirement } from '../../src/steps/types.ts';
import { objectPath } from '../helpers/kernel.ts';

/** The hook a program section attaches to, in the words of `requires`. */
function hookOf(section: string): string {
  const [kind, ...rest] = section.split('/');
  switch (kind) {
    case 'tracepoint':
      return `tracepoint ${rest.join('/')}`;
    case 'tp_btf':
    case 'raw_tp':
      // BTF-typed and raw tracepoints name the event without its category
      return `tracepoint */${rest.join('/')}`;
    case 'kprobe':
    case 'kretprobe':
      return `kprobe ${rest.join('/')}`;
    case 'fentry':
    case 'fexit':
      return `fentry ${rest.join('/')}`;
    case 'iter':
      return `iterator ${rest.join('/')}`;
    case 'cgroup':
    case 'cgroup_skb':
      // attached by the runner to the workload's cgroup: `program` requirements name them so
      return `${kind} ${rest.join('/')}`;
    case 'perf_event':
      // the section does not say which event: the gadget names it (cpu-clock)
      return 'perf event';
    default:
      return section;
  }
}

/** The hooks a variant names (kfuncs are called, not attached to). */
function required(requires: Requirement[]): string[] {
  return requires.filter((r) => !('kfunc' in r)).map((r) => ('perfEvent' in r ? 'perf event' : requirementName(r)));
}

for (const def of Object.values(gadgets) as GadgetDefinition[]) {
  for (const v of variantsOf(def)) {
    const object = v.object ?? def.object;
    const what = def.variants ? `variant ${v.name}: its requires name exactly the hooks it loads of ${object}` : `requires names exactly the hooks of ${object}`;
    test(`${def.id}: ${what}`, () => checkVariant(def, v, object));
  }
}

function checkVariant(def: GadgetDefinition, v: GadgetVariant, object: string): void {
  const obj = BpfObject.open(objectPath({ ...def, object }));
  let programs: { name: string; section: string }[];
  const others = new Set(variantsOf(def).filter((o) => o !== v).flatMap((o) => o.programs));
  try {
    const all = obj.programs();
    for (const name of v.programs) assert.ok(all.some((p) => p.name === name), `${def.id}: variant ${v.name} names program ${name}, which ${object} does not have`);
    programs = all.filter((p) => !CONTAINER_PROGRAMS.includes(p.name) && (v.programs.includes(p.name) || !others.has(p.name)));
  } finally {
    obj.close();
  }
  if (def.mode === 'packet') {
    // packet gadgets attach sockets and cgroups, named in def.packet, probed when the step opens
    assert.deepEqual(programs.map((p) => p.name).sort(), [def.packet.socket, def.packet.ingress, def.packet.egress].sort());
    return;
  }
  const fromObject = programs.map((p) => hookOf(p.section));
  const declared = required([...def.requires, ...v.requires]);
  const matches = (hook: string, req: string) => hook === req || (hook.startsWith('tracepoint */') && req.startsWith('tracepoint ') && req.endsWith(`/${hook.slice('tracepoint */'.length)}`));
  for (const hook of fromObject) assert.ok(declared.some((r) => matches(hook, r)), `${def.id}: the object attaches ${hook}, which requires does not name`);
  for (const r of declared) assert.ok(fromObject.some((h) => matches(h, r)), `${def.id}: requires names ${r}, which no program of ${object} attaches to`);
}
