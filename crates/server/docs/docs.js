// The API page: renders /openapi.json (the server's own document) into plain DOM, every text
// through textContent. Nothing is loaded from anywhere but this origin.
'use strict';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Text with `code` spans, as the document's descriptions write them.
function prose(text) {
  const span = el('span');
  String(text || '').split('`').forEach((part, i) => span.append(i % 2 ? el('code', {}, part) : part));
  return span;
}

function resolve(doc, item) {
  let seen = 0;
  while (item && item.$ref && seen++ < 10) {
    const path = item.$ref.replace(/^#\//, '').split('/');
    item = path.reduce((node, key) => (node ? node[key] : undefined), doc);
  }
  return item || {};
}

function refName(item) {
  return item && item.$ref ? item.$ref.split('/').pop() : null;
}

// A schema in one line: its type and every constraint the document states.
function describeSchema(doc, schema) {
  const name = refName(schema);
  schema = resolve(doc, schema);
  if (schema.oneOf || schema.anyOf) {
    const options = (schema.oneOf || schema.anyOf).filter((s) => s.type !== 'null');
    if (options.length === 1) return describeSchema(doc, options[0]);
  }
  const parts = [];
  let type = Array.isArray(schema.type) ? schema.type.filter((t) => t !== 'null').join(' | ') : schema.type;
  if (name) type = type ? `${name} (${type})` : name;
  if (schema.type === 'array' && schema.items) type = `array of ${describeSchema(doc, schema.items).type}`;
  if (schema.format) parts.push(`format ${schema.format}`);
  if (schema.enum) parts.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  if (schema.minLength !== undefined) parts.push(`length ≥ ${schema.minLength}`);
  if (schema.pattern) parts.push(`pattern ${schema.pattern}`);
  if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
  return { type: type || 'any', constraints: parts.join('; ') };
}

function parametersTable(doc, parameters) {
  const table = el('table', { class: 'parameters' },
    el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'in'), el('th', {}, 'type'), el('th', {}, 'constraints'), el('th', {}, 'description'))));
  const body = el('tbody');
  for (const raw of parameters) {
    const p = resolve(doc, raw);
    const schema = describeSchema(doc, p.schema || {});
    const example = p.example !== undefined ? ` Example: ${p.example}` : '';
    body.append(el('tr', { 'data-name': p.name },
      el('td', {}, el('code', {}, p.name), p.required ? ' (required)' : ''),
      el('td', {}, p.in),
      el('td', {}, schema.type),
      el('td', { class: 'constraints' }, schema.constraints),
      el('td', {}, prose((p.description || '') + example))));
  }
  table.append(body);
  return table;
}

function bodySection(doc, requestBody) {
  const rb = resolve(doc, requestBody);
  const section = el('div', { class: 'body' }, el('h3', {}, 'Request body', rb.required ? ' (required)' : ''));
  if (rb.description) section.append(el('p', { class: 'detail' }, prose(rb.description)));
  const list = el('ul');
  for (const [media, content] of Object.entries(rb.content || {})) {
    const schema = resolve(doc, content.schema || {});
    const item = el('li', { 'data-media': media }, el('code', {}, media), ': ', describeSchema(doc, content.schema || {}).type);
    if (schema.properties) {
      const fields = Object.entries(schema.properties).map(([name, prop]) =>
        el('li', {}, el('code', {}, name), (schema.required || []).includes(name) ? ' (required)' : '', ': ', describeSchema(doc, prop).type, ' ', prose(resolve(doc, prop).description || '')));
      item.append(el('ul', {}, ...fields));
    }
    list.append(item);
  }
  section.append(list);
  return section;
}

