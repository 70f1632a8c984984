/**
 * The shape of src/: no import circles, and no import from a lower layer up into
 * src/cli/ (the edge). The graph is read from the TypeScript sources
 * (test/helpers/imports.ts); the last tests show the checks fail on a deliberately
 * added circle, both on a small fixture tree and on a temp copy of src/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { circles, importGraph, importsBetween, importsOf, specifiersOf, upwardImports, type ImportGraph } from '../helpers/imports.js';

/** The repository (this file runs as dist/test/unit/architecture.test.js). */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * Known imports up into src/cli/ that another change is about to remove, as
 * `from -> to`, each with a comment naming who removes it. Empty: keep it so.
 */
const KNOWN_UPWARD = new Set<string>([]);

/** Small modules: no file in src/ over this many lines. */
const MAX_LINES = 400;

/** Folders of the features and layers above src/unitfile/. */
const ABOVE_UNITFILE = ['src/units/', 'src/cli/', 'src/doctor/', 'src/ondemand/', 'src/backup/', 'src/llama/', 'src/proxy/', 'src/config/'];

function circleText(found: string[][]): string {
  return found.map((c) => `  ${c.join(' -> ')}`).join('\n');
}

describe('src/ import graph', () => {
  const graph = importGraph(repo, 'src');

  test('reads every source file', () => {
    assert.ok(graph.size > 50, `only ${graph.size} files read from ${repo}/src`);
    assert.ok(graph.get('src/units/render.ts')?.includes('src/unitfile/types.ts'));
  });

  test('has no import circle', () => {
    const found = circles(graph);
    assert.deepEqual(found, [], `import circles in src/ (break them by moving the shared part down):\n${circleText(found)}`);
  });

  test('no lower layer imports src/cli/', () => {
    const up = upwardImports(graph, 'src/cli/').filter((e) => !KNOWN_UPWARD.has(e));
    assert.deepEqual(up, [], 'only src/cli/ (and bin/) may import src/cli/');
  });

  test('src/unitfile/ sits below every feature', () => {
    assert.deepEqual(importsBetween(graph, (f) => f.startsWith('src/unitfile/'), ABOVE_UNITFILE), []);
  });

  test('src/names.ts and src/envfile.ts load nothing but src/errors.ts, which loads nothing (the proxy can import them without zod)', () => {
    const read = (f: string): string[] => specifiersOf(fs.readFileSync(path.join(repo, f), 'utf8'));
    assert.deepEqual(read('src/names.ts'), ['./errors.js']);
    assert.deepEqual(read('src/envfile.ts'), ['node:fs', './errors.js']);
    assert.deepEqual(read('src/errors.ts'), []);
  });

  test(`no file in src/ over ${MAX_LINES} lines`, () => {
    const long: string[] = [];
    for (const f of graph.keys()) {
      const lines = fs.readFileSync(path.join(repo, f), 'utf8').split('\n').length - 1;
      if (lines > MAX_LINES) long.push(`${f}: ${lines} lines`);
    }
    assert.deepEqual(long, [], 'split the file: one module, one job');
  });

  test('only src/units/ knows every feature: feature renderers never import src/units/', () => {
    const renderers = graph.get('src/units/render.ts')!.filter((f) => !f.startsWith('src/unitfile/') && f !== 'src/errors.ts');
    assert.ok(renderers.length >= 4, renderers.join(' '));
    for (const r of renderers) assert.deepEqual(importsBetween(graph, (f) => f === r, ['src/units/']), [], r);
  });
});

describe('the checker', () => {
  test('reads static, type-only, re-export and dynamic imports, multi-line too, and skips packages', () => {
    const src = [
      "import fs from 'node:fs';",
      "import {",
      "  a,",
      "  b,",
      "} from './a.js';",
      "import type { T } from '../t.js';",
      "export { c } from './c.js';",
      "export * from './d.js';",
      "import './side.js';",
      "const lazy = () => import('./lazy.js');",
      "// import { no } from './comment.js';",
      "const s = \"import x from './string.js'\";",
      "import { z } from 'zod';",
    ].join('\n');
    assert.deepEqual(importsOf(src).sort(), ['../t.js', './a.js', './c.js', './d.js', './lazy.js', './side.js']);
  });

  test('finds a circle in a small graph, and none when it is broken', () => {
    const g: ImportGraph = new Map([
      ['src/a.ts', ['src/b.ts']],
      ['src/b.ts', ['src/c.ts', 'src/leaf.ts']],
      ['src/c.ts', ['src/a.ts']],
      ['src/self.ts', ['src/self.ts']],
      ['src/leaf.ts', []],
    ]);
    assert.deepEqual(circles(g), [['src/a.ts', 'src/b.ts', 'src/c.ts'], ['src/self.ts']]);
    g.set('src/c.ts', ['src/leaf.ts']);
    g.set('src/self.ts', []);
    assert.deepEqual(circles(g), []);
  });

  test('fails on a circle and an upward import deliberately added to a temp copy of src/', (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-arch-'));
    t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    fs.cpSync(path.join(repo, 'src'), path.join(tmp, 'src'), { recursive: true });
    assert.deepEqual(circles(importGraph(tmp, 'src')), [], 'the copy starts clean');
    // The model (lowest layer) reaching up to the CLI: a circle through the command registry.
    const model = path.join(tmp, 'src', 'unitfile', 'model.ts');
    fs.writeFileSync(model, `import type { main } from '../cli/main.js';\n${fs.readFileSync(model, 'utf8')}`);
    const g = importGraph(tmp, 'src');
    const found = circles(g);
    assert.equal(found.length, 1, circleText(found));
    for (const f of ['src/unitfile/model.ts', 'src/cli/main.ts', 'src/cli/commands/index.ts', 'src/units/install.ts']) {
      assert.ok(found[0]!.includes(f), `${f} in\n${circleText(found)}`);
    }
    assert.ok(upwardImports(g, 'src/cli/').includes('src/unitfile/model.ts -> src/cli/main.ts'));
    assert.deepEqual(importsBetween(g, (f) => f.startsWith('src/unitfile/'), ABOVE_UNITFILE), ['src/unitfile/model.ts -> src/cli/main.ts']);
  });
});
