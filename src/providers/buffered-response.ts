/**
 * A whole, already-read HTTP response with the part of the fetch `Response` interface the provider
 * SDKs use for answers that are not streams: `ok`, `status`, `url`, `headers.get/has/entries`,
 * `text()`, `json()`, `arrayBuffer()`, `clone()`, and `body` (null: the bytes are here already).
 *
 * Why not a real `Response`: building one wraps the bytes in a web ReadableStream and validates
 * every header again, and reading it back goes through that stream; for a small JSON answer
 * that was as much CPU as the rest of the gateway's own work on a call.
 */
export class BufferedResponse {
  readonly ok: boolean;
  readonly statusText = '';
  readonly redirected = false;
  readonly type = 'basic';
  readonly body = null;
  readonly headers: ReadOnlyHeaders;
  private used = false;

  constructor(
    readonly status: number,
    rawHeaders: RawHeaders | ReadOnlyHeaders,
    private readonly content: Uint8Array,
    readonly url: string,
  ) {
    this.ok = status >= 200 && status < 300;
    this.headers = rawHeaders instanceof ReadOnlyHeaders ? rawHeaders : new ReadOnlyHeaders(rawHeaders);
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  async text(): Promise<string> {
    const bytes = this.consume();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.consume();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }

  clone(): BufferedResponse {
    if (this.used) throw new TypeError('Response.clone: the body has already been read');
    return new BufferedResponse(this.status, this.headers, this.content, this.url);
  }

  private consume(): Uint8Array {
    if (this.used) throw new TypeError('Body is unusable: the body has already been read');
    this.used = true;
    return this.content;
  }
}

/** Header values as undici's `request` gives them: lower-case names, repeated ones as arrays. */
export type RawHeaders = Record<string, string | string[] | undefined>;

/** The read side of the fetch `Headers` interface, over headers already parsed. */
export class ReadOnlyHeaders {
  /** The name-value pairs in name order, built on first iteration (the SDKs iterate each answer's). */
  private pairs: [string, string][] | undefined;

  constructor(private readonly raw: RawHeaders) {}

  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }

  getSetCookie(): string[] {
    const value = this.raw['set-cookie'];
    return value === undefined ? [] : Array.isArray(value) ? [...value] : [value];
  }

  forEach(callback: (value: string, name: string, headers: ReadOnlyHeaders) => void): void {
    for (const [name, value] of this.sorted()) callback(value, name, this);
  }

  entries(): IterableIterator<[string, string]> {
    return this.sorted()[Symbol.iterator]();
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.sorted()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.sorted()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  private sorted(): [string, string][] {
    if (this.pairs) return this.pairs;
    const pairs: [string, string][] = [];
    for (const name of Object.keys(this.raw).sort()) {
      const value = this.get(name);
      if (value !== null) pairs.push([name, value]);
    }
    this.pairs = pairs;
    return pairs;
  }
}
