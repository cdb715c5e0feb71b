'use strict';

// ESLint's recommended rules for the JavaScript (CommonJS, Node) and
// typescript-eslint's for the TypeScript, without type information so that
// the run stays fast. Layout is Prettier's (.prettierrc.json): no rule here is
// about formatting. `npm run lint` runs it; `npx eslint --fix .` fixes what it can.
const { defineConfig } = require('eslint/config');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const globals = require('globals');

// Leaving fields out with a rest pattern (`const { _id, ...rest } = doc`) is
// how the code omits keys: the names left out are not unused variables. An
// argument a signature needs but the body does not (Express's error handler's
// `next`) starts with an underscore.
const unusedVars = ['error', { ignoreRestSiblings: true, argsIgnorePattern: '^_', caughtErrors: 'none' }];

module.exports = defineConfig(
  { ignores: ['node_modules/', 'build/', 'prebuilds/', 'artifacts/', '.cache/', '**/dist/', 'bench/results/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    files: ['**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2024, sourceType: 'commonjs', globals: { ...globals.node } },
    rules: { 'no-unused-vars': unusedVars },
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-unused-vars': unusedVars },
  },
  {
    // A closure made before the value exists (a supervisor's restart reading
    // the port its first start chose) reads a `let` assigned once, later.
    files: ['**/*.js', '**/*.ts'],
    rules: { 'prefer-const': ['error', { ignoreReadBeforeAssign: true }] },
  },
  {
    files: ['test/**', 'examples/*/test/**'],
    languageOptions: { globals: { ...globals.jest } },
  },
  {
    // The tests handle untyped data on purpose: the JavaScript test helpers'
    // results, hostile inputs sent past the types, raw documents read back.
    files: ['test/**/*.ts', 'examples/*/test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
