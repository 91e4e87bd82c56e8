/** Which proxy a mirror download goes through (proxyFor), as curl reads the environment. */
import { proxyFor } from './http';

describe('proxyFor', () => {
  const https = new URL('https://dl-cdn.alpinelinux.org/alpine/v3.15/main/x86_64/APKINDEX.tar.gz');
  const http = new URL('http://mirror.example.org/alpine/');

  it('takes https_proxy for an https URL and http_proxy for an http one, lower case first', () => {
    const env = { https_proxy: 'http://proxy:3128', HTTPS_PROXY: 'http://upper:3128', http_proxy: 'http://plain:8080' };
    expect(proxyFor(https, env)).toBe('http://proxy:3128');
    expect(proxyFor(http, env)).toBe('http://plain:8080');
    expect(proxyFor(https, { HTTPS_PROXY: 'http://upper:3128' })).toBe('http://upper:3128');
  });

  it('connects directly without a proxy variable, or with an empty one', () => {
    expect(proxyFor(https, {})).toBeUndefined();
    expect(proxyFor(https, { https_proxy: '', http_proxy: 'http://plain:8080' })).toBeUndefined();
  });

  it('honours no_proxy: a host, its subdomains, a leading dot, *; not a mere suffix of another name', () => {
    const p = { https_proxy: 'http://proxy:3128' };
    expect(proxyFor(https, { ...p, no_proxy: 'example.com, alpinelinux.org' })).toBeUndefined();
    expect(proxyFor(https, { ...p, NO_PROXY: '.alpinelinux.org' })).toBeUndefined();
    expect(proxyFor(https, { ...p, no_proxy: 'dl-cdn.alpinelinux.org' })).toBeUndefined();
    expect(proxyFor(https, { ...p, no_proxy: '*' })).toBeUndefined();
    expect(proxyFor(https, { ...p, no_proxy: 'linux.org' })).toBe('http://proxy:3128');
    expect(proxyFor(new URL('https://[::1]:8443/x'), { ...p, no_proxy: '::1' })).toBeUndefined();
  });
});
