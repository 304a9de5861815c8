// RE2 patterns (Go's regexp, in which a price table writes a rule's path and host) as
// JavaScript RegExps that match the same strings, anchored as the server anchors them.
//
// The dialects differ in more than (?P<name>…): \s, ., ^, $, \b under (?i), octal escapes and
// a { that starts no repetition mean other things or nothing in JavaScript, and POSIX classes,
// \Q…\E, (?U), (?m), (?s) and flags set mid-pattern do not exist there. What has an exact
// translation is translated; what has none, or does not compile in this engine, is refused
// with a RuleMatchError, never matched differently. The server parses patterns as
// pricing.compileAnchored does: regexp/syntax with the Perl flags, inside \A(?:…)\z.
import { RuleMatchError } from './errors.js';

/**
 * @typedef {object} Flags Go's flags in force
 * @property {boolean} i case-insensitive
 * @property {boolean} m ^ and $ match at line boundaries too
 * @property {boolean} s . matches \n
 * @property {boolean} U repetitions are lazy, and lazy ones (x*?) greedy
 */

/**
 * A group being translated.
 * @typedef {object} Frame
 * @property {Flags} saved Go's flags outside it, restored at its )
 * @property {boolean} outerI JavaScript's i outside it
 * @property {boolean} innerI JavaScript's i at its start, again after each |
 * @property {number} mods (?i: or (?-i: groups opened in it by a (?i) or (?-i), closed at | and )
 */

// Go's POSIX classes (regexp/syntax perl_groups.go), all ASCII, as code point ranges.
/** @type {Record<string, [number, number][]>} */
const posix = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};
// Go's \s is [\t\n\f\r ]; JavaScript's takes every Unicode space.
/** @type {[number, number][]} */
const space = [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]];

// Unicode classes by the name Go resolves (unicode.Categories, CategoryAliases), compared as
// Go compares them: case, '_', '-' and ' ' ignored.
const categories = ['C', 'Cc', 'Cf', 'Cn', 'Co', 'Cs', 'L', 'LC', 'Ll', 'Lm', 'Lo', 'Lt', 'Lu', 'M', 'Mc', 'Me', 'Mn',
  'N', 'Nd', 'Nl', 'No', 'P', 'Pc', 'Pd', 'Pe', 'Pf', 'Pi', 'Po', 'Ps', 'S', 'Sc', 'Sk', 'Sm', 'So', 'Z', 'Zl', 'Zp', 'Zs'];
/** @type {Record<string, string>} */
const unicodeNames = {
  any: 'Any', assigned: 'Assigned', ascii: 'ASCII',
  casedletter: 'LC', closepunctuation: 'Pe', combiningmark: 'M', connectorpunctuation: 'Pc', control: 'Cc',
  currencysymbol: 'Sc', dashpunctuation: 'Pd', decimalnumber: 'Nd', enclosingmark: 'Me', finalpunctuation: 'Pf',
  format: 'Cf', initialpunctuation: 'Pi', letter: 'L', letternumber: 'Nl', lineseparator: 'Zl', lowercaseletter: 'Ll',
  mark: 'M', mathsymbol: 'Sm', modifierletter: 'Lm', modifiersymbol: 'Sk', nonspacingmark: 'Mn', number: 'N',
  openpunctuation: 'Ps', other: 'C', otherletter: 'Lo', othernumber: 'No', otherpunctuation: 'Po', othersymbol: 'So',
  paragraphseparator: 'Zp', privateuse: 'Co', punctuation: 'P', separator: 'Z', spaceseparator: 'Zs',
  spacingmark: 'Mc', surrogate: 'Cs', symbol: 'S', titlecaseletter: 'Lt', unassigned: 'Cn', uppercaseletter: 'Lu',
  cntrl: 'Cc', digit: 'Nd', punct: 'P',
  ...Object.fromEntries(categories.map((c) => [c.toLowerCase(), c])),
};

/**
 * An anchored RegExp that matches exactly the strings the RE2 pattern matches whole, as the
 * server matches a rule's path or host.
 * @param {string} pattern
 * @returns {RegExp}
 * @throws {RuleMatchError} a pattern JavaScript cannot match as Go does
 */
export function re2ToRegExp(pattern) {
  const { source, flags } = translate(pattern);
  try {
    return new RegExp(`^(?:${source})$`, flags);
  } catch (err) {
    throw new RuleMatchError(`JavaScript cannot compile its translation ${JSON.stringify(source)}: ${/** @type {Error} */ (err).message}`, { pattern });
  }
}

/**
 * The pattern's JavaScript translation, unanchored, and the flags to compile it with.
 * @param {string} pattern
 * @returns {{ source: string, flags: string }}
 */
