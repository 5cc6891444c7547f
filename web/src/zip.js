// Just enough ZIP for stream snapshots (docs/format.md section 7): read archives of stored or
// deflated members (zip64 extra fields and records included, as numpy writes them), and write
// stored members exactly as numpy's `savez` does (zip64 local headers, fixed 1980-01-01 dates),
// so a snapshot written here is byte for byte the one Python writes for the same state.

/** The bytes are not a ZIP archive this reader accepts. */
export class ZipError extends Error {}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ZIP's, IEEE 802.3). @param {Uint8Array} data */
export function crc32(data) {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const LOCAL = 0x04034b50, CENTRAL = 0x02014b50, END = 0x06054b50, END64 = 0x06064b50, LOCATOR64 = 0x07064b50;
const ZIP64_LIMIT = 0xffffffff;
const DOS_DATE_1980_01_01 = 0x21; // (1980 - 1980) << 9 | 1 << 5 | 1
const VERSION = 45; // zip64
const MADE_BY_UNIX = (3 << 8) | VERSION;
const RW_USER = 0o600 << 16;

/**
 * A ZIP archive of stored members, as numpy's savez writes it.
 * @param {Array<{name: string, data: Uint8Array}>} members (ASCII names)
 * @returns {Uint8Array}
 */
export function writeZip(members) {
  const names = members.map((m) => new TextEncoder().encode(m.name));
  const crcs = members.map((m) => crc32(m.data));
  const localSize = members.reduce((n, m, i) => n + 30 + names[i].length + 20 + m.data.length, 0);
  const centralSize = members.reduce((n, m, i) => n + 46 + names[i].length, 0);
  const out = new Uint8Array(localSize + centralSize + 22);
  const view = new DataView(out.buffer);
  let p = 0;
  const u16 = (/** @type {number} */ v) => { view.setUint16(p, v, true); p += 2; };
  const u32 = (/** @type {number} */ v) => { view.setUint32(p, v, true); p += 4; };
  const u64 = (/** @type {number} */ v) => { view.setBigUint64(p, BigInt(v), true); p += 8; };
  const offsets = [];
  for (const [i, m] of members.entries()) {
    offsets.push(p);
    u32(LOCAL); u16(VERSION); u16(0); u16(0); u16(0); u16(DOS_DATE_1980_01_01); u32(crcs[i]);
    u32(ZIP64_LIMIT); u32(ZIP64_LIMIT); u16(names[i].length); u16(20);
    out.set(names[i], p); p += names[i].length;
    u16(1); u16(16); u64(m.data.length); u64(m.data.length); // zip64 extra: sizes
    out.set(m.data, p); p += m.data.length;
  }
  const central = p;
  for (const [i, m] of members.entries()) {
    u32(CENTRAL); u16(MADE_BY_UNIX); u16(VERSION); u16(0); u16(0); u16(0); u16(DOS_DATE_1980_01_01); u32(crcs[i]);
    u32(m.data.length); u32(m.data.length); u16(names[i].length); u16(0); u16(0); u16(0); u16(0); u32(RW_USER);
    u32(offsets[i]);
    out.set(names[i], p); p += names[i].length;
  }
  const end = p;
  u32(END); u16(0); u16(0); u16(members.length); u16(members.length); u32(end - central); u32(central); u16(0);
  return out;
}

/**
 * @typedef {{name: string, method: number, crc: number, compressedSize: number, size: number, start: number}} ZipEntry
 * start: where the member's data begins in the archive.
 */

/**
 * The members of a ZIP archive, every offset and size checked against the archive's bounds
 * (nothing is unpacked). Zip64 records and extra fields are read.
 * @param {Uint8Array} data
 * @returns {ZipEntry[]}
 */
export function listZip(data) {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const need = (/** @type {boolean} */ ok, /** @type {string} */ why) => {
    if (!ok) throw new ZipError(why);
  };
  need(data.length >= 22, "too short");
  let eocd = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === END && i + 22 + view.getUint16(i + 20, true) === data.length) {
      eocd = i;
      break;
    }
  }
  need(eocd >= 0, "no end of central directory");
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  let cdEnd = eocd;
  if (count === 0xffff || cdSize === ZIP64_LIMIT || cdOffset === ZIP64_LIMIT) {
    need(eocd >= 20 && view.getUint32(eocd - 20, true) === LOCATOR64, "no zip64 locator");
    const at = Number(view.getBigUint64(eocd - 12, true));
    need(at + 56 <= eocd - 20 && view.getUint32(at, true) === END64, "bad zip64 end record");
    count = Number(view.getBigUint64(at + 32, true));
    cdSize = Number(view.getBigUint64(at + 40, true));
    cdOffset = Number(view.getBigUint64(at + 48, true));
    cdEnd = at;
  }
  need(cdOffset + cdSize <= cdEnd && count <= 0xffff, "central directory out of bounds");
  /** @type {ZipEntry[]} */
  const entries = [];
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    need(p + 46 <= cdOffset + cdSize && view.getUint32(p, true) === CENTRAL, "bad central directory entry");
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true), extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    let offset = view.getUint32(p + 42, true);
    const next = p + 46 + nameLength + extraLength + commentLength;
    need(next <= cdOffset + cdSize, "central directory entry out of bounds");
    need(!(flags & 1), "encrypted member");
    const nameBytes = data.subarray(p + 46, p + 46 + nameLength);
    // zip64 extra field: the 8-byte values of the fields that hold 0xffffffff, in this order
    let e = p + 46 + nameLength;
    while (e + 4 <= p + 46 + nameLength + extraLength) {
      const id = view.getUint16(e, true), len = view.getUint16(e + 2, true);
      need(e + 4 + len <= p + 46 + nameLength + extraLength, "extra field out of bounds");
      if (id === 1) {
        let q = e + 4;
        const read = () => {
          need(q + 8 <= e + 4 + len, "short zip64 extra field");
          const v = Number(view.getBigUint64(q, true));
          q += 8;
          return v;
        };
        if (size === ZIP64_LIMIT) size = read();
        if (compressedSize === ZIP64_LIMIT) compressedSize = read();
        if (offset === ZIP64_LIMIT) offset = read();
      }
      e += 4 + len;
    }
    need(offset + 30 <= cdOffset && view.getUint32(offset, true) === LOCAL, "bad local header");
    const localName = view.getUint16(offset + 26, true), localExtra = view.getUint16(offset + 28, true);
    const start = offset + 30 + localName + localExtra;
    const same = localName === nameLength && nameBytes.every((b, i) => data[offset + 30 + i] === b);
    need(same, "file name in directory and header differ");
    need(start + compressedSize <= cdOffset, "member data out of bounds");
    need(method === 8 || (method === 0 && compressedSize === size), "unsupported compression");
    entries.push({ name: new TextDecoder("latin1").decode(nameBytes), method, crc, compressedSize, size, start });
    p = next;
  }
  return entries;
}

