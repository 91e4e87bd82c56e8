/**
 * The mirrors' configuration: `<root>/etc/epiconcept/apt_repo/mirrors.yaml`, validated on read (zod;
 * a wrong value fails with the key's path and what was expected).
 *
 * ```yaml
 * mirrorRoot: /srv/mirrors                   # default <root>/srv/mirrors
 * mirrors:
 *   alpine:                                  # the mirror's name: <mirrorRoot>/alpine/<version>/
 *     url: https://dl-cdn.alpinelinux.org/alpine/
 *     paths: [v3.15/main/x86_64, v3.15/community/x86_64, v3.15/releases/x86_64]
 *     versionFrom: v3.15/releases/x86_64/latest-releases.yaml   # or version: 3.15.5
 *     keys: [/etc/epiconcept/apt_repo/mirror-keys/alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub]
 *     postSync: /usr/local/sbin/redeploy-kiosks   # optional, run after a successful flip
 *     keep: 5                                  # snapshots gc keeps by default
 * ```
 * A path is a folder of the upstream: one holding `APKINDEX.tar.gz` (a package repository) or
 * `latest-releases.yaml` (release images); the mirror takes exactly what those list.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { z as zod } from 'zod';
import { ConfigError } from '../errors';

/** One mirror of mirrors.yaml, validated. */
export interface MirrorConfig {
  name: string;
  /** Base URL of the upstream, http(s), ending with '/'. */
  url: string;
  /** Upstream folders to take, relative to `url`, '/'-separated, no '..'. */
  paths: string[];
  /** A fixed version label, or the upstream file (under `url`) naming it: exactly one is set. */
  version?: string;
  versionFrom?: string;
  /** Trusted APKINDEX signing keys: absolute paths of PEM public keys, keyed by file name. */
  keys: Map<string, string>;
  /** Command (run by /bin/sh -c) after a successful flip; undefined: none. */
  postSync?: string;
  /** Snapshots `gc` keeps when not told (>= 1). */
  keep: number;
  /** <mirrorRoot>/<name>. */
  dir: string;
  /** <root>/var/lib/apt-repo/mirror-<name>: its lock. */
  stateDir: string;
  lockTimeoutMs: number;
}

/** The default mirrorRoot under `root`: `<root>/srv/mirrors`. */
export function defaultMirrorRoot(root: string): string {
  return path.posix.join(root, 'srv/mirrors');
}

/**
 * Where mirror `name` lives: `dir` `<mirrorRoot>/<name>` (its snapshots and `latest-stable`) and
 * `stateDir` `<root>/var/lib/apt-repo/mirror-<name>` (its lock and pending flip). `mirrorRoot`
 * undefined: defaultMirrorRoot. Pure; the Pulumi program creates these folders (infra/mirrors.ts).
 */
export function mirrorPaths(root: string, mirrorRoot: string | undefined, name: string): { dir: string; stateDir: string } {
  return {
    dir: path.posix.join(mirrorRoot ?? defaultMirrorRoot(root), name),
    stateDir: path.posix.join(root, 'var/lib/apt-repo', `mirror-${name}`),
  };
}

/** Where mirrors.yaml is under `root`. */
export function mirrorsFile(root: string): string {
  return path.join(root, 'etc/epiconcept/apt_repo/mirrors.yaml');
}

/** A mirror name: a folder name, and a word of its systemd unit names (apt-repo-mirror-<name>). */
export const MIRROR_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A version label: a path segment of letters, digits and . _ + - (3.15.5, 3.15.5+20261129T093000Z). */
export const VERSION_RE = /^[0-9A-Za-z][0-9A-Za-z._+-]*$/;

function relPath(z: typeof zod) {
  return z
    .string()
    .refine(
      (p) =>
        p.length > 0 &&
        !p.startsWith('/') &&
        p.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && /^[A-Za-z0-9._+-]+$/.test(s)),
      {
        message: "must be a relative folder path of letters, digits and . _ + - (no '..')",
      },
    );
}

