import * as fs from 'fs';
import * as path from 'path';
import { buildDeb } from '../../../test/harness/debs';
import { mkTemp, rmTemp } from '../../../test/harness/cli';
import { initChannel, loadChannel } from './channel';
import { channelStatus } from './status';
import { METRICS, metricsFile, renderMetrics } from './metrics';
import { generateSigningKey } from '../sign/keys';
import { main } from '../cli/apt-repo';
import type { ChannelConfig } from '../core/types';

// No types ship with the parser: the shape of what it returns, as its README gives it.
interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
const parsePrometheus = require('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

let root: string;
let ch: ChannelConfig;
let metricsDir: string;

beforeAll(async () => {
  root = mkTemp('metrics-test');
  metricsDir = path.join(root, 'textfile');
  fs.mkdirSync(metricsDir);
  const init = await initChannel({ root, channel: 'preprod', codenames: ['bookworm'], architectures: ['amd64', 'arm64'] });
  fs.appendFileSync(path.join(init.configDir, 'repo.yaml'), `metricsDir: ${metricsDir}\nvalidUntilDays: 20\n`);
  ch = await loadChannel({ root, channel: 'preprod' });
  const key = await generateSigningKey({ name: 'T', email: 't@example.org', type: 'ed25519' });
  fs.writeFileSync(ch.signingKeyFile, key.privateArmored, { mode: 0o600 });
  fs.writeFileSync(path.join(ch.webRoot, `${ch.keyName}-archive-keyring.asc`), key.publicArmored);
});
afterAll(() => rmTemp(root));
// main() sets process.exitCode like the CLI does; the test process must not exit with it.
afterEach(() => {
  process.exitCode = undefined;
});

/** name → [labels, value] of every sample of a parsed text. */
function samples(text: string): Map<string, { labels: Record<string, string>; value: number }[]> {
  const out = new Map<string, { labels: Record<string, string>; value: number }[]>();
  for (const f of parsePrometheus(text)) {
    expect(f.type).toBe('GAUGE');
    expect(f.help).toBe(METRICS[f.name as keyof typeof METRICS]);
    out.set(
      f.name,
      f.metrics.map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) })),
    );
  }
  return out;
}

const value = (m: ReturnType<typeof samples>, name: string, labels: Record<string, string> = {}) =>
  m.get(name)?.find((s) => Object.entries({ channel: 'preprod', ...labels }).every(([k, v]) => s.labels[k] === v))?.value;

test('the metrics parse as Prometheus text and carry what status says; a writing command rewrites them', async () => {
  const ci = path.join(ch.incomingDir, 'ci');
  buildDeb(ci, { name: 'app', version: '1.0' });
  buildDeb(ci, { name: 'tool', version: '2', architecture: 'amd64' });
  fs.writeFileSync(path.join(ci, 'junk_1_all.deb'), 'not a deb');
  // Through the CLI, as the ingest timer runs it: the writing command leaves the file behind (exit 1: an upload was rejected).
  expect(await main(['node', 'apt-repo', '--root', root, '--json', 'ingest', '--settle-ms', '0'])).toBe(1);
  const file = metricsFile(metricsDir, 'preprod');
  const first = samples(fs.readFileSync(file, 'utf8'));
  const s = await channelStatus(root, ch);
  expect(value(first, 'apt_repo_packages', { codename: 'bookworm', architecture: 'amd64' })).toBe(2);
  expect(value(first, 'apt_repo_versions', { codename: 'bookworm', architecture: 'arm64' })).toBe(1);
  expect(value(first, 'apt_repo_last_ingest_accepted')).toBe(2);
  expect(value(first, 'apt_repo_last_ingest_rejected')).toBe(1);
  expect(value(first, 'apt_repo_rejected_uploads')).toBe(1);
  expect(value(first, 'apt_repo_last_publish_timestamp_seconds')).toBe(Math.floor(Date.parse(s.current!.date) / 1000));
  expect(value(first, 'apt_repo_release_valid_until_timestamp_seconds')).toBe(Math.floor(Date.parse(s.validUntil!.date) / 1000));
  expect(value(first, 'apt_repo_disk_bytes', { part: 'pool' })).toBe(s.disk!.pool);
  expect(value(first, 'apt_repo_lock_held')).toBe(0);
  expect(value(first, 'apt_repo_status_problems')).toBe(0);
  // No backup yet, a key that never expires: left out, not invented.
  expect(first.has('apt_repo_last_backup_timestamp_seconds')).toBe(false);
  expect(first.has('apt_repo_signing_key_expiry_timestamp_seconds')).toBe(false);

  buildDeb(ci, { name: 'app', version: '1.1' });
  expect(await main(['node', 'apt-repo', '--root', root, '--json', 'ingest', '--settle-ms', '0'])).toBe(0);
  const second = samples(fs.readFileSync(file, 'utf8'));
  expect(value(second, 'apt_repo_versions', { codename: 'bookworm', architecture: 'amd64' })).toBe(3);
  expect(value(second, 'apt_repo_last_ingest_rejected')).toBe(0);
  expect(value(second, 'apt_repo_last_ingest_timestamp_seconds')).toBeGreaterThanOrEqual(
    value(first, 'apt_repo_last_ingest_timestamp_seconds')!,
  );
  // Only the .prom file: the temp name is gone.
  expect(fs.readdirSync(metricsDir)).toEqual(['apt_repo_preprod.prom']);
});

test('renderMetrics leaves out what the status does not know and escapes label values', async () => {
  const text = await renderMetrics({
    channel: 'prod',
    webRoot: '/srv/apt/prod',
    diskBytes: 0,
    generationsKept: 0,
    channels: {},
    counts: { 'book"worm\\': { amd64: { packages: 1, versions: 2 } } },
    rejectedDir: '/x',
    rejectedCount: 0,
    rejected: [],
    problems: ['a'],
  });
  const m = samples(text);
  expect(m.has('apt_repo_last_publish_timestamp_seconds')).toBe(false);
  expect(m.has('apt_repo_pending_packages')).toBe(false);
  expect(m.get('apt_repo_versions')).toEqual([{ labels: { channel: 'prod', codename: 'book"worm\\', architecture: 'amd64' }, value: 2 }]);
  expect(m.get('apt_repo_status_problems')?.[0].value).toBe(1);
});
