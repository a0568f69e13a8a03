/** Moved to src/steps/duration.ts: step modes parse their options with it, and src/steps must not import src/runner. */
export * from '../steps/duration.ts';
