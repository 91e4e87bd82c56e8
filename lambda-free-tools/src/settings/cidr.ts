/**
 * IP allowlist entries as nginx's `allow` directive takes them (ngx_http_access_module): an IPv4 or
 * IPv6 address, optionally with a prefix length (CIDR, RFC 4632 / RFC 4291 §2.3).
 */
import { isIPv4, isIPv6 } from 'net';

/** A parsed allowlist entry: `text` is the normalised form written into the vhost. */
export interface Cidr {
  family: 4 | 6;
  address: string;
  prefix: number;
  text: string;
}

function ipv4ToBigInt(a: string): bigint {
  return a.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function ipv6ToBigInt(a: string): bigint {
  let s = a;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]);
    s = s.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * Parses `text` ('10.0.0.0/8', '192.0.2.7', '2001:db8::/32') into a Cidr.
 * Returns a string describing the problem instead when the address does not parse, the prefix is
 * out of range (0–32 for IPv4, 0–128 for IPv6), or host bits are set below the prefix (nginx would
 * only warn and ignore them, which hides a typo such as 10.1.2.3/8).
 */
export function parseCidr(text: string): Cidr | string {
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) return `'${text}' is not an address or CIDR block`;
  const address = m[1];
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : 0;
  if (family === 0) return `'${text}': '${address}' is not an IPv4 or IPv6 address`;
  const bits = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? bits : Number(m[2]);
  if (prefix > bits) return `'${text}': prefix /${prefix} is longer than ${bits} bits`;
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) return `'${text}': address has bits set after the /${prefix} prefix`;
  return { family, address, prefix, text: prefix === bits ? address : `${address}/${prefix}` };
}
