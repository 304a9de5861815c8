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

	// The rest may be nil (a benchmark's bare service); their series are then left out.

	// LedgerErr is why the ledger takes no payments now (ledger.Ledger.Err), or nil.
	LedgerErr func() error
	// ChainErr is why the chain side cannot protect the receiver now, or nil.
	ChainErr func() error
	// ChainSide reports whether this process runs the watcher and the watchtower; the
	// receiver's balance and the disputes are exported only there, so that replicas that
	// do not run it neither scan the disputes nor report a balance they stopped reading.
	ChainSide func() bool
	// ReceiverBalance is the receiver's ETH in wei as the watcher last read it (nil before
	// the first read) and the minimum below which payments stop.
	ReceiverBalance func() (balance, minimum *big.Int)
	// Disputes lists the watchtower's disputes, active or not.
	Disputes func() ([]ledger.Dispute, error)
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

	descLedgerUp   = prometheus.NewDesc("uraiden_ledger_up", "1 while the ledger takes payments; 0 after a failed write, while resyncing, low on disk or cut off from etcd (/readyz says which).", nil, nil)
	descChainOK    = prometheus.NewDesc("uraiden_chain_healthy", "1 while the chain side can protect the receiver (the node answers, the ledger keeps up, disputes can be paid for); 0 otherwise, and payments are refused.", nil, nil)
	descChainSide  = prometheus.NewDesc("uraiden_chain_side", "1 if this process runs the watcher and the watchtower (always on Badger; the elected replica on etcd).", nil, nil)
	descBalance    = prometheus.NewDesc("uraiden_receiver_eth_balance_wei", "The receiver's ETH balance in wei, as the watcher last read it (a float: rounded beyond 2^53 wei).", nil, nil)
	descMinBalance = prometheus.NewDesc("uraiden_receiver_eth_min_balance_wei", "The receiver's ETH balance below which payments stop (chain.min_receiver_eth).", nil, nil)
	descDisputes   = prometheus.NewDesc("uraiden_watchtower_disputes", "The watchtower's disputes by status (waiting-funds, sent, done, failed), as the ledger holds them.", []string{"status"}, nil)
	descLate       = prometheus.NewDesc("uraiden_watchtower_disputes_past_deadline", "Active disputes whose transaction is not mined by its deadline block (its fee is then at the cap) as of the chain head.", nil, nil)
)

// disputeStatuses are exported from the start, as zeros.
var disputeStatuses = []ledger.DisputeStatus{ledger.DisputeWaitingFunds, ledger.DisputeSent, ledger.DisputeDone, ledger.DisputeFailed}

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChannels, descSenders, descHead, descSync, descConfirmed, descLag,
		descLedgerUp, descChainOK, descChainSide, descBalance, descMinBalance, descDisputes, descLate} {
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
	head, headKnown := c.src.Head()
	if headKnown {
		ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(head))
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(head-min(head, sync.Cursor)))
	}
	if c.src.LedgerErr != nil {
		ch <- prometheus.MustNewConstMetric(descLedgerUp, prometheus.GaugeValue, up(c.src.LedgerErr()))
	}
	if c.src.ChainErr != nil {
		ch <- prometheus.MustNewConstMetric(descChainOK, prometheus.GaugeValue, up(c.src.ChainErr()))
	}
	if c.src.ChainSide == nil {
		return
	}
	side := c.src.ChainSide()
	ch <- prometheus.MustNewConstMetric(descChainSide, prometheus.GaugeValue, boolValue(side))
	if !side {
		return
	}
	if c.src.ReceiverBalance != nil {
		if bal, minimum := c.src.ReceiverBalance(); bal != nil {
			ch <- prometheus.MustNewConstMetric(descBalance, prometheus.GaugeValue, tokens(bal))
			if minimum != nil {
				ch <- prometheus.MustNewConstMetric(descMinBalance, prometheus.GaugeValue, tokens(minimum))
			}
		}
	}
	if c.src.Disputes != nil {
		// A scrape that cannot read the disputes leaves them out rather than report zeros:
		// an alert on them then sees no data instead of "all clear".
		if disputes, err := c.src.Disputes(); err == nil {
			byStatus := map[ledger.DisputeStatus]int{}
			late := 0
			for _, d := range disputes {
				byStatus[d.Status]++
				if d.Active() && headKnown && d.Deadline > 0 && head >= d.Deadline {
					late++
				}
			}
			for _, st := range disputeStatuses {
				ch <- prometheus.MustNewConstMetric(descDisputes, prometheus.GaugeValue, float64(byStatus[st]), string(st))
			}
			if headKnown {
				ch <- prometheus.MustNewConstMetric(descLate, prometheus.GaugeValue, float64(late))
			}
		}
	}
}

// up is 1 for no error, 0 for one.
func up(err error) float64 { return boolValue(err == nil) }

// boolValue is a gauge's 1 or 0.
func boolValue(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}