function translate(pattern) {
  return new Translator(pattern).run();
}

class Translator {
  /** @param {string} src */
  constructor(src) {
    this.src = src;
    this.pos = 0;
    this.out = '';
    /** @type {Flags} */
    this.flags = { i: false, m: false, s: false, U: false };
    this.jsI = false;
    /** @type {Frame[]} */
    this.frames = [];
  }

  /** @param {string} reason @returns {never} */
  fail(reason) {
    throw new RuleMatchError(reason, { pattern: this.src });
  }

  run() {
    // Flags set before anything else hold for the whole pattern, unless changed later: they
    // become the RegExp's, which every engine takes, rather than a (?i:…) group, which older
    // engines (Node before 23) refuse.
    for (;;) {
      const f = this.src.startsWith('(?', this.pos) ? this.parseFlags(this.pos + 2, this.flags) : null;
      if (!f || f.colon) break;
      this.flags = f.flags;
      this.pos = f.end;
    }
    this.jsI = this.flags.i;
    const top = { saved: this.flags, outerI: this.jsI, innerI: this.jsI, mods: 0 };
    this.frames.push(top);
    while (this.pos < this.src.length) this.step();
    if (this.frames.length > 1) this.fail('a ( is not closed');
    this.out += ')'.repeat(top.mods);
    return { source: this.out, flags: top.innerI ? 'iu' : 'u' };
  }

  step() {
    const { src } = this;
    const c = src[this.pos];
    switch (c) {
      case '(':
        this.open();
        return;
      case ')': {
        const f = this.frames.pop();
        if (!f || this.frames.length === 0) this.fail('a ) without its (');
        this.out += `${')'.repeat(f.mods)})`;
        this.flags = f.saved;
        this.jsI = f.outerI;
        this.pos++;
        return;
      }
      case '|': {
        const f = this.frames[this.frames.length - 1];
        this.out += `${')'.repeat(f.mods)}|`;
        f.mods = 0;
        this.jsI = f.innerI;
        this.setI(f);
        this.pos++;
        return;
      }
      case '^':
        this.out += this.flags.m ? '(?<![^\\n])' : '^';
        this.pos++;
        return;
      case '$':
        this.out += this.flags.m ? '(?![^\\n])' : '$';
        this.pos++;
        return;
      case '.':
        this.out += this.flags.s ? '[^]' : '[^\\n]';
        this.pos++;
        return;
      case '[':
        this.out += this.charClass();
        return;
      case '*': case '+': case '?':
        this.pos++;
        this.quantifier(c);
        return;
      case '{': {
        const r = this.repeat();
        if (r) {
          this.quantifier(r);
        } else {
          // Go takes a { that starts no repetition (a{,3}, a{01}) as itself.
          this.out += '\\{';
          this.pos++;
        }
        return;
      }
      case '\\':
        this.escape();
        return;
      default: {
        const cp = /** @type {number} */ (src.codePointAt(this.pos));
        this.pos += cp > 0xffff ? 2 : 1;
        this.out += lit(cp, false);
      }
    }
  }

  /** A group, or flags set until the end of the current one. */
  open() {
    const { src } = this;
    const at = this.pos;
    if (src[at + 1] !== '?') {
      this.push(this.jsI);
      this.out += '(';
      this.pos++;
      return;
    }
    const named = src.startsWith('(?P<', at) ? at + 4 : src.startsWith('(?<', at) ? at + 3 : -1;
    if (named >= 0) {
      const end = src.indexOf('>', named);
      const name = end < 0 ? '' : src.slice(named, end);
      if (!/^[A-Za-z0-9_]+$/.test(name)) this.fail(`a group name is letters, digits and _, got ${JSON.stringify(src.slice(at, end + 1))}`);
      if (/^[0-9]/.test(name)) this.fail(`group name ${name} starts with a digit, which JavaScript does not take`);
      this.push(this.jsI);
      this.out += `(?<${name}>`;
      this.pos = end + 1;
      return;
    }
    const f = this.parseFlags(at + 2, this.flags);
    if (!f) this.fail(`${JSON.stringify(src.slice(at, at + 3))} is not RE2 (no lookaround, backreference or other group)`);
    this.pos = f.end;
    if (f.colon) {
      this.push(f.flags.i);
      this.out += f.flags.i === this.jsI ? '(?:' : f.flags.i ? '(?i:' : '(?-i:';
      this.flags = f.flags;
      this.jsI = f.flags.i;
    } else {
      this.flags = f.flags;
      this.setI(this.frames[this.frames.length - 1]);
    }
  }

  /** @param {boolean} innerI */
  push(innerI) {
    this.frames.push({ saved: this.flags, outerI: this.jsI, innerI, mods: 0 });
  }

