/**
 * Stacks that need stacks: `stacks.<name>.requires: [db]` and
 * `stacks.<db>.stop_when_unneeded: true`. systemd does the work (Requires=,
 * After=, StopWhenUnneeded= on the stack units, src/units/stack.ts); this module
 * checks the graph before anything is rendered, and answers who requires whom.
 *
 * Bad input, each an error naming `stacks.<name>.requires`: a stack that is not
 * there (or has no unit: enabled: false), a stack requiring itself or a cycle,
 * and a requirement between the rootful stack and a rootless one (they are
 * managed apart, so systemd cannot order or stop one for the other).
 */
import { ConfigError } from '../errors.js';

/** What this module needs of a stack (src/stacks/discover.ts's Stack has it; no import, so no circle). */
export interface StackNeeds {
  name: string;
  config: { enabled: boolean; rootful: boolean; requires: readonly string[]; stop_when_unneeded?: boolean; ondemand?: unknown };
}
type Stack = StackNeeds;

export function checkRequires(stacks: readonly Stack[], configFile: string | undefined): void {
  const byName = new Map(stacks.map((s) => [s.name, s]));
  for (const s of stacks) {
    if (!s.config.enabled) continue;
    for (const r of s.config.requires) {
      const key = `stacks.${s.name}.requires`;
      const target = byName.get(r);
      if (!target) {
        throw new ConfigError(`${key}: no stack ${JSON.stringify(r)}`, {
          file: configFile,
          key,
          value: r,
          hint: `stacks here: ${stacks.map((x) => x.name).join(', ')}`,
        });
      }
      if (!target.config.enabled) {
        throw new ConfigError(`${key}: stack ${r} has enabled: false, so it has no unit to require`, { file: configFile, key, value: r, hint: `enable ${r}, or remove it from ${key}` });
      }
      if (r === s.name) {
        throw new ConfigError(`${key}: ${s.name} requires itself`, { file: configFile, key, value: r, hint: `remove ${r} from ${key}` });
      }
      if (target.config.rootful !== s.config.rootful) {
        const [rootful, rootless] = s.config.rootful ? [s.name, r] : [r, s.name];
        throw new ConfigError(`${key}: ${s.name} cannot require ${r}: ${rootful} is rootful and ${rootless} is rootless, and they are managed apart`, {
          file: configFile,
          key,
          value: r,
          hint: `run both rootless (or both as the rootful stack), or remove ${r} from ${key}`,
        });
      }
    }
  }
  for (const s of stacks) {
    if (!s.config.enabled || !s.config.stop_when_unneeded) continue;
    const key = `stacks.${s.name}.stop_when_unneeded`;
    if (s.config.ondemand) {
      throw new ConfigError(`${key}: ${s.name} is also on demand, and systemd would stop it as soon as its socket woke it (nothing requires a stack its proxy starts)`, {
        file: configFile,
        key,
        value: true,
        hint: `let the on-demand idle timeout put ${s.name} to sleep and remove stop_when_unneeded, or remove its ondemand section so only the stacks requiring it wake it`,
      });
    }
    if (!stacks.some((o) => o.config.enabled && o.config.requires.includes(s.name))) {
      throw new ConfigError(`${key}: no stack requires ${s.name}, so systemd would stop it as soon as it started`, {
        file: configFile,
        key,
        value: true,
        hint: `add ${s.name} to the requires of the stacks that need it, or remove stop_when_unneeded`,
      });
    }
  }
  const cycle = findCycle(stacks);
  if (cycle) {
    throw new ConfigError(`stacks.${cycle[0]}.requires: a cycle: ${cycle.join(' → ')}`, {
      file: configFile,
      key: `stacks.${cycle[0]}.requires`,
      value: cycle[1],
      hint: 'systemd cannot start stacks that wait for each other: remove one of these requirements',
    });
  }
}

/** A cycle as a path a → b → ... → a, or undefined. Stacks are visited in name order, so the answer is stable. */
function findCycle(stacks: readonly Stack[]): string[] | undefined {
  const edges = new Map(stacks.filter((s) => s.config.enabled).map((s) => [s.name, s.config.requires]));
  const state = new Map<string, 'open' | 'done'>();
  const trail: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...trail.slice(trail.indexOf(n)), n];
    state.set(n, 'open');
    trail.push(n);
    for (const m of edges.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    trail.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of [...edges.keys()].sort()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

/** The stacks that require `name` (directly), in name order. */
export function requiredBy(stacks: readonly Stack[], name: string): string[] {
  return stacks.filter((s) => s.config.enabled && s.config.requires.includes(name)).map((s) => s.name);
}

/**
 * Every stack that requires `name`, directly or through others, in the order to
 * stop them: the furthest dependents first.
 */
export function dependentsToStop(stacks: readonly Stack[], name: string): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (n: string) => {
    for (const d of requiredBy(stacks, n)) {
      if (seen.has(d)) continue;
      seen.add(d);
      visit(d);
      order.push(d);
    }
  };
  visit(name);
  return order;
}
