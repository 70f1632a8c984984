/**
 * The proposal (propose.ts) as a commented zoopa.yaml, through the `yaml`
 * package's Document API, and merged into an existing zoopa.yaml (only keys
 * it lacks are added; nothing it has is changed).
 */
import YAML, { isMap, isScalar, type Document, type Scalar, type YAMLMap } from 'yaml';
import type { Proposal } from './propose.js';

function comment(lines: readonly string[]): string {
  return lines.join('\n');
}

function stacksObject(p: Proposal): Record<string, unknown> {
  return Object.fromEntries(p.stacks.map((s) => [s.name, s.settings]));
}

/** Short lists (stacks, jobs, files) read better on one line. */
function flowShortSequences(doc: Document): void {
  YAML.visit(doc, {
    Seq(_k, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
}

function commentStacks(doc: Document, p: Proposal, only?: ReadonlySet<string>): void {
  const stacks = doc.get('stacks', true);
  if (!isMap(stacks)) return;
  for (const pair of (stacks as YAMLMap).items) {
    const name = isScalar(pair.key) ? pair.key.value : pair.key;
    const s = p.stacks.find((x) => x.name === name);
    if (!s || (only && !only.has(s.name))) continue;
    if (!isScalar(pair.key)) pair.key = doc.createNode(name);
    (pair.key as Scalar).commentBefore = comment(s.comments);
  }
}

/** A fresh zoopa.yaml. */
export function renderNew(p: Proposal): string {
  const data: Record<string, unknown> = {};
  if (p.top.podman_compose !== undefined) data.podman_compose = p.top.podman_compose;
  data.stacks = stacksObject(p);
  for (const [k, v] of Object.entries(p.top)) if (k !== 'podman_compose') data[k] = v;
  const doc = new YAML.Document(data);
  const header = [...p.header];
  if (p.notes.length) header.push('', ' Notes:', ...p.notes.map((n) => `  - ${n}`));
  doc.commentBefore = comment(header);
  commentStacks(doc, p);
  flowShortSequences(doc);
  return doc.toString({ lineWidth: 0 });
}

export interface Merge {
  text: string;
  /** Dotted keys added. */
  added: string[];
}

/** Add to `existing` what the proposal has and it lacks; `added` is empty when nothing would change. */
export function mergeInto(existing: string, p: Proposal): Merge {
  const doc = YAML.parseDocument(existing);
  const added: string[] = [];
  const addedStacks = new Set<string>();
  const walk = (keyPath: string[], value: unknown) => {
    if (!doc.hasIn(keyPath)) {
      if (!doc.contents && keyPath.length) doc.contents = doc.createNode({}) as never;
      doc.setIn(keyPath, doc.createNode(value));
      added.push(keyPath.join('.'));
      if (keyPath[0] === 'stacks' && keyPath.length === 2) addedStacks.add(keyPath[1]!);
      if (keyPath.length === 1 && keyPath[0] === 'stacks') for (const s of p.stacks) addedStacks.add(s.name);
      return;
    }
    // Descend only into mappings on both sides; lists and scalars stay as the user wrote them.
    const node = doc.getIn(keyPath, true);
    if (value && typeof value === 'object' && !Array.isArray(value) && isMap(node)) {
      for (const [k, v] of Object.entries(value)) walk([...keyPath, k], v);
    }
  };
  const wanted: Record<string, unknown> = { ...p.top, stacks: stacksObject(p) };
  for (const [k, v] of Object.entries(wanted)) walk([k], v);
  if (!added.length) return { text: existing, added };
  commentStacks(doc, p, addedStacks);
  return { text: doc.toString({ lineWidth: 0 }), added };
}
