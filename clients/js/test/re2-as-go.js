// For node_test.go TestRE2AsGo: reads {patterns, inputs} as JSON on stdin and writes, for
// each pattern, the refusal or, for each input, null (no match) or the named groups' values.
import { re2ToRegExp } from '../src/re2.js';

let text = '';
for await (const chunk of process.stdin) text += chunk;
const { patterns, inputs } = JSON.parse(text);
const out = patterns.map((/** @type {string} */ p) => {
  let re;
  try {
    re = re2ToRegExp(p);
  } catch (err) {
    return { refused: /** @type {Error} */ (err).message };
  }
  return {
    source: re.source,
    results: inputs.map((/** @type {string} */ s) => {
      const m = re.exec(s);
      return m && Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, v ?? '']));
    }),
  };
});
process.stdout.write(JSON.stringify(out));
