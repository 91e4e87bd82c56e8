/**
 * The 'config' step [dirs, pre-update-backup]: liste_dist, liste_arch and repo.yaml in the
 * channel's config folder.
 */
import { renderListes, renderRepoYaml } from '../repoFiles';
import { shq } from '../shell';
import { makeStep, StepFiles, type PlanContext, type PlanStep } from './context';

/** Builds the 'config' step of `ctx` (pure). */
export function configStep(ctx: PlanContext): PlanStep {
  const { cfg, layout: l, expected: x } = ctx;
  const b = new StepFiles(l, 'config', x);
  const { listeDist, listeArch } = renderListes(cfg.codenames, cfg.architectures);
  const body = [
    `install_file ${b.stage('liste_dist', listeDist, '0644', 'root')} ${shq(l.listeDistFile)} 0644 root root`,
    `install_file ${b.stage('liste_arch', listeArch, '0644', 'root')} ${shq(l.listeArchFile)} 0644 root root`,
    `install_file ${b.stage('repo.yaml', renderRepoYaml(cfg, l), '0644', 'root')} ${shq(l.repoYamlFile)} 0644 root root`,
  ].join('\n');
  b.expect(l.listeDistFile, '0644', 'root', 'root', { content: listeDist });
  b.expect(l.listeArchFile, '0644', 'root', 'root', { content: listeArch });
  b.expect(l.repoYamlFile, '0644', 'root', 'root', { content: renderRepoYaml(cfg, l) });
  return makeStep(cfg, 'config', ['dirs', 'pre-update-backup'], body, b.files);
}
