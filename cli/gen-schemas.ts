// Writes schemas/canonical/v1/*.json, the canonical model as JSON Schema, from the zod schemas in api/
// (npm run gen:schemas), formatted as biome formats JSON so `npm run check` stays clean. Tests fail when
// the committed files no longer say what api/ generates.
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { renderSchemaFiles, SCHEMA_DIR } from '../api/json-schema.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, SCHEMA_DIR);
const files = renderSchemaFiles();
await mkdir(dir, { recursive: true });
// A schema whose entity is gone must not linger as if it were still published.
for (const old of await readdir(dir)) {
  if (old.endsWith('.json') && !(old in files)) await rm(join(dir, old));
}
for (const [file, text] of Object.entries(files)) {
  await writeFile(join(dir, file), text);
  console.log(`wrote ${SCHEMA_DIR}/${file}`);
}
await promisify(execFile)(join(root, 'node_modules/.bin/biome'), ['format', '--write', SCHEMA_DIR], {
  cwd: root,
});
