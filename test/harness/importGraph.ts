/**
 * The import graph of the project's TypeScript sources, and the folder-level rules it must follow
 * (test/architecture.test.ts). Imports are read with the `typescript` package's preProcessFile,
 * which lists every module specifier of `import`, `import type`, `export … from`, `import x =
 * require()`, `require()` and `import()`; only relative specifiers are kept (packages are not ours)
 * and each is resolved the way tsc resolves it here (`x.ts`, `x/index.ts`, or the file itself).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

/** Project-relative, '/'-separated file → the project files it imports (sorted, unique). */
export type ImportGraph = Map<string, string[]>;

/** Folders (project-relative) whose `.ts` files make up the graph: tsconfig.json's `include`. */
export const SOURCE_FOLDERS = ['lambda-free-tools', 'infra', 'stacks', 'test', 'scripts'];

/** Every `.ts` file below `folders` of `root` (project-relative, sorted); node_modules is skipped. */
export function listSources(root: string, folders: string[] = SOURCE_FOLDERS): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules') walk(r);
      } else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(r);
    }
  };
  for (const f of folders) if (fs.existsSync(path.join(root, f))) walk(f);
  return out.sort();
}

/**
 * The relative module specifiers `text` imports, as written (`./x`, `../y/z.js`): every form
 * preProcessFile detects, type-only imports included (they still tie the layers together).
 */
export function relativeSpecifiers(text: string): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((s) => s.startsWith('./') || s.startsWith('../') || s === '.' || s === '..');
}

/**
 * The project file `spec` (relative to `from`, a project-relative file) names, or undefined when
 * none exists (a generated or missing file: tsc reports those, not this check).
 */
export function resolveSpecifier(root: string, from: string, spec: string): string | undefined {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const candidate of [`${base}.ts`, `${base}/index.ts`, base]) {
    const abs = path.join(root, candidate);
    if (fs.existsSync(abs) && fs.statSync(abs).isFile()) return candidate;
  }
  return undefined;
}

/** Reads the import graph of `files` (project-relative) under `root`. */
export function readImportGraph(root: string, files: string[] = listSources(root)): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of files) {
    const targets = new Set<string>();
    for (const spec of relativeSpecifiers(fs.readFileSync(path.join(root, file), 'utf8'))) {
      const target = resolveSpecifier(root, file, spec);
      if (target) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** True for test code: anything under test/ and every `*.test.ts` (tests may reach across layers). */
export function isTestFile(file: string): boolean {
  return file.startsWith('test/') || file.endsWith('.test.ts');
}

/** One folder-level rule: files under one of `from` must not import files under any of `notTo`. */
export interface LayerRule {
  /** Name shown in a violation. */
  name: string;
  /** Project-relative folder prefixes ('lambda-free-tools/src/deb/') whose files the rule checks. */
  from: string[];
  /** Folder prefixes those files must not import from. */
  notTo: string[];
  /** Files under `from` the rule does not check (prefixes). */
  except?: string[];
}

/** A rule broken by one import: `file` imports `target`. */
export interface Violation {
  rule: string;
  file: string;
  target: string;
}

/**
 * Every import of `graph` that breaks one of `rules`, in file order. Only production files are
 * checked (isTestFile: tests may import across layers and from test/harness).
 */
export function ruleViolations(graph: ImportGraph, rules: LayerRule[]): Violation[] {
  const under = (file: string, prefixes: string[]) => prefixes.some((p) => file.startsWith(p));
  const out: Violation[] = [];
  for (const [file, targets] of graph) {
    if (isTestFile(file)) continue;
    for (const rule of rules) {
      if (!under(file, rule.from) || under(file, rule.except ?? [])) continue;
      for (const target of targets) if (under(target, rule.notTo)) out.push({ rule: rule.name, file, target });
    }
  }
  return out;
}

/**
 * The import cycles of `graph`: each strongly connected component of more than one file (or a file
 * importing itself), as its sorted file list; components sorted by their first file. Tarjan's
 * algorithm, iterative over an explicit stack (no recursion limit on deep chains).
 */
export function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { node: string; edge: number }[] = [{ node: start, edge: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const edges = graph.get(top.node) ?? [];
      if (top.edge < edges.length) {
        const to = edges[top.edge++];
        if (!graph.has(to)) continue;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) low.set(top.node, Math.min(low.get(top.node)!, index.get(to)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) === index.get(top.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== top.node);
        if (component.length > 1 || edges.includes(top.node)) out.push(component.sort());
      }
    }
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
