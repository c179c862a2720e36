// A spec's schema problems as one condition message: "spec.sinks[0].http.url: must be ...; ...".
// describeIssue duplicates api/validate.ts's (not exported there) so that conditions read like
// `tally validate`; merge the two once validate.ts exports it. Parse with `reportInput: true`:
// the wording of a wrong type depends on the input zod saw.
import type { z } from 'zod';
import { formatPath } from '../../api/validate.ts';

/** Every issue as "path: what is wrong and what is expected", paths from `root`. */
export function describeSpecIssues(error: z.ZodError, root = 'spec'): string {
  return error.issues
    .map((issue) => `${formatPath([root, ...issue.path])}: ${describeIssue(issue)}`)
    .join('; ');
}

/** Turn a zod issue into "what is wrong and what is expected" (as api/validate.ts does). */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? `is required (expected ${issue.expected})`
        : `has the wrong type: expected ${issue.expected}, got ${typeOf(issue.input)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}: remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling (kubectl explain shows the fields)`;
    case 'invalid_value':
      return `is ${JSON.stringify(issue.input)}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `needs at least ${issue.minimum} item(s)`
        : issue.origin === 'string'
          ? `must be at least ${issue.minimum} character(s) long`
          : `must be at least ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'array'
        ? `allows at most ${issue.maximum} item(s)`
        : issue.origin === 'string'
          ? `must be at most ${issue.maximum} characters long`
          : `must be at most ${issue.maximum}`;
    case 'invalid_union':
      return 'does not match any allowed shape';
    default:
      return issue.message;
  }
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
