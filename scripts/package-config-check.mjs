#!/usr/bin/env node
// Validates build/electron-builder.cjs against electron-builder's own JSON schema (app-builder-lib's
// scheme.json, the schema electron-builder itself checks the configuration with), without running a build.
// Usage: node scripts/package-config-check.mjs [path/to/scheme.json]
// Exit status: 0 valid, 1 invalid, 3 no schema here (electron-builder is not installed).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

const require = createRequire(import.meta.url);
let schemaPath = process.argv[2];
if (!schemaPath) {
  try {
    schemaPath = require.resolve('app-builder-lib/scheme.json');
  } catch {
    schemaPath = undefined;
  }
}
if (!schemaPath || !existsSync(schemaPath)) {
  console.error('package-config-check: no app-builder-lib/scheme.json: electron-builder is not installed');
  process.exit(3);
}
let Ajv;
try {
  Ajv = require('ajv');
} catch {
  console.error('package-config-check: ajv is not installed (it comes with eslint and electron-builder)');
  process.exit(3);
}
const schema = require(schemaPath);
const config = JSON.parse(JSON.stringify(require('../build/electron-builder.cjs')));
const major = Number(require('ajv/package.json').version.split('.')[0]);
// ajv 6 (eslint's) and ajv 8 take different options for the same thing: draft-07, formats not enforced.
const ajv = new Ajv(
  major >= 8
    ? { allErrors: true, strict: false, validateFormats: false }
    : { allErrors: true, unknownFormats: 'ignore' },
);
if (ajv.validate(schema, config)) {
  console.log(`build/electron-builder.cjs is valid for ${schemaPath}`);
} else {
  for (const e of ajv.errors ?? [])
    console.error(`build/electron-builder.cjs${e.dataPath ?? e.instancePath}: ${e.message}`);
  process.exit(1);
}
