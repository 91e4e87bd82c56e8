import { opsExport, parseBlocks, playgroundBlocks, renderBlocks, type OpsChannel, type PlaygroundInput } from './commands';

const channel = (name: string): OpsChannel => ({
  channel: name,
  root: '/srv/sand box',
  nodePath: '/usr/bin/node',
  indexerPath: `/srv/sand box/opt/apt-repo/${name}/apt-repo.cjs`,
  serviceUser: `aptrepo-${name}`,
  incomingDir: '/srv/sand box/srv/apt/incoming',
  webRoot: `/srv/sand box/srv/apt/${name}`,
});
const server = {
  host: '127.0.0.1',
  port: 2222,
  user: 'root',
  knownHostsFile: '/state/operator/known_hosts',
  identityFile: '/state/operator/operator_ed25519',
  projectDir: '/state/apt-ops',
};
const input: PlaygroundInput = {
  preprod: channel('preprod'),
  prod: channel('prod'),
  server,
  nodePath: '/usr/bin/node',
  aptOps: '/p/dist/apt-ops.cjs',
  uploadDeb: '/state/debs/epi-hello_2.0-1_amd64.deb',
  uploadSource: 'ci',
  aptConf: { preprod: '/state/client-preprod/apt.conf', prod: '/state/client-prod/apt.conf' },
  pkg: 'epi-hello',
  olderVersion: '1.0-1',
  sampleNames: ['epi-hello', 'epi-docs'],
  lockTimeout: 300,
  stop: 'LOCAL_STACK_ROOT=/srv/x npm --prefix /p run local -- --stop',
};

test('the export line sets every APT_OPS_* setting apt-ops reads, quoted for the shell', () => {
  expect(opsExport(channel('prod'), server)).toBe(
    "export APT_OPS_PROJECT_DIR=/state/apt-ops APT_OPS_STACK=prod APT_OPS_CHANNEL=prod APT_OPS_HOST=127.0.0.1 APT_OPS_PORT=2222 APT_OPS_USER=root APT_OPS_KNOWN_HOSTS=/state/operator/known_hosts APT_OPS_IDENTITY=/state/operator/operator_ed25519 APT_OPS_NODE=/usr/bin/node APT_OPS_INDEXER='/srv/sand box/opt/apt-repo/prod/apt-repo.cjs' APT_OPS_REMOTE_PREFIX='runuser -u aptrepo-prod --' APT_OPS_ROOT='/srv/sand box' APT_OPS_INCOMING_DIR='/srv/sand box/srv/apt/incoming' APT_OPS_WEB_ROOT='/srv/sand box/srv/apt/prod'",
  );
});

test('the playground blocks: apt-ops per channel after its export line, the client waiting for the dpkg lock, writers through runuser', () => {
  const blocks = playgroundBlocks(input);
  const ops = (b: number) => blocks[b].lines.slice(1).map((l) => l.replace('/usr/bin/node /p/dist/apt-ops.cjs ', ''));
  expect(blocks[0].lines[0]).toMatch(/^export .* APT_OPS_STACK=preprod /);
  expect(ops(0)).toEqual(['status', 'upload --source ci /state/debs/epi-hello_2.0-1_amd64.deb', 'versions epi-hello']);
  expect(ops(1)).toEqual(['pending', 'promote epi-hello', 'versions epi-hello', 'rollback']);
  expect(blocks[2].lines).toContain(
    "APT_CONFIG=/state/client-preprod/apt.conf apt-get -o 'DPkg::Lock::Timeout=300' install --allow-downgrades 'epi-hello=1.0-1'",
  );
  expect(blocks[2].lines).toContain('/usr/bin/epi-hello');
  expect(blocks[3].lines.find((l) => l.includes(' promote '))).toBe(
    "runuser -u aptrepo-prod -- /usr/bin/node '/srv/sand box/opt/apt-repo/prod/apt-repo.cjs' --root '/srv/sand box' --channel prod promote epi-hello",
  );
  expect(blocks[4].lines).toEqual([input.stop]);
});

test('printed blocks read back as they were, among other printed text', () => {
  const blocks = playgroundBlocks(input);
  const text = `== preprod: http://127.0.0.1:8081/\nsources.list line:\n  deb x\n\n${renderBlocks(blocks)}\n`;
  expect(parseBlocks(text)).toEqual([{ title: 'sources.list line', lines: ['deb x'] }, ...blocks]);
});
