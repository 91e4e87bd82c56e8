/**
 * Reads a Prometheus text file (node_exporter's textfile format) the way a scraper would, with the
 * parse-prometheus-text-format devDependency: for the replay tests that check the metrics file a
 * deployed channel writes.
 */

/** One metric family as the parser returns it (no types ship with it; shape from its README). */
export interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

const parse = require('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

/** Parses `text`; throws the parser's error when it is not the text format. */
export function parsePrometheus(text: string): ParsedFamily[] {
  return parse(text);
}

/**
 * The value of metric `name` whose labels include `labels` in the parsed `families`, or undefined
 * when there is none.
 */
export function metricValue(families: ParsedFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const m = families.find((f) => f.name === name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m === undefined ? undefined : Number(m.value);
}
