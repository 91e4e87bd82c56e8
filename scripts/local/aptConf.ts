/**
 * The private apt.conf of an isolated apt client (APT_CONFIG): every Dir:: path under one folder,
 * so no file of the machine's own apt configuration is read or written. Used by `npm run local`
 * for the client configuration it prints, and by the tests' apt client (test/harness/apt.ts).
 */
import * as path from 'path';

/** apt.conf(5) string quoting: values are double-quoted; a double quote cannot be escaped, so refuse it (Error naming the value). */
export function aptConfString(value: string): string {
  if (value.includes('"')) throw new Error(`apt.conf value cannot contain a double quote: ${value}`);
  return `"${value}"`;
}

/** The folders renderAptConf's paths need under the client's folder (apt creates none of them). */
export const APT_CLIENT_DIRS = [
  'etc/apt/apt.conf.d',
  'etc/apt/sources.list.d',
  'etc/apt/trusted.gpg.d',
  'etc/apt/auth.conf.d',
  'etc/apt/preferences.d',
  'var/lib/apt/lists/partial',
  'var/cache/apt/archives/partial',
  'var/log/apt',
] as const;

/** Renders the private apt.conf for a client rooted at `dir`. */
export function renderAptConf(dir: string, arch: string, foreign: string[], extra = ''): string {
  const p = (...s: string[]) => aptConfString(path.join(dir, ...s));
  return [
    `Dir::Etc::Main ${p('etc/apt/apt.conf')};`,
    `Dir::Etc::Parts ${p('etc/apt/apt.conf.d')};`,
    `Dir::Etc::SourceList ${p('etc/apt/sources.list')};`,
    `Dir::Etc::SourceParts ${p('etc/apt/sources.list.d')};`,
    `Dir::Etc::Trusted ${p('etc/apt/trusted.gpg')};`,
    `Dir::Etc::TrustedParts ${p('etc/apt/trusted.gpg.d')};`,
    `Dir::Etc::netrc ${p('etc/apt/auth.conf')};`,
    `Dir::Etc::netrcparts ${p('etc/apt/auth.conf.d')};`,
    `Dir::Etc::Preferences ${p('etc/apt/preferences')};`,
    `Dir::Etc::PreferencesParts ${p('etc/apt/preferences.d')};`,
    `Dir::State ${p('var/lib/apt')};`,
    `Dir::State::Lists ${p('var/lib/apt/lists')};`,
    `Dir::State::extended_states ${p('var/lib/apt/extended_states')};`,
    // dpkg's real status: install -s resolves dependencies against what is installed.
    'Dir::State::status "/var/lib/dpkg/status";',
    `Dir::Cache ${p('var/cache/apt')};`,
    `Dir::Cache::Archives ${p('var/cache/apt/archives')};`,
    `Dir::Log ${p('var/log/apt')};`,
    `APT::Architecture ${aptConfString(arch)};`,
    `APT::Architectures { ${[arch, ...foreign].map((a) => `${aptConfString(a)};`).join(' ')} };`,
    // The default sandbox user _apt cannot enter mkdtemp's 0700 folders.
    'APT::Sandbox::User "root";',
    'Debug::NoLocking "true";',
    'Acquire::Languages "none";',
    'Acquire::Retries "0";',
    'Acquire::http::Proxy "DIRECT";',
    'Acquire::https::Proxy "DIRECT";',
    'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";',
    'APT::Get::Assume-Yes "true";',
    // quiet 1: no progress meter (carriage-return noise in captured output); Get/Hit/Ign lines stay.
    'quiet "1";',
    extra,
    '',
  ].join('\n');
}
