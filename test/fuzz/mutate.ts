// Mutations of corpus inputs as fast-check arbitraries. A run is one corpus input plus a short list of edits drawn
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

// --- DER: edits of one element of the TLV tree, the enclosing lengths then written anew, so an edit reaches the
// parser deep inside rather than failing the outermost length check. An OCTET STRING whose contents are DER
// (extension values, the nonce) is walked into too.

interface Node {
  tag: number;
  /** Children when constructed (or an OCTET STRING holding DER); contents otherwise. */
  children?: Node[];
  contents: Buffer;
  /** A length written as is, instead of the minimal one (edits only). */
  rawLength?: Buffer;
}

/** Deeper trees are left as they are: the edits recurse (nesting edits add up to 1,000 levels each). */
const MAX_DEPTH = 1000;

/** The TLV tree of single-byte-tag DER; undefined when the bytes are not that. */
export function derTree(b: Buffer, depth = 0): Node[] | undefined {
  if (depth > MAX_DEPTH) return undefined;
  const nodes: Node[] = [];
  let i = 0;
  while (i < b.length) {
    const tag = b[i]!;
    if ((tag & 0x1f) === 0x1f || i + 1 >= b.length) return undefined;
    let len = b[i + 1]!;
    let p = i + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || p + n > b.length) return undefined;
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + b[p + k]!;
      p += n;
    }
    if (p + len > b.length) return undefined;
    const contents = b.subarray(p, p + len);
    const node: Node = { tag, contents };
    if (tag & 0x20 || tag === 0x04) {
      const inner = len > 0 ? derTree(contents, depth + 1) : undefined;
      if (inner) node.children = inner;
      else if (tag & 0x20 && len > 0) return undefined;
      else if (tag & 0x20) node.children = [];
    }
    nodes.push(node);
    i = p + len;
  }
  return nodes;
}

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derBytes(nodes: Node[]): Buffer {
  return Buffer.concat(nodes.map((n) => {
    const contents = n.children ? derBytes(n.children) : n.contents;
    return Buffer.concat([Buffer.from([n.tag]), n.rawLength ?? lengthBytes(contents.length), contents]);
  }));
}

/** Every node, depth first, with the list holding it. */
function walk(nodes: Node[], out: { node: Node; siblings: Node[]; index: number }[] = []) {
  nodes.forEach((node, index) => {
    out.push({ node, siblings: nodes, index });
    if (node.children) walk(node.children, out);
  });
  return out;
}

const INTERESTING_CONTENTS = [
  Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0]), Buffer.from([0x00, 0x10, 0x01]), Buffer.from([0xff, 0xff]),
  Buffer.from([0x80]), Buffer.from([0x05, 0x00]), Buffer.from([0x01, 0x01, 0xff]), Buffer.alloc(21, 0x7f), Buffer.alloc(41, 0x11),
  Buffer.alloc(129, 0x42), Buffer.from('2b0e03021a', 'hex'), Buffer.from('608648016503040201', 'hex'), Buffer.from('2b060105050730010102', 'hex'),
];
const INTERESTING_TAGS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x17, 0x18, 0x30, 0x31, 0x80, 0xa0, 0xa1, 0xa2, 0xa3];
const INTERESTING_LENGTHS = [
  Buffer.from([0x80]), Buffer.from([0x81, 0x00]), Buffer.from([0x82, 0x00, 0x05]), Buffer.from([0x84, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0xff]), Buffer.from([0x7f]),
];

/** Inputs are kept under 128 KiB (a POST body is limited to 64 KiB by default): larger ones test nothing more. */
const MAX_INPUT = 128 << 10;

/** Mostly a few, now and then many (more CertIDs than allowed, nesting as deep as it goes). */
const count = (max: number) => fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4 }), weight: 6 }, { arbitrary: fc.integer({ min: 1, max }), weight: 1 });

// Contents are shared: edits replace them, never change them in place.
const clone = (n: Node): Node => ({ ...n, ...(n.children ? { children: n.children.map(clone) } : {}) });

type NodeEdit = (target: { node: Node; siblings: Node[]; index: number }, all: { node: Node }[]) => void;

const nodeEdit: fc.Arbitrary<NodeEdit> = fc.oneof(
  // Another tag (SEQUENCE for SET, INTEGER for ENUMERATED, a context tag, ...).
  fc.constantFrom(...INTERESTING_TAGS).map((tag): NodeEdit => ({ node }) => void (node.tag = tag)),
  // Contents replaced: a leading zero, a lone 0x80, an oversized value, a hash OID, NULL parameters, ...
  fc.oneof(fc.constantFrom(...INTERESTING_CONTENTS), fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a))).map((c): NodeEdit => ({ node }) => {
    delete node.children;
    node.contents = c;
  }),
  // A non-minimal, indefinite, overlong or short length.
  fc.constantFrom(...INTERESTING_LENGTHS).map((l): NodeEdit => ({ node }) => void (node.rawLength = l)),
  fc.constant<NodeEdit>(({ node }) => {
    const len = node.children ? derBytes(node.children).length : node.contents.length;
    node.rawLength = Buffer.from([0x82, (len >> 8) & 0xff, len & 0xff]);
  }),
  // Removed, repeated (up to 1,200 times: more CertIDs than allowed), or nested (up to 1,000 deep).
  fc.constant<NodeEdit>(({ siblings, index }) => void siblings.splice(index, 1)),
  count(1200).map((times): NodeEdit => ({ node, siblings, index }) => {
    const n = Math.min(times, Math.floor(MAX_INPUT / (derBytes([node]).length + 1)));
    siblings.splice(index, 0, ...Array.from({ length: n }, () => clone(node)));
  }),
  count(MAX_DEPTH).map((depth): NodeEdit => ({ node, siblings, index }) => {
    let n = node;
    for (let d = 0; d < depth; d++) n = { tag: 0x30, contents: Buffer.alloc(0), children: [n] };
    siblings[index] = n;
  }),
  // Replaced by another element of the same input (a CertID where the hash was, ...).
  fc.nat().map((which): NodeEdit => ({ node, siblings, index }, all) => {
    const other = all[which % all.length]!.node;
    if (other !== node) siblings[index] = clone(other);
  }),
  // A trailing element appended inside.
  fc.constantFrom(...INTERESTING_TAGS).map((tag): NodeEdit => ({ node }) => {
    if (node.children) node.children.push({ tag, contents: Buffer.from([0]) });
  }),
);

/** One edit of one DER element; inputs that are not DER go through unchanged. */
export const derEdit: fc.Arbitrary<BytesEdit> = fc.tuple(fc.nat(), nodeEdit).map(([at, edit]): BytesEdit => (b) => {
  const tree = b.length <= MAX_INPUT ? derTree(b) : undefined;
  if (!tree) return b;
  const all = walk(tree);
  if (all.length === 0) return b;
  edit(all[at % all.length]!, all);
  return derBytes(tree);
});

/** DER edits mostly, byte edits now and then: most runs keep enough structure to reach deep into the parser. */
export const derOrByteEdit: fc.Arbitrary<BytesEdit> = fc.oneof({ arbitrary: derEdit, weight: 3 }, { arbitrary: byteEdit, weight: 1 });

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
