/**
 * zoopa ondemand enable <stack> [--upstream H:P] [--idle 10m] [--dry-run] [--adopt] [--json]
 * zoopa ondemand disable <stack> [--dry-run] [--json]
 *
 * enable writes the settings (zoopa.yaml, or the user's own hand-written env file:
 * see src/ondemand/enable.ts), installs the units, then
 * `systemctl --user enable --now zoopa-ondemand-dir.service zoopa-ondemand@<stack>.socket`.
 * disable stops and disables the socket(s) and stops the proxy; settings stay.
 */
import type { Command } from 'commander';
import { planDisable, applyDisable, applyEnable, describeIdle, planEnable, type EnablePlan } from '../../ondemand/enable.js';
import { ondemandServiceUnit } from '../../names.js';
import { lineDiff } from '../../unitfile/diff.js';
import { conflicts } from '../../units/install.js';
import { formatPlan, planJson } from '../plan-output.js';
import { output, projectFor, unitManager } from '../context.js';

function settingsLines(plan: EnablePlan): string[] {
  const t = plan.target;
  const what = `upstream ${plan.upstream}, idle ${describeIdle(plan.idleSeconds)}`;
  if (t.kind === 'unchanged') return [`settings unchanged in ${t.file} (${what})`];
  const lines = [`settings → ${t.file}${t.kind === 'yaml' ? ` (stacks.${plan.stack}.ondemand)` : ' (your env file, edited in place)'}: ${what}`];
  const diff = lineDiff(t.before ?? '', t.after);
  for (const d of diff.split('\n')) lines.push(`    ${d}`);
  return lines;
}

function enableJson(plan: EnablePlan, dryRun: boolean, result?: { wroteSettings: boolean; installed: boolean; proxyRunning: boolean }): unknown {
  return {
    stack: plan.stack,
    settings: { file: plan.target.file, kind: plan.target.kind === 'unchanged' ? plan.target.source : plan.target.kind, changed: plan.target.kind !== 'unchanged' },
    upstream: plan.upstream,
    idleSeconds: plan.idleSeconds,
    socket: plan.socketPath,
    install: planJson(plan.install),
    enable: plan.enable,
    dryRun,
    ...(result ?? {}),
  };
}

export function register(program: Command): void {
  const od = program
    .command('ondemand')
    .description('wake a stack on its first connection and stop it when idle (socket activation)');

  od.command('enable <stack>')
    .description('write the on-demand settings, install the units and enable + start the stack\'s socket')
    .option('--upstream <host:port>', 'where the stack listens: host:port, [v6]:port, a port, or an absolute unix socket path')
    .option('--idle <duration>', 'stop the stack after this long without traffic (600, 90s, 10m; 0 never)')
    .option('--dry-run', 'print what would be written and run, change nothing')
    .option('--adopt', 'replace hand-written units or env files of the same name (each kept as <name>.zoopa-orig)')
    .option('--json', 'print the result as JSON')
    .action(async (arg: string, opts: { upstream?: string; idle?: string; dryRun?: boolean; adopt?: boolean; json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const plan = planEnable(project, arg, { upstream: opts.upstream, idle: opts.idle });
      if (opts.dryRun) {
        const c = conflicts(plan.install);
        output(opts.json, enableJson(plan, true), () =>
          [
            ...settingsLines(plan),
            formatPlan(plan.install).trimEnd(),
            ...(c.length ? [`would stop: hand-written files in the way (${c.map((i) => i.conflict).join(', ')}); pass --adopt`] : []),
            `would run: systemctl --user enable --now ${plan.enable.join(' ')}`,
            'dry run: nothing changed',
          ].join('\n') + '\n',
        );
        return;
      }
      const result = await applyEnable(plan, unitManager(), { adopt: opts.adopt ?? false });
      output(opts.json, enableJson(plan, false, result), () =>
        [
          ...settingsLines(plan),
          result.installed ? formatPlan(plan.install).trimEnd() : 'units: up to date',
          `enabled and started ${plan.enable.join(', ')}`,
          `${plan.stack} is on demand: connect to ${plan.socketPath} (nginx: proxy_pass http://unix:${plan.socketPath}:/;)`,
          ...(result.proxyRunning && result.wroteSettings
            ? [`note: the proxy for ${plan.stack} is running with its old settings; they apply from its next start (after the next idle stop, or: systemctl --user restart ${ondemandServiceUnit(plan.stack)})`]
            : []),
        ].join('\n') + '\n',
      );
    });

  od.command('disable <stack>')
    .description('stop and disable the stack\'s socket(s) and stop its proxy (settings are kept)')
    .option('--dry-run', 'print what would be done, change nothing')
    .option('--json', 'print the result as JSON')
    .action(async (arg: string, opts: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const project = projectFor(cmd);
      const units = unitManager();
      const plan = await planDisable(project, arg, units);
      if (opts.dryRun) {
        output(opts.json, { ...plan, dryRun: true }, () =>
          [
            plan.installed ? `would run: systemctl --user disable --now ${plan.socket}` : `${plan.socket} is not installed`,
            `would stop (if running): ${[...plan.extraSockets, plan.service].join(', ')}`,
            ...(plan.frozen ? [`would drop the freeze of ${plan.stack} (a later thaw then starts nothing)`] : []),
            'dry run: nothing changed',
          ].join('\n') + '\n',
        );
        return;
      }
      const r = await applyDisable(plan, units);
      output(opts.json, { ...plan, dryRun: false, stopped: r.stopped }, () =>
        [
          plan.installed ? `disabled and stopped ${plan.socket}` : `${plan.socket} is not installed: nothing to disable`,
          ...(r.stopped.length ? [`stopped ${r.stopped.join(', ')}`] : []),
          ...(plan.frozen ? [`dropped the freeze of ${plan.stack}`] : []),
          `the stack's own unit is left as it is (zoopa down ${plan.stack} stops it); settings are kept`,
        ].join('\n') + '\n',
      );
    });
}
