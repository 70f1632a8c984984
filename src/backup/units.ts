/**
 * Units of the backup feature:
 *  - `<unit>.service` (default duplicati-backup.service): Type=oneshot, runs
 *    `zoopa backup <stacks...>` with the stacks from `backup.stacks`; Wants= and
 *    After= the Duplicati stack's unit when a Duplicati job is among them.
 *    KillMode=mixed: a stop sends SIGTERM to zoopa only, which puts the stack
 *    back before exiting; TimeoutStopSec leaves it the time to.
 *  - `<unit>.timer`: OnCalendar= from config (default *-*-* 03:30:00), Persistent=true.
 * Rendered only when `backup.stacks` lists stacks.
 *  - `<unit>-check.service` and `.timer`, when `backup.check_calendar` is set: run
 *    `zoopa backup check` (restic check, each stack's latest snapshot within max_age)
 *    on that calendar.
 */
import { ConfigError } from '../errors.js';
import { backupServiceUnit, backupTimerUnit } from '../names.js';
import { stackUnitName } from '../names.js';
import { exec, generatedHeader, UnitFile } from '../unitfile/model.js';
import type { RenderContext, RenderedUnit } from '../unitfile/types.js';
import { DEFAULT_DUPLICATI_STACK } from './config.js';
import { backupConfig, configuredStacks } from './plan.js';

export function renderBackupUnits(ctx: RenderContext): RenderedUnit[] {
  const cfg = backupConfig(ctx.project);
  return [...(cfg.stacks.length ? renderRunUnits(ctx) : []), ...renderCheckUnits(ctx)];
}

function renderCheckUnits(ctx: RenderContext): RenderedUnit[] {
  const project = ctx.project;
  const cfg = backupConfig(project);
  if (!cfg.check_calendar) return [];
  const name = `${cfg.unit}-check`;
  const service = new UnitFile(generatedHeader('zoopa.yaml backup.check_calendar'));
  service.section('Unit').add('Description', 'Zoopa backup check (restic check, latest snapshots within max_age)');
  service
    .section('Service')
    .add('Type', 'oneshot')
    .add('ExecStart', exec([ctx.tools.node, ctx.tools.zoopa, '--root', project.root, 'backup', 'check']))
    .add('TimeoutStartSec', 'infinity');
  const timer = new UnitFile(generatedHeader('zoopa.yaml backup.check_calendar'));
  timer.section('Unit').add('Description', 'Zoopa backup check timer');
  timer.section('Timer').add('OnCalendar', cfg.check_calendar).add('Persistent', true).add('Unit', `${name}.service`);
  timer.section('Install').add('WantedBy', 'timers.target');
  return [
    { name: `${name}.service`, content: service.toString(), kind: 'backup' },
    { name: `${name}.timer`, content: timer.toString(), kind: 'backup' },
  ];
}

function renderRunUnits(ctx: RenderContext): RenderedUnit[] {
  const project = ctx.project;
  const cfg = backupConfig(project);
  const stacks = configuredStacks(project);
  stacks.forEach((s) => {
    if (!s.config.backup?.jobs.length) {
      throw new ConfigError(`backup.stacks: stack ${s.name} has no backup jobs`, {
        file: project.configFile,
        key: `stacks.${s.name}.backup.jobs`,
        hint: `add jobs under stacks.${s.name}.backup, or remove ${s.name} from backup.stacks`,
      });
    }
  });
  const names = [...new Set(stacks.map((s) => s.name))];
  const usesDuplicati = stacks.some((s) => s.config.backup!.jobs.some((j) => j.engine === 'duplicati'));
  let duplicatiUnit: string | undefined;
  if (usesDuplicati) {
    const dstack = cfg.duplicati.stack ?? DEFAULT_DUPLICATI_STACK;
    const found = project.stacks.find((s) => s.name === dstack);
    if (found) duplicatiUnit = stackUnitName(found.name);
    else if (cfg.duplicati.stack) {
      throw new ConfigError(`backup.duplicati.stack: no stack ${JSON.stringify(dstack)}`, {
        file: project.configFile,
        key: 'backup.duplicati.stack',
        value: dstack,
        hint: `stacks in ${project.root}: ${project.stacks.map((s) => s.name).join(', ')}`,
      });
    }
  }
  const maxStart = Math.max(60, ...stacks.map((s) => s.config.backup?.start_timeout ?? s.config.start_timeout));

  const service = new UnitFile(generatedHeader('zoopa.yaml backup'));
  const unit = service.section('Unit');
  unit.add('Description', `Zoopa backup of ${names.join(', ')}`);
  if (duplicatiUnit) unit.add('Wants', duplicatiUnit).add('After', duplicatiUnit);
  service
    .section('Service')
    .add('Type', 'oneshot')
    .add('ExecStart', exec([ctx.tools.node, ctx.tools.zoopa, '--root', project.root, 'backup', ...names]))
    .add('TimeoutStartSec', 'infinity')
    .add('KillMode', 'mixed')
    .add('TimeoutStopSec', Math.ceil(maxStart + 120));

  const timer = new UnitFile(generatedHeader('zoopa.yaml backup'));
  timer.section('Unit').add('Description', `Zoopa backup timer (${names.join(', ')})`);
  const t = timer.section('Timer').add('OnCalendar', cfg.on_calendar).add('Persistent', true);
  if (cfg.randomized_delay !== undefined) t.add('RandomizedDelaySec', Math.ceil(cfg.randomized_delay));
  t.add('Unit', backupServiceUnit(cfg.unit));
  timer.section('Install').add('WantedBy', 'timers.target');

  return [
    { name: backupServiceUnit(cfg.unit), content: service.toString(), kind: 'backup' },
    { name: backupTimerUnit(cfg.unit), content: timer.toString(), kind: 'backup' },
  ];
}
