/**
 * System errors in plain words: a dialog says "there is no such file", not "ENOENT: no such file or
 * directory, open '/x'". Used by the transports for job messages and by the renderer's dialogs.
 */
const WORDS: Record<string, string> = {
  ENOENT: 'there is no such file or folder',
  EISDIR: 'that is a folder, not a file',
  ENOTDIR: 'part of that path is not a folder',
  EACCES: 'permission denied: the service may not read or write there',
  EPERM: 'not permitted',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'that disk is read-only',
  EEXIST: 'a file of that name exists already',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many files are open',
  ENFILE: 'too many files are open',
  EIO: 'the disk reported an input/output error',
  ELOOP: 'too many symbolic links',
  EFBIG: 'the file is too large',
  ETXTBSY: 'the file is busy',
  EBUSY: 'the file is busy',
};

/**
 * Replaces Node's system error texts (`ENOENT: no such file or directory, open '/x'`) and bare codes
 * with words; everything else stays as it was.
 */
export function plainWords(message: string): string {
  return message
    .replace(
      /\b(E[A-Z]{2,12}): [^,;\n]*(?:, [a-z]+(?: '[^']*')?)?/g,
      (whole, code: string) => WORDS[code] ?? whole,
    )
    .replace(/\b(E[A-Z]{2,12})\b/g, (whole, code: string) => WORDS[code] ?? whole);
}
