/**
 * A tar archive (ustar) of one regular file at the root, enough for an
 * engine's image import (`docker import`): the engine check's image,
 * troupe-init alone (engine-check.ts, ApiBackend.tryStart).
 */
const BLOCK = 512;

export function singleFileTar(name: string, contents: Buffer, mode: number): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`a tar entry name of at most 99 bytes, not ${name}`);
  const header = Buffer.alloc(BLOCK);
  const field = (offset: number, length: number, text: string) => header.write(text, offset, length, "ascii");
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, "0") + "\0";
  field(0, 100, name);
  field(100, 8, octal(mode, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(contents.length, 12));
  field(136, 12, octal(Math.floor(Date.now() / 1000), 12));
  field(156, 1, "0");
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  // The checksum is of the header with its own field taken as spaces.
  field(148, 8, " ".repeat(8));
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  const padding = Buffer.alloc((BLOCK - (contents.length % BLOCK)) % BLOCK);
  return Buffer.concat([header, contents, padding, Buffer.alloc(2 * BLOCK)]);
}
