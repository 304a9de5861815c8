// Package monitoring holds what watches uraiden in production: a Grafana dashboard
// (grafana-dashboard.json) and Prometheus alerting rules (alerts.yaml, unit-tested by
// alerts_test.yaml). It has no code of its own: its tests check that every metric the two
// name is one a running server exports on /metrics, and run promtool on the rules.
package monitoring
