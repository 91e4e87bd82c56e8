import { spawnSync } from 'child_process';
import { renderHtpasswd, saltFor } from './htpasswd';

describe('renderHtpasswd', () => {
  const creds = [
    { username: 'web1', password: 'correct-horse-battery' },
    { username: 'web2', password: 'correct-horse-battery' },
  ];

  it('writes one $6$ line per user, stable across runs, with a salt per user', () => {
    const text = renderHtpasswd(creds);
    expect(text).toBe(renderHtpasswd(creds));
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^web1:\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    // Same password, different users: different salts, so different hashes.
    expect(saltFor(creds[0])).not.toBe(saltFor(creds[1]));
    expect(lines[0].split(':')[1]).not.toBe(lines[1].split(':')[1]);
    expect(text).not.toContain('correct-horse-battery');
  });

  it('produces hashes that openssl recomputes from the password', () => {
    const [user, hash] = renderHtpasswd([creds[0]]).trim().split(':');
    expect(user).toBe('web1');
    const salt = hash.split('$')[2];
    const r = spawnSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: `${creds[0].password}\n`, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(hash);
  });

  it('renders nothing for no credentials and refuses a colon in a user name', () => {
    expect(renderHtpasswd([])).toBe('');
    expect(() => renderHtpasswd([{ username: 'a:b', password: 'x'.repeat(12) }])).toThrow(/cannot hold ':'/);
  });
});
