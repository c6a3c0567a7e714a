/**
 * The little of the DNS wire format (RFC 1035) the embedded resolver needs: read a query's header
 * and first question, and write a response with A records (or none, with a response code). Pure.
 */

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;
export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
const HEADER_BYTES = 12;
/** Longest name (RFC 1035 §2.3.4) and the label-pointer hops we follow at most. */
const MAX_NAME_BYTES = 255;
const MAX_POINTER_HOPS = 16;
/** A UDP response without EDNS must fit in 512 bytes: answers beyond that are cut and TC set. */
export const MAX_UDP_RESPONSE_BYTES = 512;

export interface DnsQuery {
  id: number;
  /** Recursion desired (copied into the response). */
  recursionDesired: boolean;
  opcode: number;
  /** Lower-case, without the trailing dot. */
  name: string;
  type: number;
  class: number;
  /** The question section as sent, for echoing back. */
  questionBytes: Buffer;
}

export class DnsFormatError extends Error {}

/** Reads the header and the first question; throws DnsFormatError on anything malformed. */
export function parseQuery(message: Buffer): DnsQuery {
  if (message.length < HEADER_BYTES) throw new DnsFormatError('message shorter than a header');
  const flags = message.readUInt16BE(2);
  if ((flags & 0x8000) !== 0) throw new DnsFormatError('not a query');
  if (message.readUInt16BE(4) < 1) throw new DnsFormatError('no question');
  const { name, end } = readName(message, HEADER_BYTES);
  if (end + 4 > message.length) throw new DnsFormatError('question cut short');
  return {
    id: message.readUInt16BE(0),
    recursionDesired: (flags & 0x0100) !== 0,
    opcode: (flags >> 11) & 0x0f,
    name,
    type: message.readUInt16BE(end),
    class: message.readUInt16BE(end + 2),
    questionBytes: message.subarray(HEADER_BYTES, end + 4),
  };
}

function readName(message: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let offset = start;
  let end: number | undefined;
  let hops = 0;
  let bytes = 0;
  for (;;) {
    if (offset >= message.length) throw new DnsFormatError('name runs past the message');
    const length = message[offset] ?? 0;
    if ((length & 0xc0) === 0xc0) {
      if (offset + 1 >= message.length || ++hops > MAX_POINTER_HOPS) throw new DnsFormatError('bad name pointer');
      end ??= offset + 2;
      offset = ((length & 0x3f) << 8) | (message[offset + 1] ?? 0);
      continue;
    }
    if ((length & 0xc0) !== 0) throw new DnsFormatError('unknown label type');
    if (length === 0) break;
    bytes += length + 1;
    if (bytes > MAX_NAME_BYTES || offset + 1 + length > message.length) throw new DnsFormatError('name too long');
    labels.push(message.toString('latin1', offset + 1, offset + 1 + length).toLowerCase());
    offset += 1 + length;
  }
  return { name: labels.join('.'), end: end ?? offset + 1 };
}

/**
 * A response to `query` with an A record per address (name compressed to the question's),
 * authoritative, recursion available. `maxBytes` cuts answers that do not fit and sets TC.
 */
export function encodeResponse(query: DnsQuery, rcode: number, addresses: readonly string[], ttlSeconds: number, maxBytes = Number.MAX_SAFE_INTEGER): Buffer {
  const answers: Buffer[] = [];
  let size = HEADER_BYTES + query.questionBytes.length;
  let truncated = false;
  for (const address of addresses) {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc000 | HEADER_BYTES, 0); // pointer to the question's name
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(CLASS_IN, 4);
    record.writeUInt32BE(ttlSeconds, 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((part, index) => record.writeUInt8(Number(part) & 0xff, 12 + index));
    if (size + record.length > maxBytes) {
      truncated = true;
      break;
    }
    answers.push(record);
    size += record.length;
  }
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(query.id, 0);
  const flags = 0x8000 | (query.opcode << 11) | 0x0400 | (truncated ? 0x0200 : 0) | (query.recursionDesired ? 0x0100 : 0) | 0x0080 | (rcode & 0x0f);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.questionBytes, ...answers]);
}

/** A bare error response (FORMERR) for a message whose question could not be read. */
export function formatErrorResponse(message: Buffer): Buffer | undefined {
  if (message.length < 2) return undefined;
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(message.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8000 | RCODE_FORMERR, 2);
  return header;
}

/** Builds a query (for tests and the forwarder's own use). */
export function encodeQuery(id: number, name: string, type = TYPE_A): Buffer {
  const labels = name.split('.').filter((label) => label !== '');
  const parts = labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')]));
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(CLASS_IN, 3);
  return Buffer.concat([header, ...parts, tail]);
}

/** The A records of a response (for tests): addresses in order. */
export function decodeAnswers(message: Buffer): { rcode: number; truncated: boolean; addresses: string[] } {
  const flags = message.readUInt16BE(2);
  const answerCount = message.readUInt16BE(6);
  let offset = readName(message, HEADER_BYTES).end + 4;
  const addresses: string[] = [];
  for (let index = 0; index < answerCount; index += 1) {
    offset = readName(message, offset).end;
    const type = message.readUInt16BE(offset);
    const length = message.readUInt16BE(offset + 8);
    if (type === TYPE_A && length === 4) addresses.push([...message.subarray(offset + 10, offset + 14)].join('.'));
    offset += 10 + length;
  }
  return { rcode: flags & 0x0f, truncated: (flags & 0x0200) !== 0, addresses };
}
