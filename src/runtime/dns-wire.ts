/**
 * The little of DNS's wire format (RFC 1035) that troupe's name server needs:
 * reading the one question of a query, and writing an answer with A records,
 * or an error, to it. Anything else a query carries (EDNS options) is left
 * unanswered, as a server without those extensions may (RFC 6891 §7);
 * queries for other names are forwarded as they came, never parsed further.
 */

export const TYPE_A = 1;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

const HEADER = 12;
const NAME_MAX = 255;

export interface Question {
  id: number;
  /** Opcode 0 is a standard query; troupe answers no other. */
  opcode: number;
  recursionDesired: boolean;
  /** Lower case, without the final dot; "" for the root. */
  name: string;
  type: number;
  class: number;
  /** Where the question ends in the message (answers repeat it). */
  end: number;
}

/** Why a message is not a query troupe can read, or its question. Undefined: too short to answer at all (dropped). */
export function readQuestion(message: Buffer): Question | { id: number; error: number } | undefined {
  if (message.length < HEADER) return undefined;
  const id = message.readUInt16BE(0);
  const flags = message.readUInt16BE(2);
  // A response (QR set) is never answered: two servers must not answer each other forever.
  if (flags & 0x8000) return undefined;
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { id, error: RCODE.NOTIMP };
  if (message.readUInt16BE(4) !== 1) return { id, error: RCODE.FORMERR };
  const labels: string[] = [];
  let at = HEADER;
  let length = 0;
  for (;;) {
    if (at >= message.length) return { id, error: RCODE.FORMERR };
    const size = message[at]!;
    // No compression in a question (nothing before it to point to), and no extended label types.
    if (size > 63) return { id, error: RCODE.FORMERR };
    at += 1;
    if (size === 0) break;
    length += size + 1;
    if (length > NAME_MAX || at + size > message.length) return { id, error: RCODE.FORMERR };
    labels.push(message.toString("latin1", at, at + size).toLowerCase());
    at += size;
  }
  if (at + 4 > message.length) return { id, error: RCODE.FORMERR };
  return {
    id,
    opcode,
    recursionDesired: (flags & 0x0100) !== 0,
    name: labels.join("."),
    type: message.readUInt16BE(at),
    class: message.readUInt16BE(at + 2),
    end: at + 4,
  };
}

/**
 * The reply to `query`: its question repeated (when it could be read), then
 * one A record per address, valid for `ttl` seconds, authoritative.
 */
export function reply(
  query: Buffer,
  question: Question | { id: number; error: number },
  rcode: number,
  addresses: readonly string[] = [],
  ttl = 5,
): Buffer {
  const asked = "error" in question ? undefined : question;
  const questionBytes = asked ? query.subarray(HEADER, asked.end) : Buffer.alloc(0);
  const out = Buffer.alloc(HEADER + questionBytes.length + addresses.length * 16);
  out.writeUInt16BE(question.id, 0);
  // QR, the opcode as asked, AA, RD as asked, RA (names beyond troupe's are looked up for the asker).
  const opcode = asked ? asked.opcode : (query.readUInt16BE(2) >> 11) & 0xf;
  const rd = asked ? asked.recursionDesired : (query.readUInt16BE(2) & 0x0100) !== 0;
  out.writeUInt16BE(0x8000 | (opcode << 11) | 0x0400 | (rd ? 0x0100 : 0) | 0x0080 | rcode, 2);
  out.writeUInt16BE(asked ? 1 : 0, 4);
  out.writeUInt16BE(addresses.length, 6);
  questionBytes.copy(out, HEADER);
  let at = HEADER + questionBytes.length;
  for (const address of addresses) {
    out.writeUInt16BE(0xc000 | HEADER, at); // the name: a pointer to the question's
    out.writeUInt16BE(TYPE_A, at + 2);
    out.writeUInt16BE(CLASS_IN, at + 4);
    out.writeUInt32BE(ttl, at + 6);
    out.writeUInt16BE(4, at + 10);
    address.split(".").forEach((part, i) => out.writeUInt8(Number(part), at + 12 + i));
    at += 16;
  }
  return out;
}

/** A query for `name` (tests, and troupe's own check that an engine's DNS knows a name yet). */
export function query(id: number, name: string, type = TYPE_A): Buffer {
  const labels = name.split(".").filter((l) => l !== "");
  const out = Buffer.alloc(HEADER + labels.reduce((n, l) => n + l.length + 1, 0) + 5);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(0x0100, 2);
  out.writeUInt16BE(1, 4);
  let at = HEADER;
  for (const label of labels) {
    out.writeUInt8(label.length, at);
    out.write(label, at + 1, "latin1");
    at += label.length + 1;
  }
  out.writeUInt8(0, at);
  out.writeUInt16BE(type, at + 1);
  out.writeUInt16BE(CLASS_IN, at + 3);
  return out;
}

/** The A records of an answer (those whose data is 4 bytes), and its code; undefined when it cannot be read. */
export function readAnswer(message: Buffer): { id: number; rcode: number; addresses: string[] } | undefined {
  if (message.length < HEADER) return undefined;
  const id = message.readUInt16BE(0);
  const rcode = message.readUInt16BE(2) & 0xf;
  const questions = message.readUInt16BE(4);
  const answers = message.readUInt16BE(6);
  let at = HEADER;
  const skipName = () => {
    while (at < message.length) {
      const size = message[at]!;
      if (size >= 0xc0) return (at += 2);
      at += size + 1;
      if (size === 0) return at;
    }
    return at;
  };
  for (let i = 0; i < questions; i++) {
    skipName();
    at += 4;
  }
  const addresses: string[] = [];
  for (let i = 0; i < answers && at < message.length; i++) {
    skipName();
    if (at + 10 > message.length) return undefined;
    const type = message.readUInt16BE(at);
    const size = message.readUInt16BE(at + 8);
    at += 10;
    if (at + size > message.length) return undefined;
    if (type === TYPE_A && size === 4) addresses.push([...message.subarray(at, at + 4)].join("."));
    at += size;
  }
  return { id, rcode, addresses };
}
