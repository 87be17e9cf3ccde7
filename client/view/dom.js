// The only way the UI builds elements. Text always goes in as text nodes, so
// nothing a user typed can become markup; there is deliberately no way to
// pass HTML.

/**
 * h('li', { className: 'msg', dataset: { id }, attrs: { title }, on: { click } }, 'text', child)
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const { className, dataset, attrs, on } = props;
  if (className) el.className = className;
  for (const [k, v] of Object.entries(dataset ?? {})) el.dataset[k] = v;
  for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, v);
  for (const [k, v] of Object.entries(on ?? {})) el.addEventListener(k, v);
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id} in index.html`);
  return el;
}
