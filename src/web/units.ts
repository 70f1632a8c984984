/**
 * zoopa-web.socket and zoopa-web.service: the status page, /metrics and /api/status,
 * socket-activated like the stacks. Rendered only when zoopa.yaml has a `web:` section.
 *
 *  - zoopa-web.socket   ListenStream=<web.listen> (host:port or a unix socket path), Accept=no.
 *  - zoopa-web.service  ExecStart=<node> <zoopa> web --idle-exit <s>: it takes the socket from
 *                       systemd and exits after an idle minute; the next request starts it again.
 */
import { exec, generatedHeader, UnitFile } from '../unitfile/model.js';
import type { RenderContext, RenderedUnit } from '../unitfile/types.js';
import { parseWebListen } from './config.js';

export const WEB_SOCKET = 'zoopa-web.socket';
export const WEB_SERVICE = 'zoopa-web.service';

export function renderWebUnits(ctx: RenderContext): RenderedUnit[] {
  const web = ctx.project.config.web;
  if (!web) return [];
  const listen = parseWebListen(web.listen);
  if (typeof listen === 'string') throw new Error(`web.listen was validated: ${listen}`);
  const source = 'zoopa.yaml web';
  const sock = new UnitFile(generatedHeader(source));
  sock.section('Unit').add('Description', 'Zoopa status page and metrics (socket)');
  const s = sock.section('Socket').add('ListenStream', listen.text).add('Accept', false);
  if (listen.kind === 'unix') s.add('SocketMode', '0660').add('RemoveOnStop', true);
  sock.section('Install').add('WantedBy', 'sockets.target');

  const svc = new UnitFile(generatedHeader(source));
  svc.section('Unit').add('Description', 'Zoopa status page and metrics').add('Requires', WEB_SOCKET).add('After', WEB_SOCKET);
  svc
    .section('Service')
    .add('ExecStart', exec([ctx.tools.node, ctx.tools.zoopa, '--root', ctx.project.root, 'web', '--idle-exit', String(web.idle_exit)]))
    // Read-only: it reads state files and asks systemctl/podman; it never writes.
    .add('NoNewPrivileges', true);
  return [
    { name: WEB_SOCKET, content: sock.toString(), kind: 'web' },
    { name: WEB_SERVICE, content: svc.toString(), kind: 'web' },
  ];
}
