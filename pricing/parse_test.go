package pricing

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadErrors returns the individual problems of a Parse or Load error.
func loadErrors(t *testing.T, err error) []*LoadError {
	t.Helper()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %v is not a joined error", err)
	}
	var out []*LoadError
	for _, e := range joined.Unwrap() {
		var le *LoadError
		if !errors.As(e, &le) {
			t.Fatalf("%v is not a *LoadError", e)
		}
		out = append(out, le)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want string // the whole message of the only error
	}{
		{"unknown top-level key", "default_price: 0\nrulez: []\n",
			`line 2: unknown key "rulez" (known: default_price, rules)`},
		{"unknown rule key", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: 5\n    prise: 5\n",
			`line 6: rule 1 "a": unknown key "prise" (known: name, methods, host, path, price, price_expr)`},
		{"repeated key", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: 5\n    price: 6\n",
			`line 6: rule 1 "a": price: repeated (first at line 5)`},
		{"duplicate name", "default_price: 0\nrules:\n  - {name: a, path: /a, price: 1}\n  - {name: b, path: /b, price: 1}\n  - {name: a, path: /c, price: 1}\n",
			`line 5: rule 3 "a": name: "a" is already the name of rule 1`},
		{"missing name", "default_price: 0\nrules:\n  - {path: /a, price: 1}\n",
			`line 3: rule 1: name: required`},
		{"empty name", "default_price: 0\nrules:\n  - {name: '', path: /a, price: 1}\n",
			`line 3: rule 1: name: must not be empty`},
		{"missing path", "default_price: 0\nrules:\n  - name: a\n    price: 1\n",
			`line 3: rule 1 "a": path: required`},
		{"both prices", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: 1\n    price_expr: '1'\n",
			`line 6: rule 1 "a": price and price_expr are exclusive; give one`},
		{"no price", "default_price: 0\nrules:\n  - name: a\n    path: /a\n",
			`line 3: rule 1 "a": one of price or price_expr is required`},
		{"bad path regex", "default_price: 0\nrules:\n  - name: a\n    path: /a(\n    price: 1\n",
			"line 4: rule 1 \"a\": path: error parsing regexp: missing closing ): `/a(`"},
		{"bad host regex", "default_price: 0\nrules:\n  - name: a\n    host: '[a-'\n    path: /a\n    price: 1\n",
			"line 4: rule 1 \"a\": host: error parsing regexp: missing closing ]: `[a-`"},
		{"bad method", "default_price: 0\nrules:\n  - name: a\n    methods: [GET, 'PO ST']\n    path: /a\n    price: 1\n",
			`line 4: rule 1 "a": methods: "PO ST" is not an HTTP method name`},
		{"methods not a list", "default_price: 0\nrules:\n  - name: a\n    methods: GET\n    path: /a\n    price: 1\n",
			`line 4: rule 1 "a": methods: must be a list, e.g. [GET, HEAD]`},
		{"method twice", "default_price: 0\nrules:\n  - name: a\n    methods: [get, GET]\n    path: /a\n    price: 1\n",
			`line 4: rule 1 "a": methods: GET is listed twice`},
		{"negative price", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: -5\n",
			`line 5: rule 1 "a": price: "-5" is negative`},
		{"price above uint192", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: \"6277101735386680763835789423207666416102355444464034512896\"\n",
			`line 5: rule 1 "a": price: 6277101735386680763835789423207666416102355444464034512896 is above the maximum 2^192-1`},
		{"fractional price", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: 1.5\n",
			`line 5: rule 1 "a": price: "1.5" has a fraction, and a bare number is in base units, which are whole; for whole tokens write the unit: "1.5 token"`},
		{"octal-looking price", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price: 0755\n",
			`line 5: rule 1 "a": price: "0755" has a leading zero`},
		{"null price", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price:\n",
			`line 5: rule 1 "a": price: must be an integer, a decimal string or an amount in tokens ("0.005 token")`},
		{"negative default", "default_price: -1\n",
			`line 1: default_price: "-1" is negative`},
		{"missing default", "rules: []\n",
			`line 1: default_price: required (0 makes requests no rule matches free)`},
		{"undeclared variable", "default_price: 0\nrules:\n  - {name: echofix, path: /a, price: 1}\n  - name: echodyn\n    path: \"/echodyn/(?P<param>[^/]+)\"\n    price_expr: \"size(parm)\"\n",
			"line 6: rule 2 \"echodyn\": price_expr: ERROR: <input>:1:6: undeclared reference to 'parm' (in container '')\n | size(parm)\n | .....^"},
		{"expression not a number", "default_price: 0\nrules:\n  - name: a\n    path: /a\n    price_expr: path\n",
			`line 5: rule 1 "a": price_expr: evaluates to string, want int or uint`},
		{"capture named like a variable", "default_price: 0\nrules:\n  - name: a\n    path: \"/(?P<path>.*)\"\n    price_expr: '1'\n",
			`line 5: rule 1 "a": price_expr: path capture "path" clashes with the built-in variable of that name`},
		{"capture not an identifier", "default_price: 0\nrules:\n  - name: a\n    host: \"(?P<in>.*)\"\n    path: /a\n    price_expr: '1'\n",
			`line 6: rule 1 "a": price_expr: host capture "in" is not a valid CEL identifier`},
		{"capture in host and path", "default_price: 0\nrules:\n  - name: a\n    host: \"(?P<x>.*)\"\n    path: \"/(?P<x>.*)\"\n    price_expr: size(x)\n",
			`line 6: rule 1 "a": price_expr: host capture "x" is defined more than once`},
		{"rules not a list", "default_price: 0\nrules: {name: a}\n",
			`line 2: rules: must be a list of rules`},
		{"rule not a mapping", "default_price: 0\nrules:\n  - a\n",
			`line 3: rule 1: a rule must be a mapping`},
		{"table not a mapping", "- a\n",
			`line 1: the table must be a mapping with default_price and rules`},
		{"empty file", "# nothing\n",
			`empty price table (write default_price: 0 for a table where everything is free)`},
		{"yaml syntax", "default_price: 0\nrules:\n  - {name: a, path: /a\n",
			`line 3: did not find expected ',' or '}'`},
		{"yaml syntax, block", "default_price: 0\nrules:\n  - name: a\n    path: /a\n   price: 1\n",
			`line 3: did not find expected '-' indicator`}, // the line of the sequence it broke
		{"yaml scanner error", "default_price: 0\nrules:\n  - name: a: b\n",
			`line 3: mapping values are not allowed in this context`},
		{"two documents", "default_price: 0\n---\ndefault_price: 1\n",
			`line 2: a second YAML document; the table must be one document`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, err := Parse([]byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded (%d rules), want error %q", table.Len(), tc.want)
			}
			errs := loadErrors(t, err)
			if len(errs) != 1 || errs[0].Error() != tc.want {
				t.Errorf("Parse error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestParseReportsAllErrors checks that one pass reports every problem, in line order, each
// with its rule.
func TestParseReportsAllErrors(t *testing.T) {
	src := `default_price: 0
rules:
  - name: one
    path: /a(
    price: 1
  - name: two
    path: /b
    price_expr: "size(nope)"
  - name: one
    path: /c
    colour: blue
    price: -1
extra: true
`
	_, err := Parse([]byte(src))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	errs := loadErrors(t, err)
	want := []struct {
		line int
		rule int
		name string
		key  string
	}{
		{4, 1, "one", "path"},
		{8, 2, "two", "price_expr"},
		{9, 3, "one", "name"},
		{11, 3, "one", ""},
		{12, 3, "one", "price"},
		{13, 0, "", ""},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		e := errs[i]
		if e.Line != w.line || e.Rule != w.rule || e.Name != w.name || e.Key != w.key {
			t.Errorf("error %d = line %d rule %d %q key %q (%v), want line %d rule %d %q key %q",
				i, e.Line, e.Rule, e.Name, e.Key, e, w.line, w.rule, w.name, w.key)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.yaml")
	src := "default_price: 0\nrules:\n  - name: echodyn\n    path: \"/e/(?P<param>.*)\"\n    price_expr: \"size(parm)\"\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `:5: rule 1 "echodyn": price_expr: ERROR: <input>:1:6: undeclared reference to 'parm'`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load error = %v, want it to start with %q", err, want)
	}

	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestParseAccepts(t *testing.T) {
	// Anchors and aliases are plain YAML; null rules mean none.
	table := mustParse(t, `
default_price: &base 3
rules:
  - name: a
    path: /a
    price: *base
`)
	wantQuote(t, table, get("/a"), 3, "a")
	if n := mustParse(t, "default_price: 0\nrules:\n").Len(); n != 0 {
		t.Errorf("rules: null gives %d rules", n)
	}
}
