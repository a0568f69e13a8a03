/**
 * Kubernetes names made from names users chose (recipes, pods, owners):
 * the API server refuses an object whose name or label breaks these rules,
 * and says so only once the run is under way.
 */

/**
 * A DNS-1123 label (at most `max` ≤ 63 characters of a-z, 0-9 and '-',
 * starting and ending with a letter or digit): also a valid label value and
 * a valid part of a longer name. `fallback` when nothing is left.
 */
export function dnsLabel(name: string, fallback: string, max = 63): string {
  return cut(labelChars(name), Math.min(max, 63)) || fallback;
}

/**
 * A DNS-1123 subdomain (what most objects' names may be: a NetworkPolicy, a
 * SeccompProfile, a ConfigMap): dot-separated labels, each starting and
 * ending with a letter or digit, at most `max` ≤ 253 characters in all.
 * `fallback` when nothing is left.
 */
export function dnsSubdomain(name: string, fallback: string, max = 253): string {
  const labels = name.split('.').map(labelChars).filter(Boolean);
  return cut(labels.join('.'), Math.min(max, 253)) || fallback;
}

function labelChars(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
}

/** A cut can end on a separator ('-' or '.'): drop it. */
function cut(name: string, max: number): string {
  return name.slice(0, max).replace(/[^a-z0-9]+$/, '');
}
