/**
 * Z85 (ZeroMQ RFC 32): the printable encoding of CURVE keys, four bytes as five characters.
 * A 32-byte key is 40 characters, as libzmq's `zmq_z85_encode` and pyzmq's `zmq.z85` give it.
 *
 * ```ts
 * const text = z85Encode(new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]));
 * // "HelloWorld"
 * z85Decode(text); // the 8 bytes back
 * ```
 *
 * @module
 */

const ALPHABET =
  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

// Character code to digit value; -1 for characters outside the alphabet.
const DIGITS = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGITS[ALPHABET.charCodeAt(i)] = i;

/** Encodes `bytes` (a multiple of 4 long) as Z85; throws RangeError otherwise. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) {
    throw new RangeError(`Z85 encodes a multiple of 4 bytes, got ${bytes.length}`);
  }
  let text = "";
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>>
      0;
    const chunk = new Array<string>(5);
    for (let j = 4; j >= 0; j--) {
      chunk[j] = ALPHABET[value % 85];
      value = Math.floor(value / 85);
    }
    text += chunk.join("");
  }
  return text;
}

/**
 * Decodes Z85 text (a multiple of 5 characters long); throws RangeError naming the problem
 * for a wrong length, a character outside the alphabet, or a group past 2^32 - 1.
 */
export function z85Decode(text: string): Uint8Array {
  if (text.length % 5 !== 0) {
    throw new RangeError(`Z85 text is a multiple of 5 characters long, got ${text.length}`);
  }
  const out = new Uint8Array(text.length / 5 * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const code = text.charCodeAt(i + j);
      const digit = code < 128 ? DIGITS[code] : -1;
      if (digit < 0) {
        throw new RangeError(`'${text[i + j]}' at position ${i + j} is not a Z85 character`);
      }
      value = value * 85 + digit;
    }
    if (value > 0xffff_ffff) {
      throw new RangeError(`Z85 group at position ${i} is out of range`);
    }
    out[o] = value >>> 24;
    out[o + 1] = (value >>> 16) & 0xff;
    out[o + 2] = (value >>> 8) & 0xff;
    out[o + 3] = value & 0xff;
  }
  return out;
}
