/**
 * The `stacks.<name>.ondemand` and top-level `ondemand` sections of zoopa.yaml.
 *
 *   ondemand:                    # top level, optional: applies to every on-demand socket and proxy
 *     socket_mode: "0666"        # SocketMode= of the sockets nginx connects to (default 0666)
 *     directory_mode: "0711"     # mode of %t/ondemand (default 0711)
 *     wait: auto                 # the defaults of every on-demand stack's proxy, also a stack
 *     page_after: 1s             #   of the original setup with only a hand-written env file:
 *     page_template: /srv/wait.html   # Environment= lines of zoopa-ondemand@.service
 *   stacks:
 *     web:
 *       ondemand:
 *         upstream: 127.0.0.1:8080   # required: host:port, [v6]:port, /abs/unix.sock, or a bare port (→ 127.0.0.1:port)
 *         idle: 10m                  # ZOOPA_IDLE_TIMEOUT (default 600 s; 0: never stop)
 *         idle_mode: traffic         # or "connections" (the original's rule)
 *         ready: http:/health        # ZOOPA_READY: "tcp" (default) or "http:/path"
 *         start_timeout: 2m          # ZOOPA_START_TIMEOUT (default 120 s)
 *         stop_check: [/usr/local/bin/busy, web]   # ZOOPA_STOP_CHECK: non-zero exit postpones the idle stop
 *         wait: auto                 # ZOOPA_WAIT: auto (browsers get a waiting page) | hold | page
 *         page_after: 1s             # ZOOPA_PAGE_AFTER: a waiting browser gets the page after this long
 *         maintenance_template: /srv/maint.html   # ZOOPA_MAINTENANCE_TEMPLATE: your own maintenance page
 *                                    # ({{stack}}, {{reason}}, {{remaining}}, {{ready_path}}, {{retry_after}})
 *         page_template: /srv/wait.html   # ZOOPA_PAGE_TEMPLATE: your own waiting page (absolute path;
 *                                         # "builtin": the built-in page even with a global template)
 *         listeners:                 # extra sockets %t/ondemand/<stack>.<name>.sock waking the same stack
 *           - { name: api, upstream: 127.0.0.1:3003 }
 *
 * Precedence of wait, page_after and page_template: the top-level values are
 * Environment= lines of the proxy's template unit zoopa-ondemand@.service, and
 * systemd reads EnvironmentFile= after Environment= ("settings from these files
 * override settings made with Environment=", systemd.exec(5)). So a stack's own
 * value wins, whether it comes from stacks.<name>.ondemand (its generated env file)
 * or from a hand-written ~/.config/zoopa-ondemand/<stack>.env (never touched); an
 * empty value there (ZOOPA_PAGE_TEMPLATE=, or page_template: builtin) means the
 * built-in page. The top-level values also apply to on-demand llama services,
 * which use the same template unit.
 *
 * Every value is checked here, so `zoopa install` and `zoopa ondemand enable`
 * reject bad input (exit 2) before anything is written, and the proxy never
 * starts with a setting it cannot use. Page templates are also read once at
 * install time (units.ts checkPageTemplates), as the proxy reads them when it starts.
 */
import { z } from 'zod';
import { argvCommand, duration } from '../config/types.js';
import { InputError } from '../errors.js';
import { listenerEnvName, NAME_HINT, NAME_RE } from '../names.js';
import { parseUpstream, UPSTREAM_HINT } from '../proxy/upstream.js';

/** `tcp` or `http:/path`. */
export const READY_RE = /^(tcp|http:\/\S*)$/;
export const readyCheck = z.string().regex(READY_RE, 'must be "tcp" or "http:/path"');

/**
 * Upstream text as the proxy reads it from ZOOPA_UPSTREAM. A bare port (8080 or
 * "8080") means 127.0.0.1:8080. Returns the normalised text, or throws the
 * proxy's own InputError (src/proxy/upstream.ts), so both agree on what is valid.
 */
export function normalizeUpstream(value: string | number, key: string): string {
  const text = String(value).trim();
  const t = /^\d{1,5}$/.test(text) ? `127.0.0.1:${text}` : text;
  return parseUpstream(t, key).text;
}

export const upstreamText = z.preprocess((v) => (typeof v === 'number' && Number.isInteger(v) ? String(v) : v), z.string().min(1)).transform((v, ctx) => {
  try {
    return normalizeUpstream(v, 'upstream');
  } catch (e) {
    const why = e instanceof InputError ? e.message.replace(/^.*? is not a valid upstream: /, '') : String(e);
    ctx.addIssue({ code: 'custom', message: `not a valid upstream (${why}); ${UPSTREAM_HINT}, or a bare port` });
    return z.NEVER;
  }
});

const positiveDuration = duration.refine((s) => s > 0, 'must be more than 0 seconds');

/** ZOOPA_WAIT: how held HTTP clients wait for a wake (src/proxy/config.ts WAIT_STYLES). */
export const waitStyle = z.enum(['auto', 'hold', 'page']);
/** ZOOPA_PAGE_AFTER: a held browser gets the waiting page after this long (0: at once). */
export const pageAfter = duration;

/** The largest page template the proxy reads (src/proxy/config.ts readPageTemplate). */
export { PAGE_TEMPLATE_MAX_BYTES } from '../proxy/waitpage.js';
/** Per stack: the built-in page, even when the top-level section names a template. */
export const BUILTIN_PAGE = 'builtin';
export const PAGE_TEMPLATE_HINT =
  'name an HTML file by its absolute path, readable by the stack owner, at most 256 KiB; it may use {{stack}}, {{elapsed}}, {{typical}}, {{ready_path}}, {{retry_after}}';