/**
 * The schema of one mirror's settings (zod, passed in: the indexer loads it lazily). `keys` is the
 * rule for one key entry: an absolute server path here, a file on the operator's machine in the
 * stack config (lambda-free-tools/src/settings/stackConfig.ts `mirrors`), which renders this file.
 */
export function mirrorEntrySchema(z: typeof zod, key: zod.ZodType<string>) {
  return z
    .strictObject({
      url: z.string().refine((u) => {
        try {
          const x = new URL(u);
          return (x.protocol === 'https:' || x.protocol === 'http:') && u.endsWith('/') && !x.username && !x.password;
        } catch {
          return false;
        }
      }, "must be an http(s) URL ending with '/', without credentials"),
      paths: z.array(relPath(z)).min(1),
      version: z
        .string({ error: "must be a quoted string such as '3.15.5' (YAML reads 3.10 unquoted as the number 3.1)" })
        .regex(VERSION_RE, 'must be a version label such as 3.15.5')
        .optional(),
      versionFrom: relPath(z).optional(),
      keys: z.array(key).optional(),
      postSync: z.string().min(1).optional(),
      keep: z.number().int().min(1).optional(),
    })
    .refine((m) => (m.version === undefined) !== (m.versionFrom === undefined), 'give version or versionFrom (exactly one)');
}

function schema(z: typeof zod) {
  const mirror = mirrorEntrySchema(
    z,
    z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path'),
  );
  return z.strictObject({
    mirrorRoot: z
      .string()
      .refine((p) => path.isAbsolute(p), 'must be an absolute path')
      .optional(),
    lockTimeoutSeconds: z.number().min(0).optional(),
    mirrors: z.record(z.string().regex(MIRROR_NAME_RE, 'must be a mirror name [a-z0-9][a-z0-9-]* (at most 63 characters)'), mirror),
  });
}

/**
 * Reads mirror `name` of `<root>`'s mirrors.yaml, its key files included. Throws ConfigError naming
 * the file and key for a missing file, bad YAML, a wrong value, an unknown mirror (the known ones
 * listed) or a key file of that mirror that cannot be read.
 */
export function loadMirror(root: string, name: string): MirrorConfig {
  const parsed = parseMirrors(root);
  if (!(name in parsed.y.mirrors))
    throw new ConfigError(parsed.file, `no mirror '${name}' (configured: ${Object.keys(parsed.y.mirrors).sort().join(', ') || 'none'})`);
  return mirrorOf(root, parsed, name);
}

/** Every mirror of `<root>`'s mirrors.yaml (see loadMirror), in name order. */
export function loadMirrors(root: string): MirrorConfig[] {
  const parsed = parseMirrors(root);
  return Object.keys(parsed.y.mirrors)
    .sort()
    .map((name) => mirrorOf(root, parsed, name));
}

type Parsed = { file: string; y: zod.infer<ReturnType<typeof schema>> };

function parseMirrors(root: string): Parsed {
  const file = mirrorsFile(root);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const { parse } = require('yaml') as typeof import('yaml');
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new ConfigError(file, `is not YAML: ${(e as Error).message}`);
  }
  const z = (require('zod') as { z: typeof zod }).z;
  const r = schema(z).safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ConfigError(`${file}:${issue.path.join('.')}`, issue.message);
  }
  return { file, y: r.data };
}

function mirrorOf(root: string, { file, y }: Parsed, name: string): MirrorConfig {
  const m = y.mirrors[name];
  const keys = new Map<string, string>();
  for (const k of m.keys ?? []) {
    try {
      keys.set(path.basename(k), fs.readFileSync(k, 'utf8'));
    } catch (e) {
      throw new ConfigError(`${file}:mirrors.${name}.keys`, `${k} cannot be read (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
  }
  return {
    name,
    url: m.url,
    paths: m.paths,
    ...(m.version ? { version: m.version } : {}),
    ...(m.versionFrom ? { versionFrom: m.versionFrom } : {}),
    keys,
    ...(m.postSync ? { postSync: m.postSync } : {}),
    keep: m.keep ?? 5,
    ...mirrorPaths(root, y.mirrorRoot, name),
    lockTimeoutMs: Math.round((y.lockTimeoutSeconds ?? 120) * 1000),
  };
}
