/**
 * SHA-512 crypt (`$6$`), as glibc crypt(3) computes it: Ulrich Drepper, "Unix crypt using SHA-256
 * and SHA-512" (2007/2008), the algorithm nginx's auth_basic checks through crypt(3).
 *
 * Own code because the `unixcrypt` package is published as an ES module only (its `exports` has no
 * `require` condition), which the CommonJS Pulumi program cannot load.
 */
import { createHash } from 'crypto';

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The byte triples of the final encoding (Drepper's spec, SHA-512 section, step 22). */
const ORDER: [number, number, number][] = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `length` bytes made of `digest` repeated (steps 16 and 20: the P and S sequences). */
function repeatTo(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += digest.length) digest.copy(out, i, 0, Math.min(digest.length, length - i));
  return out;
}

function encode24(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let s = '';
  for (let i = 0; i < n; i++) {
    s += ALPHABET[w & 0x3f];
    w >>= 6;
  }
  return s;
}

/**
 * Hashes `password` (UTF-8) with `salt` (at most 16 characters of [./0-9A-Za-z] are used, as glibc
 * does) and `rounds` (default 5000, the only value left out of the result string) and returns
 * `$6$[rounds=N$]salt$hash`. Throws Error for a salt holding '$' or ':' or a line break.
 */
export function sha512Crypt(password: string, salt: string, rounds = 5000): string {
  if (/[$:\n]/.test(salt)) throw new Error('sha512Crypt: the salt cannot hold $, : or a line break');
  const r = Math.min(999999999, Math.max(1000, Math.floor(rounds)));
  const P = Buffer.from(password, 'utf8');
  const S = Buffer.from(salt.slice(0, 16), 'utf8');
  const B = sha512(P, S, P);
  const a = createHash('sha512').update(P).update(S);
  let cnt = P.length;
  for (; cnt > 64; cnt -= 64) a.update(B);
  a.update(B.subarray(0, cnt));
  for (cnt = P.length; cnt > 0; cnt >>= 1) a.update(cnt & 1 ? B : P);
  let C = a.digest();
  const DP = sha512(...Array<Buffer>(P.length).fill(P));
  const Pseq = repeatTo(DP, P.length);
  const DS = sha512(...Array<Buffer>(16 + C[0]).fill(S));
  const Sseq = repeatTo(DS, S.length);
  for (let i = 0; i < r; i++) {
    const h = createHash('sha512');
    h.update(i & 1 ? Pseq : C);
    if (i % 3) h.update(Sseq);
    if (i % 7) h.update(Pseq);
    h.update(i & 1 ? C : Pseq);
    C = h.digest();
  }
  let out = '';
  for (const [x, y, z] of ORDER) out += encode24(C[x], C[y], C[z], 4);
  out += encode24(0, 0, C[63], 2);
  return `$6$${r === 5000 && rounds === 5000 ? '' : `rounds=${r}$`}${S.toString('utf8')}$${out}`;
}
