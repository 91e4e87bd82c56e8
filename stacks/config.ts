/**
 * The Pulumi side of the stack configuration: reads the `apt-repo:*` keys from pulumi.Config and
 * validates them with the shared parser (lambda-free-tools/src/settings/stackConfig.ts, the one
 * schema apt-ops reads the plain keys with too). The schema, its types and parseStackConfig are
 * re-exported here for the program and its tests.
 */
import * as pulumi from '@pulumi/pulumi';
import {
  CONFIG_NAMESPACE,
  parseStackConfig,
  type RawConfig,
  type StackConfig,
  type StackSecrets,
} from '../lambda-free-tools/src/settings/stackConfig';

export {
  CONFIG_KEYS,
  CONFIG_SCHEMA,
  parseStackConfig,
  SECRET_KEYS,
  type ClientCredential,
  type RawConfig,
  type StackConfig,
  type StackSecrets,
} from '../lambda-free-tools/src/settings/stackConfig';

/**
 * Reads every `apt-repo:*` key of the current stack (pulumi.runtime.allConfig, so an unknown key is
 * refused too) and validates it with parseStackConfig. Throws ConfigError as parseStackConfig does.
 */
export function loadStackConfig(): { config: StackConfig; secrets: StackSecrets } {
  const raw: RawConfig = {};
  for (const [k, v] of Object.entries(pulumi.runtime.allConfig())) {
    if (k.startsWith(`${CONFIG_NAMESPACE}:`)) raw[k.slice(CONFIG_NAMESPACE.length + 1)] = v;
  }
  return parseStackConfig(raw, pulumi.getStack());
}
