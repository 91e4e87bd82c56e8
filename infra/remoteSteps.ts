/**
 * Attaches plan steps (infra/plan.ts) to @pulumi/command resources: one remote.CopyToRemote per
 * staged file, then one remote.Command per step whose `create` is the step's script and whose
 * `stdin` carries its secrets. Shared by the components; it decides nothing about WHAT runs.
 * Ordering is explicit: a component receives the commands of the steps it depends on (StepCommands
 * from the components attached before it) and each command gets them as `dependsOn`.
 */
import * as pulumi from '@pulumi/pulumi';
import * as command from '@pulumi/command';
import * as path from 'path';
import type { StackConfig } from '../lambda-free-tools/src/settings/stackConfig';
import { buildPlan, type PlanMaterial, type PlanStep, type StepName } from './plan';

/**
 * The plan of one stack, in the forms the components need:
 * - `structure`: the steps with every script and file known at evaluation time (everything except
 *   what derives from the signing key's public parts), built with no secret;
 * - `keyDependent`: names of the steps whose script or files differ with the public key: their
 *   texts come from `visible` (an Output that waits for the key), the others are plain strings, so
 *   each remote resource depends only on what it really uses;
 * - `secretStdin`: per step name, the stdin of the steps that read secrets (a secret Output);
 *   the other forms never carry `secretStdin`.
 */
export interface PlanSource {
  structure: PlanStep[];
  keyDependent: Set<string>;
  /** Names of the steps that read secrets on stdin. */
  secretSteps: Set<string>;
  visible: pulumi.Output<PlanStep[]>;
  secretStdin: pulumi.Output<Record<string, string>>;
}

/** The public material known at evaluation time: the bundle, the TLS certificate and the mirrors' keys. */
export type KnownMaterial = Pick<PlanMaterial, 'bundlePath' | 'bundleSha256' | 'tlsCert' | 'mirrorKeys'>;
/** The signing key's public parts (known once the key resource exists). */
export type KeyMaterial = Pick<PlanMaterial, 'publicKeyArmored' | 'publicKeyBinaryBase64'>;
/** The secret half of PlanMaterial. */
export type SecretMaterial = Pick<PlanMaterial, 'signingKeyArmored' | 'htpasswd' | 'tlsKey'>;

const SECRET_PLACEHOLDER: SecretMaterial = { signingKeyArmored: '(secret)', htpasswd: '(secret)', tlsKey: '(secret)' };

/**
 * Builds the PlanSource of `cfg`. Scripts and files are always built with a fixed placeholder for
 * every secret (SECRET_PLACEHOLDER), so a secret can never reach them and the Outputs holding them
 * stay non-secret (readable diffs); the real secret material enters one Output only, `secretStdin`
 * (a build whose stdin alone is kept). A step is key-dependent when building it with two different
 * placeholder keys gives different texts.
 */
export function planSource(
  cfg: StackConfig,
  known: KnownMaterial,
  key: pulumi.Input<KeyMaterial>,
  secretMaterial: pulumi.Input<SecretMaterial>,
): PlanSource {
  const build = (k: KeyMaterial, sec: SecretMaterial) => buildPlan(cfg, { ...known, ...k, ...sec });
  const a = build({ publicKeyArmored: '(public key A)', publicKeyBinaryBase64: 'QQ==' }, SECRET_PLACEHOLDER);
  const b = build({ publicKeyArmored: '(public key B)', publicKeyBinaryBase64: 'Qg==' }, SECRET_PLACEHOLDER);
  const keyDependent = new Set(a.filter((st, i) => JSON.stringify(st) !== JSON.stringify(b[i])).map((st) => st.name));
  const keyOut = pulumi.output(key);
  const strip = (steps: PlanStep[]) => steps.map(({ secretStdin: _placeholder, ...st }) => st);
  const visible = keyOut.apply((k) => strip(build(k, SECRET_PLACEHOLDER)));
  const secretStdin = pulumi.secret(
    pulumi.all([keyOut, pulumi.output(secretMaterial)]).apply(([k, sec]) => {
      const out: Record<string, string> = {};
      for (const st of build(k, { ...SECRET_PLACEHOLDER, ...sec })) if (st.secretStdin !== undefined) out[st.name] = st.secretStdin;
      return out;
    }),
  );
  const secretSteps = new Set(a.filter((st) => st.secretStdin !== undefined).map((st) => st.name));
  return { structure: strip(a), keyDependent, secretSteps, visible, secretStdin };
}

/** The SSH connection of every remote resource; passed as one secret Input. */
export type Connection = pulumi.Input<command.types.input.remote.ConnectionArgs>;