/**
 * ZOOPA_PAGE_TEMPLATE: an absolute path on one line. The proxy's env reader drops
 * " #..." as a comment, so a path with white space before a "#" would be cut short
 * silently: refused. `builtin` (per stack only) renders an empty value.
 */
function pageTemplatePath(opts: { builtin: boolean }) {
  const hint = opts.builtin ? `${PAGE_TEMPLATE_HINT}; or "${BUILTIN_PAGE}" for the built-in page` : PAGE_TEMPLATE_HINT;
  return z
    .string()
    .refine((p) => (opts.builtin && p === BUILTIN_PAGE) || (p.startsWith('/') && !/[\n\r\0]/.test(p)), {
      message: 'must be an absolute path to an HTML file',
      params: { hint },
    })
    .refine((p) => !/\s#/.test(p), {
      message: 'contains white space followed by "#", which the env reader takes for the start of a comment (the rest would be dropped)',
      params: { hint: 'rename the file or its folder' },
    });
}
export const stackPageTemplate = pageTemplatePath({ builtin: true });
export const globalPageTemplate = pageTemplatePath({ builtin: false });


export const extraListener = z.strictObject({
  /** Socket name (the name rule of src/names.ts; upper-cased, - → _, also an env var suffix): listens on %t/ondemand/<stack>.<name>.sock, fd name <name>. */
  name: z
    .string()
    .regex(NAME_RE, NAME_HINT)
    .max(64, 'at most 64 characters'),
  upstream: upstreamText,
});

/**
 * ZOOPA_STOP_CHECK is split on white space by the proxy: no word may contain any.
 * The proxy's env reader also drops ` #...` as a comment, so a word starting with
 * `#` would be lost silently with everything after it: refused too.
 */
const stopCheck = argvCommand
  .refine((argv) => argv.every((w) => w !== '' && !/[\s"'\\]/.test(w)), {
    message: 'a word of the command contains white space, a quote or a backslash (ZOOPA_STOP_CHECK is split on white space); put the command in a script and name the script',
  })
  .refine((argv) => argv.every((w) => !w.startsWith('#')), {
    message: 'a word of the command starts with "#", which the env file reader takes for a comment (that word and the rest would be dropped); put the command in a script and name the script',
  });

export const stackOndemandSchema = z
  .strictObject({
    upstream: upstreamText,
    /** 0: never stop for idleness (the proxy's rule). */
    idle: duration.optional(),
    idle_mode: z.enum(['traffic', 'connections']).optional(),
    ready: readyCheck.optional(),
    start_timeout: positiveDuration.optional(),
    stop_check: stopCheck.optional(),
    wait: waitStyle.optional(),
    page_after: pageAfter.optional(),
    page_template: stackPageTemplate.optional(),
    maintenance_template: stackPageTemplate.optional(),
    listeners: z.array(extraListener).optional(),
  })
  .superRefine((v, ctx) => {
    const seen = new Map<string, string>();
    (v.listeners ?? []).forEach((l, i) => {
      const env = listenerEnvName(l.name);
      const prev = seen.get(env);
      if (prev !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', i, 'name'],
          message: prev === l.name ? `listener "${l.name}" is named twice` : `listeners "${prev}" and "${l.name}" both map to ${env}`,
        });
      }
      seen.set(env, l.name);
    });
  });
export type StackOndemandConfig = z.output<typeof stackOndemandSchema>;

/** An octal file mode, written "0666" (quoted) or 666; normalised to 4 digits. */
export const octalMode = z
  .union([z.string().regex(/^0?[0-7]{3,4}$/, 'must be an octal mode like "0666" (quote it)'), z.number().int().min(0)])
  .transform((v, ctx) => {
    // YAML 1.2 reads an unquoted 0666 as the number 666: take the digits as written.
    const text = String(v);
    if (!/^0?[0-7]{3,4}$/.test(text)) {
      ctx.addIssue({ code: 'custom', message: 'must be an octal mode like "0666"' });
      return z.NEVER;
    }
    return text.length === 5 ? text.slice(1) : text.padStart(4, '0');
  });

export const globalOndemandSchema = z.strictObject({
  /** SocketMode= of every on-demand socket (default 0666, as the original: nginx runs as another user). */
  socket_mode: octalMode.optional(),
  /**
   * Mode of %t/ondemand, set by zoopa-ondemand-dir.service and DirectoryMode= (default 0711).
   * Never group or other writable: others could plant sockets, freeze records or links there.
   */
  directory_mode: octalMode
    .refine((m) => (parseInt(m, 8) & 0o022) === 0, {
      message: 'must not let group or others write (e.g. 0711, or 0755); others could plant files or links in the folder zoopa writes its runtime files to',
    })
    .optional(),
  /** Defaults of every on-demand proxy (Environment= of zoopa-ondemand@.service); a stack's own value wins. */
  wait: waitStyle.optional(),
  page_after: pageAfter.optional(),
  page_template: globalPageTemplate.optional(),
  maintenance_template: globalPageTemplate.optional(),
});
export type GlobalOndemandConfig = z.output<typeof globalOndemandSchema>;

export const DEFAULT_SOCKET_MODE = '0666';
export const DEFAULT_DIRECTORY_MODE = '0711';
