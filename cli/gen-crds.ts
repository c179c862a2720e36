// Writes crds/*.yaml from the zod schemas in api/ (npm run gen:crds). Tests fail when they are stale.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_DIRS, renderCrdFiles } from '../api/crd-files.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The chart carries the same CRDs in its crds/ folder, where helm installs them from.
for (const dir of CRD_DIRS) {
  await mkdir(join(root, dir), { recursive: true });
  for (const [file, text] of Object.entries(renderCrdFiles())) {
    await writeFile(join(root, dir, file), text);
    console.log(`wrote ${dir}/${file}`);
  }
}
