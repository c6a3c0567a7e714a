import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'proto/skiff/v1/*.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/dist/**'], message: 'import sources, not build output' }] }],
    },
  },
  {
    // Arrows go one way: the agent talks to managers only over the wire contract.
    files: ['agent/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/manager/**', '**/scheduler/**'], message: 'the agent imports proto and pki, never manager or scheduler' }] }],
    },
  },
  {
    // The pure cores: no I/O, no timers, no wall clock. Time and randomness are passed in.
    files: ['manager/raft/core/**/*.ts', 'scheduler/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['node:*', 'fs', 'net', 'child_process', 'timers'] }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate'],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now' }, { object: 'Math', property: 'random' }],
    },
  },
);
