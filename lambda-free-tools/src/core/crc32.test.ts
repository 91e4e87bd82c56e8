import { randomBytes } from 'crypto';
import { gzipSync } from 'zlib';
import { crc32, crc32Combine, crc32Js } from './crc32';

/** zlib's CRC-32 of `data`: the first four bytes of a gzip member's trailer (RFC 1952). */
function zlibCrc(data: Buffer): number {
  const gz = gzipSync(data, { level: 0 });
  return gz.readUInt32LE(gz.length - 8);
}

describe('crc32', () => {
  it('gives the check value of the CRC-32 catalogue and matches zlib on random data', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
    for (const n of [1, 7, 1000, 65_537]) {
      const data = randomBytes(n);
      expect(crc32(data)).toBe(zlibCrc(data));
    }
  });

  it('gives the same values in JavaScript (node 18) as through zlib, for every length around the 8-byte step', () => {
    const data = randomBytes(70);
    for (let n = 0; n <= data.length; n++) expect([n, crc32Js(data.subarray(0, n))]).toEqual([n, zlibCrc(data.subarray(0, n))]);
    expect(crc32Js(data.subarray(30), crc32Js(data.subarray(0, 30)))).toBe(zlibCrc(data));
  });

  it('continues over more bytes', () => {
    const data = randomBytes(5000);
    expect(crc32(data.subarray(3000), crc32(data.subarray(0, 3000)))).toBe(crc32(data));
  });
});

describe('crc32Combine', () => {
  it('gives the CRC of the concatenation, for lengths of every size class', () => {
    for (const [a, b] of [
      [0, 10],
      [10, 0],
      [1, 1],
      [100, 3],
      [4096, 65_535],
      [70_000, 300_001],
    ]) {
      const x = randomBytes(a);
      const y = randomBytes(b);
      expect(crc32Combine(crc32(x), crc32(y), b)).toBe(zlibCrc(Buffer.concat([x, y])));
    }
  });

  it('refuses a negative or fractional length', () => {
    expect(() => crc32Combine(1, 2, -1)).toThrow(/invalid length -1/);
    expect(() => crc32Combine(1, 2, 1.5)).toThrow(/invalid length 1.5/);
  });
});
