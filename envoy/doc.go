// Package envoy holds the deployment configurations that put uraiden behind a proxy: the
// Envoy front proxy (envoy.yaml), a Docker Compose stack around it (docker-compose.yaml) and
// the Istio resources (istio/). It has no code of its own: its tests validate those files
// against Envoy's and Kubernetes' schemas and against uraiden's defaults, since neither
// Envoy nor Docker runs on the machines that build uraiden.
package envoy
