// Spectral custom function (tests/contract/referee/.spectral.yaml, rule tablium-security-scheme-used):
// every scheme in components.securitySchemes is named by the top-level `security` or by some
// operation's `security`.
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function names(reqs, into) {
  if (!Array.isArray(reqs)) return;
  for (const r of reqs) {
    if (r && typeof r === 'object') for (const k of Object.keys(r)) into.add(k);
  }
}

export default function tabliumSecurityUsed(doc) {
  const schemes = doc && doc.components && doc.components.securitySchemes;
  if (!schemes || typeof schemes !== 'object') return [];
  const used = new Set();
  names(doc.security, used);
  for (const item of Object.values(doc.paths || {})) {
    if (!item || typeof item !== 'object') continue;
    for (const m of METHODS) if (item[m]) names(item[m].security, used);
  }
  return Object.keys(schemes)
    .filter((s) => !used.has(s))
    .map((s) => ({
      message: `security scheme "${s}" is declared but no security requirement uses it`,
      path: ['components', 'securitySchemes', s],
    }));
}
