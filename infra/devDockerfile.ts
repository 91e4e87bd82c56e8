/**
 * The Dockerfile of the `dev` stack's server: Debian 12 with sshd (root login by key only) and the
 * packages the host base step would install, so the same plan runs against it. No systemd: the
 * container runs nginx in the background and sshd in the foreground (`services: none`).
 */

/**
 * Renders the Dockerfile; `authorizedKey` is the public half of the stack's sshPrivateKey (public:
 * it may appear in the image). Throws Error when the key is not a single OpenSSH public key line.
 */
export function renderDevDockerfile(authorizedKey: string): string {
  if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-\S+) [A-Za-z0-9+/]+={0,2}( [^\n']*)?$/.test(authorizedKey.trim())) {
    throw new Error('dev Dockerfile: authorizedKey must be one OpenSSH public key line');
  }
  return `# Rendered by the apt-repo Pulumi program (dev stack).
FROM debian:bookworm
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server nginx nodejs xz-utils ca-certificates \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /run/sshd /root/.ssh \\
 && chmod 700 /root/.ssh \\
 && sed -ri 's/^#?PermitRootLogin .*/PermitRootLogin prohibit-password/; s/^#?PasswordAuthentication .*/PasswordAuthentication no/' /etc/ssh/sshd_config
RUN printf '%s\\n' '${authorizedKey.trim()}' > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
EXPOSE 22 80 443
CMD ["/bin/sh", "-c", "nginx && exec /usr/sbin/sshd -D -e"]
`;
}
