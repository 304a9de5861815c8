// Package envoy holds the deployment configurations that put uraiden behind a proxy: the
// Envoy front proxy (envoy.yaml), a Docker Compose stack around it (docker-compose.yaml),
// the Istio resources (istio/), and the replicated mode's Envoy configs
// (envoy*-replicas.yaml) and Kubernetes resources (kubernetes/: three replicas on an etcd
// ledger), and nginx's site (nginx/, run by internal/server's TestNginxAuthRequest). It has
// no code of its own: its tests validate those files against Envoy's,
// Kubernetes' and Istio's schemas and against uraiden's defaults, since neither Envoy nor
// Docker runs on the machines that build uraiden.
package envoy
