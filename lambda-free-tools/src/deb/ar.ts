/**
 * A push parser for `ar` archives, the container of a .deb (deb(5), ar(5)): fed chunk by chunk, it
 * reports each member's header and passes the member's bytes through as slices of the chunks it was
 * given, so a caller can hash, skip or buffer members without the archive ever being in memory.
 *
 * Format: the global header `!<arch>\n`, then per member a 60-byte header (name 16, mtime 12, uid 6,
 * gid 6, mode 8, size 10, terminator "`\n"), the data, and one padding byte when the size is odd.
 * Names: System V / GNU ar end names with '/', dpkg-deb pads with spaces; BSD ar writes `#1/<len>`
 * and puts the name in front of the data (counted in the size).
 */
import { DebError } from '../errors';

/** The global header every ar archive starts with. */
export const AR_MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;

/** One member, as its header describes it. */
export interface ArMember {
  /** Name without GNU's trailing '/' or padding spaces (BSD long names resolved). */
  name: string;
  /** Size of the member's data in bytes (a BSD long name not included). */
  size: number;
  /** Byte offset of the data in the archive. */
  offset: number;
}

/** What an ArReader reports, in archive order: onMember, onData zero or more times, onMemberEnd. */
export interface ArEvents {
  onMember(member: ArMember): void;
  /** A slice of the data of the current member; valid only during the call (copy it to keep it). */
  onData(chunk: Buffer): void;
  onMemberEnd(member: ArMember): void;
}

type State = 'magic' | 'header' | 'longname' | 'data' | 'pad';

/**
 * Incremental ar reader. Call `write(chunk)` for every chunk of the file in order, then `end()`;
 * a chunk's memory may be reused once write returns (nothing is kept that points into it).
 * Both throw DebError(file, reason) for: a wrong global header ('not an ar archive'), a thin
 * archive, a malformed member header (bad terminator, non-numeric size, bad BSD name) and, from
 * end(), a file that stops inside a header or a member ('truncated …'). Errors thrown by the event
 * handlers propagate unchanged.
 */
export class ArReader {
  private state: State = 'magic';
  /** Bytes of a fixed-size part (magic, header, BSD name) gathered across chunks. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private need = AR_MAGIC.length;
  private remaining = 0;
  private member: ArMember | undefined;
  private dataSize = 0;
  /** Whether the current member is followed by a padding byte (its header size is odd). */
  private padAfter = false;
  /** Bytes consumed so far: the offset of the next byte. */
  private position = 0;

  constructor(
    private readonly file: string,
    private readonly events: ArEvents,
  ) {}

  /** Feeds the next chunk of the archive. */
  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.state === 'data') {
        const take = Math.min(this.remaining, chunk.length - off);
        if (take > 0) this.events.onData(chunk.subarray(off, off + take));
        off += take;
        this.position += take;
        this.remaining -= take;
        if (this.remaining === 0) this.finishMember();
      } else if (this.state === 'pad') {
        off++;
        this.position++;
        this.state = 'header';
        this.need = HEADER_SIZE;
      } else {
        const take = Math.min(this.need - this.pendingLength, chunk.length - off);
        // Copied: the caller may reuse `chunk` for its next read.
        this.pending.push(Buffer.from(chunk.subarray(off, off + take)));
        this.pendingLength += take;
        off += take;
        if (this.pendingLength === this.need) {
          const block = Buffer.concat(this.pending, this.pendingLength);
          const start = this.position;
          this.position += this.need;
          this.pending = [];
          this.pendingLength = 0;
          this.completed(block, start);
        }
      }
    }
  }

  /**
   * Declares the end of the archive. Throws DebError when it stops in the middle of the global
   * header, a member header or member data. A missing padding byte after the last member is
   * accepted, as GNU ar does.
   */
  end(): void {
    const fail = (reason: string): never => {
      throw new DebError(this.file, reason);
    };
    if (this.state === 'magic') fail(this.position + this.pendingLength === 0 ? 'empty file' : 'not an ar archive (file too short)');
    if (this.state === 'header' && this.pendingLength > 0) fail(`truncated member header at offset ${this.position}`);
    if (this.state === 'longname') fail(`truncated member name of the member at offset ${this.position - HEADER_SIZE}`);
    if (this.state === 'data') {
      fail(`truncated member '${this.member!.name}': ${this.dataSize - this.remaining} of ${this.dataSize} bytes present`);
    }
  }

  /** Handles a complete fixed-size block that started at offset `start`. */
  private completed(block: Buffer, start: number): void {
    const fail = (reason: string): never => {
      throw new DebError(this.file, reason);
    };
    if (this.state === 'magic') {
      const magic = block.toString('latin1');
      if (magic === '!<thin>\n') fail('thin ar archives are not supported');
      if (magic !== AR_MAGIC) fail('not an ar archive (no !<arch> header)');
      this.state = 'header';
      this.need = HEADER_SIZE;
      return;
    }
    if (this.state === 'longname') {
      this.member!.name = block.toString('utf8').replace(/\0+$/, '');
      this.startData();
      return;
    }
    // A member header.
    if (block[58] !== 0x60 || block[59] !== 0x0a) fail(`bad member header at offset ${start} (no terminator)`);
    const sizeField = block.toString('latin1', 48, 58).trimEnd();
    if (!/^[0-9]+$/.test(sizeField)) fail(`bad member header at offset ${start} (size '${sizeField}' is not a number)`);
    const size = Number(sizeField);
    const rawName = block.toString('latin1', 0, 16).trimEnd();
    this.dataSize = size;
    const bsd = /^#1\/([0-9]+)$/.exec(rawName);
    if (bsd) {
      const nameLength = Number(bsd[1]);
      if (nameLength > size || nameLength > 4096) fail(`bad member header at offset ${start} (BSD name length ${nameLength})`);
      this.member = { name: '', size: size - nameLength, offset: start + HEADER_SIZE + nameLength };
      this.dataSize = size - nameLength;
      // Padding is computed on the full size, name included.
      this.remaining = size;
      if (nameLength > 0) {
        this.state = 'longname';
        this.need = nameLength;
        return;
      }
    } else {
      // GNU ar ends names with '/'; the special members '/' and '//' keep theirs.
      const name = rawName.length > 1 && rawName.endsWith('/') && rawName !== '//' ? rawName.slice(0, -1) : rawName;
      this.member = { name, size, offset: start + HEADER_SIZE };
      this.remaining = size;
    }
    this.startData();
  }

  /** Reports the member and moves to its data (or straight to its end when empty). */
  private startData(): void {
    const m = this.member!;
    this.padAfter = (this.remaining & 1) === 1; // the full size, BSD name included
    this.remaining = this.dataSize;
    this.events.onMember(m);
    this.state = 'data';
    if (this.remaining === 0) this.finishMember();
  }

  private finishMember(): void {
    this.events.onMemberEnd(this.member!);
    this.state = this.padAfter ? 'pad' : 'header';
    this.need = HEADER_SIZE;
  }
}
