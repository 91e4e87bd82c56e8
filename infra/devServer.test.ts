import { DEV_SSH_PORT_INSIDE, devContainerRunArgs } from './devServer';

const devContainer = {
  sshPort: 2222,
  httpPort: 8080,
  httpsPort: 8443,
  imageName: 'apt-repo-dev:bookworm',
  baseImage: 'debian:bookworm',
  authorizedKey: 'ssh-ed25519 AAAA dev',
};

describe('devContainerRunArgs', () => {
  it('publishes sshd and the stack ports on 127.0.0.1 only, at the devContainer ports', () => {
    expect(devContainerRunArgs({ devContainer, httpPort: 80, httpsPort: 443 }).ports).toEqual([
      { internal: DEV_SSH_PORT_INSIDE, external: 2222, ip: '127.0.0.1' },
      { internal: 80, external: 8080, ip: '127.0.0.1' },
      { internal: 443, external: 8443, ip: '127.0.0.1' },
    ]);
  });

  it('runs /sbin/init with the capabilities, seccomp profile, tmpfs and cgroup mount systemd needs', () => {
    const a = devContainerRunArgs({ devContainer, httpPort: 80, httpsPort: 443 });
    expect(a).toMatchObject({
      capabilities: { adds: ['SYS_ADMIN', 'SYS_PTRACE'] },
      securityOpts: ['seccomp=unconfined'],
      tmpfs: { '/run': '', '/run/lock': '' },
      volumes: [{ hostPath: '/sys/fs/cgroup', containerPath: '/sys/fs/cgroup', readOnly: true }],
      command: ['/sbin/init'],
      stopSignal: 'SIGRTMIN+3',
    });
    expect(a).not.toHaveProperty('privileged');
  });
});
