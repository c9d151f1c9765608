import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { contentHash, fileIdentity, stableJson } from '../../src/util/content-hash';

describe('content hash helpers', () => {
  it('hash the parts in order like one sha-256 over their concatenation (FIPS 180-2 vector)', () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(contentHash(['abc'])).toBe(abc);
    expect(contentHash(['a', Uint8Array.of(0x62), 'c'])).toBe(abc);
    expect(contentHash(['abc'], 20)).toBe(abc.slice(0, 20));
  });

  it('write equal values as equal JSON whatever their key order, without undefined members', () => {
    expect(stableJson({ b: [1, { d: 2, c: undefined, a: 'x' }], a: null })).toBe(
      '{"a":null,"b":[1,{"a":"x","d":2}]}',
    );
    expect(stableJson({ x: 1, y: 2 })).toBe(stableJson({ y: 2, x: 1 }));
  });

  it('identify a file by path, size and time, and its external data when present', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-hash-'));
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, 'abc');
    const plain = fileIdentity(file);
    expect(plain).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')}:3:[0-9.]+\\|$`));
    fs.writeFileSync(`${file}.data`, 'abcd');
    expect(fileIdentity(file)).toMatch(/\|.*m\.onnx\.data:4:/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
