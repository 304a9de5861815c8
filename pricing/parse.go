package pricing

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadError is one problem in a price table, located as precisely as the file allows.
type LoadError struct {
	File string // as given to Load; "" from Parse
	Line int    // 1-based; 0 when unknown
	Rule int    // 1-based position in rules; 0 outside the rules
	Name string // the rule's name, when it has a valid one
	Key  string // the key at fault, e.g. "price_expr"; "" for the rule or file as a whole
	Err  error
}

// Error formats the problem as file:line: rule N "name": key: message.
func (e *LoadError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Rule > 0 {
		fmt.Fprintf(&b, "rule %d", e.Rule)
		if e.Name != "" {
			fmt.Fprintf(&b, " %q", e.Name)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Err }

// Load reads and validates the price table file at path. Every problem is reported, each
// as a *LoadError, joined with errors.Join. Prices in tokens are errors: see LoadWith.
func Load(path string) (*Table, error) {
	return LoadWith(path, Options{})
}

// LoadWith is Load with options, which convert prices written in tokens.
func LoadWith(path string, opts Options) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, opts)
}

// Parse validates a price table held in memory. Its errors are located by line only.
// Prices in tokens are errors: see ParseWith.
func Parse(data []byte) (*Table, error) {
	return parse("", data, Options{})
}

// ParseWith is Parse with options, which convert prices written in tokens.
func ParseWith(data []byte, opts Options) (*Table, error) {
	return parse("", data, opts)
}

// Keys of the file. Anything else is an error: a misspelt key would otherwise be ignored
// and a price silently dropped.
var (
	tableKeys = []string{"default_price", "rules"}
	ruleKeys  = []string{"name", "methods", "host", "path", "price", "price_expr"}
)

// parser accumulates every problem of one file instead of stopping at the first, so an
// operator fixes a broken table in one round.
type parser struct {
	file string
	opts Options
	errs []*LoadError
	// tokenPrices counts the prices written in tokens, unconverted those left unconverted.
	tokenPrices, unconverted int
}

// where is the rule a problem belongs to; the zero value means the top level.
type where struct {
	rule int
	name string
}

type field struct{ key, value *yaml.Node }

func (p *parser) errorf(line int, w where, key, format string, args ...any) {
	p.add(line, w, key, fmt.Errorf(format, args...))
}

func (p *parser) add(line int, w where, key string, err error) {
	p.errs = append(p.errs, &LoadError{File: p.file, Line: line, Rule: w.rule, Name: w.name, Key: key, Err: err})
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *LoadError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parse(file string, data []byte, opts Options) (*Table, error) {
	if opts.Token != nil {
		opts.Unconverted = false
	}
	p := &parser{file: file, opts: opts}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(0, where{}, "", "empty price table (write default_price: 0 for a table where everything is free)")
		} else {
			p.yamlError(err)
		}
		return nil, p.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			p.yamlError(err)
		} else {
			p.errorf(extra.Line, where{}, "", "a second YAML document; the table must be one document")
		}
		return nil, p.err()
	}
	if len(doc.Content) == 0 {
		p.errorf(doc.Line, where{}, "", "empty price table")
		return nil, p.err()
	}
	t := p.table(deref(doc.Content[0]))
	if err := p.err(); err != nil {
		return nil, err
	}
	t.token, t.tokenPrices, t.unconverted = opts.Token, p.tokenPrices, p.unconverted
	return t, nil
}

// yamlError turns yaml.v3's "yaml: line N: msg" into a located LoadError.
func (p *parser) yamlError(err error) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		// yaml.v3 numbers lines from 1 for scanner errors but from 0 for parser errors
		// (its decode.go corrects only the former), so correct the latter here.
		if isYAMLParserError(m[2]) {
			line++
		}
		p.errorf(line, where{}, "", "%s", m[2])
		return
	}
	p.add(0, where{}, "", err)
}