/**
 * A member's bytes: stored members as they are, deflated ones inflated (through the platform's
 * DecompressionStream, never past the declared size); the CRC is checked.
 * @param {Uint8Array} data the archive
 * @param {ZipEntry} entry
 * @returns {Promise<Uint8Array>}
 */
export async function readMember(data, entry) {
  const raw = data.subarray(entry.start, entry.start + entry.compressedSize);
  const out = entry.method === 0 ? raw : await inflateRaw(raw, entry.size);
  if (out.length !== entry.size || crc32(out) !== entry.crc) throw new ZipError("member damaged (size or CRC)");
  return out;
}

/** @param {Uint8Array} raw @param {number} limit @returns {Promise<Uint8Array>} */
async function inflateRaw(raw, limit) {
  if (typeof DecompressionStream === "undefined") {
    throw new ZipError("a deflated member, and this platform has no DecompressionStream");
  }
  let stream;
  try {
    stream = new DecompressionStream(/** @type {any} */ ("deflate-raw"));
  } catch {
    throw new ZipError("a deflated member, and this platform's DecompressionStream cannot inflate raw deflate");
  }
  const writer = stream.writable.getWriter();
  writer.write(/** @type {BufferSource} */ (raw)).catch(() => undefined);
  writer.close().catch(() => undefined);
  const reader = stream.readable.getReader();
  const out = new Uint8Array(limit);
  let at = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.length > limit) {
        await reader.cancel().catch(() => undefined);
        throw new ZipError("member inflates past its declared size");
      }
      out.set(value, at);
      at += value.length;
    }
  } catch (err) {
    if (err instanceof ZipError) throw err;
    throw new ZipError("member damaged (bad deflate data)");
  }
  return out.subarray(0, at);
}
