/**
 * Real Debian packages for the tests: downloaded from the configured archive with `apt-get download`
 * into a cache kept across runs (`<project>/.cache/debs`). (`npm run local` no longer uses them: it
 * builds its own samples, scripts/local/sampleDebs.ts.)
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const projectRoot = path.resolve(__dirname, '..', '..');

let updated = false;

/**
 * Downloads real packages (current version for this machine's architecture, or 'all') with
 * `apt-get download` into `cacheDir` (default `<project>/.cache/debs`, kept across runs), skipping
 * names already there. Runs `apt-get update` once when a download fails, then retries. Returns one
 * path per name, in order (the newest file when several versions are cached). Throws apt-get's error
 * when a package cannot be downloaded.
 */
export function fetchRealDebs(names: string[], cacheDir: string = path.join(projectRoot, '.cache', 'debs')): string[] {
  fs.mkdirSync(cacheDir, { recursive: true });
  const cached = (name: string): string | undefined =>
    fs
      .readdirSync(cacheDir)
      .filter((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'))
      .map((f) => path.join(cacheDir, f))
      .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  const missing = names.filter((n) => !cached(n));
  if (missing.length > 0) {
    const download = (): void => {
      execFileSync('apt-get', ['download', ...missing], { cwd: cacheDir, stdio: ['ignore', 'pipe', 'pipe'] });
    };
    try {
      download();
    } catch (e) {
      if (updated) throw e;
      execFileSync('apt-get', ['update'], { stdio: ['ignore', 'pipe', 'pipe'] });
      updated = true;
      download();
    }
  }
  return names.map((n) => {
    const file = cached(n);
    if (!file) throw new Error(`apt-get download left no ${n}_*.deb in ${cacheDir}`);
    return file;
  });
}
