/**
 * `path.posix.join` without Node (this library is pure: lint bars `node:` built-ins): the parts joined
 * with `/`, empty and `.` segments dropped, `..` taking back the segment before it.
 */
export function joinPosix(...parts: string[]): string {
  const joined = parts.filter((part) => part !== '').join('/');
  if (joined === '') return '.';
  const absolute = joined.startsWith('/');
  const segments: string[] = [];
  for (const segment of joined.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment !== '..') segments.push(segment);
    else if (segments.length > 0 && segments[segments.length - 1] !== '..') segments.pop();
    else if (!absolute) segments.push(segment);
  }
  const path = (absolute ? '/' : '') + segments.join('/');
  if (path === '') return absolute ? '/' : '.';
  return joined.endsWith('/') && !path.endsWith('/') ? `${path}/` : path;
}
