import { spawnSync } from 'child_process';
import { createHmac } from 'crypto';
import { renderHtpasswd } from './htpasswd';
import { htpasswdSaltsProvider } from './htpasswdSalts';

describe('renderHtpasswd', () => {
  const creds = [
    { username: 'web1', password: 'correct-horse-battery' },
    { username: 'web2', password: 'correct-horse-battery' },
  ];
  const salts = { web1: 'Ab3./xYz09Ab3./x', web2: 'QqWwEeRrTtYyUuIi' };

  it('writes one $6$ line per user with the salt it is given, the same text for the same salts', () => {
    const text = renderHtpasswd(creds, salts);
    expect(text).toBe(renderHtpasswd(creds, { ...salts }));
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^web1:\$6\$Ab3\.\/xYz09Ab3\.\/x\$[./0-9A-Za-z]{86}$/);
    expect(lines[1].split('$')[2]).toBe('QqWwEeRrTtYyUuIi');
    expect(lines[0].split(':')[1]).not.toBe(lines[1].split(':')[1]);
    expect(text).not.toContain('correct-horse-battery');
  });

  it('produces hashes that openssl recomputes from the password', () => {
    const [user, hash] = renderHtpasswd([creds[0]], salts).trim().split(':');
    expect(user).toBe('web1');
    const r = spawnSync('openssl', ['passwd', '-6', '-salt', hash.split('$')[2], '-stdin'], {
      input: `${creds[0].password}\n`,
      encoding: 'utf8',
    });
    expect(r.stdout.trim()).toBe(hash);
  });

  it('takes salts that owe nothing to the password: two stacks with the same password get unrelated salts', async () => {
    // Each stack's state draws its own salts (htpasswdSalts.ts).
    const a = renderHtpasswd(creds, (await htpasswdSaltsProvider.create({ credentials: creds })).outs.salts);
    const b = renderHtpasswd(creds, (await htpasswdSaltsProvider.create({ credentials: creds })).outs.salts);
    const saltOf = (text: string, i: number) => text.trimEnd().split('\n')[i].split('$')[2];
    expect(saltOf(a, 0)).not.toBe(saltOf(b, 0));
    expect(saltOf(a, 1)).not.toBe(saltOf(b, 1));
    // The salt is not the old HMAC of the password either (a guess could be tested against it).
    const derived = (u: string, p: string) => {
      const mac = createHmac('sha256', p).update(`apt-repo htpasswd\0${u}`).digest();
      return Array.from(mac.subarray(0, 16), (x) => './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'[x & 63]).join('');
    };
    expect(saltOf(a, 0)).not.toBe(derived('web1', creds[0].password));
    // Without salts (tests, the replay harness) each credential gets a random salt kept for the process.
    const own = renderHtpasswd(creds);
    expect(own).toBe(renderHtpasswd(creds));
    expect(saltOf(own, 0)).not.toBe(derived('web1', creds[0].password));
    expect(saltOf(own, 0)).not.toBe(saltOf(own, 1));
  });

  it('renders nothing for no credentials and refuses a colon in a user name or a missing salt', () => {
    expect(renderHtpasswd([], {})).toBe('');
    expect(() => renderHtpasswd([{ username: 'a:b', password: 'x'.repeat(12) }], { 'a:b': salts.web1 })).toThrow(/cannot hold ':'/);
    expect(() => renderHtpasswd(creds, { web1: salts.web1 })).toThrow(/no valid salt for user 'web2'/);
    expect(() => renderHtpasswd(creds, { web1: 'a$b', web2: salts.web2 })).toThrow(/no valid salt for user 'web1'/);
  });
});
