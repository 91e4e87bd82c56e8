import { spawnSync } from 'child_process';
import { sha512Crypt } from './shaCrypt';

describe('sha512Crypt', () => {
  it("matches the specification's test vectors", () => {
    // Drepper, "Unix crypt using SHA-256 and SHA-512", SHA-512 test vectors.
    expect(sha512Crypt('Hello world!', 'saltstring')).toBe(
      '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
    );
    expect(sha512Crypt('Hello world!', 'saltstringsaltstring', 10000)).toBe(
      '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
    );
  });

  it('agrees with `openssl passwd -6` on passwords of every length class', () => {
    for (const pw of ['a', 'correct-horse-battery', 'é€ unicode', 'x'.repeat(64), 'y'.repeat(65), 'z'.repeat(200)]) {
      const salt = 'Ab3./xYz09';
      const r = spawnSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: pw + '\n', encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect([pw, sha512Crypt(pw, salt)]).toEqual([pw, r.stdout.trim()]);
    }
  });

  it('refuses a salt that would break the htpasswd line', () => {
    expect(() => sha512Crypt('pw', 'a$b')).toThrow(/salt/);
  });
});
