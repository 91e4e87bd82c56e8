import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { generateSigningKey, SigningKey } from './keys';
import { loadSigner, Signer } from './sign';
import { checkRelease, MAX_REQUEST_BYTES, serveOne, SignAnswer, SignRequestError, startSignServer } from './service';
import { requestSignature, SignerError, socketSigner } from './client';

const ch = { name: 'preprod', origin: 'Epiconcept', label: 'Epiconcept preprod', codenames: ['bookworm', 'bullseye'] };

function release(over: Record<string, string | undefined> = {}): string {
  const fields: Record<string, string | undefined> = {
    Origin: 'Epiconcept',
    Label: 'Epiconcept preprod',
    Suite: 'bookworm',
    Codename: 'bookworm',
    Date: 'Sat, 21 Nov 2026 05:15:00 UTC',
    Architectures: 'amd64',
    Components: 'main',
    ...over,
  };
  return (
    Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${v}\n`)
      .join('') + 'SHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855                0 main/binary-amd64/Packages\n'
  );
}

let dir: string;
let key: SigningKey;
let signer: Signer;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sign-service-'));
  key = await generateSigningKey({ name: 'Service test', email: 'apt@example.org', type: 'ed25519' });
  signer = await loadSigner(key.privateArmored);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function gpgv(args: string[]): number | null {
  const keyring = path.join(dir, 'key.gpg');
  fs.writeFileSync(keyring, key.publicBinary);
  return spawnSync('gpgv', ['--keyring', keyring, ...args], { encoding: 'utf8' }).status;
}

describe('checkRelease', () => {
  it('accepts a Release of the channel and names its codename', () => {
    expect(checkRelease(Buffer.from(release()), ch).codename).toBe('bookworm');
  });
  it.each([
    ['a foreign Codename', release({ Codename: 'trixie', Suite: 'trixie' }), /Codename "trixie" is not in channel preprod's liste_dist/],
    ['a foreign Suite', release({ Suite: 'trixie' }), /Suite "trixie"/],
    ["another channel's Label", release({ Label: 'Epiconcept prod' }), /Label "Epiconcept prod" is not channel preprod's/],
    ['another Origin', release({ Origin: 'Evil' }), /Origin "Evil"/],
    ['no Date', release({ Date: undefined }), /no Date field/],
    ['a NUL byte', release() + '\0', /NUL byte/],
    ['two stanzas', release() + '\n' + release(), /2 stanzas/],
    ['an armored message', '-----BEGIN PGP MESSAGE-----\n\nabc\n-----END PGP MESSAGE-----\n', /not a Release file/],
    ['arbitrary text', 'please sign me\n', /not a Release file/],
    ['nothing', '', /empty request/],
  ])('refuses %s', (_what, text, reason) => {
    expect(() => checkRelease(Buffer.from(text), ch)).toThrow(SignRequestError);
    expect(() => checkRelease(Buffer.from(text), ch)).toThrow(reason);
  });
  it('refuses invalid UTF-8 and anything over the size limit', () => {
    expect(() => checkRelease(Buffer.concat([Buffer.from(release()), Buffer.from([0xff, 0xfe])]), ch)).toThrow(/not valid UTF-8/);
    expect(() => checkRelease(Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x41), ch)).toThrow(/over the 4194304-byte limit/);
  });
});

describe('serveOne (the --stdio path)', () => {
  async function serve(
    input: string | Buffer,
    limits?: { maxBytes?: number; timeoutMs?: number },
    endInput = true,
  ): Promise<{ answer: SignAnswer; line: string; log: string[] }> {
    const inp = new PassThrough();
    const out = new PassThrough();
    let line = '';
    out.on('data', (d) => (line += d));
    const log: string[] = [];
    const p = serveOne(inp, out, ch, signer, (l) => log.push(l), limits);
    if (endInput) inp.end(input);
    else inp.write(input);
    const answer = await p;
    return { answer, line, log };
  }

  it('answers one JSON line whose signatures gpgv accepts, and logs codename and SHA-256', async () => {
    const text = release();
    const { answer, line, log } = await serve(text);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(JSON.parse(line)).toEqual(answer);
    if (!answer.ok) throw new Error(answer.error);
    fs.writeFileSync(path.join(dir, 'Release'), text);
    fs.writeFileSync(path.join(dir, 'InRelease'), answer.inRelease);
    fs.writeFileSync(path.join(dir, 'Release.gpg'), answer.releaseGpg);
    expect(gpgv([path.join(dir, 'InRelease')])).toBe(0);
    expect(gpgv([path.join(dir, 'Release.gpg'), path.join(dir, 'Release')])).toBe(0);
    expect(answer.inRelease.endsWith('-----END PGP SIGNATURE-----\n')).toBe(true);
    expect(log).toEqual([expect.stringMatching(/^signed preprod bookworm Release sha256 [0-9a-f]{64}$/)]);
  });

  it('refuses a request over the limit', async () => {
    const { answer, log } = await serve(Buffer.alloc(2048, 0x41), { maxBytes: 1024 });
    expect(answer).toEqual({ ok: false, error: 'request is over the 1024-byte limit' });
    expect(log[0]).toMatch(/refused/);
  });

  it('refuses a client that does not finish its request in time', async () => {
    const t0 = Date.now();
    const { answer } = await serve(release(), { timeoutMs: 200 }, false);
    expect(answer).toEqual({ ok: false, error: 'request not complete within 0.2 s' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('sign-server and the socket client', () => {
  const logs: string[] = [];
  const sock = () => path.join(dir, 'sign.sock');

  it('signs through the socket, refuses a foreign Codename, and stops cleanly removing socket and pidfile', async () => {
    const pidfile = path.join(dir, 'sign.pid');
    const server = await startSignServer({ socketPath: sock(), pidfile, ch, signer, log: (l) => logs.push(l) });
    try {
      expect(fs.lstatSync(sock()).isSocket()).toBe(true);
      expect(fs.statSync(sock()).mode & 0o777).toBe(0o660);
      expect(fs.readFileSync(pidfile, 'utf8')).toBe(`${process.pid}\n`);
      const signed = await socketSigner(sock()).sign(release());
      // Same form as the in-process signer: the Release text inside, nothing after the signature.
      expect(signed.inRelease).toContain(`\n\n${release()}-----BEGIN PGP SIGNATURE-----\n`);
      expect(signed.releaseGpg.startsWith('-----BEGIN PGP SIGNATURE-----\n')).toBe(true);
      fs.writeFileSync(path.join(dir, 'InRelease'), signed.inRelease);
      expect(gpgv([path.join(dir, 'InRelease')])).toBe(0);
      await expect(requestSignature(sock(), release({ Codename: 'trixie', Suite: 'trixie' }))).rejects.toThrow(
        `signer at ${sock()}: refused to sign: Codename "trixie" is not in channel preprod's liste_dist (bookworm, bullseye)`,
      );
      // Over the limit: the answer still reaches a client that keeps sending.
      await expect(requestSignature(sock(), Buffer.alloc(MAX_REQUEST_BYTES + 4096, 0x41))).rejects.toThrow(
        /refused to sign: request is over the 4194304-byte limit/,
      );
      // A slow client does not block the others.
      const idle = net.connect(sock());
      await new Promise((r) => idle.once('connect', r));
      await expect(socketSigner(sock()).sign(release({ Codename: 'bullseye', Suite: 'bullseye' }))).resolves.toHaveProperty('inRelease');
      idle.destroy();
    } finally {
      await server.close();
    }
    expect(fs.existsSync(sock())).toBe(false);
    expect(fs.existsSync(pidfile)).toBe(false);
    expect(logs.filter((l) => /^signed preprod/.test(l))).toHaveLength(2);
  });

  it('replaces a stale socket left by a killed server, and refuses a live one or a plain file', async () => {
    // A socket file nobody listens on, as a SIGKILLed server leaves it.
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(sock(), () => r()));
    const copy = path.join(dir, 'kept.sock');
    fs.linkSync(sock(), copy);
    await new Promise((r) => stale.close(r));
    fs.renameSync(copy, sock());
    expect(fs.lstatSync(sock()).isSocket()).toBe(true);
    const server = await startSignServer({ socketPath: sock(), ch, signer, log: (l) => logs.push(l) });
    try {
      await expect(startSignServer({ socketPath: sock(), ch, signer, log: () => undefined })).rejects.toThrow(
        /another signer is already listening there/,
      );
      await expect(socketSigner(sock()).sign(release())).resolves.toHaveProperty('releaseGpg');
    } finally {
      await server.close();
    }
    const plain = path.join(dir, 'plain');
    fs.writeFileSync(plain, 'x');
    await expect(startSignServer({ socketPath: plain, ch, signer, log: () => undefined })).rejects.toThrow(/exists and is not a socket/);
    expect(fs.readFileSync(plain, 'utf8')).toBe('x');
  });

  it('a signer that is down is a SignerError naming the socket and the reason', async () => {
    const err = await socketSigner(path.join(dir, 'nobody.sock'))
      .sign(release())
      .catch((e) => e);
    expect(err).toBeInstanceOf(SignerError);
    expect(err.message).toBe(
      `signer at ${path.join(dir, 'nobody.sock')}: no such socket (ENOENT): the signing service is not running, or repo.yaml signerSocket is wrong`,
    );
  });
});