  /**
   * Opens a (?i: or (?-i: group in frame f when Go's i differs from JavaScript's here.
   * @param {Frame} f
   */
  setI(f) {
    if (this.flags.i === this.jsI) return;
    this.out += this.flags.i ? '(?i:' : '(?-i:';
    f.mods++;
    this.jsI = this.flags.i;
  }

  /**
   * Go's flag syntax after "(?": letters imsU, a '-' before those to clear, then ':' (a group)
   * or ')'. null if it is not that.
   * @param {number} at
   * @param {Flags} from
   * @returns {{ flags: Flags, end: number, colon: boolean } | null}
   */
  parseFlags(at, from) {
    const flags = { ...from };
    let clear = false;
    let saw = false;
    for (let k = at; k < this.src.length; k++) {
      const c = this.src[k];
      if (c === 'i' || c === 'm' || c === 's' || c === 'U') {
        flags[c] = !clear;
        saw = true;
      } else if (c === '-' && !clear) {
        clear = true;
        saw = false;
      } else if ((c === ':' || c === ')') && (!clear || saw)) {
        return { flags, end: k + 1, colon: c === ':' };
      } else {
        return null;
      }
    }
    return null;
  }

  /**
   * A repetition {n}, {n,} or {n,m} at pos as Go reads one (no leading zeros), or null.
   * @returns {string | null}
   */
  repeat() {
    const m = /^\{(0|[1-9][0-9]*)(,(0|[1-9][0-9]*)?)?\}/.exec(this.src.slice(this.pos, this.pos + 24));
    if (!m) return null;
    this.pos += m[0].length;
    return m[0];
  }

  /** @param {string} q a repetition operator, before its lazy '?' */
  quantifier(q) {
    let lazy = this.src[this.pos] === '?';
    if (lazy) this.pos++;
    if (this.flags.U) lazy = !lazy;
    this.out += lazy ? `${q}?` : q;
  }

  escape() {
    const { src } = this;
    const c = src[this.pos + 1];
    switch (c) {
      case 'A':
        this.out += '^';
        break;
      case 'z':
        this.out += '$';
        break;
      case 'b': case 'B':
        // Go's word characters are ASCII whatever the flags; JavaScript's take ſ and K (the
        // Kelvin sign) too under i.
        this.out += this.flags.i ? `(?-i:\\${c})` : `\\${c}`;
        break;
      case 'C':
        this.fail('\\C (any byte) has no JavaScript equivalent');
        break;
      case 'Q': {
        const end = src.indexOf('\\E', this.pos + 2);
        const text = src.slice(this.pos + 2, end < 0 ? src.length : end);
        for (const ch of text) this.out += lit(/** @type {number} */ (ch.codePointAt(0)), false);
        this.pos = end < 0 ? src.length : end + 2;
        return;
      }
      case 'p': case 'P':
        this.out += this.unicodeClass();
        return;
      case 'd': case 'D': case 'w': case 'W':
        // ASCII in both, and under i both fold them the same way.
        this.out += `\\${c}`;
        break;
      case 's': case 'S':
        this.out += `[${c === 'S' ? '^' : ''}${ranges(space)}]`;
        break;
      default:
        this.out += lit(this.escapedChar(), false);
        return;
    }
    this.pos += 2;
  }

