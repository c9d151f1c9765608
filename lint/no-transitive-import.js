// @ts-check
/**
 * ESLint rule `rlpkd/no-transitive-import`: a file must not reach a forbidden package through any chain
 * of relative imports (what `no-restricted-imports` cannot see). Static imports and re-exports count
 * unless type-only; dynamic `import()` and `require()` with a literal count too, because a bundler
 * follows them. Options: `{ modules: string[] }`.
 */
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

/** Module specifiers a source text loads at run time, with the offset of each import. */
function runtimeImports(text, fileName) {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out = [];
  const literal = (node, dynamic = false) =>
    node && ts.isStringLiteralLike(node) ? { spec: node.text, pos: node.getStart(sf), dynamic } : undefined;
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const typeOnly =
        clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            clause.namedBindings &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      if (!typeOnly) out.push(literal(node.moduleSpecifier));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const typeOnly =
        node.isTypeOnly ||
        (node.exportClause &&
          ts.isNamedExports(node.exportClause) &&
          node.exportClause.elements.length > 0 &&
          node.exportClause.elements.every((e) => e.isTypeOnly));
      if (!typeOnly) out.push(literal(node.moduleSpecifier));
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const dynamic = callee.kind === ts.SyntaxKind.ImportKeyword;
      const req = ts.isIdentifier(callee) && callee.text === 'require';
      if (dynamic || req) out.push(literal(node.arguments[0], true));
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out.filter((s) => s !== undefined);
}

/** Module specifiers a file on disk loads at run time (cached). */
function fileImports(file, cache) {
  let specs = cache.get(file);
  if (!specs) {
    specs = runtimeImports(fs.readFileSync(file, 'utf8'), file).map((i) => i.spec);
    cache.set(file, specs);
  }
  return specs;
}

/** The .ts file a relative specifier names, or undefined when none exists. */
function resolveRelative(fromFile, spec) {
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const f of [base, `${base}.ts`, path.join(base, 'index.ts')]) {
    if (fs.existsSync(f) && fs.statSync(f).isFile()) return f;
  }
  return undefined;
}

/** Import chain from `specs` (imported by `fromFile`) to a forbidden package, or undefined. */
function findChain(fromFile, specs, forbidden, cache) {
  const seen = new Set([fromFile]);
  const queue = specs.map((spec) => ({ spec, from: fromFile, chain: [] }));
  while (queue.length > 0) {
    const { spec, from, chain } = queue.shift();
    if (forbidden.has(spec)) return { spec, chain };
    if (!spec.startsWith('.')) continue;
    const file = resolveRelative(from, spec);
    if (!file || seen.has(file)) continue;
    seen.add(file);
    for (const s of fileImports(file, cache)) queue.push({ spec: s, from: file, chain: [...chain, file] });
  }
  return undefined;
}

/** @type {import('eslint').Rule.RuleModule} */
const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'forbid reaching a package through a chain of relative imports' },
    schema: [
      {
        type: 'object',
        properties: { modules: { type: 'array', items: { type: 'string' } } },
        required: ['modules'],
        additionalProperties: false,
      },
    ],
    messages: {
      reaches: "'{{spec}}' reaches {{target}} at run time{{via}}; load it through a module that does not",
    },
  },
  create(context) {
    const forbidden = new Set(context.options[0].modules);
    const cache = new Map();
    const file = context.filename;
    return {
      'Program:exit'() {
        const code = context.sourceCode;
        for (const { spec, pos, dynamic } of runtimeImports(code.getText(), file)) {
          const found = findChain(file, [spec], forbidden, cache);
          // A direct static import is no-restricted-imports' to report.
          if (!found || (found.chain.length === 0 && !dynamic)) continue;
          const via = found.chain.map((f) => path.relative(context.cwd, f)).join(' → ');
          const start = code.getLocFromIndex(pos);
          context.report({
            loc: { start, end: code.getLocFromIndex(pos + spec.length + 2) },
            messageId: 'reaches',
            data: { spec, target: found.spec, via: via ? ` (via ${via})` : '' },
          });
        }
      },
    };
  },
};

module.exports = { rules: { 'no-transitive-import': rule } };
