/** BTF blobs for tests. */

/** A BTF blob with no types: header, then a string section holding only the empty name. */
export function emptyBtf(): Buffer {
  const b = Buffer.alloc(25);
  b.writeUInt16LE(0xeb9f, 0);
  b[2] = 1; // version
  b.writeUInt32LE(24, 4); // hdr_len
  b.writeUInt32LE(0, 8); // type_off
  b.writeUInt32LE(0, 12); // type_len
  b.writeUInt32LE(0, 16); // str_off
  b.writeUInt32LE(1, 20); // str_len
  return b;
}
