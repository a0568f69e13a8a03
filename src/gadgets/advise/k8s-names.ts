/** Kubernetes object names the advise gadgets derive from workload, pod and recipe names. */

/**
 * A DNS-1123 subdomain (what a NetworkPolicy's or a SeccompProfile's name
 * may be) from any name: Kinds, recipe names and owners may hold capitals,
 * underscores or spaces; `fallback` when nothing is left.
 */
export function dnsSubdomain(name: string, fallback: string): string {
  const base = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return (base || fallback).slice(0, 253).replace(/[^a-z0-9]+$/, '');
}
