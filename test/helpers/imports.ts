/**
 * The import graph of src/, read from the TypeScript sources with the compiler's own
 * pre-processor (static imports, `export … from`, `import type`, dynamic `import()`),
 * and the checks test/unit/architecture.test.ts runs on it: import circles and
 * imports that run from a lower layer up into src/cli/.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** file (relative to the root, with `/`) → the files it imports (same form), sorted. */
export type ImportGraph = Map<string, string[]>;

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(full));
    else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** Every module specifier a TypeScript source imports, as written (`./a.js`, `node:fs`, `zod`). */
export function specifiersOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The relative module specifiers a TypeScript source imports (bare ones, e.g. `node:fs` or `zod`, are left out). */
export function importsOf(source: string): string[] {
  return specifiersOf(source).filter((s) => s.startsWith('.'));
}

/** Build the graph of every .ts file under `root/dir` (e.g. dir = 'src'). */
export function importGraph(root: string, dir: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of listTs(path.join(root, dir)).sort()) {
    const from = path.relative(root, file).split(path.sep).join('/');
    const targets = new Set<string>();
    for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
      const abs = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      targets.add(path.relative(root, abs).split(path.sep).join('/'));
    }
    graph.set(from, [...targets].sort());
  }
  return graph;
}

/**
 * Every import circle, as the strongly connected components with more than one file
 * (or a file importing itself), each sorted, found with Tarjan's algorithm.
 */
export function circles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/** Imports from files under `from` (a path prefix) into any of `into`, as `from -> to`, sorted. */
export function importsBetween(graph: ImportGraph, from: (file: string) => boolean, into: readonly string[]): string[] {
  const out: string[] = [];
  for (const [f, tos] of graph) {
    if (!from(f)) continue;
    for (const to of tos) if (into.some((p) => to.startsWith(p))) out.push(`${f} -> ${to}`);
  }
  return out.sort();
}

/** Imports from outside `top` (e.g. 'src/cli/') into it: a lower layer reaching up. */
export function upwardImports(graph: ImportGraph, top: string): string[] {
  return importsBetween(graph, (f) => !f.startsWith(top), [top]);
}
