/**
 * Test helpers that build the apt-repo / apt-ops bundles with esbuild (as `npm run build` does) and
 * run them as separate processes, the way operators and the Pulumi program run them.
 */
import { build } from 'esbuild';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const projectRoot = path.resolve(__dirname, '..', '..');
const built = new Map<string, Promise<string>>();

/**
 * Bundles `lambda-free-tools/src/cli/apt-repo.ts` (or ops/apt-ops.ts) into a temp `.cjs` file,
 * once per test process, and resolves to its absolute path. Throws esbuild's error on a build failure.
 */
export function bundle(which: 'apt-repo' | 'apt-ops' = 'apt-repo'): Promise<string> {
  let p = built.get(which);
  if (!p) {
    p = (async () => {
      const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `${which}-bundle-`));
      const outfile = path.join(outdir, `${which}.cjs`);
      const entry = which === 'apt-repo' ? 'lambda-free-tools/src/cli/apt-repo.ts' : 'lambda-free-tools/src/ops/apt-ops.ts';
      await build({
        entryPoints: [path.join(projectRoot, entry)],
        outfile,
        bundle: true,
        platform: 'node',
        target: 'node18',
        format: 'cjs',
        logLevel: 'silent',
        external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
        // Same as scripts/build.mjs: openpgp's ES module needs import.meta.url inside a CommonJS bundle.
        define: { 'import.meta.url': '__import_meta_url' },
        banner: { js: 'var __import_meta_url = require("url").pathToFileURL(__filename).href;' },
      });
      process.once('exit', () => fs.rmSync(outdir, { recursive: true, force: true }));
      return outfile;
    })();
    built.set(which, p);
  }
  return p;
}

/** Result of one CLI run: exit code (null when killed by a signal), captured output. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the bundled CLI with `args` (e.g. ['--root', dir, 'publish']) and resolves when it exits.
 * `env` is merged over process.env; `input` is written to stdin. Never rejects on a non-zero exit.
 */
export async function runCli(
  args: string[],
  opts: { which?: 'apt-repo' | 'apt-ops'; env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<RunResult> {
  const file = await bundle(opts.which ?? 'apt-repo');
  return runProcess(process.execPath, [file, ...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, input: opts.input ?? '' });
}

/**
 * Runs `cmd args` and resolves with its exit code (null when a signal killed it), signal and
 * captured output; `input` (if given) is written to stdin, else stdin is closed. Rejects only when
 * the program cannot be started.
 */
export function runProcess(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/**
 * Returns `r` when the command exited 0; otherwise throws an Error naming `what`, the exit code
 * and both outputs (a test's set-up step that must succeed, reported readably when it does not).
 */
export function ok(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** Creates a temp directory whose name starts with `prefix`; remove it with `rmTemp`. */
export function mkTemp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
}

/** Removes a directory tree made by mkTemp (ignores a missing one). */
export function rmTemp(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
