// Mutations of corpus inputs as fast-check arbitraries (DER-aware ones in der-edit.ts). A run is one corpus input plus a short list of edits drawn
// from the seed, so a failure shrinks to the fewest edits and replays from its seed; positions are taken modulo the
// input's size, so every edit applies to every input.
import fc from 'fast-check';

/** Picks one corpus input; `edits` turns it into the input of a run. */
export function mutated<T>(corpus: readonly T[], edits: fc.Arbitrary<(input: T, corpus: readonly T[]) => T>, maxEdits = 6): fc.Arbitrary<T> {
  if (corpus.length === 0) throw new Error('empty corpus');
  return fc
    .tuple(fc.nat({ max: corpus.length - 1 }), fc.array(edits, { minLength: 0, maxLength: maxEdits }))
    .map(([i, list]) => list.reduce<T>((input, edit) => edit(input, corpus), corpus[i]!));
}

// --- Bytes: flips, interesting values, insertions, deletions, repeats, splices of another corpus input.

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x04, 0x05, 0x0a, 0x30, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xa0, 0xff];

export type BytesEdit = (input: Buffer, corpus: readonly Buffer[]) => Buffer;

export const byteEdit: fc.Arbitrary<BytesEdit> = fc.oneof(
  fc.tuple(fc.nat(), fc.nat({ max: 7 })).map(([at, bit]): BytesEdit => (b) => {
    if (b.length === 0) return b;
    const c = Buffer.from(b);
    c[at % c.length]! ^= 1 << bit;
    return c;
  }),
  fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.nat({ max: 255 }))).map(([at, v]): BytesEdit => (b) => {
    if (b.length === 0) return b;
    const c = Buffer.from(b);
    c[at % c.length] = v;
    return c;
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, bytes]): BytesEdit => (b) => {
    const i = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, i), bytes, b.subarray(i)]);
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 64 })).map(([at, n]): BytesEdit => (b) => {
    if (b.length === 0) return b;
    const i = at % b.length;
    return Buffer.concat([b.subarray(0, i), b.subarray(i + n)]);
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 64 })).map(([at, n, times]): BytesEdit => (b) => {
    if (b.length === 0) return b;
    const i = at % b.length;
    const piece = b.subarray(i, i + n);
    return Buffer.concat([b.subarray(0, i), ...Array<Buffer>(times).fill(piece), b.subarray(i)]);
  }),
  fc.nat().map((at): BytesEdit => (b) => b.subarray(0, at % (b.length + 1))),
  fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 256 })).map(([at, which, from, n]): BytesEdit => (b, corpus) => {
    const other = corpus[which % corpus.length]!;
    const i = at % (b.length + 1);
    const j = other.length ? from % other.length : 0;
    return Buffer.concat([b.subarray(0, i), other.subarray(j, j + n), b.subarray(i)]);
  }),
);

// --- Text: lines, tab-separated fields and characters, for index.txt and YAML.

export type TextEdit = (input: string, corpus: readonly string[]) => string;

export function textEdit(dictionary: readonly string[]): fc.Arbitrary<TextEdit> {
  const word = fc.oneof(fc.constantFrom(...dictionary), fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }));
  const lines = (s: string) => s.split('\n');
  return fc.oneof(
    fc.tuple(fc.nat(), word).map(([at, w]): TextEdit => (s) => {
      const i = at % (s.length + 1);
      return s.slice(0, i) + w + s.slice(i);
    }),
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 16 })).map(([at, n]): TextEdit => (s) => {
      const i = at % (s.length + 1);
      return s.slice(0, i) + s.slice(i + n);
    }),
    fc.tuple(fc.nat(), fc.nat(), word).map(([line, field, w]): TextEdit => (s) => {
      const ls = lines(s);
      const l = line % ls.length;
      const fields = ls[l]!.split('\t');
      fields[field % fields.length] = w;
      ls[l] = fields.join('\t');
      return ls.join('\n');
    }),
    fc.tuple(fc.nat(), fc.constantFrom('delete', 'duplicate', 'indent', 'dedent')).map(([line, op]): TextEdit => (s) => {
      const ls = lines(s);
      const l = line % ls.length;
      if (op === 'delete') ls.splice(l, 1);
      else if (op === 'duplicate') ls.splice(l, 0, ls[l]!);
      else if (op === 'indent') ls[l] = '  ' + ls[l];
      else ls[l] = ls[l]!.replace(/^ {1,2}/, '');
      return ls.join('\n');
    }),
    fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([line, which, from]): TextEdit => (s, corpus) => {
      const ls = lines(s);
      const other = lines(corpus[which % corpus.length]!);
      ls.splice(line % (ls.length + 1), 0, other[from % other.length]!);
      return ls.join('\n');
    }),
  );
}

// --- JSON-shaped values (parsed YAML, JSON bodies): a node replaced, removed, added to or retyped.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type ValueEdit = (input: Json, corpus: readonly Json[]) => Json;

function nodes(v: Json, out: { parent: Json[] | { [k: string]: Json } | undefined; key: string | number; value: Json }[] = [], parent?: Json[] | { [k: string]: Json }, key: string | number = '') {
  out.push({ parent, key, value: v });
  if (Array.isArray(v)) v.forEach((x, i) => nodes(x, out, v, i));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) nodes(v[k]!, out, v, k);
  return out;
}

export function valueEdit(scalars: readonly Json[], keys: readonly string[]): fc.Arbitrary<ValueEdit> {
  const scalar: fc.Arbitrary<Json> = fc.oneof(
    { arbitrary: fc.constantFrom(...scalars), weight: 4 },
    { arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, weight: 1 },
  );
  const at = (v: Json, i: number) => {
    const all = nodes(v);
    return all[i % all.length]!;
  };
  const set = (p: { parent: Json[] | { [k: string]: Json } | undefined; key: string | number }, x: Json, root: Json): Json => {
    if (!p.parent) return x;
    (p.parent as Record<string | number, Json>)[p.key] = x;
    return root;
  };
  return fc.oneof(
    fc.tuple(fc.nat(), scalar).map(([i, x]): ValueEdit => (v0) => {
      const v = structuredClone(v0);
      return set(at(v, i), x, v);
    }),
    fc.nat().map((i): ValueEdit => (v0) => {
      const v = structuredClone(v0);
      const p = at(v, i);
      if (Array.isArray(p.parent)) p.parent.splice(p.key as number, 1);
      else if (p.parent) delete p.parent[p.key];
      return v;
    }),
    fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })), scalar).map(([i, k, x]): ValueEdit => (v0) => {
      const v = structuredClone(v0);
      const p = at(v, i).value;
      if (Array.isArray(p)) p.push(x);
      else if (p && typeof p === 'object') p[k] = x;
      return v;
    }),
    fc.tuple(fc.nat(), fc.constantFrom('array', 'string', 'object')).map(([i, how]): ValueEdit => (v0) => {
      const v = structuredClone(v0);
      const p = at(v, i);
      const x = how === 'array' ? [p.value] : how === 'string' ? JSON.stringify(p.value) : { value: p.value };
      return set(p, x, v);
    }),
    fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([i, which, j]): ValueEdit => (v0, corpus) => {
      const v = structuredClone(v0);
      return set(at(v, i), structuredClone(at(corpus[which % corpus.length]!, j).value), v);
    }),
  );
}

export type { Json };
