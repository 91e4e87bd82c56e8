import { DEV_CONTAINER_RUN, HOST_KEY_PATH, renderDevDockerfile } from './devDockerfile';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDevKey dev@laptop';

describe('renderDevDockerfile', () => {
  it('builds FROM debian:bookworm by default, boots systemd and stops it with SIGRTMIN+3', () => {
    const d = renderDevDockerfile({ authorizedKey: KEY });
    expect(d).toMatch(/^FROM debian:bookworm$/m);
    expect(d).toMatch(/^CMD \["\/sbin\/init"\]$/m);
    expect(d).toMatch(/^STOPSIGNAL SIGRTMIN\+3$/m);
    expect(d).toContain('systemctl enable apt-repo-host-key.service ssh.service');
    // The plan installs nginx, nodejs … itself (installPackages), like on a real server.
    expect(d).not.toMatch(/install[^\n]*\bnginx\b/);
  });

  it('builds FROM the given base image (CI: the debootstrapped one)', () => {
    expect(renderDevDockerfile({ authorizedKey: KEY, baseImage: 'apt-repo-base:bookworm' })).toMatch(/^FROM apt-repo-base:bookworm$/m);
  });

  it('lets root in by key only, on the given port and address, with the one pinned host key', () => {
    const d = renderDevDockerfile({ authorizedKey: KEY, sshPort: 2299, sshListenAddress: '127.0.0.1' });
    for (const l of [
      'Port 2299',
      'ListenAddress 127.0.0.1',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      `HostKey ${HOST_KEY_PATH}`,
    ]) {
      expect(d).toContain(`'${l}'`);
    }
    expect(d).toContain('> /etc/ssh/sshd_config.d/00-apt-repo-image.conf');
    expect(d).toContain(`printf '%s\\n' '${KEY}' > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys`);
    // No host key baked into the image: the boot unit installs the pinned one or makes one.
    expect(d).toContain('rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub');
    const d22 = renderDevDockerfile({ authorizedKey: KEY });
    expect(d22).toContain("'Port 22'");
    expect(d22).not.toContain('ListenAddress');
  });

  it("makes the host key root's and 0600 at boot, before ssh.service", () => {
    const d = renderDevDockerfile({ authorizedKey: KEY });
    expect(d).toContain("'Before=ssh.service'");
    expect(d).toContain('\'  chmod 0600 "$key"\'');
    expect(d).toContain('\'  chown root:root "$key"\'');
  });

  it('disables Debian nginx default site before nginx is ever installed', () => {
    expect(renderDevDockerfile({ authorizedKey: KEY })).toContain('> /etc/nginx/sites-enabled/default');
  });

  it('keeps the per-use settings (port, key) in the last RUN, so the package layer stays cached', () => {
    const a = renderDevDockerfile({ authorizedKey: KEY, sshPort: 2200 });
    const b = renderDevDockerfile({ authorizedKey: KEY.replace('DevKey', 'OtherKey'), sshPort: 2201 });
    const firstRun = (d: string) => d.split('\nRUN ')[1];
    expect(firstRun(a)).toBe(firstRun(b));
  });

  it('is deterministic', () => {
    expect(renderDevDockerfile({ authorizedKey: KEY, sshPort: 2222 })).toBe(renderDevDockerfile({ authorizedKey: KEY, sshPort: 2222 }));
  });

  it.each<[string, Parameters<typeof renderDevDockerfile>[0], RegExp]>([
    ['a bad key', { authorizedKey: 'not a key' }, /authorizedKey/],
    ['a key with a quote', { authorizedKey: `${KEY}'; rm -rf /` }, /authorizedKey/],
    ['a bad base image', { authorizedKey: KEY, baseImage: 'debian bookworm' }, /baseImage/],
    ['a bad port', { authorizedKey: KEY, sshPort: 70000 }, /sshPort/],
    ['a bad address', { authorizedKey: KEY, sshListenAddress: '127.0.0.1; x' }, /sshListenAddress/],
  ])('refuses %s, naming the option', (_what, opts, re) => {
    expect(() => renderDevDockerfile(opts)).toThrow(re);
  });

  it('names the docker run options systemd needs (no --privileged)', () => {
    expect(DEV_CONTAINER_RUN).toEqual({
      capAdd: ['SYS_ADMIN', 'SYS_PTRACE'],
      securityOpts: ['seccomp=unconfined'],
      tmpfs: ['/run', '/run/lock'],
      readOnlyBinds: [['/sys/fs/cgroup', '/sys/fs/cgroup']],
      command: ['/sbin/init'],
      stopSignal: 'SIGRTMIN+3',
    });
  });
});
