// A spec's schema problems as one condition message: "spec.sinks[0].http.url: must be ...; ...".
// The wording is api/validate.ts's, so conditions read like `tally validate`. Parse with
// `reportInput: true`: the wording of a wrong type depends on the input zod saw.
import type { z } from 'zod';
import { describeIssue, formatPath } from '../../api/validate.ts';

/** Every issue as "path: what is wrong and what is expected", paths from `root`. */
export function describeSpecIssues(error: z.ZodError, root = 'spec'): string {
  return error.issues
    .map((issue) => `${formatPath([root, ...issue.path])}: ${describeIssue(issue)}`)
    .join('; ');
}
