/**
 * The 'indexer' step [dirs, pre-update-backup]: the apt-repo bundle, checked against its SHA-256
 * (also the step's trigger) and installed at indexerPath.
 */
import { shq } from '../shell';
import { makeStep, StepFiles, type PlanContext, type PlanStep } from './context';

/** Builds the 'indexer' step of `ctx` (pure). */
export function indexerStep(ctx: PlanContext): PlanStep {
  const { cfg, material, layout: l, expected: x } = ctx;
  const b = new StepFiles(l, 'indexer', x);
  const staged = b.stage('apt-repo.cjs', '', '0644', 'root', material.bundlePath);
  const body = [
    `echo ${shq(`${material.bundleSha256}  ${l.stagingDir}/indexer.apt-repo.cjs`)} | sha256sum -c --quiet -`,
    `install_file ${staged} ${shq(l.indexerPath)} 0644 root root`,
  ].join('\n');
  b.expect(l.indexerPath, '0644', 'root', 'root', { sha256: material.bundleSha256 });
  return makeStep(cfg, 'indexer', ['dirs', 'pre-update-backup'], body, b.files, undefined, [material.bundleSha256]);
}
