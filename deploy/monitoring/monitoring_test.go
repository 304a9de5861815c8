package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/uraiden/uraiden/internal/testkit/servertest"
)

const (
	dashboardFile = "grafana-dashboard.json"
	rulesFile     = "alerts.yaml"
	rulesTestFile = "alerts_test.yaml"
	token         = "operator-token-0123456789"
)

// prometheusOwn are series Prometheus makes itself for every target, not read from /metrics.
var prometheusOwn = map[string]bool{"up": true}

// promtool finds promtool, which fails the test under CI rather than skipping it.
func promtool(t *testing.T) string {
	return servertest.Program(t, "apt-get install prometheus", "promtool")
}

func TestRulesPassPromtool(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDashboardQueriesArePromQL has promtool parse every query of the dashboard, as
// recording rules, with Grafana's variables replaced by values Prometheus accepts.
func TestDashboardQueriesArePromQL(t *testing.T) {
	bin := promtool(t)
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range dashboardQueries(t) {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query%d", i), Expr: grafanaVars.Replace(q.expr)})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("the dashboard's queries do not parse: %v\n%s", err, out)
	}
}

// TestDashboardShape checks what Grafana needs to import the dashboard anywhere: every
// panel and query reads the data source variable, and panel ids are unique.
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d: older than Grafana 11's", d.SchemaVersion)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v variable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Error("no datasource variable of type prometheus")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q reads data source %q, not ${datasource}", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" || tg.Expr == "" {
				t.Errorf("panel %q: query %s reads %q with expression %q", p.Title, tg.RefID, tg.Datasource.UID, tg.Expr)
			}
		}
	}
}

// TestMetricsExist starts uraiden on the dev chain, makes it decide a few Checks so that its
// labelled families have series, and checks that every metric the dashboard and the rules
// name is on /metrics, and that every uraiden_ family /metrics has is on the dashboard.
func TestMetricsExist(t *testing.T) {
	c := servertest.DevChain(t, 2)
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(prices, []byte("default_price: 0\nrules:\n  - name: paid\n    path: \"/paid(/.*)?\"\n    price: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config(t, prices)
	cfg.Admin.Token = token
	srv := servertest.Start(t, cfg, c)
	authz := servertest.AuthzClient(t, srv)
	// Free, a quote (402 without a proof) and a malformed proof.
	for _, r := range []struct {
		path    string
		headers map[string]string
		want    int32
	}{
		{"/free", nil, 0},
		{"/paid/x", nil, 402},
		{"/paid/x", map[string]string{"rdn-balance": "not a number", "rdn-sender-address": "0x1"}, 0},
	} {
		h := map[string]string{":method": "GET", ":path": r.path, ":authority": "localhost"}
		for k, v := range r.headers {
			h[k] = v
		}
		resp, err := authz.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: r.path, Host: "localhost", Headers: h}},
		}})
		if err != nil {
			t.Fatalf("Check %s: %v", r.path, err)
		}
		if got := int32(resp.GetDeniedResponse().GetStatus().GetCode()); r.want != 0 && got != r.want {
			t.Fatalf("Check %s: status %d, want %d", r.path, got, r.want)
		}
	}

	used := map[string][]string{} // metric → where
	for _, q := range dashboardQueries(t) {
		for _, m := range metricNames(t, q.expr) {
			used[m] = append(used[m], q.where)
		}
	}
	for _, r := range alertRules(t) {
		for _, m := range metricNames(t, r.Expr) {
			used[m] = append(used[m], "alert "+r.Alert)
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metrics found in the dashboard and the rules: the parsing is broken", len(used))
	}

	// The chain side's series come with its first look at the chain: give it a few polls.
	var families map[string]*dto.MetricFamily
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		families = scrape(t, "http://"+srv.Admin.Addr()+"/metrics")
		missing = missing[:0]
		for m := range used {
			if !prometheusOwn[m] && !exported(families, m) {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is not on /metrics (used by %s)", m, strings.Join(used[m], "; "))
	}

	onDashboard := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		for _, m := range metricNames(t, q.expr) {
			onDashboard[family(families, m)] = true
		}
	}
	for name := range families {
		if strings.HasPrefix(name, "uraiden_") && !onDashboard[name] {
			t.Errorf("%s is exported but not on the dashboard", name)
		}
	}
}

// exported reports whether name is a family on /metrics, or a histogram's or summary's
// _bucket, _sum or _count series.
func exported(families map[string]*dto.MetricFamily, name string) bool {
	_, ok := families[family(families, name)]
	return ok
}

// family is the family a series name belongs to.
func family(families map[string]*dto.MetricFamily, name string) string {
	if _, ok := families[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := families[base]; ok {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				return base
			case dto.MetricType_SUMMARY:
				if suffix != "_bucket" {
					return base
				}
			}
		}
	}
	return name
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v %s", resp.StatusCode, err, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return families
}

type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// variable is a templating variable; a query variable's query is an object, a data source
// variable's a string.
type variable struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	RawQuery json.RawMessage `json:"query"`
	Query    string          `json:"-"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for i, v := range d.Templating.List {
		var s string
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.RawQuery, &s) == nil {
			d.Templating.List[i].Query = s
		} else if err := json.Unmarshal(v.RawQuery, &q); err == nil {
			d.Templating.List[i].Query = q.Query
		} else {
			t.Fatalf("variable %s: query %s", v.Name, v.RawQuery)
		}
	}
	return d
}

type query struct{ expr, where string }

// labelValues is Grafana's label_values(selector, label), whose selector is PromQL.
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardQueries returns the PromQL of every panel query and query variable.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	d := readDashboard(t)
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{tg.Expr, fmt.Sprintf("panel %q", p.Title)})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Query)
		}
		out = append(out, query{m[1], "variable " + v.Name})
	}
	return out
}

type alertRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}
