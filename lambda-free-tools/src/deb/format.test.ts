import { debianFormat } from './format';
import { getField } from './control';

describe('debianFormat.identify', () => {
  test('finds each field as getField does: the exact name first, else a name that matches ignoring case (Debian Policy §5.1)', () => {
    const control: [string, string][] = [
      ['package', 'lower'],
      ['Package', 'exact'],
      ['VERSION', '1.0-1'],
      ['Architecture', 'amd64'],
      ['source', 'src (0.9)'],
    ];
    expect(debianFormat.identify(control)).toEqual({ name: 'exact', version: '1.0-1', architecture: 'amd64', source: 'src' });
    for (const f of ['Package', 'Version', 'Architecture', 'Source']) expect(getField(control, f)).toBeDefined();
    expect(
      debianFormat.identify([
        ['Package', 'a'],
        ['Version', '1'],
      ]),
    ).toBe('control has no Architecture field');
    expect(
      debianFormat.identify([
        ['Package', 'ab'],
        ['Version', '1'],
        ['Architecture', 'all'],
        ['Sources', 'x'],
      ]),
    ).toMatchObject({
      source: 'ab',
    });
  });
});
