// The packages the bundle (scripts/build-cli.mjs) leaves in node_modules,
// which a copy of the CLI needs beside build/ (the k8s image, the tests'
// world-readable install): koffi with its native addons in @koromix/*, and
// the libraries required at their first use (src/deferred.ts).
export const UNBUNDLED_MODULES = ['koffi', '@koromix', 'jsonata', 're2js'];
