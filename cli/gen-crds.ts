// Writes crds/*.yaml from the zod schemas in api/ (npm run gen:crds). Tests fail when they are stale.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrdFiles } from '../api/crd-files.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await mkdir(join(root, 'crds'), { recursive: true });
for (const [file, text] of Object.entries(renderCrdFiles())) {
  await writeFile(join(root, 'crds', file), text);
  console.log(`wrote crds/${file}`);
}
