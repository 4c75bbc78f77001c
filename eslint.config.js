// ESLint for sluice: typescript-eslint's strict type-checked rules over every
// TypeScript file the repository runs (src, test, bench, scripts, examples).
// A rule is tuned here only with the reason written beside it.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tmp/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers go into template literals on purpose: status lines, ports and byte
      // counts are built that way on the data path, where `${n}` is the cheapest
      // integer-to-text there is. Every other type (objects, unknown, undefined) is
      // still refused.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // Records parsed from JSON (log lines, status documents) and process.env are
      // index signatures: `line['status']` says "a key that may be absent", the
      // convention of TypeScript's noPropertyAccessFromIndexSignature.
      '@typescript-eslint/dot-notation': ['error', { allowIndexSignaturePropertyAccess: true }],
      // `() => server.close()` and `return this.#drop(...)` inside a void function
      // are the codebase's callback and early-exit idioms; a void value used
      // anywhere else (a ternary, an argument, an assignment) is still refused.
      '@typescript-eslint/no-confusing-void-expression': [
        'error',
        { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true },
      ],
      // `const { listen_port: _port, ...rest } = config` is how the tests and the
      // config checks drop keys from an object: the names are there to be left out.
      // Every other unused binding is still refused.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // With noUncheckedIndexedAccess every `array[i]` is `T | undefined`. The
      // parsers, balancers and histograms read within bounds their loop has just
      // checked, and `array[i]!` says so at no cost on the data path. Only that form
      // is let through: a `!` on anything else (a property, a call's result) is an
      // assumption the code must check or type away.
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TSNonNullExpression:not([expression.type="MemberExpression"][expression.computed=true])',
          message: 'Check the value or type it away; `!` is kept for reads by index within a checked bound.',
        },
      ],
    },
  },
  {
    // uvu's suite context is typed optional because its `before` hook fills it,
    // so tests read `ctx.port!`. A `!` that is wrong fails the test on that very
    // line with a TypeError, which is the assertion a test would write by hand.
    files: ['test/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // Plain JavaScript: the package entry point, the Node-version guard and the
    // dashboard served to browsers. No types to check them against.
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['src/admin/dashboard/**/*.js'],
    languageOptions: { globals: globals.browser, sourceType: 'script' },
  },
);
