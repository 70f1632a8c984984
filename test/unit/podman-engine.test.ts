/** src/podman/podman.ts: what the engines parse from `podman ps`, and the rootful argvs the sudo rule allows. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { healthOf, PodmanEngine } from '../../src/podman/podman.js';

/** A stand-in `podman` (a shell script) that records its argv and prints a canned `ps` answer. */
function fakePodman(dir: string, answer: unknown): { bin: string; argvLog: string } {
  const argvLog = path.join(dir, 'argv');
  const out = path.join(dir, 'out.json');
  fs.writeFileSync(out, JSON.stringify(answer));
  const bin = path.join(dir, 'podman');
  fs.writeFileSync(bin, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${argvLog}\ncat ${out}\n`, { mode: 0o755 });
  return { bin, argvLog };
}

describe('PodmanEngine', () => {
  it('reads health from the status text', () => {
    assert.equal(healthOf('Up 3 seconds ago (healthy)'), 'healthy');
    assert.equal(healthOf('Up 3 seconds ago (starting)'), 'starting');
    assert.equal(healthOf('Exited (3) 2 seconds ago'), '');
  });

  it("lists one project's containers, exited ones included, filtering by project in code (the argv stays fixed for the sudo rule)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-engine-'));
    const { bin, argvLog } = fakePodman(dir, [
      { Id: 'a', Names: ['web_app_1'], State: 'exited', ExitCode: 3, Image: 'localhost/x:1', Status: 'Exited (3) 1 second ago', Labels: { 'io.podman.compose.project': 'web', 'com.docker.compose.service': 'app' } },
      { Id: 'b', Names: ['other_db_1'], State: 'running', ExitCode: 0, Image: 'localhost/y:1', Status: 'Up 1 second ago (healthy)', Labels: { 'io.podman.compose.project': 'other' } },
    ]);
    const engine = new PodmanEngine(process.env, bin, [], { logs: false });
    const list = await engine.projectContainers('web');
    assert.deepEqual(list, [{ id: 'a', name: 'web_app_1', project: 'web', service: 'app', state: 'exited', image: 'localhost/x:1', exitCode: 3, health: '' }]);
    const byProject = await engine.runningByProject();
    assert.equal(byProject.get('other')?.[0]?.health, 'healthy');
    assert.deepEqual(fs.readFileSync(argvLog, 'utf8').trim().split('\n'), [
      'ps --all --format json --filter label=io.podman.compose.project',
      'ps --format json --filter label=io.podman.compose.project',
    ]);
    assert.equal(await engine.logTail('web_app_1', 5), undefined, 'no podman logs where the engine may not read logs');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