// isYAMLParserError recognizes the messages of yaml.v3's parser (parserc.go), as opposed to
// its scanner.
func isYAMLParserError(msg string) bool {
	for _, prefix := range []string{"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

func (p *parser) table(n *yaml.Node) *Table {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, where{}, "", "the table must be a mapping with default_price and rules")
		return nil
	}
	fields := p.mapping(n, where{}, tableKeys)
	t := &Table{byName: map[string]*rule{}}
	if f, ok := fields["default_price"]; ok {
		t.defaultPrice = p.price(f, where{}, "default_price")
	} else {
		// Required because a missing default would make every unlisted route free.
		p.errorf(n.Line, where{}, "default_price", "required (0 makes requests no rule matches free)")
	}
	f, ok := fields["rules"]
	if !ok {
		return t
	}
	seq := deref(f.value)
	if seq.Kind != yaml.SequenceNode {
		if seq.Tag != "!!null" {
			p.errorf(seq.Line, where{}, "rules", "must be a list of rules")
		}
		return t
	}
	firstByName := map[string]int{}
	for i, rn := range seq.Content {
		ru := p.rule(deref(rn), i+1, firstByName)
		if ru != nil {
			t.rules = append(t.rules, ru)
			t.byName[ru.name] = ru
		}
	}
	return t
}

// mapping returns n's fields by key, reporting unknown and repeated keys.
func (p *parser) mapping(n *yaml.Node, w where, known []string) map[string]field {
	fields := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			p.errorf(k.Line, w, "", "keys must be strings")
		case !slices.Contains(known, k.Value):
			p.errorf(k.Line, w, "", "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
		case fields[k.Value].key != nil:
			p.errorf(k.Line, w, k.Value, "repeated (first at line %d)", fields[k.Value].key.Line)
		default:
			fields[k.Value] = field{key: k, value: v}
		}
	}
	return fields
}

// rule compiles one rule, or reports why it cannot and returns nil.
func (p *parser) rule(n *yaml.Node, index int, firstByName map[string]int) *rule {
	w := where{rule: index}
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, w, "", "a rule must be a mapping")
		return nil
	}
	before := len(p.errs)
	fields := p.mapping(n, w, ruleKeys)
	ru := &rule{}

	// The name comes first so that every other problem can be reported against it.
	if f, ok := fields["name"]; ok {
		if name, ok := p.str(f, w, "name"); ok {
			if first, dup := firstByName[name]; dup {
				p.errorf(f.value.Line, w, "name", "%q is already the name of rule %d", name, first)
			} else {
				firstByName[name] = index
			}
			ru.name, w.name = name, name
		}
	} else {
		p.errorf(n.Line, w, "name", "required")
	}
	// The name problems above were reported before the name was known; attach it.
	for _, e := range p.errs[before:] {
		e.Name = w.name
	}

	if f, ok := fields["methods"]; ok {
		ru.methods = p.methods(f, w)
	}
	regexOK := true
	if f, ok := fields["host"]; ok {
		if src, ok := p.str(f, w, "host"); ok {
			var err error
			if ru.host, err = CompilePattern(src); err != nil {
				p.add(f.value.Line, w, "host", err)
				regexOK = false
			}
			ru.hostSrc = src
		} else {
			regexOK = false
		}
	}
	if f, ok := fields["path"]; ok {
		if src, ok := p.str(f, w, "path"); ok {
			var err error
			if ru.path, err = CompilePattern(src); err != nil {
				p.add(f.value.Line, w, "path", err)
				regexOK = false
			}
			ru.pathSrc = src
		} else {
			regexOK = false
		}
	} else {
		p.errorf(n.Line, w, "path", "required")
		regexOK = false
	}

	priceField, hasPrice := fields["price"]
	exprField, hasExpr := fields["price_expr"]
	switch {
	case hasPrice && hasExpr:
		p.errorf(exprField.key.Line, w, "", "price and price_expr are exclusive; give one")
	case hasPrice:
		ru.price = p.price(priceField, w, "price")
	case hasExpr:
		src, ok := p.str(exprField, w, "price_expr")
		// Captures come from the regexps: without them the expression's errors would be noise.
		if ok && regexOK {
			expr, err := compileExpr(src, ru.path, ru.host)
			if err != nil {
				for _, e := range splitJoined(err) {
					p.add(exprField.value.Line, w, "price_expr", e)
				}
			}
			ru.expr = expr
		}
	default:
		p.errorf(n.Line, w, "", "one of price or price_expr is required")
	}

	if len(p.errs) > before {
		return nil
	}
	return ru
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// str reads a non-empty scalar. YAML gives every scalar a string form, so name: 404 is the
// name "404", as yaml.v3 would decode it into a string field.
func (p *parser) str(f field, w where, key string) (string, bool) {
	v := deref(f.value)
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		p.errorf(v.Line, w, key, "must be a string")
		return "", false
	}
	if v.Value == "" {
		p.errorf(v.Line, w, key, "must not be empty")
		return "", false
	}
	return v.Value, true
}

