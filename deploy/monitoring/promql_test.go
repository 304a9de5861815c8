package monitoring

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// metricNames returns the metric names an expression selects, sorted and without repeats.
// It is a tokenizer, not a parser (Prometheus's parser would bring the whole Prometheus
// module into go.mod): it skips strings, label matchers ({…}), ranges ([…]) and the label
// lists of by, without, on, ignoring, group_left and group_right, and takes an identifier
// followed by "(" for a function, and an aggregation followed by by or without for an
// aggregation. The syntax itself is promtool's to check (TestDashboardQueriesArePromQL,
// TestRulesPassPromtool).
func metricNames(t testing.TB, expr string) []string {
	t.Helper()
	names, err := scanMetricNames(expr)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	return names
}

var (
	labelListKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	// Operators and literals that are identifiers to the eye.
	keywords     = []string{"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
	aggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)

func scanMetricNames(expr string) ([]string, error) {
	var names []string
	s := []rune(expr)
	i := 0
	// skipTo returns the index after the bracket closing the one at s[i], skipping strings.
	skipTo := func(i int, open, close rune) (int, error) {
		depth := 0
		for j := i; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"' || c == '\'' || c == '`':
				end, err := skipString(s, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unclosed %c at %d", open, i)
	}
	nextNonSpace := func(j int) int {
		for j < len(s) && unicode.IsSpace(s[j]) {
			j++
		}
		return j
	}
	nextWord := func(j int) string {
		j = nextNonSpace(j)
		k := j
		for k < len(s) && isIdent(s[k], k > j) {
			k++
		}
		return string(s[j:k])
	}
	for i < len(s) {
		c := s[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{':
			end, err := skipTo(i, '{', '}')
			if err != nil {
				return nil, err
			}
			if strings.Contains(string(s[i:end]), "__name__") {
				return nil, fmt.Errorf("a selector by __name__ (%s): name the metric instead", string(s[i:end]))
			}
			i = end
		case c == '[':
			end, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = end
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(s) && unicode.IsDigit(s[i+1])):
			// A number or a duration: 0.99, 1e18, 2.5e-3, 0x1f, 5m.
			for i < len(s) && (isIdent(s[i], true) || s[i] == '.' ||
				((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E') && !strings.HasPrefix(strings.ToLower(string(s[:i])), "0x"))) {
				i++
			}
		case isIdent(c, false):
			j := i
			for j < len(s) && isIdent(s[j], true) {
				j++
			}
			word := string(s[i:j])
			next := nextNonSpace(j)
			followedBy := func(r rune) bool { return next < len(s) && s[next] == r }
			switch {
			case slices.Contains(labelListKeywords, word):
				if followedBy('(') {
					end, err := skipTo(next, '(', ')')
					if err != nil {
						return nil, err
					}
					j = end
				}
			case slices.Contains(keywords, strings.ToLower(word)):
			case followedBy('('): // a function or an aggregation
			case slices.Contains(aggregations, word) && slices.Contains([]string{"by", "without"}, nextWord(j)):
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
			i = j
		default: // operators, parentheses, commas, @
			i++
		}
	}
	slices.Sort(names)
	return names, nil
}

func isIdent(c rune, notFirst bool) bool {
	return c == '_' || c == ':' || (c < unicode.MaxASCII && unicode.IsLetter(c)) || (notFirst && unicode.IsDigit(c))
}

// skipString returns the index after the string starting at s[i].
func skipString(s []rune, i int) (int, error) {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && quote != '`':
			j++
		case s[j] == quote:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string at %d", i)
}

func TestScanMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up == 0`: {"up"},
		`sum by (job, status) (rate(a_total{status=~"502|503", x='}{by'}[5m])) / ignoring (status) group_left sum by (job) (rate(a_total[$__rate_interval]))`: {"a_total"},
		`histogram_quantile(0.99, sum by (le) (rate(h_seconds_bucket{job=~"$job"}[5m]))) > 0.25`:                                                              {"h_seconds_bucket"},
		`b_wei < 2 * min_wei`:                    {"b_wei", "min_wei"},
		`x / 1e18 + y offset 5m - 2.5e-3 * 0x1f`: {"x", "y"},
		"delta(d{s=\"failed\"}[30m]) > 0\nor increase(r_total[30m]) > bool 0 unless on(job) z": {"d", "r_total", "z"},
		`count_values("v", m) and topk(3, n) or sum without (a) (o) or max(p) by (b)`:          {"m", "n", "o", "p"},
		`sum(rate(q[5m:1m])) # a comment naming fake_metric`:                                   {"q"},
		`rec:rule_name:rate5m`:          {"rec:rule_name:rate5m"},
		`group_left_metric + sum_total`: {"group_left_metric", "sum_total"},
	} {
		got, err := scanMetricNames(expr)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %v %v, want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{`{__name__="x"}`, `rate(x{a="b}[5m])`, `x[5m`} {
		if got, err := scanMetricNames(bad); err == nil {
			t.Errorf("%q: %v, want an error", bad, got)
		}
	}
}