  /**
   * A single-character escape at pos (Go's parseEscape): its code point.
   * @returns {number}
   */
  escapedChar() {
    const { src } = this;
    const at = this.pos;
    const c = src[at + 1];
    if (c === undefined) this.fail('it ends in a \\');
    const octal = /^[0-7]{1,3}/.exec(src.slice(at + 1, at + 4));
    if (octal && (c === '0' || octal[0].length > 1)) {
      this.pos += 1 + octal[0].length;
      return parseInt(octal[0], 8);
    }
    if (c === 'x') {
      const m = /^x(?:\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2}))/.exec(src.slice(at + 1, at + 12));
      const cp = m ? parseInt(m[1] ?? m[2], 16) : NaN;
      if (!m || !(cp <= 0x10ffff)) this.fail(`bad escape ${JSON.stringify(src.slice(at, at + 4))}`);
      this.pos += 1 + m[0].length;
      return cp;
    }
    const named = { a: 7, f: 12, n: 10, r: 13, t: 9, v: 11 }[c];
    if (named !== undefined) {
      this.pos += 2;
      return named;
    }
    const cp = /** @type {number} */ (src.codePointAt(at + 1));
    if (cp >= 0x80 || /[0-9A-Za-z]/.test(c)) this.fail(`bad escape ${JSON.stringify(String.fromCodePoint(0x5c, cp))}`);
    this.pos += 2;
    return cp;
  }

  /**
   * \pN, \p{Name}, \PN, \P{^Name} at pos, as JavaScript's \p{…} or \P{…}.
   * @returns {string}
   */
  unicodeClass() {
    const { src } = this;
    const at = this.pos;
    let negated = src[at + 1] === 'P';
    let name;
    if (src[at + 2] === '{') {
      const end = src.indexOf('}', at);
      if (end < 0) this.fail('a \\p{ is not closed');
      name = src.slice(at + 3, end);
      this.pos = end + 1;
    } else {
      const cp = src.codePointAt(at + 2);
      if (cp === undefined) this.fail('it ends in \\p');
      name = String.fromCodePoint(cp);
      this.pos = at + 2 + name.length;
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    const key = name.replace(/[-_ ]/g, '').toLowerCase();
    if (key === '') this.fail('an empty Unicode class name');
    // Anything else Go takes is a script: Greek, Latin, …
    const property = unicodeNames[key] ?? `Script=${key[0].toUpperCase()}${key.slice(1)}`;
    // Go folds the class before negating it, JavaScript after: the negated classes differ.
    if (negated && this.flags.i) this.fail('a negated Unicode class under (?i), which JavaScript folds otherwise than Go');
    return `\\${negated ? 'P' : 'p'}{${property}}`;
  }

  /**
   * A bracketed class at pos, as Go's parseClass reads it.
   * @returns {string}
   */
  charClass() {
    const { src } = this;
    const start = this.pos;
    this.pos++;
    const negated = src[this.pos] === '^';
    if (negated) this.pos++;
    let items = '';
    for (let first = true; this.pos < src.length && (src[this.pos] !== ']' || first); first = false) {
      const at = this.pos;
      if (src.startsWith('[:', at)) {
        const end = src.indexOf(':]', at + 2);
        if (end >= 0) {
          const spec = src.slice(at + 2, end);
          const name = spec.replace(/^\^/, '');
          const set = Object.hasOwn(posix, name) ? posix[name] : undefined;
          if (!set) this.fail(`no POSIX class [:${spec}:]`);
          if (name === spec) {
            items += ranges(set);
          } else {
            // Go folds the class before negating it, JavaScript after.
            if (this.flags.i) this.fail(`a negated POSIX class [:${spec}:] under (?i), which JavaScript folds otherwise than Go`);
            items += ranges(complement(set));
          }
          this.pos = end + 2;
          continue;
        }
      }
      const e = src[at] === '\\' ? src[at + 1] : '';
      if (e === 'p' || e === 'P') {
        items += this.unicodeClass();
        continue;
      }
      if (e === 'd' || e === 'D' || e === 'w' || e === 'W') {
        items += `\\${e}`;
        this.pos += 2;
        continue;
      }
      if (e === 's' || e === 'S') {
        items += ranges(e === 's' ? space : complement(space));
        this.pos += 2;
        continue;
      }
      const lo = this.classChar();
      let hi = lo;
      if (src[this.pos] === '-' && this.pos + 1 < src.length && src[this.pos + 1] !== ']') {
        this.pos++;
        hi = this.classChar();
        if (hi < lo) this.fail(`bad range ${JSON.stringify(src.slice(at, this.pos))}`);
      }
      items += ranges([[lo, hi]]);
    }
    if (this.pos >= src.length) this.fail(`${JSON.stringify(src.slice(start))}: a [ is not closed`);
    this.pos++;
    return `[${negated ? '^' : ''}${items}]`;
  }

  /** @returns {number} */
  classChar() {
    if (this.src[this.pos] === '\\') return this.escapedChar();
    const cp = /** @type {number} */ (this.src.codePointAt(this.pos));
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }
}

/**
 * A code point as JavaScript's u-mode syntax writes it literally, in a class or outside.
 * @param {number} cp
 * @param {boolean} inClass
 */
function lit(cp, inClass) {
  // Beyond printable ASCII, escaped: readable, and no line terminator or lone surrogate in it.
  if (cp < 0x20 || cp > 0x7e) return `\\u{${cp.toString(16)}}`;
  const ch = String.fromCodePoint(cp);
  return (inClass ? '\\]^[-' : '^$\\.*+?()[]{}|/').includes(ch) ? `\\${ch}` : ch;
}

/** @param {[number, number][]} set */
function ranges(set) {
  return set.map(([lo, hi]) => (lo === hi ? lit(lo, true) : `${lit(lo, true)}-${lit(hi, true)}`)).join('');
}

/**
 * @param {[number, number][]} set sorted, disjoint
 * @returns {[number, number][]}
 */
function complement(set) {
  /** @type {[number, number][]} */
  const out = [];
  let next = 0;
  for (const [lo, hi] of set) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}
