// The packages the bundle (scripts/build-cli.mjs) leaves in node_modules,
// which a copy of the CLI needs beside build/ (the k8s image, the tests'
// world-readable install): koffi with its native addons in @koromix/*, the
// libraries required at their first use (src/deferred.ts), and uplot, whose
// script and CSS report.html inlines (src/runner/report-html.ts reads them).
export const UNBUNDLED_MODULES = ['koffi', '@koromix', 'jsonata', 're2js', 'uplot'];
