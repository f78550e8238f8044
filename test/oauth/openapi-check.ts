/**
 * Checks API responses against the published OpenAPI document: the schema of the
 * operation's documented status is taken from the document as served, its $refs inlined,
 * and turned into a validator with zod's JSON Schema reader.
 */
import { z } from 'zod';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, unknown> }>>; components: { schemas: Record<string, unknown>; responses: Record<string, unknown> } };

function inline(node: unknown, doc: Doc, depth = 0): unknown {
  if (depth > 20) throw new Error('$ref too deep');
  if (Array.isArray(node)) return node.map((n) => inline(n, doc, depth + 1));
  if (!node || typeof node !== 'object') return node;
  const o = node as Record<string, unknown>;
  if (typeof o.$ref === 'string') {
    const [, section, name] = /^#\/components\/(schemas|responses)\/(.+)$/.exec(o.$ref) ?? [];
    const target = section && name ? doc.components[section as 'schemas' | 'responses'][name] : undefined;
    if (!target) throw new Error(`unresolved ${o.$ref}`);
    return inline(target, doc, depth + 1);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, inline(v, doc, depth + 1)]));
}

export function createResponseChecker(doc: Doc) {
  return {
    /** Throws unless `status` is documented for the operation and `body` matches its schema. */
    check(path: string, method: string, status: number, body: unknown): void {
      const op = doc.paths[path]?.[method];
      if (!op) throw new Error(`${method.toUpperCase()} ${path} is not documented`);
      const response = op.responses[String(status)];
      if (!response) throw new Error(`${method.toUpperCase()} ${path} does not document status ${status}`);
      const resolved = inline(response, doc) as { content?: Record<string, { schema: unknown }> };
      const schema = resolved.content?.['application/json']?.schema;
      if (!schema) throw new Error(`no JSON schema for ${status}`);
      const r = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(body);
      if (!r.success) throw new Error(`${method.toUpperCase()} ${path} ${status} does not match the document: ${JSON.stringify(r.error.issues.slice(0, 3))}`);
    },
  };
}
