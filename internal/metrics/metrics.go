// Package metrics owns uraiden's Prometheus metrics: it defines every metric, is fed by
// hooks the other packages expose (authz.Config.Observe, ledger.Options.OnCommit, the
// watchtower's transaction results), reads the ledger's counters and the chain head at
// scrape time, and serves them in Prometheus's text format. Nothing else imports the
// Prometheus client, so the ledger and the ext_authz service stay free of it.
package metrics

import (
	"math"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/ledger"
)

// Sources are read at every scrape.
type Sources struct {
	// Stats and Sync are the ledger's counters and sync state.
	Stats func() ledger.Stats
	Sync  func() ledger.SyncState
	// Head is the chain's head block, when known.
	Head func() (uint64, bool)
}

// WatchtowerResults are the results the watchtower reports, exported from the start so
// that dashboards and alerts see zeros rather than no series.
var WatchtowerResults = []string{"sent", "bumped", "mined", "reverted", "waiting-funds"}

// Metrics is the registry and the metrics fed by hooks.
type Metrics struct {
	registry       *prometheus.Registry
	decisions      *prometheus.CounterVec
	checkDuration  *prometheus.HistogramVec
	payments       prometheus.Counter
	earned         prometheus.Counter
	commitDuration prometheus.Histogram
	commitWrites   prometheus.Histogram
	watchtower     *prometheus.CounterVec

	// checkSeries caches the series of each kind of decision: finding one by its label
	// values hashes and allocates, on every Check.
	checkSeries sync.Map // checkKey → *checkSeries
}

type checkKey struct {
	outcome string
	status  int
	flag    string
}

type checkSeries struct {
	decisions prometheus.Counter
	duration  prometheus.Observer
}

// New registers every metric, the Go runtime's and the process's included.
func New(src Sources) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uraiden_check_decisions_total",
			Help: "ext_authz Check decisions by outcome (free, paid, retried, quote, refused, malformed, error), HTTP status and RDN failure flag.",
		}, []string{"outcome", "status", "flag"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "uraiden_check_duration_seconds",
			Help:    "Time to decide an ext_authz Check, by outcome; a paid one includes the ledger's fsync.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}, []string{"outcome"}),
		payments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uraiden_payments_accepted_total",
			Help: "Payments accepted and made durable.",
		}),
		earned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uraiden_tokens_earned_total",
			Help: "Token base units charged for accepted payments (a float: exact up to 2^53).",
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "uraiden_ledger_commit_duration_seconds",
			Help:    "Time of one ledger group commit, fsync included.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "uraiden_ledger_commit_writes",
			Help:    "Writes (payments, chain updates, closes) grouped into one ledger commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		watchtower: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uraiden_watchtower_transactions_total",
			Help: "Dispute transactions the watchtower sent, by result.",
		}, []string{"result"}),
	}
	for _, r := range WatchtowerResults {
		m.watchtower.WithLabelValues(r)
	}
	m.registry.MustRegister(
		m.decisions, m.checkDuration, m.payments, m.earned, m.commitDuration, m.commitWrites, m.watchtower,
		&ledgerCollector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveCheck counts a decision; it is authz.Config.Observe.
func (m *Metrics) ObserveCheck(d *authz.Decision, took time.Duration) {
	key := checkKey{d.Outcome(), d.Status, d.Flag}
	series, ok := m.checkSeries.Load(key)
	if !ok {
		// Bounded: the outcomes, statuses and flags are a few constants each.
		series, _ = m.checkSeries.LoadOrStore(key, &checkSeries{
			decisions: m.decisions.WithLabelValues(key.outcome, strconv.Itoa(key.status), key.flag),
			duration:  m.checkDuration.WithLabelValues(key.outcome),
		})
	}
	s := series.(*checkSeries)
	s.decisions.Inc()
	s.duration.Observe(took.Seconds())
	if key.outcome == "paid" {
		m.payments.Inc()
		m.earned.Add(tokens(d.Price))
	}
}

// tokens is a price as the float the counter adds, without allocating for prices that fit
// an int64.
func tokens(price *big.Int) float64 {
	if price.IsInt64() {
		return float64(price.Int64())
	}
	f, _ := new(big.Float).SetInt(price).Float64()
	return f
}

// ObserveCommit records a ledger commit; it is ledger.Options.OnCommit.
func (m *Metrics) ObserveCommit(writes int, took time.Duration) {
	m.commitDuration.Observe(took.Seconds())
	m.commitWrites.Observe(float64(writes))
}

// WatchtowerTransaction counts a dispute transaction event by result (WatchtowerResults).
func (m *Metrics) WatchtowerTransaction(result string) {
	m.watchtower.WithLabelValues(result).Inc()
}

// CheckDurationBuckets reads the Check duration histogram of one outcome: the buckets'
// upper bounds in seconds and their cumulative counts, the last bound +Inf. A reader that
// takes it before and after a load gets the server's own view of that load's latency
// without scraping the whole registry.
func (m *Metrics) CheckDurationBuckets(outcome string) (upper []float64, cumulative []uint64) {
	var pb dto.Metric
	if err := m.checkDuration.WithLabelValues(outcome).(prometheus.Metric).Write(&pb); err != nil {
		return nil, nil
	}
	for _, b := range pb.GetHistogram().GetBucket() {
		upper = append(upper, b.GetUpperBound())
		cumulative = append(cumulative, b.GetCumulativeCount())
	}
	// Prometheus leaves the +Inf bucket implicit: its count is the sample count.
	return append(upper, math.Inf(1)), append(cumulative, pb.GetHistogram().GetSampleCount())
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ledgerCollector reads the ledger's counters and the chain head at scrape time: they are
// kept exact elsewhere, so copying them into gauges on every change would only add work.
type ledgerCollector struct{ src Sources }

var (
	descChannels  = prometheus.NewDesc("uraiden_channels", "Channels by state (open, closing, settled).", []string{"state"}, nil)
	descSenders   = prometheus.NewDesc("uraiden_unique_senders", "Senders with at least one open channel.", nil, nil)
	descHead      = prometheus.NewDesc("uraiden_chain_head_block", "The chain's head block, as last read.", nil, nil)
	descSync      = prometheus.NewDesc("uraiden_ledger_sync_block", "The last block whose events the ledger applied.", nil, nil)
	descConfirmed = prometheus.NewDesc("uraiden_ledger_confirmed_block", "The highest block whose deposits count as confirmed.", nil, nil)
	descLag       = prometheus.NewDesc("uraiden_chain_sync_lag_blocks", "Blocks between the chain head and the ledger's sync block.", nil, nil)
)

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChannels, descSenders, descHead, descSync, descConfirmed, descLag} {
		ch <- d
	}
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	for state, n := range map[string]int64{"open": st.OpenChannels, "closing": st.ClosingChannels, "settled": st.SettledChannels} {
		ch <- prometheus.MustNewConstMetric(descChannels, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(descSenders, prometheus.GaugeValue, float64(st.UniqueSenders))
	sync := c.src.Sync()
	ch <- prometheus.MustNewConstMetric(descSync, prometheus.GaugeValue, float64(sync.Cursor))
	ch <- prometheus.MustNewConstMetric(descConfirmed, prometheus.GaugeValue, float64(sync.Confirmed))
	if head, ok := c.src.Head(); ok {
		ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(head))
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(head-min(head, sync.Cursor)))
	}
}