function responsesTable(doc, responses) {
  const table = el('table', { class: 'responses' },
    el('thead', {}, el('tr', {}, el('th', {}, 'status'), el('th', {}, 'description'), el('th', {}, 'media types'), el('th', {}, 'headers'))));
  const body = el('tbody');
  for (const [status, raw] of Object.entries(responses || {})) {
    const r = resolve(doc, raw);
    const media = el('td', { class: 'media' });
    for (const [type, content] of Object.entries(r.content || {})) {
      media.append(el('div', {}, el('code', {}, type), content.schema ? ` ${describeSchema(doc, content.schema).type}` : ''));
    }
    const headers = el('td', { class: 'headers' });
    for (const [name, rawHeader] of Object.entries(r.headers || {})) {
      const h = resolve(doc, rawHeader);
      const schema = describeSchema(doc, h.schema || {});
      headers.append(el('div', { 'data-header': name }, el('code', {}, name), ` ${schema.type}${h.required ? ', always' : ''}: `, prose(h.description || '')));
    }
    body.append(el('tr', { 'data-status': status }, el('td', { class: 'status' }, status), el('td', {}, prose(r.description || '')), media, headers));
  }
  table.append(body);
  return table;
}

function schemaSection(doc, name, schema) {
  const section = el('section', { class: 'schema', id: `schema-${name}` }, el('h3', {}, name));
  if (schema.description) section.append(el('p', { class: 'detail' }, prose(schema.description)));
  const rows = Object.entries(schema.properties || {}).map(([prop, value]) => {
    const s = describeSchema(doc, value);
    return el('tr', {}, el('td', {}, el('code', {}, prop), (schema.required || []).includes(prop) ? ' (required)' : ''),
      el('td', {}, s.type), el('td', { class: 'constraints' }, s.constraints), el('td', {}, prose(resolve(doc, value).description || '')));
  });
  if (rows.length) {
    section.append(el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'field'), el('th', {}, 'type'), el('th', {}, 'constraints'), el('th', {}, 'description'))), el('tbody', {}, ...rows)));
  }
  return section;
}

function render(doc) {
  const main = document.getElementById('doc');
  main.replaceChildren();
  document.getElementById('title').textContent = `${doc.info.title} API ${doc.info.version || ''}`.trim();
  const description = document.getElementById('description');
  description.replaceChildren(prose(doc.info.description || ''), ' Source: ', el('a', { href: '/openapi.json' }, '/openapi.json'), '.');
  const toc = el('ul');
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const id = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, '-');
      toc.append(el('li', {}, el('a', { href: `#${id}` }, `${method.toUpperCase()} ${path}`)));
      const lines = String(op.description || '').split('\n\n');
      const section = el('section', { class: 'operation', id, 'data-method': method, 'data-path': path },
        el('h2', {}, el('span', { class: 'method' }, method), el('code', {}, path),
          (op.tags || []).length ? el('span', { class: 'tag' }, op.tags.join(', ')) : null,
          op.security && op.security.some((s) => Object.keys(s).length) ? el('span', { class: 'auth' }, 'API key when keys are configured') : null),
        el('p', { class: 'summary' }, prose(op.summary || lines[0] || '')));
      for (const line of (op.summary ? lines : lines.slice(1))) if (line) section.append(el('p', { class: 'detail' }, prose(line)));
      if ((op.parameters || []).length) section.append(el('h3', {}, 'Parameters'), parametersTable(doc, op.parameters));
      if (op.requestBody) section.append(bodySection(doc, op.requestBody));
      section.append(el('h3', {}, 'Responses'), responsesTable(doc, op.responses));
      main.append(section);
    }
  }
  document.getElementById('toc').replaceChildren(toc);
  const schemas = (doc.components || {}).schemas || {};
  if (Object.keys(schemas).length) {
    main.append(el('h2', { id: 'schemas' }, 'Schemas'));
    for (const [name, schema] of Object.entries(schemas)) main.append(schemaSection(doc, name, schema));
  }
  main.setAttribute('aria-busy', 'false');
  document.body.dataset.rendered = 'true';
}

fetch('/openapi.json', { headers: { Accept: 'application/json' } })
  .then((response) => {
    if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
    return response.json();
  })
  .then(render)
  .catch((error) => {
    const status = document.getElementById('status') || document.getElementById('doc').appendChild(el('p', { id: 'status' }));
    status.textContent = `The document could not be shown: ${error.message}`;
    status.className = 'bad';
    document.body.dataset.rendered = 'error';
  });
