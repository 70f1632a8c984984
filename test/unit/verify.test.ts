/**
 * src/stacks/verify.ts: which services run, from what a ContainerEngine reports. The
 * engine here is an in-memory implementation of the port (the real podman one is
 * exercised by test/integration/stacks.test.ts); compose files are real files.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ContainerEngine, ContainerInfo } from '../../src/core/ports.js';
import { clearCheck, composeServices, describeProblem, lastCheck, saveCheck, verifyStack } from '../../src/stacks/verify.js';

function container(c: Partial<ContainerInfo> & { name: string; service: string }): ContainerInfo {
  return { id: c.name, project: 'web', state: 'running', image: 'localhost/x:1', exitCode: 0, health: '', ...c };
}

class MemoryEngine implements ContainerEngine {
  healthchecks = 0;
  constructor(
    public containers: ContainerInfo[],
    private readonly onHealthcheck: (name: string) => void = () => undefined,
  ) {}
  async runningByProject() {
    return new Map<string, ContainerInfo[]>();
  }
  async projectContainers(project: string) {
    return this.containers.filter((c) => c.project === project);
  }
  async logTail(name: string) {
    return `log of ${name}\nlast line`;
  }
  async runHealthcheck(name: string) {
    this.healthchecks++;
    this.onHealthcheck(name);
  }
}

describe('composeServices', () => {
  it('reads services, images and healthchecks; later files override; profiles and replicas 0 are left out', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-verify-'));
    const a = path.join(dir, 'compose.yaml');
    const b = path.join(dir, 'override.yaml');
    fs.writeFileSync(a, 'services:\n  app:\n    image: localhost/app:1\n    healthcheck:\n      test: ["CMD", "true"]\n  db:\n    image: localhost/db:1\n  debug:\n    image: x\n    profiles: [debug]\n  off:\n    image: y\n    deploy:\n      replicas: 0\n');
    fs.writeFileSync(b, 'services:\n  app:\n    image: localhost/app:2\n  db:\n    healthcheck:\n      disable: true\n');
    assert.deepEqual(composeServices([a, b]), [
      { name: 'app', image: 'localhost/app:2', healthcheck: true },
      { name: 'db', image: 'localhost/db:1', healthcheck: false },
    ]);
    assert.throws(() => composeServices([path.join(dir, 'nope.yaml')]), /cannot read compose file/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('verifyStack', () => {
  const services = [
    { name: 'app', image: 'localhost/app:1', healthcheck: false },
    { name: 'db', image: 'localhost/db:1', healthcheck: false },
  ];

  it('no problems when every service runs', async () => {
    const engine = new MemoryEngine([container({ name: 'web_app_1', service: 'app' }), container({ name: 'web_db_1', service: 'db' })]);
    assert.deepEqual(await verifyStack(engine, 'web', services), []);
  });

  it('names a missing container (with the image from the compose file) and an exited one with its exit code and log', async () => {
    const engine = new MemoryEngine([container({ name: 'web_db_1', service: 'db', state: 'exited', exitCode: 3 }), container({ name: 'other_app_1', service: 'app', project: 'other' })]);
    const problems = await verifyStack(engine, 'web', services);
    assert.equal(problems.length, 2);
    assert.equal(describeProblem(problems[0]!), 'service app (image localhost/app:1, state missing): no container: podman-compose could not create it (is the image localhost/app:1 there? "podman images")');
    assert.equal(describeProblem(problems[1]!), 'web_db_1 (service db, image localhost/x:1, state exited): exited with code 3\n  last log lines:\n    log of web_db_1\n    last line');
  });

  it('waits for a starting health check, driving it, until healthy', async () => {
    const engine = new MemoryEngine([container({ name: 'web_app_1', service: 'app', health: 'starting' })], () => {
      if (engine.healthchecks >= 2) engine.containers[0]!.health = 'healthy';
    });
    const problems = await verifyStack(engine, 'web', [{ name: 'app', image: undefined, healthcheck: true }], { timeoutMs: 60_000, intervalMs: 10 });
    assert.deepEqual(problems, []);
    assert.equal(engine.healthchecks, 2);
  });

  it('a health check still starting at the deadline, or unhealthy, is a problem; one look does not wait', async () => {
    const starting = new MemoryEngine([container({ name: 'web_app_1', service: 'app', health: 'starting' })]);
    const p1 = await verifyStack(starting, 'web', [{ name: 'app', image: undefined, healthcheck: true }], { timeoutMs: 0 });
    assert.match(p1[0]!.reason, /health check still starting/);
    const unhealthy = new MemoryEngine([container({ name: 'web_app_1', service: 'app', health: 'unhealthy' })]);
    const p2 = await verifyStack(unhealthy, 'web', [{ name: 'app', image: undefined, healthcheck: true }], { timeoutMs: 60_000, logLines: 0 });
    assert.equal(p2[0]!.reason, 'running but unhealthy');
    assert.equal(p2[0]!.logTail, undefined);
  });

  it('saves, reads and clears the last failed check', () => {
    const env = { XDG_RUNTIME_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'zoopa-rt-')) };
    assert.equal(lastCheck('web', env), undefined);
    const problem = { service: 'app', container: undefined, state: 'missing', exitCode: undefined, image: 'x', health: '', reason: 'no container', logTail: undefined };
    saveCheck('web', [problem], env);
    const r = lastCheck('web', env);
    assert.equal(r?.problems[0]?.reason, 'no container');
    assert.equal(fs.statSync(path.join(env.XDG_RUNTIME_DIR, 'zoopa', 'check-stack', 'web.json')).mode & 0o777, 0o600);
    clearCheck('web', env);
    assert.equal(lastCheck('web', env), undefined);
    fs.rmSync(env.XDG_RUNTIME_DIR, { recursive: true, force: true });
  });
});