/**
 * Builds the connection: host, port, user, private key and the pinned host key (checked by the
 * provider when set), as a single secret.
 */
export function sshConnection(ssh: StackConfig['ssh'], privateKey: pulumi.Input<string>, host?: pulumi.Input<string>): Connection {
  const args: command.types.input.remote.ConnectionArgs = {
    host: host ?? ssh.host,
    port: ssh.port,
    user: ssh.user,
    privateKey,
    ...(ssh.hostKey ? { hostKey: ssh.hostKey } : {}),
  };
  return pulumi.secret(args) as unknown as Connection;
}

/** The remote.Command of each attached step, by step name: what a later component depends on. */
export type StepCommands = Readonly<Partial<Record<StepName, pulumi.Resource>>>;

/** What attachSteps needs: the parent component, a name prefix, the connection and the plan. */
export interface AttachStepsArgs {
  parent: pulumi.ComponentResource;
  /** Prefix of every child resource name (the component's name). */
  baseName: string;
  connection: Connection;
  plan: PlanSource;
  /** The steps to attach, by name (those absent from the plan are skipped). */
  steps: readonly StepName[];
  /** Commands of the steps attached by earlier components that these steps depend on, by step name. */
  after: StepCommands;
  /** Resources every attached step waits for (e.g. the dev container). */
  dependsOn?: pulumi.Resource[];
}

/**
 * Creates, for each named step present in the plan: a CopyToRemote per staged file (StringAsset of
 * the visible content, or FileAsset of `localPath`), then a remote.Command with `create` = the
 * script, `stdin` = the secret stdin (secret), `triggers`, `addPreviousOutputInEnv: false`,
 * depending on its copies and on the commands of the steps it names (from `after`, or attached
 * earlier in this call). Where stdin holds a secret, stdout/stderr are secret outputs and
 * `logging: 'none'` keeps them out of the update log.
 * No `delete`: destroying a stack leaves the server as it is (data and host base stay).
 * Returns the commands it created, by step name.
 * Throws Error when a step depends on a step whose command is neither in `after` nor attached
 * before it (a component given the wrong dependencies).
 */
export function attachSteps(a: AttachStepsArgs): StepCommands {
  const mine: Partial<Record<StepName, pulumi.Resource>> = {};
  for (const name of a.steps) {
    const idx = a.plan.structure.findIndex((s) => s.name === name);
    if (idx < 0) continue;
    const st = a.plan.structure[idx];
    const deps = st.dependsOn.map((d) => {
      const r = mine[d as StepName] ?? a.after[d as StepName];
      if (!r) throw new Error(`${a.baseName}: step '${name}' depends on '${d}', whose command was not given`);
      return r;
    });
    const before = [...(a.dependsOn ?? []), ...deps];
    const fromKey = a.plan.keyDependent.has(name);
    const copies = st.files.map((f, i) => {
      const source: pulumi.Input<pulumi.asset.Asset> = f.localPath
        ? new pulumi.asset.FileAsset(f.localPath)
        : fromKey
          ? a.plan.visible.apply((steps) => new pulumi.asset.StringAsset(steps[idx].files[i].content))
          : new pulumi.asset.StringAsset(f.content);
      return new command.remote.CopyToRemote(
        `${a.baseName}-${name}-copy-${path.posix.basename(f.remotePath).replace(/^[^.]+\./, '')}`,
        { connection: a.connection, remotePath: f.remotePath, source },
        { parent: a.parent, dependsOn: before },
      );
    });
    const hasSecret = a.plan.secretSteps.has(name);
    const cmd = new command.remote.Command(
      `${a.baseName}-${name}`,
      {
        connection: a.connection,
        create: fromKey ? a.plan.visible.apply((steps) => steps[idx].script) : st.script,
        ...(hasSecret ? { stdin: a.plan.secretStdin.apply((m) => m[name]) } : {}),
        triggers: st.triggers,
        // The provider's default (true) sends PULUMI_COMMAND_STDOUT/STDERR as SSH env requests on
        // every update, which Debian's sshd (AcceptEnv LANG LC_*) refuses with a warning; no step reads them.
        addPreviousOutputInEnv: false,
        // A step that reads a secret could echo it (an error quoting its input): nothing of it
        // streams into the update log; stdout/stderr stay available as secret outputs.
        ...(hasSecret ? { logging: command.types.enums.remote.Logging.None } : {}),
      },
      { parent: a.parent, dependsOn: [...before, ...copies], ...(hasSecret ? { additionalSecretOutputs: ['stdout', 'stderr'] } : {}) },
    );
    mine[name] = cmd;
  }
  return mine;
}
