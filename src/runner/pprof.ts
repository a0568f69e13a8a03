/**
 * A profile's rows in the pprof format (profile.proto, gzipped: `.pb.gz`),
 * the format `go tool pprof`, Parca, Pyroscope and Grafana read. Encoding is
 * pprof-format's (a small, dependency-free encoder); this file only maps our
 * rows onto it: each distinct frame name is one Function and one Location,
 * each row one Sample (its locations leaf first, as pprof wants), valued in
 * samples, with the process's `pid` and `comm` as labels when the row has
 * them. A folded stack starts with the process name (flame graph tools show
 * it as the root): when that first frame is the row's `comm`, it becomes the
 * label and not a frame, so `pprof -top` lists functions only.
 */
import { gzipSync } from 'node:zlib';
import { Function as PFunction, Label, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';

/** What a row gives: a folded stack ("root;...;leaf") and its count; pid and comm when profile/cpu wrote it. */
export interface ProfileRow {
  stack: string;
  count: number;
  pid?: number;
  comm?: string;
}

/** Rows with a folded stack and a positive count; anything else is left out. */
export function profileRows(records: Iterable<unknown>): ProfileRow[] {
  const out: ProfileRow[] = [];
  for (const r of records) {
    const o = r as Partial<ProfileRow> | null;
    if (!o || typeof o.stack !== 'string' || typeof o.count !== 'number' || !(o.count > 0)) continue;
    out.push({ stack: o.stack, count: o.count, ...(typeof o.pid === 'number' ? { pid: o.pid } : {}), ...(typeof o.comm === 'string' ? { comm: o.comm } : {}) });
  }
  return out;
}

/**
 * The gzipped profile.proto of `rows`. `periodNs`: the sampling period
 * (1e9 / frequency), which gives each sample a cpu time as `go tool pprof`
 * shows it; omitted, samples are counts only.
 */
export function pprofGz(rows: ProfileRow[], periodNs?: number): Buffer {
  const strings = new StringTable();
  const functions: PFunction[] = [];
  const locations: Location[] = [];
  const locationOf = new Map<string, number>();
  const location = (name: string): number => {
    let id = locationOf.get(name);
    if (id === undefined) {
      id = locations.length + 1;
      functions.push(new PFunction({ id, name: strings.dedup(name), systemName: strings.dedup(name) }));
      locations.push(new Location({ id, line: [new Line({ functionId: id })] }));
      locationOf.set(name, id);
    }
    return id;
  };
  const sampleType = [new ValueType({ type: strings.dedup('samples'), unit: strings.dedup('count') })];
  if (periodNs) sampleType.push(new ValueType({ type: strings.dedup('cpu'), unit: strings.dedup('nanoseconds') }));
  const samples = rows.map((r) => {
    let frames = r.stack.split(';');
    if (r.comm !== undefined && frames.length > 1 && frames[0] === r.comm) frames = frames.slice(1);
    const label: Label[] = [];
    if (r.pid !== undefined) label.push(new Label({ key: strings.dedup('pid'), num: r.pid }));
    if (r.comm !== undefined) label.push(new Label({ key: strings.dedup('comm'), str: strings.dedup(r.comm) }));
    return new Sample({
      locationId: frames.reverse().map(location),
      value: periodNs ? [r.count, r.count * periodNs] : [r.count],
      label,
    });
  });
  const profile = new Profile({
    sampleType,
    sample: samples,
    location: locations,
    function: functions,
    stringTable: strings,
    ...(periodNs ? { periodType: sampleType[1], period: periodNs } : {}),
  });
  return gzipSync(profile.encode());
}
