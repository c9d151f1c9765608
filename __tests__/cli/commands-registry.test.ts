import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMMANDS } from '../../src/cli/commands';
import { buildProgram } from '../../src/cli/main';

describe('CLI command registry', () => {
  it('registers every file in src/cli/commands (a new command cannot be forgotten)', () => {
    const dir = path.join(__dirname, '..', '..', 'src', 'cli', 'commands');
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
      .map((f) => f.replace(/\.ts$/, ''))
      .sort();
    expect(Object.keys(COMMANDS).sort()).toEqual(files);
  });

  it('gives every command a one-line description in --help', () => {
    const program = buildProgram();
    const help = program.helpInformation();
    for (const cmd of program.commands) {
      expect(cmd.description().length).toBeGreaterThan(10);
      expect(cmd.description()).not.toContain('\n');
      expect(help).toContain(cmd.name());
    }
  });
});
