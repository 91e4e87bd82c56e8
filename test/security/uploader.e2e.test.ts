/**
 * The adversarial uploader suite of issue 8, against the real flow: a sandbox root, a preprod stack
 * (with an upload account and an operator) and a prod stack (upstream preprod) whose plans are
 * applied over a real sshd (which includes the sandbox's drop-in, so the upload account really is
 * chrooted SFTP), nginx serving both channels on 127.0.0.1, good packages uploaded by the upload
 * account over SFTP, ingested as preprod's service user (runuser, as the ingest unit does) and one
 * promoted to prod as prod's service user.
 *
 * Every attack is made as the UPLOAD account (SFTP through node-ssh/ssh2, as apt-ops upload does),
 * or as its Unix account on the host where SFTP cannot express the attack (the rename race), then
 * an ingest runs. Before each attack the protected state is recorded (names, types, link targets,
 * modes, owners and contents): prod's whole web root and state, preprod's web root (pool, served
 * dists, generations, public keys), both config folders (the private keys), the htpasswd folder,
 * the sandbox's /etc/ssh (drop-ins, key files), the indexers, the units, the plan's incoming
 * folders themselves, the operators' sudoers files and /etc/shadow's and /etc/passwd's metadata.
 * Afterwards nothing there changed, except what a legitimate ingest or promote of a good package
 * changes when the attack includes one.
 */
import { createHmac } from 'crypto';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { type SshdServer } from '../harness/sshd';
import { startSandboxServer, type SandboxServer } from '../harness/sandboxServer';
import { findFreePort, httpGet } from '../harness/nginx';
import { createAptClient, type AptClient } from '../harness/apt';
import { bundle } from '../harness/cli';
import { buildDeb, rawControlDeb as rawDeb, rejectedStamp as stamp } from '../harness/debs';
import { AccountSession } from '../harness/sftpAccount';
import { makeAccountKeys, pairSigningKeys, pairStackOptions } from '../harness/channelPair';
import {
  applyStacks,
  clientConfig,
  diffSnapshots,
  planMaterial,
  Replayer,
  sandboxStackConfig,
  shellQuote,
  startSandboxNginx,
  type KeyMaterial,
  type SandboxNginx,
  type SandboxStack,
  type SandboxStackOptions,
  type TreeSnapshot,
} from '../harness/replay';
import { buildPlan } from '../../infra/plan';
import { channelLayout, type ChannelLayout } from '../../infra/layout';
import { renderHtpasswd } from '../../infra/htpasswd';
import { htpasswdSaltsProvider, type HtpasswdSaltsOutputs } from '../../infra/htpasswdSalts';
import type { IngestEntry } from '../../lambda-free-tools/src/repo/ingest';

jest.setTimeout(180_000);

const CREDENTIALS = [
  { username: 'sec-client-1', password: 'Same-password-for-both-0123' },
  { username: 'sec-client-2', password: 'Other-password-4567' },
];
const CODENAMES = ['bookworm', 'bullseye'];
/** The upload account (preprod) and the operator of this suite: real users of this host, keys made by the test. */
const UPLOADER = 'secu-upl';
const OPERATOR = 'secu-ops';
/** renameat2(2)'s syscall number (perl reaches it through syscall()). */
const RENAMEAT2: Partial<Record<string, number>> = { x64: 316, arm64: 276 };

/** The protected state: one tree listing per area (see the module comment). */
type ProtectedState = Record<string, TreeSnapshot>;

/** A change of the protected state that a legitimate ingest or promote of `names` into `area` ('preprodWeb', 'prodWeb') makes. */
function legitimate(area: string, names: string[]): (key: string, line: string) => boolean {
  const pkg = new RegExp(`^\\+ \\./pool/main/[^/]+/(${names.join('|')})(/| )`);
  return (key, line) => {
    if (key !== area) return false;
    // A new generation, the dists link flipped to it, the oldest generation dropped; the web
    // catalogue rebuilt for it (a new build folder, the catalogue link flipped, the old build dropped).
    if (/^[+~-] \.\/(dists|\.generations|catalogue|\.catalogue)(\/| )/.test(line)) return true;
    if (pkg.test(line)) return true;
    // A pool folder that got an entry: only its size may differ (type, mode, owner, group equal).
    const m = /^~ (\.\/pool\S*) (d \S+ \S+ \S+) \S+ => (d \S+ \S+ \S+) \S+$/.exec(line);
    return !!m && m[2] === m[3];
  };
}

