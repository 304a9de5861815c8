package pricing

import (
	"strings"
	"testing"
)

// A priced rule restricted to some methods, whose other methods fall to a free price, is
// warned about; a table that prices them, or has a priced default, is not.
func TestWarningsMethodsFallingToFree(t *testing.T) {
	for _, c := range []struct {
		name, table string
		want        []string // substrings of the one warning; nil for none
	}{
		{"GET and HEAD only, free default", `
default_price: 0
rules:
  - {name: echofix, methods: [GET, HEAD], path: "/echofix/(?P<param>[^/]+)", price: 5}
`, []string{`rule 1 "echofix" prices GET, HEAD only`, "POST, PUT, PATCH, DELETE, OPTIONS, any other method", "/echofix/a", "default_price 0"}},
		{"falling to a free catch-all rule", `
default_price: 3
rules:
  - {name: paid, methods: [POST], host: "api\\.example\\.com(:[0-9]+)?", path: "/upload/.+", price: 9}
  - {name: rest, path: "/.*", price: 0}
`, []string{`"paid" prices POST only`, "GET, HEAD, PUT", `rule "rest", price 0`}},
		{"the other methods priced by a later rule", `
default_price: 0
rules:
  - {name: get, methods: [GET], path: "/echofix/[^/]+", price: 5}
  - {name: others, path: "/echofix/[^/]+", price: 7}
`, nil},
		{"a priced default", `
default_price: 1
rules:
  - {name: echofix, methods: [GET, HEAD], path: "/echofix/[^/]+", price: 5}
`, nil},
		{"a free rule restricted to methods", `
default_price: 0
rules:
  - {name: health, methods: [GET], path: "/healthz", price: 0}
`, nil},
		{"no methods", `
default_price: 0
rules:
  - {name: echofix, path: "/echofix/[^/]+", price: 5}
`, nil},
	} {
		table, err := Parse([]byte(c.table))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		w := table.Warnings()
		if c.want == nil {
			if len(w) != 0 {
				t.Errorf("%s: %q, want no warning", c.name, w)
			}
			continue
		}
		if len(w) != 1 {
			t.Errorf("%s: %q, want one warning", c.name, w)
			continue
		}
		for _, part := range c.want {
			if !strings.Contains(w[0], part) {
				t.Errorf("%s: %q lacks %q", c.name, w[0], part)
			}
		}
	}
}

// A path pattern written for raw paths is reported: it never matches a canonical path.
func TestWarningsNonCanonicalPatterns(t *testing.T) {
	for pattern, want := range map[string]string{
		"/docs/%7euser/.*": "an escape of '~'",
		"/docs/%3f/.*":     "lower-case hex",
		"/café/.*":         "which is escaped",
		"/api;v=1/.*":      "';', which is escaped",
		`/a\\b`:            "which is escaped",
		"/a//b":            `"//", which is resolved`,
		`/x/\.\./echofix`:  `"/../", which is resolved`,
		"/docs/%3F/.*":     "",
		"/caf%C3%A9/.*":    "",
		"/(?i)echofix/.*":  "",
		"/echofix/[^/]+/?": "",
	} {
		table, err := Parse([]byte("default_price: 1\nrules:\n  - {name: r, path: '" + pattern + "', price: 5}\n"))
		if err != nil {
			t.Fatalf("%s: %v", pattern, err)
		}
		w := table.Warnings()
		switch {
		case want == "" && len(w) != 0:
			t.Errorf("%s: %q, want no warning", pattern, w)
		case want != "" && (len(w) != 1 || !strings.Contains(w[0], want)):
			t.Errorf("%s: %q, want one warning with %q", pattern, w, want)
		}
	}
}

// The shipped table prices every method of the resources it sells.
func TestShippedTableHasNoWarnings(t *testing.T) {
	table, err := LoadWith("../prices.yaml", Options{Token: &Token{Decimals: 18}})
	if err != nil {
		t.Fatal(err)
	}
	if w := table.Warnings(); len(w) > 0 {
		t.Errorf("prices.yaml: %q", w)
	}
}
