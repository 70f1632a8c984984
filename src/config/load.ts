/**
 * Reading zoopa.yaml: YAML syntax errors and schema errors both become one
 * ConfigError naming the file, line, dotted key and value, with a hint.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isNode, LineCounter, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type ZoopaConfig } from './schema.js';

export const CONFIG_FILE = 'zoopa.yaml';

export interface LoadedConfig {
  /** Absolute path of zoopa.yaml, or undefined when the root has none. */
  file: string | undefined;
  config: ZoopaConfig;
}

/** Load `<root>/zoopa.yaml`; a root without one gets the defaults. */
export function loadConfig(root: string): LoadedConfig {
  const file = path.join(root, CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { file: undefined, config: configSchema.parse({}) };
    throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`, { file, cause: e });
  }
  return { file, config: parseConfigText(text, file) };
}

/** Parse and validate zoopa.yaml's text. `file` is used in messages. */
export function parseConfigText(text: string, file: string): ZoopaConfig {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlErr = doc.errors[0];
  if (yamlErr) {
    const pos = yamlErr.linePos?.[0] ?? lineCounter.linePos(yamlErr.pos[0]);
    throw new ConfigError(`YAML syntax error${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${firstLine(yamlErr.message)}`, {
      file,
      hint: 'check indentation and quoting around that line (YAML uses spaces, not tabs)',
    });
  }
  const data = doc.toJS() ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError('the top level must be a mapping (keys like "stacks:")', { file, value: data, hint: 'see "zoopa.yaml reference" in the README' });
  }
  const result = configSchema.safeParse(data);
  if (result.success) return result.data;
  throw issueToError(result.error.issues[0]!, doc, lineCounter, file, data);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function valueAt(data: unknown, keyPath: readonly PropertyKey[]): unknown {
  let cur: unknown = data;
  for (const k of keyPath) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k as string];
  }
  return cur;
}

function lineOf(doc: Document, lc: LineCounter, keyPath: readonly PropertyKey[], wantKey: boolean): number | undefined {
  // For an unknown key, point at the key itself inside its parent map.
  if (wantKey && keyPath.length) {
    const parent = doc.getIn(keyPath.slice(0, -1) as unknown[], true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === keyPath[keyPath.length - 1]);
      const range = pair && isNode(pair.key) ? pair.key.range : undefined;
      if (range) return lc.linePos(range[0]).line;
    }
  }
  const node = doc.getIn(keyPath as unknown[], true);
  if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  return undefined;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function issueToError(issue: z.core.$ZodIssue, doc: Document, lc: LineCounter, file: string, data: unknown): ConfigError {
  let keyPath = [...issue.path];
  let message: string;
  let hint: string | undefined;
  let wantKey = false;
  let value = valueAt(data, keyPath);

  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const parent = valueAt(data, keyPath);
    keyPath = [...keyPath, key];
    value = (parent as Record<string, unknown>)?.[key];
    wantKey = true;
    message = 'unknown key';
    const known = knownKeys(issue.path);
    const near = known && closest(key, known);
    hint = near ? `did you mean "${near}"?` : known ? `known keys here: ${known.join(', ')}` : 'remove it, or see the zoopa.yaml reference in the README';
  } else if (issue.code === 'invalid_type') {
    message = value === undefined ? `required, expected ${issue.expected}` : `expected ${describeExpected(issue.expected)}, got ${show(value)}`;
    hint = issue.expected === 'boolean' ? 'write true or false (without quotes)' : undefined;
  } else if (issue.code === 'invalid_value') {
    message = `${show(value)} is not allowed`;
    hint = `use one of: ${issue.values.map((v) => String(v)).join(', ')}`;
  } else if (issue.code === 'invalid_union') {
    message = `${show(value)} is not valid here`;
    const inner = issue.errors.flat()[0];
    hint = inner ? inner.message : undefined;
  } else {
    message = `${issue.message} (got ${show(value)})`;
    // A refinement may carry its hint: .refine(fn, { message, params: { hint } }).
    const h = (issue as { params?: { hint?: unknown } }).params?.hint;
    hint = typeof h === 'string' ? h : undefined;
  }
  const key = keyPath.map(String).join('.');
  const line = lineOf(doc, lc, keyPath, wantKey);
  return new ConfigError(`${line ? `line ${line}: ` : ''}${key || '(top level)'}: ${message}`, { file, key, value, hint });
}

function describeExpected(t: string): string {
  return t === 'boolean' ? 'true or false' : t === 'object' ? 'a mapping of keys' : t === 'array' ? 'a list' : `a ${t}`;
}

/** Keys the schema knows at a path (for "did you mean"). */
function knownKeys(keyPath: readonly PropertyKey[]): string[] | undefined {
  let s: z.ZodType = configSchema;
  for (const k of keyPath) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) {
      const next: z.ZodType | undefined = (s.shape as Record<string, z.ZodType>)[String(k)];
      if (!next) return undefined;
      s = next;
    } else if (s instanceof z.ZodRecord) {
      s = s.valueType as z.ZodType;
    } else if (s instanceof z.ZodArray) {
      s = s.element as z.ZodType;
    } else return undefined;
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
}

function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else return s;
  }
}

function closest(word: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const d = editDistance(word, o);
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
