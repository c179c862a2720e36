// Paths into JSON values, as people read them in error messages and test diffs (api/paths.ts).
export { formatPath } from '../../api/paths.ts';