// price reads a price: a YAML integer, or a decimal string for values YAML integers cannot
// carry, in base units; or a decimal and a unit, "0.005 token", in whole tokens, converted
// with the token's decimals. yaml.v3 types plain integers above 2^64 as floats, so those are
// accepted too when they are all digits.
func (p *parser) price(f field, w where, key string) *big.Int {
	v := deref(f.value)
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		p.errorf(v.Line, w, key, "must be an integer, a decimal string or an amount in tokens (\"0.005 token\")")
		return nil
	}
	if _, _, ok := splitUnit(v.Value); ok && v.Tag == "!!str" {
		price, err := p.tokens(v.Value)
		if err != nil {
			p.add(v.Line, w, key, err)
			return nil
		}
		return price
	}
	price, err := parsePrice(v.Value, v.Tag != "!!str")
	if err != nil {
		if whole, frac, ok := strings.Cut(v.Value, "."); ok && isDecimal(strings.TrimPrefix(whole, "-")) && isDecimal(frac) {
			// A YAML float: most likely a price meant in tokens with the unit left out.
			err = fmt.Errorf("%q has a fraction, and a bare number is in base units, which are whole; for whole tokens write the unit: \"%s token\"", v.Value, v.Value)
		} else if errors.Is(err, errNotInteger) {
			err = fmt.Errorf("%q is not a price: write base units as an integer (5000) or whole tokens as a decimal, a space and the unit (\"0.005 token\")", v.Value)
		}
		p.add(v.Line, w, key, err)
		return nil
	}
	return price
}

// tokens converts a price in tokens, or only checks it when the token is not known and the
// caller asked for Options.Unconverted. The stand-in price of an unconverted amount has its
// sign, which is all Warnings reads of it.
func (p *parser) tokens(s string) (*big.Int, error) {
	a, err := parseTokens(s)
	if err == nil {
		err = a.check(s)
	}
	if err != nil {
		return nil, err
	}
	p.tokenPrices++
	switch {
	case p.opts.Token != nil:
		return a.base(s, p.opts.Token.Decimals)
	case p.opts.Unconverted:
		p.unconverted++
		return a.digits, nil
	default:
		return nil, fmt.Errorf("%q is in tokens: %w", s, ErrNoDecimals)
	}
}

func (p *parser) methods(f field, w where) []string {
	v := deref(f.value)
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, w, "methods", "must be a list, e.g. [GET, HEAD]")
		return nil
	}
	var methods []string
	for _, mn := range v.Content {
		mn = deref(mn)
		if mn.Kind != yaml.ScalarNode || !isToken(mn.Value) {
			p.errorf(mn.Line, w, "methods", "%q is not an HTTP method name", mn.Value)
			continue
		}
		m := strings.ToUpper(mn.Value)
		if slices.Contains(methods, m) {
			p.errorf(mn.Line, w, "methods", "%s is listed twice", m)
			continue
		}
		methods = append(methods, m)
	}
	return methods
}

// isToken reports whether s is an RFC 9110 token, the syntax of a method name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// CompilePattern compiles a rule's host or path pattern as the table does: RE2 with the
// Perl flags, matching whole strings only. The anchors are added to the parsed expression
// rather than to the text, so that an unterminated \Q in src cannot swallow them, and
// errors quote what the operator wrote.
func CompilePattern(src string) (*regexp.Regexp, error) {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil, err
	}
	anchored := &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{
		{Op: syntax.OpBeginText}, re, {Op: syntax.OpEndText},
	}}
	return regexp.Compile(anchored.String())
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
