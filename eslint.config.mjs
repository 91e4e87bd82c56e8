// @ts-check
/**
 * ESLint (flat config, typescript-eslint) over the tree's code: lambda-free-tools, infra, stacks,
 * test and scripts (tsconfig.json's include), plus the few JavaScript config files. `npm run lint`.
 * Rules: ESLint's and typescript-eslint's recommended sets, plus the type-aware promise rules (cheap,
 * and they catch real bugs: a promise nobody awaits, an await on a value that is no promise).
 * Every rule turned off or relaxed says why beside it.
 */
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', 'sandbox/', 'coverage/'] },
  eslint.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // Off: validating untrusted bytes (control fields, names, YAML keys) means matching control
      // characters on purpose (/[\x00-\x1f]/): every hit of this rule in the tree is such a check.
      'no-control-regex': 'off',
      // Off: the tree requires lazily on purpose: the CLIs load zod, yaml and the decompressors
      // only when a command needs them (start-up time), Pulumi's dynamic providers must require
      // inside the function Pulumi serializes, and tests require a module after jest mocks it.
      '@typescript-eslint/no-require-imports': 'off',
      // Relaxed: a leading underscore marks a parameter or binding kept on purpose (a callback's
      // position, a field dropped with a rest sibling), the tree's convention.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['**/*.test.ts'],
    rules: {
      // Off in tests: Pulumi mocks receive untyped resource inputs, and tests parse CLI JSON output
      // whose shape the assertions themselves check.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: {
      globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly', __dirname: 'readonly', jest: 'readonly' },
    },
  },
  {
    // TEMPORARY (issue 11): lint errors that need code changes in files other helpers own while
    // they work; listed in the TOOL helper's report with the diff. The lead removes this block once
    // the changes are in (then every rule above holds for these files too).
    files: [
      'lambda-free-tools/src/cli/apt-repo.ts',
      'lambda-free-tools/src/ops/apt-ops.ts',
      'lambda-free-tools/src/ops/remote.ts',
      'lambda-free-tools/src/ops/remote.test.ts',
      'lambda-free-tools/src/ops/upload.ts',
      'lambda-free-tools/src/repo/ingest.ts',
      'lambda-free-tools/src/settings/stackConfig.ts',
      'lambda-free-tools/src/shellQuote.ts',
      'lambda-free-tools/test/apt-ops.e2e.test.ts',
      'lambda-free-tools/test/channels.e2e.test.ts',
      'infra/devHostKey.ts',
      'infra/htpasswdSalts.ts',
      'infra/plan.test.ts',
      'infra/signingKeyProvider.ts',
      'infra/vhost.test.ts',
    ],
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/await-thenable': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      'no-useless-escape': 'off',
      'no-regex-spaces': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
    },
  },
);
