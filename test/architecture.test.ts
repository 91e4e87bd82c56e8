/**
 * Dependencies point down: folder-level rules over the import graph of the TypeScript sources
 * (test/harness/importGraph.ts), and no import cycle. Production files are checked; tests
 * (`*.test.ts`, test/) may import across layers. The last tests feed planted violations, so the
 * checks are shown to fail when they should.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ImportGraph, importCycles, LayerRule, readImportGraph, ruleViolations } from './harness/importGraph';

const root = path.resolve(__dirname, '..');
const src = 'lambda-free-tools/src/';

/** The layers, bottom up: the Debian domain, the repository logic, then the CLIs. */
/**
 * lambda-free-tools/bench/ is exempt from the test/ rules: benchmarks build their input packages with
 * the test harness, as tests do (aptly keeps its benchmarks beside its tests too).
 */
const BENCH = 'lambda-free-tools/bench/';

const RULES: Record<string, LayerRule> = {
  domain: {
    name: 'lambda-free-tools/src/{deb,index,sign} import nothing from repo/, cli/, ops/',
    from: [`${src}deb/`, `${src}index/`, `${src}sign/`],
    notTo: [`${src}repo/`, `${src}cli/`, `${src}ops/`],
  },
  core: {
    name: 'lambda-free-tools/src/core (shared value types, the file-system and format seams) imports nothing else of src/',
    from: [`${src}core/`],
    notTo: [`${src}deb/`, `${src}index/`, `${src}sign/`, `${src}repo/`, `${src}settings/`, `${src}cli/`, `${src}ops/`],
  },
  formatSeam: {
    name: 'lambda-free-tools/src/repo reaches the Debian format (deb/, index/) only through repo/format.ts',
    from: [`${src}repo/`],
    except: [`${src}repo/format.ts`],
    notTo: [`${src}deb/`, `${src}index/`],
  },
  repo: {
    name: 'lambda-free-tools/src/repo imports nothing from cli/ or ops/',
    from: [`${src}repo/`],
    notTo: [`${src}cli/`, `${src}ops/`],
  },
  tools: {
    name: 'lambda-free-tools/** imports nothing from infra/, stacks/, test/, scripts/',
    from: ['lambda-free-tools/'],
    notTo: ['infra/', 'stacks/', 'test/', 'scripts/'],
    except: [BENCH],
  },
  infra: {
    name: 'infra/ imports nothing from stacks/, test/, scripts/',
    from: ['infra/'],
    notTo: ['stacks/', 'test/', 'scripts/'],
  },
  scripts: {
    name: 'scripts/ (the local stack and its sandbox) imports nothing from test/',
    from: ['scripts/'],
    notTo: ['test/'],
  },
  testOnly: {
    name: 'no file outside test/ and scripts/ imports from test/',
    from: [''],
    except: ['test/', 'scripts/', BENCH],
    notTo: ['test/'],
  },
};

let graph: ImportGraph;
beforeAll(() => {
  graph = readImportGraph(root);
});

test('the graph is read: it holds the CLIs and the imports they are known to make', () => {
  expect(graph.get(`${src}cli/apt-repo.ts`)?.length).toBeGreaterThan(0);
  expect(graph.get('test/architecture.test.ts')).toContain('test/harness/importGraph.ts');
});

for (const [key, rule] of Object.entries(RULES)) {
  test(rule.name, () => {
    expect(ruleViolations(graph, [RULES[key]])).toEqual([]);
  });
}

// `npm run check:cycles` runs madge over the same folders.
test('no import cycle (every file of the graph: production, tests and harness)', () => {
  expect(importCycles(graph)).toEqual([]);
});

describe('the checks fail on planted violations', () => {
  const fake: ImportGraph = new Map([
    [`${src}deb/control.ts`, [`${src}repo/types.ts`]],
    [`${src}repo/types.ts`, [`${src}cli/context.ts`]],
    [`${src}cli/context.ts`, [`${src}repo/types.ts`]],
    [`${src}deb/control.test.ts`, [`${src}repo/types.ts`, 'test/harness/debs.ts']],
    [`${src}repo/verify.ts`, [`${src}deb/control.ts`]],
    [`${src}repo/format.ts`, [`${src}deb/format.ts`]],
    [`${src}core/files.ts`, [`${src}repo/types.ts`]],
    ['infra/plan.ts', ['stacks/config.ts', 'infra/shell.ts']],
    ['infra/shell.ts', ['infra/shell.ts']],
    ['stacks/index.ts', ['test/harness/replay.ts']],
    ['scripts/local-stack.ts', ['test/harness/replay.ts']],
    ['test/harness/replay.ts', ['infra/plan.ts']],
  ]);

  test('each rule names the import that breaks it; tests are not checked', () => {
    expect(ruleViolations(fake, Object.values(RULES))).toEqual([
      { rule: RULES.domain.name, file: `${src}deb/control.ts`, target: `${src}repo/types.ts` },
      { rule: RULES.repo.name, file: `${src}repo/types.ts`, target: `${src}cli/context.ts` },
      { rule: RULES.formatSeam.name, file: `${src}repo/verify.ts`, target: `${src}deb/control.ts` },
      { rule: RULES.core.name, file: `${src}core/files.ts`, target: `${src}repo/types.ts` },
      { rule: RULES.infra.name, file: 'infra/plan.ts', target: 'stacks/config.ts' },
      { rule: RULES.testOnly.name, file: 'stacks/index.ts', target: 'test/harness/replay.ts' },
      { rule: RULES.scripts.name, file: 'scripts/local-stack.ts', target: 'test/harness/replay.ts' },
    ]);
  });

  test('cycles are found, self-imports included', () => {
    expect(importCycles(fake)).toEqual([['infra/shell.ts'], [`${src}cli/context.ts`, `${src}repo/types.ts`]]);
  });

  test('the graph reader resolves x.ts and x/index.ts for every import form, and a planted upward import fails its rule', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'architecture-'));
    try {
      const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
        fs.writeFileSync(path.join(tmp, rel), text);
      };
      write(`${src}repo/types.ts`, 'export type T = 1;\n');
      write(`${src}repo/index.ts`, 'export {};\n');
      write(`${src}cli/context.ts`, 'export {};\n');
      write(`${src}ops/upload.ts`, 'export {};\n');
      write(`${src}sign/keys.ts`, 'export {};\n');
      write(
        `${src}deb/control.ts`,
        [
          "import type { T } from '../repo/types';",
          "export { x } from '../cli/context';",
          "const u = require('../ops/upload');",
          "const r = import('../repo');",
          "import * as k from '../sign/keys';",
          "import * as z from 'zod';",
          '',
        ].join('\n'),
      );
      const planted = readImportGraph(tmp);
      expect(planted.get(`${src}deb/control.ts`)).toEqual([
        `${src}cli/context.ts`,
        `${src}ops/upload.ts`,
        `${src}repo/index.ts`,
        `${src}repo/types.ts`,
        `${src}sign/keys.ts`,
      ]);
      expect(ruleViolations(planted, [RULES.domain]).map((v) => v.target)).toEqual([
        `${src}cli/context.ts`,
        `${src}ops/upload.ts`,
        `${src}repo/index.ts`,
        `${src}repo/types.ts`,
      ]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
