/** The CI switch that turns a missing PyTorch/numpy reference from a skip into a failure. */
import { optionalReference, REQUIRE_REFERENCE_ENV } from './optional-reference';

describe('optionalReference', () => {
  const saved = process.env[REQUIRE_REFERENCE_ENV];
  let log: jest.SpyInstance;
  beforeEach(() => {
    log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    log.mockRestore();
    if (saved === undefined) delete process.env[REQUIRE_REFERENCE_ENV];
    else process.env[REQUIRE_REFERENCE_ENV] = saved;
  });

  it('passes a found interpreter through, whatever the switch says', () => {
    process.env[REQUIRE_REFERENCE_ENV] = '1';
    expect(optionalReference('x', '/usr/bin/python3', 'install it')).toBe('/usr/bin/python3');
    expect(log).not.toHaveBeenCalled();
  });

  it('skips with a printed reason on a developer machine', () => {
    delete process.env[REQUIRE_REFERENCE_ENV];
    expect(optionalReference('the torch.optim cross-check', null, 'install python3-torch')).toBeNull();
    expect(log).toHaveBeenCalledWith(
      'skipping the torch.optim cross-check: no Python for the torch.optim cross-check (install python3-torch)',
    );
  });

  it('fails, naming the check and the switch, when RLPKD_REQUIRE_TORCH=1', () => {
    process.env[REQUIRE_REFERENCE_ENV] = '1';
    expect(() => optionalReference('the torch.optim cross-check', null, 'install python3-torch')).toThrow(
      /no Python for the torch\.optim cross-check \(install python3-torch\); RLPKD_REQUIRE_TORCH=1 \(set by \.ci\/run\)/,
    );
    expect(log).not.toHaveBeenCalled();
  });

  it('only the value 1 requires the reference', () => {
    process.env[REQUIRE_REFERENCE_ENV] = '0';
    expect(optionalReference('x', null, 'y')).toBeNull();
  });
});
