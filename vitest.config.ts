import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  resolve: {
    alias: { '@common': fileURLToPath(new URL('./electron/common', import.meta.url)) },
  },
  test: {
    include: ['electron/**/*.test.ts', 'native/test/**/*.test.ts', 'test/unit/**/*.test.ts'],
    // Generous: a 2-core CI machine runs these with the builds of other suites; a hung test still ends.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Tests that make network namespaces must not race each other for the same names or CPU.
    fileParallelism: false,
  },
});
