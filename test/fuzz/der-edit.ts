// DER-aware mutations for the fuzz targets: one element of the TLV tree edited (tag, contents, length, removed,
// repeated, nested, replaced), the enclosing lengths then written anew, so an edit reaches the parser deep inside
// rather than failing the outermost length check. An OCTET STRING whose contents are DER (extension values, the
// nonce) is walked into too.
import fc from 'fast-check';
import { byteEdit, BytesEdit } from './mutate';

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
