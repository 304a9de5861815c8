package jsclient_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"regexp"

	"testing"

	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/pricing"
)

// TestRE2AsGo runs the library's RE2 translation (src/re2.js, through test/re2-as-go.js) on
// patterns in every syntax RE2 has and compares, string by string, what the JavaScript
// RegExp matches and captures with what Go's regexp does, compiled as the server compiles a
// rule's path and host. A pattern the library translates must agree on every input; those
// JavaScript cannot match as Go does must be refused.
func TestRE2AsGo(t *testing.T) {
	node := servertest.Program(t, "apt-get install nodejs", "node")
	translated := []string{
		`/echofix/(?P<param>[^/]+)`, `/echodyn/(?P<param>[^/]+)/?`, `/free(/.*)?`, `/healthz`, `/a|/b`, `(?<id>[0-9]+)`,
		`.`, `.*`, `(?s).`, `(?s:.)|.`, `(?s)(?-s:.)`, `[^a]`, `[^\n]`,
		`\s`, `\S`, `[\s]`, `[\S]`, `[^\s]`, `[^\S]`, `\d`, `\D`, `\w`, `\W`, `[\w-]`, `[^\W]`, `[\D\s]`,
		`(?i)\w`, `(?i)\W`, `(?i)[^\W]`, `(?i)\d`, `(?i)\S`, `(?i)[\S]`, `(?i)[^\s]`,
		`[[:alpha:]]`, `[[:^alpha:]]`, `[[:word:][:punct:]]`, `[[:space:]]`, `[[:^space:]x]`, `[^[:cntrl:]]`, `[[:xdigit:]]`, `(?i)[[:upper:]]`, `(?i)[^[:lower:]]`,
		`(?i)k`, `(?i)s`, `(?i)[a-z]+`, `(?i)[^k]`, `(?i)/API/v1`, `(?i)é`, `(?i)\p{Lu}`, `(?i)[^\p{Lu}]`,
		`\pL`, `\p{L}`, `\PL`, `\p{^L}`, `\p{Greek}`, `\p{greek}`, `\p{Letter}`, `\p{digit}`, `\p{Any}`, `\p{ASCII}`, `\p{Lu}+`, `[\p{L}-z]`,
		`a{,3}`, `a{01}`, `a{2}`, `a{2,}`, `a{1,2}`, `x{`, `x}`, `]`, `[]a]`, `[^]a]`, `[a-]`, `[-a]`, `[--/]`, `[a\-z]`,
		`(?U)(?P<a>a+)(?P<b>a*)`, `(?U)(?P<a>a+?)(?P<b>a*)`, `(?P<a>a*)(?P<b>a*)`, `(?P<a>a*?)(?P<b>a*)`,
		`(?m)^a$`, `(?m)a$\n^b`, `(?m:^)a`, `^a$`, `\Aa\z`, `a^`, `$a`,
		`\Q.*+\E`, `\Q.*+`, `\Qa\E+`, `\12`, `\0`, `\012`, `\x41`, `\x{1F600}`, `\a`, `\f\t\v\r\n`, `\-\_\.\/\#\&\~`,
		`\bk\b`, `a\Bb`, `(?i)a|B`, `(?i)(?s)x.`, `(?)a`, `(?i)(?-i)k`,
		`/users/(?P<user>[^/]+)/(?P<repo>[^/]+)(?:/(?P<rest>.*))?`, `(?P<host>[a-z0-9.-]+)(?::(?P<port>[0-9]+))?`, `api\.example\.com(:443)?`,
	}
	refused := []string{
		`(?P<1st>x)`, `(?i)[[:^lower:]]`, `(?i)\P{Lu}`, `(?i:\p{^Lu})`, `(?P<a>x)(?P<a>y)`,
	}
	inputs := []string{"", "é", "É", "ſ", "\u212a", "\u00a0", "\u2028", "\u0085", "😀", "α", "Α",
		"/echofix/foo", "/echofix/", "/echofix/foo/", "/echofix/a/b", "/echodyn/x/", "/free", "/free/", "/free/x/y", "/freedom",
		"/healthz", "/a", "/b", "/ab", "123", "a{,3}", "a{01}", "aa", "aaa", "aaaa", "x{", "x}", "]a", "a\nb", "ab", "\nb", "a\n",
		"/API/v1", "/api/V1", ".*+", ".*++", "aaa+", "k k", "kk", "a b", "Ab", "B", "x\n", "X\n", "/users/ann/box", "/users/ann/box/a/b",
		"/users/ann", "localhost:8080", "localhost", "api.example.com", "api.example.com:443", "apixexample.com", "\a", "\f\t\v\r\n", "-_./#&~"}
	for c := 0; c < 0x80; c++ {
		inputs = append(inputs, string(rune(c)))
	}
	patterns := append(append([]string{}, translated...), refused...)

	in, err := json.Marshal(map[string]any{"patterns": patterns, "inputs": inputs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "test/re2-as-go.js")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node test/re2-as-go.js: %v\n%s", err, stderr.Bytes())
	}
	var got []struct {
		Refused string
		Source  string
		Results []map[string]string
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(patterns) {
		t.Fatalf("node answered %d results for %d patterns: %v", len(got), len(patterns), err)
	}
	for i, p := range patterns {
		g := got[i]
		re := compileAnchored(t, p)
		if i >= len(translated) {
			if g.Refused == "" {
				t.Errorf("%s: translated to %s, want it refused", p, g.Source)
			}
			continue
		}
		if g.Refused != "" {
			t.Errorf("%s: refused: %s", p, g.Refused)
			continue
		}
		for j, s := range inputs {
			want := submatches(re, s)
			if (want == nil) != (g.Results[j] == nil) || want != nil && !maps.Equal(want, g.Results[j]) {
				t.Errorf("%s (JavaScript %s) on %q: Go %s, JavaScript %s", p, g.Source, s, describe(want), describe(g.Results[j]))
			}
		}
	}
}

// compileAnchored compiles a pattern as the server compiles a rule's path and host.
func compileAnchored(t *testing.T, src string) *regexp.Regexp {
	t.Helper()
	re, err := pricing.CompilePattern(src)
	if err != nil {
		t.Fatalf("%s is not a pattern the server takes: %v", src, err)
	}
	return re
}

// submatches are the named groups' values of a match ("" for a group that took no part), nil
// without one.
func submatches(re *regexp.Regexp, s string) map[string]string {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	groups := map[string]string{}
	for k, name := range re.SubexpNames() {
		if name != "" {
			groups[name] = m[k]
		}
	}
	return groups
}

func describe(groups map[string]string) string {
	if groups == nil {
		return "no match"
	}
	return fmt.Sprintf("a match %v", groups)
}
