/** Digests of a file, as Packages and Release name them; hex lower case. */
export interface Digests {
  MD5sum: string;
  SHA1: string;
  SHA256: string;
  SHA512?: string;
}
