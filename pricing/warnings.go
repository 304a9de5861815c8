package pricing

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// otherMethods are the methods Warnings tries on a rule's paths besides the rule's own:
// the common ones, and one no rule names, for any other an upstream may answer.
var otherMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "X-ANY-OTHER"}

// Warnings reports what a table does that an operator likely did not mean, without making
// it invalid. Two kinds:
//
//   - a path pattern holding text no canonical path holds (see CanonicalPath): a literal
//     escape of a plain character (%7e), lower-case hex, a raw non-ASCII letter, ';', '\',
//     "//" or a dot segment. Paths are matched in canonical form, so that part of the
//     pattern never matches, and a table written for raw paths would let them go free;
//   - a priced rule restricted to some methods, on whose paths the other methods cost 0
//     (they fall to a free rule or a free default_price), while the upstream may well
//     answer them. Each rule is tried on one path its expression matches.
func (t *Table) Warnings() []string {
	var out []string
	for i, ru := range t.rules {
		if lit, why := nonCanonicalLiteral(ru.path); why != "" {
			out = append(out, fmt.Sprintf("rule %d %q: its path pattern holds %q, %s; paths are matched as "+
				"pricing.CanonicalPath resolves them (escapes of plain characters decoded, other bytes "+
				"escaped in upper-case hex, slashes merged, dot segments removed), so it never matches there",
				i+1, ru.name, lit, why))
		}
	}
	for i, ru := range t.rules {
		if len(ru.methods) == 0 {
			continue
		}
		path, ok := sampleMatch(ru.path)
		if !ok {
			continue
		}
		host := ""
		if ru.host != nil {
			if host, ok = sampleMatch(ru.host); !ok {
				continue
			}
		}
		q, err := t.quote(&Request{Method: ru.methods[0], Host: host, Path: path})
		if err != nil || q.Rule != ru.name || q.Price.Sign() == 0 {
			continue // shadowed by an earlier rule, or free itself
		}
		var free []string
		var to string
		for _, m := range otherMethods {
			if slices.Contains(ru.methods, m) {
				continue
			}
			qm, err := t.quote(&Request{Method: m, Host: host, Path: path})
			if err != nil || qm.Price.Sign() != 0 {
				continue
			}
			if m == "X-ANY-OTHER" {
				m = "any other method"
			}
			free = append(free, m)
			if to == "" {
				to = "default_price 0"
				if qm.Rule != "" {
					to = fmt.Sprintf("rule %q, price 0", qm.Rule)
				}
			}
		}
		if len(free) > 0 {
			out = append(out, fmt.Sprintf("rule %d %q prices %s only: %s on its paths (e.g. %s) fall to %s and are free; "+
				"list every method the upstream answers, or price the others in another rule",
				i+1, ru.name, strings.Join(ru.methods, ", "), strings.Join(free, ", "), path, to))
		}
	}
	return out
}

// sampleMatch returns a string re matches, built from its syntax: the first alternative,
// the fewest repetitions, a letter or the first character of a class.
func sampleMatch(re *regexp.Regexp) (string, bool) {
	parsed, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	var walk func(r *syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		switch r.Op {
		case syntax.OpLiteral:
			b.WriteString(string(r.Rune))
		case syntax.OpCharClass:
			b.WriteRune(classSample(r.Rune))
		case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
			b.WriteByte('a')
		case syntax.OpCapture:
			walk(r.Sub[0])
		case syntax.OpPlus:
			walk(r.Sub[0])
		case syntax.OpRepeat:
			for range r.Min {
				walk(r.Sub[0])
			}
		case syntax.OpConcat:
			for _, s := range r.Sub {
				walk(s)
			}
		case syntax.OpAlternate:
			walk(r.Sub[0])
		}
	}
	walk(parsed)
	s := b.String()
	return s, re.MatchString(s)
}

// classSample picks a character of a class given as ranges: 'a' or 'x' if in it, else the
// first printable one, else the first.
func classSample(ranges []rune) rune {
	in := func(c rune) bool {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= c && c <= ranges[i+1] {
				return true
			}
		}
		return false
	}
	for _, c := range []rune{'a', 'x', '0'} {
		if in(c) {
			return c
		}
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i+1] > ' ' {
			return max(ranges[i], '!')
		}
	}
	if len(ranges) > 0 {
		return ranges[0]
	}
	return 'a'
}

// nonCanonicalLiteral returns a literal of re that no canonical path contains, and why; ""
// when every literal can occur in one.
func nonCanonicalLiteral(re *regexp.Regexp) (string, string) {
	parsed, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return "", ""
	}
	var lit, why string
	var walk func(r *syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		if why != "" {
			return
		}
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 {
			lit, why = string(r.Rune), literalProblem(string(r.Rune))
			return
		}
		for _, sub := range r.Sub {
			walk(sub)
		}
	}
	walk(parsed)
	return lit, why
}

func literalProblem(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b := unhex(s[i+1])<<4 | unhex(s[i+2])
			if plain[b] && b != '/' {
				return fmt.Sprintf("an escape of %q, which is decoded", b)
			}
			if strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
				return "an escape in lower-case hex, which is upper-cased"
			}
		case c == '%':
			// An escape split across literals, or not one at all: nothing to judge.
		case !plain[c]:
			return fmt.Sprintf("%q, which is escaped", c)
		}
	}
	for _, bad := range []string{"//", "/./", "/../"} {
		if strings.Contains(s, bad) {
			return fmt.Sprintf("%q, which is resolved", bad)
		}
	}
	return ""
}