describe('an uploader with only upload rights, against the real flow (sshd, nginx, the plan as the stacks apply it)', () => {
  let server: SandboxServer;
  let sshd: SshdServer;
  let root: string;
  let work: string;
  let replayer: Replayer;
  let bundlePath: string;
  let keys: Record<string, KeyMaterial>;
  let salts: Record<string, HtpasswdSaltsOutputs>;
  let options: Record<string, SandboxStackOptions>;
  let stacks: SandboxStack[];
  let nginx: SandboxNginx | undefined;
  const clients: AptClient[] = [];
  const sessions: AccountSession[] = [];
  /** Private key files of the upload account and the operator. */
  const accountKeys: Record<string, string> = {};

  const stack = (channel: string) => stacks.find((s) => s.config.channel === channel)!;
  const layout = (channel: string): ChannelLayout => channelLayout(stack(channel).config);
  /** Chroot-relative path (what the upload account sees) of a path under preprod's incomingDir. */
  const inChroot = (abs: string) => '/' + path.posix.relative(layout('preprod').incomingDir, abs);

  /**
   * A stack as stacks/index.ts builds it: config validated by stacks/config.ts, the htpasswd
   * rendered with the salts the HtpasswdSalts provider drew for this stack (kept per channel, as
   * the state keeps them), the plan.
   */
  const makeStack = async (o: SandboxStackOptions): Promise<SandboxStack> => {
    const { config, secrets } = sandboxStackConfig(o);
    salts[o.channel] ??= (await htpasswdSaltsProvider.create({ credentials: secrets.clientCredentials })).outs;
    const material = {
      ...planMaterial(keys[o.channel], secrets.clientCredentials, bundlePath),
      htpasswd: renderHtpasswd(secrets.clientCredentials, salts[o.channel].salts),
    };
    return { config, secrets, material, steps: buildPlan(config, material) };
  };

  /** Runs `command` on the server as root (the replayer's connection); throws on a non-zero exit. */
  const remote = (command: string) => server.remote(command);
  /** The command line of the indexer a channel's stack deployed, run as its service user (what the units do). */
  const indexerCommand = (channel: string, args: string[]) => server.indexerCommand(stack(channel).config, args);
  const indexer = (channel: string, args: string[]) => remote(indexerCommand(channel, args));
  /** One ingest run of preprod as its service user; the entries of its --json report (exit 0, or 1 when something was rejected). */
  const ingest = async (): Promise<{ code: number | null; entries: IngestEntry[] }> => {
    const r = await replayer.exec(indexerCommand('preprod', ['--json', 'ingest', '--settle-ms', '0']));
    let report: { entries: IngestEntry[] };
    try {
      report = JSON.parse(r.stdout);
    } catch {
      throw new Error(`ingest gave no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
    return { code: r.code, entries: report.entries };
  };
  const entryOf = (entries: IngestEntry[], file: string) => {
    const e = entries.find((x) => x.file === file);
    if (!e) throw new Error(`ingest reported nothing for ${file}: ${JSON.stringify(entries, null, 1)}`);
    return e;
  };

  /** A new SFTP session of the upload account. */
  const uploader = async (opts: { agent?: unknown; sftp?: boolean } = {}) => {
    const s = await AccountSession.open(
      {
        host: sshd.host,
        port: sshd.port,
        username: UPLOADER,
        privateKey: fs.readFileSync(accountKeys[UPLOADER], 'utf8'),
        agent: opts.agent,
      },
      { sftp: opts.sftp },
    );
    sessions.push(s);
    return s;
  };
  /** OpenSSH client options for `user` (its key only, this sshd's host key pinned, no user config). */
  const sshOptions = (user: string) => [
    '-F',
    '/dev/null',
    '-i',
    accountKeys[user],
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${path.join(work, 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=10',
  ];
  const run = (cmd: string, args: string[], timeout = 20_000) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };

  /** The plan's folders in incomingDir (chroot root, rejected/, drop and codename folders), as paths relative to incomingDir. */
  const planIncomingFolders = () => {
    const sources = stack('preprod').config.ingestSources;
    return new Set(['.', './rejected', ...sources.map((s) => `./${s}`), ...sources.flatMap((s) => CODENAMES.map((c) => `./${s}/${c}`))]);
  };
  const protectedState = async (): Promise<ProtectedState> => {
    const pre = layout('preprod');
    const prod = layout('prod');
    const snap = (dir: string, exclude: string[] = []) => replayer.snapshotTree(dir, exclude);
    const incoming = await snap(pre.incomingDir, ['rejected/*', '*/*/*']);
    const folders = planIncomingFolders();
    const host: TreeSnapshot = new Map();
    const files = [pre.sudoersFile, prod.sudoersFile];
    for (const line of (
      await remote(
        `stat -c '%n|%F %a %U %G' ${files.map(shellQuote).join(' ')} /etc/sudoers.d /etc/shadow /etc/passwd /etc/ssh/sshd_config`,
      )
    )
      .split('\n')
      .filter(Boolean)) {
      const [n, meta] = line.split('|');
      host.set(n, meta);
    }
    for (const line of (await remote(`sha256sum ${files.map(shellQuote).join(' ')} /etc/ssh/sshd_config`)).split('\n').filter(Boolean)) {
      const [h, n] = line.split(/\s+\*?/);
      host.set(n, `${host.get(n)} ${h}`);
    }
    return {
      prodWeb: await snap(prod.webRoot),
      prodState: await snap(prod.stateDir),
      preprodWeb: await snap(pre.webRoot),
      preprodConfig: await snap(pre.configDir),
      prodConfig: await snap(prod.configDir),
      htpasswd: await snap(path.posix.dirname(pre.htpasswdFile)),
      nginxSites: await snap(path.posix.join(root, 'etc/nginx'), ['nginx.conf']),
      ssh: await snap(path.posix.join(root, 'etc/ssh')),
      indexers: await snap(path.posix.dirname(pre.indexerDir)),
      systemd: await snap(pre.systemdDir),
      incomingFolders: new Map([...incoming].filter(([p]) => folders.has(p))),
      host,
    };
  };
  /** The changes between two protected states that `allow` does not explain, as 'area: diff line'. */
  const unexplained = (before: ProtectedState, after: ProtectedState, allow: (key: string, line: string) => boolean = () => false) =>
    Object.keys(before).flatMap((k) =>
      diffSnapshots(before[k], after[k])
        .filter((l) => !allow(k, l))
        .map((l) => `${k}: ${l}`),
    );

  beforeAll(async () => {
    server = await startSandboxServer('uploader-sec', 'uploader-sec-work');
    ({ root, work, sshd, replayer } = server);
    fs.writeFileSync(path.join(work, 'known_hosts'), sshd.knownHostsLine + '\n');
    Object.assign(accountKeys, makeAccountKeys(work, [UPLOADER, OPERATOR], 'uploader-sec'));
    bundlePath = await bundle('apt-repo');
    keys = await pairSigningKeys('Security');
    salts = {};
    const pair = {
      root,
      ssh: server.ssh,
      credentials: CREDENTIALS,
      codenames: CODENAMES,
      uploader: UPLOADER,
      operator: OPERATOR,
      accountKeys,
    };
    options = {
      preprod: pairStackOptions(pair, 'preprod', await findFreePort()),
      prod: pairStackOptions(pair, 'prod', await findFreePort()),
    };
    stacks = [await makeStack(options.preprod), await makeStack(options.prod)];
    await applyStacks(replayer, stacks);
    nginx = await startSandboxNginx(
      root,
      stacks.map((s) => s.config.httpPort),
    );

    // Good packages, uploaded by the upload account as apt-ops upload does, ingested, one promoted.
    const s = await uploader();
    for (const name of ['good-a', 'good-b']) {
      const deb = buildDeb(path.join(work, 'debs'), { name, version: '1.0-1', description: `${name}: a good package` });
      await s.upload(`/ci/${path.basename(deb)}`, fs.readFileSync(deb));
    }
    const first = await ingest();
    expect(first.entries.map((e) => [e.file, e.status])).toEqual([
      ['ci/good-a_1.0-1_all.deb', 'accepted'],
      ['ci/good-b_1.0-1_all.deb', 'accepted'],
    ]);
    await indexer('prod', ['promote', 'good-a']);
  }, 240_000);

  afterAll(async () => {
    for (const s of sessions) s.dispose();
    for (const c of clients) c.dispose();
    await server?.stop({ stacks, nginx });
  });

  /**
   * Before issue 8: readDeb never validated Source, and ingest joined it into the pool path, so
   * `Source: ../../../prod/pool/main/e/evil` was accepted and written into PROD's pool (prodWeb
   * changes: the state check fails), and the next promote published it (the Packages and apt checks
   * fail); the other values were either accepted or refused with a message naming no field.
   */
  describe('1. hostile Source, Package, Version, Architecture values', () => {
    const hostile: [string, string, string][] = [
      ['source-into-prod', 'Package: evil\nSource: ../../../prod/pool/main/e/evil\nVersion: 1.0\nArchitecture: all\n', 'Source'],
      ['source-slash', 'Package: evil\nSource: a/b\nVersion: 1.0\nArchitecture: all\n', 'Source'],
      ['source-nul', 'Package: evil\nSource: evil\u0000/../../x\nVersion: 1.0\nArchitecture: all\n', 'Source'],
      ['source-newline', 'Package: evil\nSource: evil\n ../../../prod\nVersion: 1.0\nArchitecture: all\n', 'Source'],
      ['package-slash', 'Package: ../../../../../prod/pool/main/e/evil/x\nVersion: 1.0\nArchitecture: all\n', 'Package'],
      ['package-nul', 'Package: evil\u0000x\nVersion: 1.0\nArchitecture: all\n', 'Package'],
      ['package-newline', 'Package: evil\n ../x\nVersion: 1.0\nArchitecture: all\n', 'Package'],
      ['version-slash', 'Package: evil\nVersion: 1/../../../../../../prod/x\nArchitecture: all\n', 'Version'],
      ['version-nul', 'Package: evil\nVersion: 1.0\u0000\nArchitecture: all\n', 'Version'],
      ['version-newline', 'Package: evil\nVersion: 1.0\n /../../x\nArchitecture: all\n', 'Version'],
      ['arch-dotdot', 'Package: evil\nVersion: 1.0\nArchitecture: all/../../../../../../../prod/x\n', 'Architecture'],
      ['arch-slash', 'Package: evil\nVersion: 1.0\nArchitecture: amd64/evil\n', 'Architecture'],
      ['arch-nul', 'Package: evil\nVersion: 1.0\nArchitecture: amd64\u0000\n', 'Architecture'],
      ['arch-newline', 'Package: evil\nVersion: 1.0\nArchitecture: amd64\n /../x\n', 'Architecture'],
    ];
    /** Where each one is dropped: the drop folders and a codename folder. */
    const folderOf = (i: number) => ['ci', 'ci/bookworm', 'build', 'php/bullseye'][i % 4];

    test('are rejected with a .reason naming the field that the uploader reads over SFTP; prod serves exactly what was promoted; apt never sees evil', async () => {
      const before = await protectedState();
      const s = await uploader();
      for (const [i, [name, control]] of hostile.entries()) await s.upload(`/${folderOf(i)}/${name}.deb`, await rawDeb(control));
      const r = await ingest();
      expect(r.code).toBe(1);
      for (const [i, [name, , field]] of hostile.entries()) {
        const rel = `${folderOf(i)}/${name}.deb`;
        const e = entryOf(r.entries, rel);
        expect([rel, e.status, e.reason]).toEqual([rel, 'rejected', expect.stringMatching(new RegExp(`\\b${field}\\b`))]);
        // The contract's three lines, read by the upload account itself in rejected/.
        const reason = (await s.readFile(`${inChroot(e.movedTo!)}.reason`)).toString('utf8').split('\n');
        expect([rel, reason[0], reason[1], reason[2]]).toEqual([
          rel,
          expect.stringMatching(new RegExp(`^reason: .*\\b${field}\\b`)),
          `file: ${rel}`,
          expect.stringMatching(/^time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
        ]);
      }
      expect(unexplained(before, await protectedState())).toEqual([]);

      // An unrelated promote: prod publishes exactly good-a and good-b, nothing named evil.
      await indexer('prod', ['promote', 'good-b']);
      const prod = clientConfig(stack('prod'));
      for (const codename of CODENAMES) {
        const packages = await httpGet(`${prod.url}dists/${codename}/main/binary-amd64/Packages`, { auth: CREDENTIALS[0] });
        expect(packages.status).toBe(200);
        const stanzas = packages.body
          .split(/\n\n+/)
          .filter((x) => x.trim())
          .map((st) =>
            Object.fromEntries(
              st
                .split('\n')
                .filter((l) => /^\S+:/.test(l))
                .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
            ),
          );
        expect(stanzas.map((x) => `${x.Package} ${x.Version} ${x.Filename}`).sort()).toEqual([
          'good-a 1.0-1 pool/main/g/good-a/good-a_1.0-1_all.deb',
          'good-b 1.0-1 pool/main/g/good-b/good-b_1.0-1_all.deb',
        ]);
      }
      const key = await httpGet(prod.keyUrls.gpg, { auth: CREDENTIALS[0] });
      expect(key.status).toBe(200);
      fs.writeFileSync(path.join(work, 'prod.gpg'), key.bytes);
      const client = createAptClient({
        sources: prod.sources.bookworm.replace(prod.keyringPath, path.join(work, 'prod.gpg')),
        authConf: prod.authConf[CREDENTIALS[0].username],
      });
      clients.push(client);
      const u = await client.update();
      expect([u.code, u.stderr]).toEqual([0, expect.not.stringMatching(/^(E|W):/m)]);
      // madison lists the versions the configured sources offer (dpkg's installed packages aside).
      for (const name of ['good-a', 'good-b'])
        expect((await client.madison(name)).stdout).toMatch(
          new RegExp(`^ *${name} \\| +1\\.0-1 \\| ${prod.url.replace(/\/$/, '')} bookworm/main`, 'm'),
        );
      const evil = await client.madison('evil');
      expect(evil.stdout).toBe('');
      expect((await client.policy('evil')).stdout).not.toMatch(/Candidate: (?!\(none\))/);
      // Prod changed by the promote of good-b only; verify agrees with what it serves.
      expect(unexplained(before, await protectedState(), (k, l) => k === 'prodState' || legitimate('prodWeb', ['good-b'])(k, l))).toEqual(
        [],
      );
      await indexer('prod', ['verify']);
    });
  });

  /**
   * Before issue 8: ingest opened the dropped names with a plain open (following links): the link
   * to prod's pool file was read as a valid good-a, taken, and its source removed instead of being
   * rejected; the links to keys were read through; hard links were taken; rejected/ was writable
   * by the uploaders' group (no sticky bit, no upload account), so the symlinks at the names of
   * the coming seconds were created (the SFTP refusals asserted here fail) and reject() wrote
   * its .reason through them into prod's public key.
   */
  describe('2. symlinks and hard links planted over SFTP', () => {
    test('links in drop and codename folders are rejected with a reason, rejected/ refuses links, hard links are refused or rejected; no victim changes', async () => {
      const pre = layout('preprod');
      const prod = layout('prod');
      const before = await protectedState();
      const s = await uploader();
      const victims: Record<string, string> = {
        pubkey: prod.publicKeyAsc,
        privkey: prod.signingKeyFile,
        'prod-pool': path.posix.join(prod.webRoot, 'pool/main/g/good-a/good-a_1.0-1_all.deb'),
        shadow: '/etc/shadow',
      };
      const folders = ['ci', 'ci/bookworm', 'build', 'php/bullseye'];
      // Link strings mean nothing inside the chroot; the indexer, outside it, would resolve them.
      for (const f of folders) for (const [n, target] of Object.entries(victims)) await s.symlink(target, `/${f}/link-${n}.deb`);
      // A codename folder that is a link into prod's pool.
      await s.symlink(path.posix.dirname(victims['prod-pool']), '/ci/sid');
      // rejected/ is not the uploader's: no link at the names ingest will use in the coming seconds.
      const now = Date.now();
      for (let sec = 0; sec <= 5; sec++) {
        for (const n of [`link-pubkey.deb`, `link-pubkey.deb.reason`]) {
          await expect(s.symlink(victims.pubkey, `/rejected/${stamp(now + sec * 1000)}-${n}`)).rejects.toThrow(/Permission denied/);
        }
      }
      // Hard links: of its own upload (allowed by the kernel: ingest must refuse it), into rejected/ (refused).
      const goodC = buildDeb(path.join(work, 'debs'), { name: 'good-c', version: '1.0-1' });
      await s.upload('/ci/good-c_1.0-1_all.deb', fs.readFileSync(goodC));
      await s.hardlink('/ci/good-c_1.0-1_all.deb', '/ci/bookworm/good-c-again.deb');
      await expect(s.hardlink('/ci/good-c_1.0-1_all.deb', `/rejected/${stamp(now + 1000)}-good-c.deb`)).rejects.toThrow();

      const r = await ingest();
      expect(r.code).toBe(1);
      for (const f of folders) {
        for (const n of Object.keys(victims)) {
          const rel = `${f}/link-${n}.deb`;
          const e = entryOf(r.entries, rel);
          expect([rel, e.status, e.reason]).toEqual([rel, 'rejected', expect.stringMatching(/symbolic link/)]);
          const reason = (await s.readFile(`${inChroot(e.movedTo!)}.reason`)).toString('utf8');
          expect(reason).toMatch(new RegExp(`^reason: .*symbolic link.*\\nfile: ${rel}\\ntime: \\S+\\n$`));
          // Moved as it was: still a link holding the victim's path, nothing written through it.
          expect(await s.isSymlink(inChroot(e.movedTo!))).toBe(true);
          expect(await s.readlink(inChroot(e.movedTo!))).toBe(victims[n]);
        }
      }
      expect(entryOf(r.entries, 'ci/sid')).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/symbolic link/) });
      for (const rel of ['ci/good-c_1.0-1_all.deb', 'ci/bookworm/good-c-again.deb']) {
        const e = entryOf(r.entries, rel);
        expect([rel, e.status, e.reason]).toEqual([rel, 'rejected', expect.stringMatching(/hard link/)]);
        expect((await s.readFile(`${inChroot(e.movedTo!)}.reason`)).toString('utf8')).toMatch(/^reason: .*hard link/);
      }
      // A .reason is the indexer's file: the kernel (protected_hardlinks) refuses the uploader a second name for it.
      const someReason = `${inChroot(entryOf(r.entries, 'ci/link-pubkey.deb').movedTo!)}.reason`;
      await expect(s.hardlink(someReason, '/ci/stolen.deb')).rejects.toThrow();
      await expect(s.readdir('/ci')).resolves.not.toContain('stolen.deb');
      // Nothing of it reached the pool, prod, the keys, /etc/shadow.
      expect(unexplained(before, await protectedState())).toEqual([]);
      expect(await remote(`find ${shellQuote(pre.webRoot)}/pool -name 'good-c*' | wc -l`)).toBe('0\n');
      // doctor, as root, with the uploader's links still planted (ci/sid, link-*.deb in every drop
      // folder): it looks at the stack's own paths only, follows none, and finds both channels as
      // the stack left them, the secret files' contents included.
      for (const ch of ['preprod', 'prod']) {
        const c = stack(ch).config;
        const asRoot = [c.nodePath, layout(ch).indexerPath, '--root', c.root, '--channel', ch, '--json', 'doctor']
          .map(shellQuote)
          .join(' ');
        const report = JSON.parse(await remote(asRoot)) as { differences: unknown[]; notChecked: unknown[] };
        expect([ch, report.differences, report.notChecked]).toEqual([ch, [], []]);
      }
      await s.unlink('/ci/sid');
    });
  });

  /**
   * Before issue 8: ensure_dir checked `[ -L ]`, then ran chown and chmod by name, which follow a
   * link swapped in between: infra/shell.e2e.test.ts's "before" fixture hands a root-owned folder to the
   * attacker within seconds, and the same happens here (a victim's owner/mode changes: the victims
   * assertion fails), with the old drop folders group-writable and not sticky. Checked: with the
   * dirs script's ensure_dir replaced by fa85402's, three runs out of three handed prod's config
   * folder and sshd's key folder to aptrepo-preprod:aptupload (some 3775).
   */
  describe('3. the ensure_dir rename race during the dirs step', () => {
    test('an uploader process swapping its codename folder with links to root folders while dirs, config and signing-key are re-applied changes no victim', async () => {
      const nr = RENAMEAT2[process.arch];
      if (nr === undefined) throw new Error(`renameat2's syscall number on ${process.arch} is not known to this test`);
      const pre = layout('preprod');
      const prod = layout('prod');
      const ci = path.posix.join(pre.incomingDir, 'ci');
      const before = await protectedState();
      // Root-owned folders the attacker wants: prod's config folder (the key), sshd's key files, preprod's indexer.
      const victims = [prod.configDir, pre.authorizedKeysDir, pre.indexerDir];
      const victimMeta = () => remote(`stat -c '%n %a %U %G' ${victims.map(shellQuote).join(' ')}`);
      const victimsBefore = await victimMeta();
      expect(victimsBefore).toMatch(/ 755 root root\n.* 755 root root\n.* 755 root root\n$/);

      // The uploader's own codename folder (a codename the next stack version adds) and its links.
      const s = await uploader();
      await s.mkdir('/ci/trixie');
      await s.symlink(victims[0], '/ci/l_a');
      await s.symlink(victims[1], '/ci/l_b');
      await s.symlink(victims[2], '/ci/l_c');
      const withTrixie = await makeStack({ ...options.preprod, codenames: [...CODENAMES, 'trixie'] });
      const dirs = withTrixie.steps.find((x) => x.name === 'dirs')!;
      expect(dirs.script).toContain(`${ci}/trixie`);
      const again = ['config', 'signing-key'].map((n) => stack('preprod').steps.find((x) => x.name === n)!);
      /** Hands the names back to the uploader (never following them): the attack's precondition for the next apply. */
      const handBack = () =>
        remote(
          `chown -h ${shellQuote(`${UPLOADER}:aptupload`)} ${['trixie', 'l_a', 'l_b', 'l_c'].map((n) => shellQuote(`${ci}/${n}`)).join(' ')}`,
        );

      const seconds = 10;
      const attacker = `use strict; use warnings;
my ($nr, $secs, @links) = @ARGV; my $end = time + $secs; my ($n, $refused) = (0, 0);
while (time < $end) {
  for my $l (@links) {
    my ($x, $y) = ('trixie', "$l");
    # RENAME_EXCHANGE = 2, AT_FDCWD = -100: hold the swapped state a moment, swap back, and hold
    # the real one as long (a check then sees the folder, and the use that follows may get the link).
    if (syscall($nr, -100, $x, -100, $y, 2) == 0) { $n++; for (my $i = 0; $i < 3000; $i++) {} syscall($nr, -100, $x, -100, $y, 2); } else { $refused++; }
    for (my $i = 0; $i < 3000; $i++) {}
  }
}
print "$n $refused\\n";`;
      const attack = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const c = spawn('runuser', ['-u', UPLOADER, '--', 'perl', '-e', attacker, String(nr), String(seconds), 'l_a', 'l_b', 'l_c'], {
          cwd: ci,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d) => (stdout += d));
        c.stderr.on('data', (d) => (stderr += d));
        c.on('error', reject);
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      const started = Date.now();
      const runs: { step: string; code: number | null; stderr: string }[] = [];
      while (Date.now() - started < (seconds - 1) * 1000) {
        for (const st of [dirs, dirs, dirs, ...again]) {
          const r = await replayer.exec(st.script, st.secretStdin);
          runs.push({ step: st.name, code: r.code, stderr: r.stderr });
        }
        await handBack();
      }
      const a = await attack;
      // First what matters: no root-owned victim was handed over.
      expect(await victimMeta()).toBe(victimsBefore);
      expect([a.code, a.stderr]).toEqual([0, '']);
      const [swaps] = a.stdout.trim().split(' ').map(Number);
      expect(swaps).toBeGreaterThan(100);
      expect(runs.filter((x) => x.step === 'dirs').length).toBeGreaterThanOrEqual(6);
      // Each run either did its work or refused, naming the folder it would not follow.
      for (const x of runs) {
        if (x.code === 0) continue;
        expect([x.step, x.stderr]).toEqual([
          'dirs',
          expect.stringMatching(new RegExp(`apt-repo: .*${ci.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(trixie|l_[abc])`)),
        ]);
      }
      expect(runs.filter((x) => x.step !== 'dirs').every((x) => x.code === 0)).toBe(true);
      // The real folder is the uploader's (refused) or the indexer's 3775 (done): never a victim's mode elsewhere.
      const trixie = await remote(`find ${shellQuote(ci)} -mindepth 1 -maxdepth 1 -type d -printf '%f %m %u %g\\n'`);
      expect(trixie).toMatch(new RegExp(`^(trixie|l_[abc]) (2755 ${UPLOADER}|3775 ${UPLOADER}|3775 aptrepo-preprod) aptupload\\n`, 'm'));
      expect(unexplained(before, await protectedState())).toEqual([]);
      await remote(`cd ${shellQuote(pre.incomingDir)} && rm -rf ci/trixie ci/l_a ci/l_b ci/l_c build/trixie php/trixie`);
    }, 120_000);
  });

  /**
   * Before issue 8: the vhost had no disable_symlinks, so nginx (workers in group www-data)
   * followed the link to the htpasswd file (0640 root:www-data) and served it: 200 where this test
   * expects 403/404. Checked: with the disable_symlinks lines deleted from the installed vhosts
   * and nginx reloaded, this test fails (200).
   */
  describe('4. a link in a web root to a file of another owner', () => {
    test('is refused over HTTP with valid credentials, while dists, pool and same-owner links are served', async () => {
      const before = await protectedState();
      const planted: string[] = [];
      try {
        for (const ch of ['preprod', 'prod']) {
          const l = layout(ch);
          const user = stack(ch).config.serviceUser;
          const url = clientConfig(stack(ch)).url;
          const plant = async (target: string, link: string) => {
            await remote(['runuser', '-u', user, '--', 'ln', '-s', target, link].map(shellQuote).join(' '));
            planted.push(link);
          };
          const goodDir = path.posix.join(l.webRoot, 'pool/main/g/good-a');
          const distsDir = path.posix.join(l.webRoot, 'dists/bookworm');
          await plant(l.htpasswdFile, `${goodDir}/htpasswd.deb`);
          await plant(l.signingKeyFile, `${goodDir}/key.deb`);
          await plant(l.htpasswdFile, `${distsDir}/Leak`);
          await plant(l.signingKeyFile, `${distsDir}/Key`);
          // A control: a link to a file of the same owner is served (the refusals are about the owner).
          await plant(path.posix.join(distsDir, 'Release'), `${distsDir}/Same`);
          for (const p of ['pool/main/g/good-a/htpasswd.deb', 'pool/main/g/good-a/key.deb', 'dists/bookworm/Leak', 'dists/bookworm/Key']) {
            const r = await httpGet(url + p, { auth: CREDENTIALS[0] });
            expect([ch, p, r.status]).toEqual([ch, p, expect.any(Number)]);
            expect([403, 404]).toContain(r.status);
            expect(r.body).not.toContain('$6$');
            expect(r.body).not.toContain('PRIVATE KEY');
          }
          for (const p of ['dists/bookworm/InRelease', 'dists/bookworm/Same', 'pool/main/g/good-a/good-a_1.0-1_all.deb']) {
            expect([ch, p, (await httpGet(url + p, { auth: CREDENTIALS[1] })).status]).toEqual([ch, p, 200]);
          }
        }
      } finally {
        if (planted.length) await remote(`rm -f ${planted.map(shellQuote).join(' ')}`);
      }
      expect(unexplained(before, await protectedState())).toEqual([]);
    });
  });

  /**
   * Before issue 8 there was no upload account: uploads went over SFTP as sshUser root, so the
   * "uploader" had a shell (`id` printed uid=0), read /etc/passwd by scp, and could forward ports.
   * Without the account and its Match block, the positive checks fail too: no SFTP session opens
   * for it, and sshd answers no "PTY allocation request failed".
   */
  describe('5. the upload account: no shell, no scp outside the chroot, no forwarding', () => {
    test('a command, a TTY, legacy scp and SFTP-mode scp of /etc/passwd, SFTP .. traversal: refused or confined', async () => {
      const target = `${UPLOADER}@${sshd.host}`;
      const plain = run('ssh', [...sshOptions(UPLOADER), '-p', String(sshd.port), target, 'id; cat /etc/passwd']);
      expect(plain.stdout).not.toMatch(/uid=|root:/);
      const tty = run('ssh', [...sshOptions(UPLOADER), '-p', String(sshd.port), '-tt', target, 'id']);
      expect(tty.stdout).not.toMatch(/uid=/);
      expect(tty.stderr).toMatch(/PTY allocation request failed/);
      for (const [mode, src] of [
        ['-O', '/etc/passwd'],
        ['-O', '../../../../../etc/passwd'],
        ['-s', '/etc/passwd'],
        ['-s', '../../../../../etc/passwd'],
      ]) {
        const dest = path.join(work, `scp${mode}-${path.basename(src)}-${Math.random().toString(36).slice(2)}`);
        const r = run('scp', [...sshOptions(UPLOADER), '-P', String(sshd.port), mode, `${target}:${src}`, dest]);
        expect([mode, src, r.status]).toEqual([mode, src, expect.any(Number)]);
        expect(r.status).not.toBe(0);
        expect(fs.existsSync(dest) ? fs.readFileSync(dest, 'utf8') : '').not.toMatch(/^root:/m);
      }
      const s = await uploader();
      expect(await s.realpath('/..')).toBe('/');
      expect(await s.readdir('/../../..')).toEqual(['build', 'ci', 'php', 'rejected']);
      for (const p of [
        '/../../../../etc/passwd',
        '../../../../../etc/passwd',
        layout('prod').signingKeyFile,
        layout('preprod').htpasswdFile,
      ]) {
        await expect(s.readFile(p)).rejects.toThrow(/No such file/);
      }
      // node-ssh/ssh2 exec and a PTY request: the forced internal-sftp runs no command, the PTY is refused.
      expect((await s.exec('id; cat /etc/passwd')).stdout).not.toMatch(/uid=|root:/);
      await expect(s.exec('id', { pty: true })).rejects.toThrow();
    });

    test('local, remote, stdio and Unix-socket forwarding and agent forwarding: refused', async () => {
      const s = await uploader({ sftp: false });
      // sshd answers 'open failed' or 'administratively prohibited' depending on which rule refuses.
      await expect(s.forwardOut('127.0.0.1', sshd.port)).rejects.toThrow(/prohibited|open failed/);
      const port = await findFreePort();
      await expect(s.forwardIn('127.0.0.1', port)).rejects.toThrow();
      // The signer's socket: unreachable by forwarding (and by its folder's mode).
      await expect(s.forwardOutStreamLocal(layout('preprod').signerSocket)).rejects.toThrow(/prohibited|open failed/);
      const target = `${UPLOADER}@${sshd.host}`;
      const remoteFwd = run('ssh', [
        ...sshOptions(UPLOADER),
        '-p',
        String(sshd.port),
        '-N',
        '-o',
        'ExitOnForwardFailure=yes',
        '-R',
        `127.0.0.1:${port}:127.0.0.1:${sshd.port}`,
        target,
      ]);
      expect(remoteFwd.status).not.toBe(0);
      expect(remoteFwd.stderr).toMatch(/remote port forwarding failed/);
      const stdioFwd = run('ssh', [...sshOptions(UPLOADER), '-p', String(sshd.port), '-W', `127.0.0.1:${sshd.port}`, target]);
      expect(stdioFwd.stdout).not.toContain('SSH-2.0');
      expect(stdioFwd.stderr).toMatch(/administratively prohibited|open failed/);
      // Agent forwarding (auth-agent-req@openssh.com), offered with an agent that holds no key.
      const { BaseAgent } = require('ssh2') as { BaseAgent: new () => object };
      class EmptyAgent extends BaseAgent {
        getIdentities(cb: (err: Error | null, keys: unknown[]) => void) {
          cb(null, []);
        }
        sign(_key: unknown, _data: Buffer, cb: (err: Error) => void) {
          cb(new Error('no key'));
        }
      }
      const withAgent = await uploader({ agent: new EmptyAgent(), sftp: false });
      await expect(withAgent.exec('true', { agentForward: true })).rejects.toThrow(/agent forwarding/);
    });
  });

  /**
   * Before issue 8: the salt was HMAC-SHA-256(password, user name), so two stacks with the same
   * credential wrote the same line (the salts and lines are equal: this fails), and the salt alone
   * confirmed a password guess with one HMAC (the derived-salt check fails).
   */
  describe('6. htpasswd salts', () => {
    test('two stacks with the same password get unrelated random salts; nothing in the file derives from the password alone', async () => {
      const creds = [CREDENTIALS[0]];
      const a = (await htpasswdSaltsProvider.create({ credentials: creds })).outs;
      const b = (await htpasswdSaltsProvider.create({ credentials: creds })).outs;
      const [sa, sb] = [a.salts[creds[0].username], b.salts[creds[0].username]];
      expect(sa).toMatch(/^[./0-9A-Za-z]{16}$/);
      expect(sb).toMatch(/^[./0-9A-Za-z]{16}$/);
      expect(sa).not.toBe(sb);
      // Stable across runs: an update with the same credentials keeps the salt, a new password draws another.
      expect((await htpasswdSaltsProvider.update('x', a, { credentials: creds })).outs.salts).toEqual(a.salts);
      expect(
        (await htpasswdSaltsProvider.update('x', a, { credentials: [{ ...creds[0], password: 'changed-password-0' }] })).outs.salts[
          creds[0].username
        ],
      ).not.toBe(sa);
      const [la, lb] = [renderHtpasswd(creds, a.salts), renderHtpasswd(creds, b.salts)];
      // What the password alone gives (the same in both stacks) would be a substring both lines share.
      const hash = (line: string) => line.trim().split(':')[1].slice('$6$'.length);
      expect(longestCommonSubstring(hash(la), hash(lb)).length).toBeLessThan(8);
      // Not the salt derived before issue 8 (HMAC-SHA-256 keyed with the password).
      const mac = createHmac('sha256', creds[0].password).update(`apt-repo htpasswd\0${creds[0].username}`).digest();
      const derived = [...mac.subarray(0, 16)]
        .map((x) => './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'[x & 63])
        .join('');
      for (const salt of [sa, sb]) expect(salt).not.toBe(derived);
      // The files the plan installed: the same credential, unrelated lines in the two channels, both accepted by nginx.
      const files = await Promise.all(['preprod', 'prod'].map((ch) => remote(`cat ${shellQuote(layout(ch).htpasswdFile)}`)));
      const lines = files.map((f) => f.split('\n').find((l) => l.startsWith(`${creds[0].username}:`))!);
      expect(longestCommonSubstring(hash(lines[0]), hash(lines[1])).length).toBeLessThan(8);
      for (const f of files) for (const l of f.split('\n').filter(Boolean)) expect(l.split(':')[1].slice(3, 19)).not.toBe(derived);
      for (const ch of ['preprod', 'prod']) {
        expect((await httpGet(`${clientConfig(stack(ch)).url}dists/bookworm/InRelease`, { auth: creds[0] })).status).toBe(200);
      }
    });
  });
});

/** The longest string that is a substring of both `a` and `b` (dynamic programming, O(|a|·|b|)). */
function longestCommonSubstring(a: string, b: string): string {
  let best = '';
  const prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = a[i - 1] === b[j - 1] ? diag + 1 : 0;
      if (prev[j] > best.length) best = a.slice(i - prev[j], i);
      diag = up;
    }
  }
  return best;
}
