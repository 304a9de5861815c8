// RE2 patterns (a rule's path and host in the discovery document) as JavaScript RegExps:
// what each Go syntax becomes, what it matches, and what is refused rather than matched
// differently. node_test.go TestRE2AsGo checks these patterns and more against Go's regexp.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RuleMatchError, re2ToRegExp } from '../src/index.js';

// [RE2, JavaScript source inside ^(?:…)$, flags]
const translations = [
  ['/echofix/(?P<param>[^/]+)', '\\/echofix\\/(?<param>[^/]+)', 'u'],
  ['/x/(?<id>[0-9]+)', '\\/x\\/(?<id>[0-9]+)', 'u'],
  ['/free(/.*)?', '\\/free(\\/[^\\n]*)?', 'u'],
  ['(?s)a.b', 'a[^]b', 'u'],
  ['(?s:.)|.', '(?:[^])|[^\\n]', 'u'],
  ['(?i)/api/v1', '\\/api\\/v1', 'iu'],
  ['(?i)(?s)x', 'x', 'iu'],
  ['\\s\\S', '[\\u{9}-\\u{a}\\u{c}-\\u{d} ][^\\u{9}-\\u{a}\\u{c}-\\u{d} ]', 'u'],
  ['[\\d\\w\\W\\D]', '[\\d\\w\\W\\D]', 'u'],
  ['[[:alpha:][:digit:]_]', '[A-Za-z0-9_]', 'u'],
  ['[[:^digit:]]', '[\\u{0}-/:-\\u{10ffff}]', 'u'],
  ['a{,3}b{01}c{2}d{1,}e{1,2}', 'a\\{,3\\}b\\{01\\}c{2}d{1,}e{1,2}', 'u'],
  ['(?U)a*b+?c{2}', 'a*?b+c{2}?', 'u'],
  ['(?m)^a$', '(?<![^\\n])a(?![^\\n])', 'u'],
  ['\\Aa\\z', '^a$', 'u'],
  ['\\Q.*\\E+', '\\.\\*+', 'u'],
  ['\\12\\0\\x41\\x{1F600}\\a\\-\\_', '\\u{a}\\u{0}A\\u{1f600}\\u{7}-_', 'u'],
  ['[\\p{L}-z]', '[\\p{L}\\-z]', 'u'],
  ['\\pL\\p{greek}\\p{Letter}\\PN\\p{^Lu}', '\\p{L}\\p{Script=Greek}\\p{L}\\P{N}\\P{Lu}', 'u'],
  [']}[]a][^-]', '\\]\\}[\\]a][^\\-]', 'u'],
  ['é', '\\u{e9}', 'u'],
];

test('RE2 syntax becomes its JavaScript equivalent', () => {
  for (const [re2, source, flags] of translations) {
    const re = re2ToRegExp(re2);
    assert.equal(re.source, `^(?:${source})$`, re2);
    assert.equal(re.flags, flags, re2);
  }
});

// [RE2, strings it matches whole, strings it does not]
const matches = [
  ['/echofix/(?P<param>[^/]+)', ['/echofix/foo'], ['/echofix/', '/echofix/a/b', 'x/echofix/foo', '/echofix/foo/']],
  ['/free(/.*)?', ['/free', '/free/', '/free/a/b'], ['/freedom', '/free\n']],
  ['/a|/b', ['/a', '/b'], ['/ab', '/a|/b']],
  ['\\s', [' ', '\t', '\n', '\f', '\r'], ['\v', '\u00a0', '\u2028']],
  ['.', ['a', '\r', '\u2028'], ['\n', '']],
  ['(?i)k', ['k', 'K', '\u212a'], ['x']],
  ['a{,3}', ['a{,3}'], ['a', 'aaa']],
  ['\\12', ['\n'], ['\\12']],
  ['(?m)a$\\nb', ['a\nb'], ['ab']],
  ['(?i)\\W', ['-'], ['a', 'K', '\u212a', '\u017f']],
];

test('a translated pattern matches what Go matches, whole', () => {
  for (const [re2, yes, no] of matches) {
    const re = re2ToRegExp(re2);
    for (const s of yes) assert.ok(re.test(s), `${re2} must match ${JSON.stringify(s)}`);
    for (const s of no) assert.ok(!re.test(s), `${re2} must not match ${JSON.stringify(s)}`);
  }
  assert.deepEqual({ ...re2ToRegExp('/u/(?P<user>[^/]+)/(?P<repo>[^/]+)').exec('/u/ann/box')?.groups }, { user: 'ann', repo: 'box' });
});

test('what JavaScript would match otherwise than Go is refused', () => {
  for (const [re2, why] of [
    ['\\C', /no JavaScript equivalent/], // any byte
    ['(?P<1st>x)', /starts with a digit/],
    ['(?i)[[:^lower:]]', /negated POSIX class .* under \(\?i\)/], // Go folds before negating
    ['(?i)\\P{Lu}', /negated Unicode class under \(\?i\)/],
    ['(?i:\\p{^Lu})', /negated Unicode class under \(\?i\)/],
    ['(?=a)', /is not RE2/], // lookaround: not RE2 at all
    ['\\1', /bad escape/], // a backreference in JavaScript
    ['[[:alpah:]]', /no POSIX class/],
    ['\\p{Klingon}', /cannot compile/],
    ['(?P<a>x)(?P<a>y)', /cannot compile/], // Go takes a name twice; JavaScript (before ES2025) does not
    ['(?:', /not closed/],
    ['a)', /without its \(/],
  ]) {
    assert.throws(() => re2ToRegExp(re2), (err) => err instanceof RuleMatchError && err.pattern === re2 && why.test(err.message), re2);
  }
});

// Flags set mid-pattern become (?i:…) groups, which engines without RegExp modifiers (Node
// before 23) refuse, and JavaScript's \b differs from Go's under i: refused there, never
// dropped.
test('case-insensitivity set mid-pattern is a modifier group, or refused', () => {
  let modifiers = true;
  try {
    new RegExp('(?i:a)');
  } catch {
    modifiers = false;
  }
  for (const [re2, source] of [
    ['a(?i)b|c', 'a(?i:b)|(?i:c)'],
    ['(?i:a)b', '(?i:a)b'],
    ['(?i)a(?-i)b', 'a(?-i:b)'],
    ['(?i)\\bx', '(?-i:\\b)x'],
  ]) {
    if (modifiers) {
      assert.equal(re2ToRegExp(re2).source, `^(?:${source})$`, re2);
    } else {
      assert.throws(() => re2ToRegExp(re2), (err) => err instanceof RuleMatchError && /cannot compile/.test(err.message), re2);
    }
  }
});
