/** Every rule file is registered, and every op type has exactly one rule (typescript-eslint's pattern). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GRADIENT_RULES, RULE_FILES } from '../../src/autodiff/rules';
import { REFERENCE_FAMILIES } from '../helpers/reference';

const rulesDir = path.join(__dirname, '..', '..', 'src', 'autodiff', 'rules');
const files = fs
  .readdirSync(rulesDir)
  .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

describe('gradient rule registry', () => {
  it('imports every file in src/autodiff/rules/', () => {
    expect(Object.keys(RULE_FILES).sort()).toEqual(files);
  });

  it('registers each op type once', () => {
    const all = Object.values(RULE_FILES).flatMap((entries) => entries.map((e) => e.opType));
    const dupes = all.filter((op, i) => all.indexOf(op) !== i);
    expect(dupes).toEqual([]);
    expect(GRADIENT_RULES.size).toBe(all.length);
  });

  it('has a reference op table per rule family', () => {
    expect(Object.keys(REFERENCE_FAMILIES).sort()).toEqual(files);
  });

  it('covers the ops the issue requires of this family set', () => {
    const required = [
      'Add',
      'Sub',
      'Mul',
      'Div',
      'Pow',
      'Abs',
      'Neg',
      'Exp',
      'Log',
      'Sqrt',
      'Clip',
      'Erf',
      'Where',
      'Identity',
      'Dropout',
      'Sum',
      'Relu',
      'LeakyRelu',
      'Sigmoid',
      'Tanh',
      'Softmax',
      'LogSoftmax',
      'ReduceSum',
      'ReduceMean',
      'ReduceMax',
      'ReduceL2',
      'Reshape',
      'Flatten',
      'Transpose',
      'Concat',
      'Split',
      'Slice',
      'Gather',
      'Squeeze',
      'Unsqueeze',
      'Expand',
      'Cast',
    ];
    expect(required.filter((op) => !GRADIENT_RULES.has(op))).toEqual([]);
  });
});
