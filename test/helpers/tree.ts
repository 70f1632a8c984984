import fs from 'node:fs';
import path from 'node:path';

/** Every file below dir: relative path → mode and content (base64); folders → mode. To compare whole trees. */
export function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      const mode = (fs.statSync(p).mode & 0o7777).toString(8);
      if (e.isDirectory()) {
        out[rel + '/'] = mode;
        walk(p);
      } else out[rel] = `${mode} ${fs.readFileSync(p, 'base64')}`;
    }
  };
  walk(dir);
  return out;
}
