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
  { ignores: ['node_modules/', 'dist/', 'build/', 'sandbox/', 'coverage/', '.cache/', 'test-artifacts/'] },
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
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
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
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
        jest: 'readonly',
      },
    },
  },
);
