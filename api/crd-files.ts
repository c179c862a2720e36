// The text of crds/*.yaml, so the generator and the staleness test render exactly the same bytes.
import * as yaml from 'js-yaml';
import { buildCrd } from './crd.ts';
import { RESOURCES } from './resources.ts';

/** Where the generated CRDs are committed (repo-relative). */
export const CRD_DIRS = ['crds', 'charts/tally/crds'] as const;

const HEADER = '# Generated from api/ by `npm run gen:crds`. Do not edit.\n';

export function renderCrdFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const def of RESOURCES) {
    files[`tally.dev_${def.plural}.yaml`] =
      HEADER + yaml.dump(buildCrd(def), { lineWidth: 120, noRefs: true });
  }
  return files;
}
